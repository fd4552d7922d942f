// Tests of the decode loop and its hooks (decode.h) on the tiny fixtures: a lossless KV round trip
// and a selection keeping all history equal dense exactly, int4 round trips are close, teacher
// forcing reproduces the dense tokens, layer-local outputs equal dense under the dense policy and
// separate local from propagated error, captures have their documented shapes.
//
// Run: tools/bazel test //experiments/runtime:decode_test

#include "experiments/runtime/decode.h"

#include <torch/types.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/kv_format/kv_format.h"
#include "kernels/kv_format/kv_format_registry.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSteps = 8;

class DecodeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<Fixture> fixture = LoadFixture(FixtureDir(GetParam()));
    ASSERT_TRUE(fixture.ok()) << fixture.status();
    prompt_ = ToVector(fixture->prompt_ids);
    absl::StatusOr<Model> model = Model::Create(fixture->weights);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::make_unique<Model>(*std::move(model));
  }

  // Prefill (dense, or prefill_policy), then greedy or forced decode with options.
  DecodeResult Run(const DecodeOptions& options, const std::vector<int64_t>* forced = nullptr,
                   const AttentionPolicy& prefill_policy = {}) {
    KvCache cache = model_->NewCache(prompt_.size() + kSteps);
    ForwardHooks hooks;
    hooks.policy = prefill_policy;
    absl::StatusOr<torch::Tensor> logits = Prefill(*model_, cache, prompt_, hooks);
    EXPECT_TRUE(logits.ok()) << logits.status();
    absl::StatusOr<DecodeResult> result =
        forced ? DecodeForced(*model_, cache, *forced, options)
               : DecodeN(*model_, cache, logits->argmax().item<int64_t>(), kSteps, options);
    EXPECT_TRUE(result.ok()) << result.status();
    return *std::move(result);
  }

  DecodeResult Dense() {
    DecodeOptions options;
    options.capture_attention_probs = true;
    options.capture_layer_outputs = true;
    return Run(options);
  }

  static void ExpectSameLogits(const DecodeResult& a, const DecodeResult& b) {
    ASSERT_EQ(a.steps.size(), b.steps.size());
    for (size_t i = 0; i < a.steps.size(); ++i) {
      EXPECT_TRUE(torch::equal(a.steps[i].logits, b.steps[i].logits)) << "step " << i;
    }
  }

  std::vector<int64_t> prompt_;
  std::unique_ptr<Model> model_;
};

TEST_P(DecodeTest, CapturesHaveTheirShapes) {
  const DecodeResult dense = Dense();
  const ModelConfig& c = model_->config();
  ASSERT_EQ(dense.steps.size(), kSteps);
  for (int64_t i = 0; i < kSteps; ++i) {
    const DecodeStep& step = dense.steps[i];
    const int64_t position = static_cast<int64_t>(prompt_.size()) + i;
    EXPECT_EQ(step.position, position);
    EXPECT_EQ(step.token_out, step.logits.argmax().item<int64_t>());
    EXPECT_EQ(step.logits.sizes(), (std::vector<int64_t>{c.vocab_size}));
    ASSERT_EQ(step.attention_probs.size(), c.num_hidden_layers);
    ASSERT_EQ(step.layer_outputs.size(), c.num_hidden_layers);
    EXPECT_TRUE(step.local_outputs.empty());
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      EXPECT_EQ(step.attention_probs[l].sizes(),
                (std::vector<int64_t>{c.num_attention_heads, position + 1}));
      EXPECT_TRUE(
          torch::allclose(step.attention_probs[l].sum(-1), torch::ones({c.num_attention_heads})));
      EXPECT_EQ(step.layer_outputs[l].sizes(), (std::vector<int64_t>{c.hidden_size}));
      EXPECT_EQ(step.layer_outputs[l].scalar_type(), torch::kFloat32);
    }
  }
  EXPECT_GT(dense.TokensPerSecond(), 0);
}

TEST_P(DecodeTest, CaptureDoesNotChangeTheRun) { ExpectSameLogits(Dense(), Run(DecodeOptions())); }

