// Tests of the chat templates (chat_template.h): the exact text jinja2 renders from SmolLM2's
// template (read from the embedded GGUF) and Qwen2.5's (testdata/chat_template_expected.json,
// written by testdata/make_references.py), template recognition, and errors.
//
// Run: tools/bazel test //experiments/runtime:chat_template_test

#include "experiments/runtime/chat_template.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/runtime/gguf.h"
#include "experiments/runtime/loader_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;

TEST(ChatTemplateTest, MatchesJinjaRenderings) {
  const nlohmann::json rows = nlohmann::json::parse(
      testing::ReadTestFile(testing::TestDataPath("chat_template_expected.json")));
  int seen[2] = {0, 0};
  for (const nlohmann::json& row : rows) {
    const ChatTemplate t =
        row["template"] == "smollm2" ? ChatTemplate::kSmolLM2 : ChatTemplate::kQwen2_5;
    ++seen[static_cast<int>(t)];
    std::vector<ChatMessage> messages;
    for (const nlohmann::json& m : row["messages"]) {
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    absl::StatusOr<std::string> text =
        ApplyChatTemplate(t, messages, row["add_generation_prompt"].get<bool>());
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, row["text"].get<std::string>()) << row.dump();
  }
  EXPECT_EQ(seen[0], 10);
  EXPECT_EQ(seen[1], 10);
}

TEST(ChatTemplateTest, SpelledOut) {
  EXPECT_EQ(*ApplyChatTemplate(ChatTemplate::kSmolLM2, {{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(*ApplyChatTemplate(ChatTemplate::kQwen2_5, {{"user", "Hi"}}, false),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplateTest, RecognizesTheEmbeddedModelsTemplate) {
  const std::string path = testing::SmolLM2GgufPath();
  ASSERT_FALSE(path.empty());
  absl::StatusOr<ChatTemplate> t = LoadChatTemplate(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, ChatTemplate::kSmolLM2);
  absl::StatusOr<GgufFile> gguf = GgufFile::Open(path);
  EXPECT_THAT(*gguf->GetString("tokenizer.chat_template"),
              HasSubstr(std::string(DefaultSystemPrompt(ChatTemplate::kSmolLM2))));
}

TEST(ChatTemplateTest, RecognizesQwenFromASnapshotFolder) {
  const std::string dir = testing::MakeTempDir("qwen_snapshot");
  testing::WriteFile(
      dir + "/tokenizer_config.json",
      R"({"chat_template": "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"})");
  absl::StatusOr<ChatTemplate> t = LoadChatTemplate(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, ChatTemplate::kQwen2_5);
}

TEST(ChatTemplateTest, Errors) {
  EXPECT_TRUE(absl::IsUnimplemented(
      ChatTemplateFromJinja("{{ bos_token }}{% for m in messages %}...").status()));
  EXPECT_THAT(
      std::string(
          ApplyChatTemplate(ChatTemplate::kQwen2_5, {{"tool", "x"}}, false).status().message()),
      HasSubstr("message 0 has role \"tool\""));
  EXPECT_FALSE(ApplyChatTemplate(ChatTemplate::kSmolLM2, {}, true).ok());
  const std::string dir = testing::MakeTempDir("no_template");
  EXPECT_THAT(std::string(LoadChatTemplate(dir).status().message()), HasSubstr("no chat template"));
}

}  // namespace
}  // namespace kvgate::runtime
