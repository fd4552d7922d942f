// Tests of the model (model.h) against Hugging Face transformers: the tiny seeded Llama and Qwen2
// checkpoints of testdata/fixtures/ with transformers' float32 logits at every prompt position and
// every greedy decode step (tools/fixtures/make_tiny_checkpoints.py). Also bfloat16 / float16
// against float32, chunked prefill, and the checks of Model::Create.
//
// Run: tools/bazel test //experiments/runtime:model_test

#include "experiments/runtime/model.h"

#include <torch/types.h>

#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/model_configs.h"
#include "experiments/runtime/model_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;

// transformers' float32 logits vs ours: max |diff| / max |transformers|.
constexpr double kFloat32Tolerance = 1e-4;

class FixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<Fixture> fixture = LoadFixture(FixtureDir(GetParam()));
    ASSERT_TRUE(fixture.ok()) << fixture.status();
    fixture_ = *std::move(fixture);
  }

  Model MakeModel(torch::Dtype dtype = torch::kFloat32) {
    ModelOptions options;
    options.dtype = dtype;
    absl::StatusOr<Model> model = Model::Create(fixture_.weights, options);
    EXPECT_TRUE(model.ok()) << model.status();
    return *std::move(model);
  }

  // Prefill logits [T, vocab] at every prompt position, then the logits [n, vocab] of decode steps
  // fed transformers' tokens, float32.
  std::pair<torch::Tensor, torch::Tensor> RunForced(const Model& model) {
    KvCache cache = model.NewCache(64);
    absl::StatusOr<torch::Tensor> hidden = model.Forward(fixture_.prompt_ids, cache);
    EXPECT_TRUE(hidden.ok()) << hidden.status();
    const torch::Tensor prefill = model.Logits(*hidden).to(torch::kFloat32);
    absl::StatusOr<DecodeResult> decode =
        DecodeForced(model, cache, ToVector(fixture_.decode_tokens_in));
    EXPECT_TRUE(decode.ok()) << decode.status();
    std::vector<torch::Tensor> steps;
    for (const DecodeStep& step : decode->steps) steps.push_back(step.logits);
    return {prefill, torch::stack(steps)};
  }

  // Greedy decode from the prompt gives transformers' greedy tokens.
  void ExpectTransformersGreedy(const Model& model);

  Fixture fixture_;
};

TEST_P(FixtureTest, MatchesTransformersAtPrefillAndEveryDecodeStep) {
  const Model model = MakeModel();
  auto [prefill, decode] = RunForced(model);
  ASSERT_EQ(prefill.sizes(), fixture_.prefill_logits.sizes());
  ASSERT_EQ(decode.sizes(), fixture_.decode_logits.sizes());
  const double prefill_error = RelativeError(prefill, fixture_.prefill_logits);
  EXPECT_LE(prefill_error, kFloat32Tolerance);
  double worst_step = 0;
  for (int64_t i = 0; i < decode.size(0); ++i) {
    const double error = RelativeError(decode[i], fixture_.decode_logits[i]);
    EXPECT_LE(error, kFloat32Tolerance) << "decode step " << i;
    worst_step = std::max(worst_step, error);
  }
  std::cout << GetParam() << " float32 vs transformers: prefill (all " << prefill.size(0)
            << " positions) " << prefill_error << ", worst of " << decode.size(0)
            << " decode steps " << worst_step << " (max |diff| / max |logit|)\n";
}

TEST_P(FixtureTest, GreedyDecodeReproducesTransformersTokens) { ExpectTransformersGreedy(MakeModel()); }

// The fixture's config.json and model.safetensors as transformers 5 saved them (RoPE's theta only
// under rope_parameters), read by the snapshot loader instead of kvgate_config.json: tiny_qwen2's
// theta 1e6 read as the old default 1e4 would change every logit past position 0.
TEST_P(FixtureTest, SnapshotThroughLoadModelReproducesTransformers) {
  absl::StatusOr<ModelWeights> loaded = LoadModel(FixtureDir(GetParam()));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.rope_theta, fixture_.weights.config.rope_theta);
  fixture_.weights = *std::move(loaded);
  const Model model = MakeModel();
  auto [prefill, decode] = RunForced(model);
  EXPECT_LE(RelativeError(prefill, fixture_.prefill_logits), kFloat32Tolerance);
  EXPECT_LE(RelativeError(decode, fixture_.decode_logits), kFloat32Tolerance);
  ExpectTransformersGreedy(model);
}

