// The chat templates of SmolLM2-Instruct and Qwen2.5-Instruct, written out in C++ (no Jinja): both
// are ChatML, "<|im_start|>{role}\n{content}<|im_end|>\n" per message, and differ in the default
// system prompt and in how they place it:
//   SmolLM2: if the first message is not a system message, "<|im_start|>system\nYou are a helpful
//            AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" comes first.
//   Qwen2.5: the first message if it is a system message, else "<|im_start|>system\nYou are Qwen,
//            created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"; then every other
//            message (a later system message too).
// With add_generation_prompt, "<|im_start|>assistant\n" ends the text. Roles are system, user and
// assistant; tool messages and tool calls (Qwen2.5's template has them) are not implemented.
// The outputs match transformers' apply_chat_template(..., tokenize=False) on the models' own
// templates (SmolLM2's from its GGUF, Qwen2.5's from its tokenizer_config.json); see the test.
//
// Usage:
//   absl::StatusOr<std::string> prompt = kvgate::runtime::ApplyChatTemplate(
//       kvgate::runtime::ChatTemplate::kQwen2_5, {{"user", "Hello"}},
//       /*add_generation_prompt=*/true);

#ifndef KVGATE_EXPERIMENTS_RUNTIME_CHAT_TEMPLATE_H_
#define KVGATE_EXPERIMENTS_RUNTIME_CHAT_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::runtime {

enum class ChatTemplate { kSmolLM2, kQwen2_5 };

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// "smollm2" or "qwen2.5".
absl::string_view ChatTemplateName(ChatTemplate chat_template);
// The system prompt used when the conversation has none.
absl::string_view DefaultSystemPrompt(ChatTemplate chat_template);

// Recognizes a model's Jinja chat template (tokenizer.chat_template in GGUF, chat_template in
// tokenizer_config.json) by its default system prompt; Unimplemented for any other template.
absl::StatusOr<ChatTemplate> ChatTemplateFromJinja(absl::string_view jinja);

// The chat template of a Hugging Face snapshot folder (tokenizer_config.json's chat_template, or
// chat_template.jinja) or of a .gguf file (tokenizer.chat_template).
absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& path);

// The prompt text; InvalidArgument for no messages or a role other than system/user/assistant.
absl::StatusOr<std::string> ApplyChatTemplate(ChatTemplate chat_template,
                                              const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_CHAT_TEMPLATE_H_
