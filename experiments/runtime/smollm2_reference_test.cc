// The embedded default model end to end against transformers: greedy decoding of a fixed chat
// prompt with our loader, tokenizer, chat template and model gives the same 32 tokens that
// transformers gives from the same GGUF (float32), and the text is English.
//
// Reference: testdata/smollm2_greedy32.json, written by tools/fixtures/smollm2_reference.py
// (transformers 5.24.0 + gguf 0.19.0 loading SmolLM2-135M-Instruct.Q4_1.gguf, torch 2.11.0 CPU,
// float32, 2 threads). It also records transformers' top-1 minus top-2 logit margin per step; the
// smallest is about 0.017 (step 28), so a float-level difference in dequantization, RoPE layout or
// accumulation order would show up here as a flipped token.
//
// Run: tools/bazel test //experiments/runtime:smollm2_reference_test

#include <torch/types.h>

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "experiments/runtime/chat_template.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/loader_test_util.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace kvgate::runtime {
namespace {

class SmolLM2ReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gguf_ = testing::SmolLM2GgufPath();
    ASSERT_FALSE(gguf_.empty()) << "@smollm2//:gguf is not in the runfiles";
    ref_ = nlohmann::json::parse(
        testing::ReadTestFile(testing::TestDataPath("smollm2_greedy32.json")));
    prompt_ids_ = ref_.at("prompt_ids").get<std::vector<int64_t>>();
    expected_ = ref_.at("generated_ids").get<std::vector<int64_t>>();
    ASSERT_EQ(expected_.size(), 32u);
  }

  std::string gguf_;
  nlohmann::json ref_;
  std::vector<int64_t> prompt_ids_;
  std::vector<int64_t> expected_;
};

TEST_F(SmolLM2ReferenceTest, TemplateAndTokenizerGiveTheReferencePromptIds) {
  absl::StatusOr<ChatTemplate> chat = LoadChatTemplate(gguf_);
  ASSERT_TRUE(chat.ok()) << chat.status();
  absl::StatusOr<std::string> text = ApplyChatTemplate(
      *chat, {{"user", ref_.at("prompt").get<std::string>()}}, /*add_generation_prompt=*/true);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, ref_.at("rendered").get<std::string>());

  absl::StatusOr<Tokenizer> tokenizer = LoadTokenizer(gguf_);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::vector<int32_t> ids = tokenizer->Encode(*text);
  EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.end()), prompt_ids_);
}

TEST_F(SmolLM2ReferenceTest, GreedyDecodeMatchesTransformersAndIsEnglish) {
  absl::StatusOr<ModelWeights> weights = LoadModel(gguf_);
  ASSERT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<Model> model = Model::Create(*weights, ModelOptions{});
  ASSERT_TRUE(model.ok()) << model.status();

  KvCache cache = model->NewCache(static_cast<int64_t>(prompt_ids_.size()) + 32);
  absl::StatusOr<torch::Tensor> logits = Prefill(*model, cache, prompt_ids_);
  ASSERT_TRUE(logits.ok()) << logits.status();
  std::vector<torch::Tensor> step_logits = {logits->to(torch::kCPU)};
  DecodeOptions options;  // no stop token: exactly 32 tokens, as the reference
  absl::StatusOr<DecodeResult> decode =
      DecodeN(*model, cache, logits->argmax().item<int64_t>(), 31, options);
  ASSERT_TRUE(decode.ok()) << decode.status();
  for (const DecodeStep& step : decode->steps) step_logits.push_back(step.logits);
  ASSERT_EQ(step_logits.size(), 32u);

  std::vector<int64_t> got;
  for (const torch::Tensor& l : step_logits) got.push_back(l.argmax().item<int64_t>());
  // On a mismatch, say where and how close the step was in both implementations.
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == expected_[i]) continue;
    const torch::Tensor l = step_logits[i];
    ADD_FAILURE() << "first differing step " << i << ": ours " << got[i] << " (logit "
                  << l[got[i]].item<float>() << "), transformers " << expected_[i]
                  << " (our logit " << l[expected_[i]].item<float>()
                  << "); transformers' top-2 margin there " << ref_.at("top2_margins")[i];
    break;
  }
  EXPECT_EQ(got, expected_);

  absl::StatusOr<Tokenizer> tokenizer = LoadTokenizer(gguf_);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string text =
      tokenizer->Decode(std::vector<int32_t>(got.begin(), got.end()), /*skip_special=*/true);
  EXPECT_EQ(text, ref_.at("generated_text").get<std::string>());
  // English: printable ASCII, words separated by spaces, mostly letters.
  int letters = 0, spaces = 0;
  for (unsigned char c : text) {
    EXPECT_TRUE(std::isprint(c)) << "byte " << static_cast<int>(c) << " in: " << text;
    letters += std::isalpha(c) ? 1 : 0;
    spaces += c == ' ' ? 1 : 0;
  }
  EXPECT_GE(spaces, 15) << text;
  EXPECT_GT(letters, static_cast<int>(text.size()) * 7 / 10) << text;
  std::cout << "generated: " << text << "\n";
}

}  // namespace
}  // namespace kvgate::runtime