TEST_P(DecodeTest, LosslessKvRoundTripEqualsDense) {
  const DecodeResult dense = Dense();
  DecodeOptions options;
  options.policy = KvRoundTripAttention(std::make_shared<IdentityKvFormat>());
  options.capture_attention_probs = true;
  // Round trip at the prefill too.
  const DecodeResult identity = Run(options, nullptr, options.policy);
  ExpectSameLogits(dense, identity);
  EXPECT_EQ(identity.TokensOut(), dense.TokensOut());
  for (int64_t i = 0; i < kSteps; ++i) {
    for (size_t l = 0; l < dense.steps[i].attention_probs.size(); ++l) {
      EXPECT_TRUE(
          torch::equal(identity.steps[i].attention_probs[l], dense.steps[i].attention_probs[l]));
    }
  }
}

TEST_P(DecodeTest, Int4KvRoundTripIsCloseButNotExact) {
  const DecodeResult dense = Dense();
  const std::vector<int64_t> tokens = dense.TokensIn();
  // Every registered format runs through the round trip and perturbs the logits; the int4 ones
  // stay within a loose bound (TurboQuant_prod's decoded vectors are noisy by design: it is meant
  // for inner products, kernels/turboquant/turboquant.h).
  for (const std::string& spec : kernels::KnownKvFormats()) {
    absl::StatusOr<std::unique_ptr<kernels::KvFormat>> format = kernels::MakeKvFormat(spec);
    ASSERT_TRUE(format.ok()) << format.status();
    DecodeOptions options;
    options.policy =
        KvRoundTripAttention(std::shared_ptr<const kernels::KvFormat>(*std::move(format)));
    const DecodeResult rt = Run(options, &tokens);  // teacher-forced, dense prefill
    double worst = 0;
    for (int64_t i = 0; i < kSteps; ++i) {
      worst = std::max(worst, RelativeError(rt.steps[i].logits, dense.steps[i].logits));
    }
    EXPECT_GT(worst, 0) << spec;
    EXPECT_TRUE(std::isfinite(worst)) << spec;
    if (absl::StartsWith(spec, "symmetric_int4") || absl::StartsWith(spec, "affine_int4")) {
      EXPECT_LT(worst, 0.2) << spec;
    }
    std::cout << GetParam() << " " << spec << " KV round trip vs dense, worst step logits error "
              << worst << "\n";
  }
}

TEST_P(DecodeTest, SelectionKeepingAllHistoryEqualsDenseExactly) {
  const DecodeResult dense = Dense();
  const int64_t kv_heads = model_->config().num_key_value_heads;
  for (const HistorySelector& selector : std::vector<HistorySelector>{
           [](const AttentionCall& c) -> absl::StatusOr<torch::Tensor> {
             return KeepTokens(torch::arange(c.k.size(0)), c.k.size(0));
           },
           [kv_heads](const AttentionCall& c) -> absl::StatusOr<torch::Tensor> {
             const int64_t s = c.k.size(0), blocks = (s + 3) / 4;
             return KeepBlocks(torch::ones({kv_heads, blocks}, torch::kBool), 4, s);
           }}) {
    DecodeOptions options;
    options.policy = SelectedHistoryAttention(selector);
    options.capture_attention_probs = true;
    const DecodeResult selected = Run(options);
    ExpectSameLogits(dense, selected);
    EXPECT_EQ(selected.TokensOut(), dense.TokensOut());
    for (int64_t i = 0; i < kSteps; ++i) {
      for (size_t l = 0; l < dense.steps[i].attention_probs.size(); ++l) {
        EXPECT_TRUE(
            torch::equal(selected.steps[i].attention_probs[l], dense.steps[i].attention_probs[l]));
      }
    }
  }
}

TEST_P(DecodeTest, SelectionOfRecentTokensAttendsOnlyThere) {
  const DecodeResult dense = Dense();
  const std::vector<int64_t> tokens = dense.TokensIn();
  DecodeOptions options;
  options.capture_attention_probs = true;
  options.policy =
      SelectedHistoryAttention([](const AttentionCall& c) -> absl::StatusOr<torch::Tensor> {
        const int64_t s = c.k.size(0);
        return KeepTokens(torch::arange(s - 3, s), s);  // the last three positions
      });
  const DecodeResult recent = Run(options, &tokens);
  double worst = 0;
  for (int64_t i = 0; i < kSteps; ++i) {
    for (const torch::Tensor& probs : recent.steps[i].attention_probs) {  // [heads, S]
      const int64_t s = probs.size(1);
      EXPECT_EQ(probs.narrow(1, 0, s - 3).abs().max().item<float>(), 0.0f);
      EXPECT_TRUE(torch::allclose(probs.sum(-1), torch::ones({probs.size(0)})));
    }
    worst = std::max(worst, RelativeError(recent.steps[i].logits, dense.steps[i].logits));
  }
  EXPECT_GT(worst, 1e-3) << "dropping history should matter";
}