void FixtureTest::ExpectTransformersGreedy(const Model& model) {
  KvCache cache = model.NewCache(64);
  absl::StatusOr<torch::Tensor> logits = Prefill(model, cache, ToVector(fixture_.prompt_ids));
  ASSERT_TRUE(logits.ok()) << logits.status();
  const std::vector<int64_t> greedy = ToVector(fixture_.greedy_tokens);
  const int64_t first = logits->argmax().item<int64_t>();
  EXPECT_EQ(first, greedy[0]);
  absl::StatusOr<DecodeResult> decode =
      DecodeN(model, cache, first, static_cast<int64_t>(greedy.size()) - 1);
  ASSERT_TRUE(decode.ok()) << decode.status();
  EXPECT_EQ(decode->TokensOut(), std::vector<int64_t>(greedy.begin() + 1, greedy.end()));
  EXPECT_EQ(decode->TokensIn(), ToVector(fixture_.decode_tokens_in));
  EXPECT_EQ(cache.length, fixture_.prompt_ids.size(0) + static_cast<int64_t>(greedy.size()) - 1);
}

TEST_P(FixtureTest, ChunkedPrefillMatchesTransformers) {
  const Model model = MakeModel();
  KvCache cache = model.NewCache(64);
  std::vector<torch::Tensor> logits;
  int64_t start = 0;
  for (int64_t len : {4, 1, 5}) {  // the prompt has 10 tokens; chunks at positions > 0
    absl::StatusOr<torch::Tensor> hidden =
        model.Forward(fixture_.prompt_ids.narrow(0, start, len), cache);
    ASSERT_TRUE(hidden.ok()) << hidden.status();
    logits.push_back(model.Logits(*hidden));
    start += len;
  }
  ASSERT_EQ(start, fixture_.prompt_ids.size(0));
  EXPECT_LE(RelativeError(torch::cat(logits), fixture_.prefill_logits), kFloat32Tolerance);
}

TEST_P(FixtureTest, LowPrecisionRunsAndIsCloseToFloat32) {
  auto [prefill32, decode32] = RunForced(MakeModel(torch::kFloat32));
  for (auto [dtype, tolerance] :
       {std::make_pair(torch::kBFloat16, 5e-2), std::make_pair(torch::kFloat16, 1e-2)}) {
    SCOPED_TRACE(c10::toString(dtype));
    const Model model = MakeModel(dtype);
    EXPECT_EQ(model.NewCache(4).k[0].scalar_type(), dtype);
    auto [prefill, decode] = RunForced(model);
    ASSERT_TRUE(torch::isfinite(prefill).all().item<bool>());
    ASSERT_TRUE(torch::isfinite(decode).all().item<bool>());
    const double prefill_error = RelativeError(prefill, prefill32);
    const double decode_error = RelativeError(decode, decode32);
    EXPECT_LE(prefill_error, tolerance);
    EXPECT_LE(decode_error, tolerance);
    EXPECT_GT(decode_error, 0) << "not actually low precision?";
    std::cout << GetParam() << " " << c10::toString(dtype) << " vs float32: prefill "
              << prefill_error << ", decode " << decode_error << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureTest,
                         ::testing::Values("tiny_llama", "tiny_qwen2", "tiny_qwen2_theta5e5"),
                         [](const auto& info) { return info.param; });

ModelWeights LlamaWeights() {
  absl::StatusOr<Fixture> fixture = LoadFixture(FixtureDir("tiny_llama"));
  EXPECT_TRUE(fixture.ok()) << fixture.status();
  return fixture->weights;
}

TEST(ModelCreateTest, MissingTensorIsNamed) {
  ModelWeights weights = LlamaWeights();
  weights.tensors.erase("model.layers.1.self_attn.k_proj.weight");
  absl::StatusOr<Model> model = Model::Create(weights);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(),
              HasSubstr("missing tensor model.layers.1.self_attn.k_proj.weight"));
}

TEST(ModelCreateTest, WrongShapeIsNamed) {
  ModelWeights weights = LlamaWeights();
  weights.tensors["model.layers.0.mlp.down_proj.weight"] = torch::zeros({64, 95});
  absl::StatusOr<Model> model = Model::Create(weights);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      model.status().message(),
      HasSubstr("model.layers.0.mlp.down_proj.weight has shape [64, 95], expected [64, 96]"));
}

TEST(ModelCreateTest, UntiedModelNeedsLmHead) {
  ModelWeights weights = LlamaWeights();
  weights.tensors.erase("lm_head.weight");
  EXPECT_THAT(Model::Create(weights).status().message(),
              HasSubstr("missing tensor lm_head.weight"));
}

TEST(ModelCreateTest, Qwen2NeedsItsBiases) {
  absl::StatusOr<Fixture> fixture = LoadFixture(FixtureDir("tiny_qwen2"));
  ASSERT_TRUE(fixture.ok()) << fixture.status();
  fixture->weights.tensors.erase("model.layers.0.self_attn.v_proj.bias");
  EXPECT_THAT(Model::Create(fixture->weights).status().message(),
              HasSubstr("missing tensor model.layers.0.self_attn.v_proj.bias"));
}

