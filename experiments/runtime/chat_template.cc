// See chat_template.h.

#include "experiments/runtime/chat_template.h"

#include <sys/stat.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "experiments/runtime/gguf.h"
#include "experiments/runtime/json_limits.h"

namespace kvgate::runtime {
namespace {

constexpr absl::string_view kSmolLM2System =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
constexpr absl::string_view kQwen2_5System =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

void AppendMessage(absl::string_view role, absl::string_view content, std::string* out) {
  absl::StrAppend(out, "<|im_start|>", role, "\n", content, "<|im_end|>\n");
}

}  // namespace

absl::string_view ChatTemplateName(ChatTemplate chat_template) {
  return chat_template == ChatTemplate::kSmolLM2 ? "smollm2" : "qwen2.5";
}

absl::string_view DefaultSystemPrompt(ChatTemplate chat_template) {
  return chat_template == ChatTemplate::kSmolLM2 ? kSmolLM2System : kQwen2_5System;
}

absl::StatusOr<ChatTemplate> ChatTemplateFromJinja(absl::string_view jinja) {
  if (absl::StrContains(jinja, "<|im_start|>")) {
    if (absl::StrContains(jinja,
                          absl::StrCat("<|im_start|>system\\n", kSmolLM2System, "<|im_end|>")) ||
        absl::StrContains(jinja,
                          absl::StrCat("<|im_start|>system\n", kSmolLM2System, "<|im_end|>"))) {
      return ChatTemplate::kSmolLM2;
    }
    if (absl::StrContains(jinja, kQwen2_5System)) return ChatTemplate::kQwen2_5;
  }
  return absl::UnimplementedError(
      absl::StrCat("chat template not recognized (only SmolLM2's and Qwen2.5's are implemented): ",
                   jinja.substr(0, 120), jinja.size() > 120 ? "..." : ""));
}

absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file or folder"));
  }
  std::string jinja;
  std::string where;
  if (S_ISDIR(info.st_mode)) {
    const std::string dir = absl::EndsWith(path, "/") ? path : path + "/";
    where = dir + "tokenizer_config.json";
    absl::StatusOr<nlohmann::json> config = ReadJsonFile(where);
    if (config.ok() && config->is_object() && config->contains("chat_template")) {
      const nlohmann::json& t = (*config)["chat_template"];
      if (t.is_string()) {
        jinja = t.get<std::string>();
      } else if (t.is_array()) {  // [{"name": "default", "template": ...}, ...]
        for (const nlohmann::json& entry : t) {
          if (entry.is_object() && entry.value("name", "") == "default" &&
              entry.contains("template") && entry["template"].is_string()) {
            jinja = entry["template"].get<std::string>();
          }
        }
      }
    } else if (!config.ok() && !absl::IsNotFound(config.status())) {
      return config.status();
    }
    if (jinja.empty()) {
      where = dir + "chat_template.jinja";
      absl::StatusOr<std::string> text = ReadFileToString(where, 1 << 20);
      if (!text.ok()) {
        return absl::NotFoundError(
            absl::StrCat(dir,
                         ": no chat template (neither tokenizer_config.json's \"chat_template\" "
                         "nor chat_template.jinja)"));
      }
      jinja = *std::move(text);
    }
  } else {
    where = path;
    absl::StatusOr<GgufFile> gguf = GgufFile::Open(path);
    if (!gguf.ok()) return gguf.status();
    absl::StatusOr<std::string> t = gguf->GetString("tokenizer.chat_template");
    if (!t.ok()) return t.status();
    jinja = *std::move(t);
  }
  absl::StatusOr<ChatTemplate> kind = ChatTemplateFromJinja(jinja);
  if (!kind.ok())
    return absl::UnimplementedError(absl::StrCat(where, ": ", kind.status().message()));
  return kind;
}

absl::StatusOr<std::string> ApplyChatTemplate(ChatTemplate chat_template,
                                              const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt) {
  if (messages.empty()) return absl::InvalidArgumentError("ApplyChatTemplate: no messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat("ApplyChatTemplate: message ", i,
                                                     " has role \"", role,
                                                     "\" (expected system, user or assistant)"));
    }
  }
  std::string out;
  const bool has_system = messages[0].role == "system";
  if (!has_system) AppendMessage("system", DefaultSystemPrompt(chat_template), &out);
  for (const ChatMessage& m : messages) AppendMessage(m.role, m.content, &out);
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace kvgate::runtime