TEST_P(DecodeTest, TeacherForcingReproducesTheDenseTokens) {
  const DecodeResult dense = Dense();
  const std::vector<int64_t> tokens = dense.TokensIn();
  const DecodeResult forced = Run(DecodeOptions(), &tokens);
  EXPECT_EQ(forced.TokensIn(), tokens);
  EXPECT_EQ(forced.TokensOut(), dense.TokensOut());
  ExpectSameLogits(dense, forced);
  // Forcing other tokens feeds them, whatever the model predicts.
  std::vector<int64_t> other(kSteps, 7);
  const DecodeResult sevens = Run(DecodeOptions(), &other);
  EXPECT_EQ(sevens.TokensIn(), other);
}

TEST_P(DecodeTest, LayerLocalOutputsEqualDenseUnderTheDensePolicy) {
  DecodeOptions options;
  options.capture_layer_outputs = true;
  options.capture_layer_inputs = true;
  options.local_policy = DenseAttention();
  const DecodeResult run = Run(options);
  for (const DecodeStep& step : run.steps) {
    ASSERT_EQ(step.local_outputs.size(), step.layer_outputs.size());
    ASSERT_EQ(step.layer_inputs.size(), step.layer_outputs.size());
    for (size_t l = 0; l < step.layer_outputs.size(); ++l) {
      EXPECT_TRUE(torch::equal(step.local_outputs[l], step.layer_outputs[l])) << "layer " << l;
      EXPECT_EQ(step.layer_inputs[l].sizes(), step.layer_outputs[l].sizes());
    }
    // Layer 1's input is layer 0's input plus its attention output plus its MLP output.
    EXPECT_FALSE(torch::equal(step.layer_inputs[1], step.layer_inputs[0]));
  }
  ExpectSameLogits(run, Dense());
}

TEST_P(DecodeTest, LayerLocalSeparatesLocalFromPropagatedError) {
  std::shared_ptr<const kernels::KvFormat> int4 = *kernels::MakeKvFormat("symmetric_int4");
  // Dense run, int4 evaluated locally at every layer.
  DecodeOptions local_options;
  local_options.capture_layer_outputs = true;
  local_options.local_policy = KvRoundTripAttention(int4);
  const DecodeResult local = Run(local_options);
  ExpectSameLogits(local, Dense());  // the local policy does not drive
  // Int4 driving the run, fed the same tokens.
  DecodeOptions propagated_options;
  propagated_options.capture_layer_outputs = true;
  propagated_options.policy = KvRoundTripAttention(int4);
  const std::vector<int64_t> tokens = local.TokensIn();
  const DecodeResult propagated = Run(propagated_options, &tokens);
  const int64_t last = model_->config().num_hidden_layers - 1;
  for (int64_t i = 0; i < kSteps; ++i) {
    const DecodeStep& l = local.steps[i];
    const DecodeStep& p = propagated.steps[i];
    EXPECT_FALSE(torch::equal(l.local_outputs[0], l.layer_outputs[0])) << "int4 is lossy";
    // Layer 0 sees the same inputs and cache in both runs: local error is all there is.
    EXPECT_TRUE(torch::equal(p.layer_outputs[0], l.local_outputs[0])) << "step " << i;
    // Later layers see propagated error too.
    EXPECT_FALSE(torch::equal(p.layer_outputs[last], l.local_outputs[last])) << "step " << i;
  }
}