TEST(ModelCreateTest, UnusedTensorIsAnError) {
  ModelWeights weights = LlamaWeights();
  weights.tensors["model.layers.0.self_attn.q_proj.bias"] = torch::zeros({128});
  absl::StatusOr<Model> model = Model::Create(weights);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), HasSubstr("model.layers.0.self_attn.q_proj.bias"));
}

// Numerical guard at load: a weight holding NaN or an infinity is an error naming the tensor,
// unless the options explicitly allow it.
TEST(ModelCreateTest, NonFiniteWeightIsNamedUnlessAllowed) {
  ModelWeights weights = LlamaWeights();
  const std::string name = "model.layers.1.self_attn.o_proj.weight";
  torch::Tensor poisoned = weights.tensors.at(name).clone();
  poisoned[3][5] = std::numeric_limits<float>::quiet_NaN();
  poisoned[0][0] = -std::numeric_limits<float>::infinity();
  weights.tensors[name] = poisoned;
  absl::StatusOr<Model> model = Model::Create(weights);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(),
              HasSubstr("tensor " + name + " holds 1 NaN and 1 infinite value(s)"));
  ModelOptions allow;
  allow.allow_non_finite_weights = true;
  EXPECT_TRUE(Model::Create(weights, allow).ok());
}

// A finite float32 weight that float16 cannot hold becomes infinite when converted: named too.
TEST(ModelCreateTest, WeightOverflowingTheDtypeIsNamed) {
  ModelWeights weights = LlamaWeights();
  torch::Tensor norm = weights.tensors.at("model.norm.weight").clone();
  norm[7] = 1e5f;  // float16's largest finite value is 65504
  weights.tensors["model.norm.weight"] = norm;
  EXPECT_TRUE(Model::Create(weights).ok());  // float32 holds it
  ModelOptions half;
  half.dtype = torch::kFloat16;
  EXPECT_THAT(Model::Create(weights, half).status().message(),
              HasSubstr("tensor model.norm.weight holds 0 NaN and 1 infinite value(s) after "
                        "conversion to Half"));
}

TEST(ModelCreateTest, BadConfigs) {
  ModelWeights weights = LlamaWeights();
  weights.config.architecture = "gpt2";
  EXPECT_THAT(Model::Create(weights).status().message(), HasSubstr("gpt2"));
  weights = LlamaWeights();
  weights.config.num_key_value_heads = 3;
  EXPECT_THAT(Model::Create(weights).status().message(), HasSubstr("num_key_value_heads 3"));
  weights = LlamaWeights();
  weights.config.head_dim = 0;
  EXPECT_THAT(Model::Create(weights).status().message(), HasSubstr("head_dim is 0"));
  weights = LlamaWeights();
  weights.tensors["model.norm.weight"] = torch::zeros({64}, torch::kInt);
  EXPECT_THAT(Model::Create(weights).status().message(), HasSubstr("not floating point"));
  ModelOptions options;
  options.dtype = torch::kInt8;
  EXPECT_FALSE(Model::Create(LlamaWeights(), options).ok());
}

TEST(ModelForwardTest, RejectsOverflowAndBadTokens) {
  absl::StatusOr<Model> model = Model::Create(LlamaWeights());
  ASSERT_TRUE(model.ok()) << model.status();
  KvCache cache = model->NewCache(4);
  EXPECT_EQ(model->Forward(torch::arange(5), cache).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(model->Forward(torch::tensor({128}), cache).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->Forward(torch::zeros({0}, torch::kLong), cache).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.length, 0);
  ASSERT_TRUE(model->Forward(torch::arange(4), cache).ok());
  EXPECT_EQ(cache.length, 4);
  EXPECT_EQ(model->Forward(torch::tensor({1}), cache).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST(RandomModelWeightsTest, BuildsEveryArchitecture) {
  ModelConfig config = *ModelConfigNamed("smollm2-135m");
  config.num_hidden_layers = 1;
  config.vocab_size = 100;
  for (bool qwen : {false, true}) {
    config.architecture = qwen ? "qwen2" : "llama";
    config.attention_bias = qwen;
    config.tie_word_embeddings = qwen;
    absl::StatusOr<Model> model = Model::Create(RandomModelWeights(config, 7));
    ASSERT_TRUE(model.ok()) << model.status();
    KvCache cache = model->NewCache(8);
    absl::StatusOr<torch::Tensor> logits = Prefill(*model, cache, {1, 2, 3});
    ASSERT_TRUE(logits.ok()) << logits.status();
    EXPECT_EQ(logits->sizes(), (std::vector<int64_t>{100}));
    EXPECT_TRUE(torch::isfinite(*logits).all().item<bool>());
  }
}

}  // namespace
}  // namespace kvgate::runtime