TEST_P(DecodeTest, PolicyErrorsComeBackWithTheStep) {
  DecodeOptions options;
  options.policy = [](const AttentionCall& call) -> absl::StatusOr<AttentionResult> {
    if (call.step == 2 && call.layer == 1) return absl::UnavailableError("policy gave up");
    return Attend(call.q, call.k, call.v, {}, call.want_probs);
  };
  KvCache cache = model_->NewCache(prompt_.size() + kSteps);
  ASSERT_TRUE(Prefill(*model_, cache, prompt_).ok());
  absl::StatusOr<DecodeResult> result = DecodeN(*model_, cache, 3, kSteps, options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(result.status().message(), HasSubstr("decode step 2: policy gave up"));
}

TEST_P(DecodeTest, StopTokenEndsGreedyDecode) {
  const DecodeResult dense = Dense();
  DecodeOptions options;
  options.stop_token = dense.steps[2].token_out;
  const DecodeResult stopped = Run(options);
  ASSERT_LE(stopped.steps.size(), 3u);
  EXPECT_EQ(stopped.steps.back().token_out, options.stop_token);
}

// Numerical guard: where a poisoned model's dense run first goes non-finite, by step and layer.
// tiny_llama has an untied lm_head, so a poisoned embedding row touches only its own token.
TEST(LocateNonFiniteTest, NamesTheStepAndLayer) {
  absl::StatusOr<Fixture> fixture = LoadFixture(FixtureDir("tiny_llama"));
  ASSERT_TRUE(fixture.ok()) << fixture.status();
  const std::vector<int64_t> prompt = ToVector(fixture->prompt_ids);
  const int64_t layers = fixture->weights.config.num_hidden_layers;  // 2
  absl::StatusOr<Model> clean = Model::Create(fixture->weights);
  ASSERT_TRUE(clean.ok()) << clean.status();
  KvCache cache = clean->NewCache(prompt.size() + 4);
  absl::StatusOr<torch::Tensor> logits = Prefill(*clean, cache, prompt);
  ASSERT_TRUE(logits.ok());
  absl::StatusOr<DecodeResult> dense =
      DecodeN(*clean, cache, logits->argmax().item<int64_t>(), 4);
  ASSERT_TRUE(dense.ok());
  const std::vector<int64_t> tokens = dense->TokensIn();
  absl::StatusOr<std::optional<NonFiniteAt>> none = LocateNonFinite(*clean, prompt, tokens);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  ModelOptions allow;
  allow.allow_non_finite_weights = true;
  auto locate = [&](const std::string& name, int64_t row) -> std::optional<NonFiniteAt> {
    ModelWeights weights = fixture->weights;
    torch::Tensor poisoned = weights.tensors.at(name).clone();
    poisoned[row][0] = std::numeric_limits<float>::quiet_NaN();
    weights.tensors[name] = poisoned;
    absl::StatusOr<Model> model = Model::Create(weights, allow);
    EXPECT_TRUE(model.ok()) << model.status();
    absl::StatusOr<std::optional<NonFiniteAt>> at =
        LocateNonFinite(*model, prompt, tokens, /*prefill_chunk=*/3);
    EXPECT_TRUE(at.ok()) << at.status();
    return at.ok() ? *at : std::nullopt;
  };

  // Layer 1's o_proj: the prefill, layer 1 (layer 0's output is still finite).
  std::optional<NonFiniteAt> at = locate("model.layers.1.self_attn.o_proj.weight", 0);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(at->step, -1);
  EXPECT_EQ(at->layer, 1);
  EXPECT_EQ(at->Describe(layers), "the prefill, layer 1 (the output of model.layers.1)");

  // The embedding row of the first token fed at a decode step that neither the prompt nor an
  // earlier step uses: that step, layer 0.
  std::set<int64_t> seen(prompt.begin(), prompt.end());
  int64_t step = -1;
  for (size_t i = 0; i < tokens.size() && step < 0; ++i) {
    if (!seen.count(tokens[i])) step = static_cast<int64_t>(i);
    seen.insert(tokens[i]);
  }
  ASSERT_GE(step, 0) << "every decoded token is in the prompt";
  at = locate("model.embed_tokens.weight", tokens[step]);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(at->step, step);
  EXPECT_EQ(at->layer, 0);
  EXPECT_EQ(at->Describe(layers), absl::StrCat("decode step ", step,
                                               ", layer 0 (the output of model.layers.0)"));

  // One row of lm_head: every hidden state is finite, the logits are not.
  at = locate("lm_head.weight", 5);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(at->step, -1);
  EXPECT_EQ(at->layer, layers + 1);
  EXPECT_EQ(at->Describe(layers), "the prefill, lm_head (the logits)");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DecodeTest, ::testing::Values("tiny_llama", "tiny_qwen2"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kvgate::runtime
