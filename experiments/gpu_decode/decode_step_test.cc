// The CUDA decode step against experiments/runtime's Model (float32, the same weights) on a tiny
// Qwen2-shaped config, and each packed backend's attention against the CPU reference codecs.
// Runs on a GPU host: tools/gpu/run_suite (or tools/gpu_bundle ... //experiments/gpu_decode:...).

#include "experiments/gpu_decode/decode_step.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "experiments/gpu_decode/step_attention.h"
#include "experiments/runtime/kv_cache.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_configs.h"
#include "kernels/int4/int4.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::gpu_decode {
namespace {

runtime::ModelConfig TinyQwen2() { return *runtime::ModelConfigNamed("tiny-qwen2-head128"); }

double RelL2(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor x = a.to(torch::kFloat64).cpu(), y = b.to(torch::kFloat64).cpu();
  return ((x - y).norm() / y.norm()).item<double>();
}

AttentionShape ShapeOf(const runtime::ModelConfig& c, int64_t capacity) {
  return {c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim, capacity};
}

class DecodeStepTest : public ::testing::TestWithParam<const char*> {};

// Prefill `prompt` tokens with the reference model, copy its K/V into the backend, then one
// decode step at position prompt: logits against the reference's, eager and graph-replayed.
TEST_P(DecodeStepTest, MatchesRuntimeModel) {
  ASSERT_TRUE(torch::cuda::is_available());
  const torch::Device cuda(torch::kCUDA, 0);
  const runtime::ModelConfig c = TinyQwen2();
  for (uint64_t seed : {1u, 2u}) {
    const runtime::ModelWeights weights = runtime::RandomModelWeights(c, seed);
    runtime::ModelOptions mo;
    mo.device = cuda;
    absl::StatusOr<runtime::Model> model = runtime::Model::Create(weights, mo);
    ASSERT_TRUE(model.ok()) << model.status();
    const int64_t prompt = 37 + 10 * static_cast<int64_t>(seed);
    torch::manual_seed(seed);
    const torch::Tensor tokens = torch::randint(c.vocab_size, {prompt + 1}, torch::kInt64);
    runtime::KvCache cache = model->NewCache(prompt + 1);
    ASSERT_TRUE(model->Forward(tokens.narrow(0, 0, prompt).to(cuda), cache).ok());
    absl::StatusOr<torch::Tensor> hidden = model->Forward(tokens.narrow(0, prompt, 1).to(cuda), cache);
    ASSERT_TRUE(hidden.ok()) << hidden.status();
    const torch::Tensor ref = model->Logits(*hidden).view({-1});

    absl::StatusOr<StepWeights> w = StepWeightsFrom(weights, cuda);
    ASSERT_TRUE(w.ok()) << w.status();
    absl::StatusOr<std::unique_ptr<StepAttention>> attention =
        MakeStepAttention(GetParam(), ShapeOf(c, prompt + 8), cuda);
    ASSERT_TRUE(attention.ok()) << attention.status();
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      ASSERT_TRUE((*attention)
                      ->Fill(l, cache.k[l].narrow(0, 0, prompt).to(torch::kBFloat16),
                             cache.v[l].narrow(0, 0, prompt).to(torch::kBFloat16))
                      .ok());
    }
    DecodeStep step(*w, attention->get(), prompt);
    step.token().fill_(tokens[prompt].item<int64_t>());
    const_cast<torch::Tensor&>(step.logits()).fill_(std::nan(""));  // poisoned
    const absl::Status ran = step.Run();
    ASSERT_TRUE(ran.ok()) << ran;
    const torch::Tensor eager = step.logits().clone();
    ASSERT_TRUE(torch::isfinite(eager).all().item<bool>());
    // Dense: bf16 rounding only. Packed backends add their quantization error (4 bits), which
    // grows through the layers; 0.3 still tells a working path from a broken one (rel L2 ~1).
    // PackedAttentionTest checks them exactly against the reference codecs.
    const double tolerance = std::string(GetParam()).find("dense") == 0 ? 2e-2 : 0.3;
    EXPECT_LT(RelL2(eager, ref), tolerance) << GetParam() << " seed " << seed;

    absl::StatusOr<std::unique_ptr<at::cuda::CUDAGraph>> graph =
        DecodeStep::CaptureGraph([&] { return step.Run(); });
    ASSERT_TRUE(graph.ok()) << graph.status();
    const_cast<torch::Tensor&>(step.logits()).fill_(std::nan(""));
    (*graph)->replay();
    torch::cuda::synchronize();
    EXPECT_LT(RelL2(step.logits(), eager), 1e-6) << "graph replay differs from the eager step";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, DecodeStepTest,
                         ::testing::Values("dense_sdpa", "dense_kernel1", "dense_kernel4",
                                           "int4_eager",
                                           "int4_fused", "turboquant_eager", "turboquant_fused"));

TEST(DecodeStepCublasTest, MatchesKernelGemv) {
  const torch::Device cuda(torch::kCUDA, 0);
  const runtime::ModelConfig c = TinyQwen2();
  absl::StatusOr<StepWeights> w = RandomStepWeights(c, 3, cuda);
  ASSERT_TRUE(w.ok()) << w.status();
  auto attention = MakeStepAttention("dense_sdpa", ShapeOf(c, 64), cuda);
  ASSERT_TRUE(attention.ok());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const auto bf = torch::dtype(torch::kBFloat16).device(cuda);
    ASSERT_TRUE(
        (*attention)->Fill(l, torch::randn({50, 2, 128}, bf), torch::randn({50, 2, 128}, bf)).ok());
  }
  DecodeStep ours(*w, attention->get(), 50);
  StepOptions cublas;
  cublas.cublas = true;
  DecodeStep theirs(*w, attention->get(), 50, cublas);
  ours.token().fill_(7);
  theirs.token().fill_(7);
  ASSERT_TRUE(ours.Run().ok());
  const torch::Tensor a = ours.logits().clone();
  ASSERT_TRUE(theirs.Run().ok());
  EXPECT_LT(RelL2(a, theirs.logits()), 2e-2);
}

// Attend of a packed backend against SDPA over the CPU reference codec's reconstruction.
TEST(PackedAttentionTest, MatchesReferenceCodecs) {
  const torch::Device cuda(torch::kCUDA, 0);
  const AttentionShape s{1, 8, 2, 128, 300};
  torch::manual_seed(5);
  // bf16-representable, so the GPU backends (which take bf16) quantize the same values.
  const torch::Tensor k = torch::randn({299, 2, 128}).to(torch::kBFloat16).to(torch::kFloat32);
  const torch::Tensor v = torch::randn({299, 2, 128}).to(torch::kBFloat16).to(torch::kFloat32);
  const torch::Tensor q = torch::randn({8, 128}).to(cuda, torch::kBFloat16);
  absl::StatusOr<kernels::TurboQuant> tq = [] {
    kernels::TurboQuantOptions o;
    o.bits = 4;
    o.seed = 0;
    return kernels::TurboQuant::Make(o, 128);
  }();
  ASSERT_TRUE(tq.ok());
  for (const std::string name : {"int4_eager", "int4_fused", "turboquant_eager", "turboquant_fused"}) {
    torch::Tensor k_hat, v_hat;
    if (name.rfind("int4", 0) == 0) {
      k_hat = *kernels::DequantizeInt4(*kernels::QuantizeInt4(k, kernels::Int4Scheme::kSymmetric));
      v_hat = *kernels::DequantizeInt4(*kernels::QuantizeInt4(v, kernels::Int4Scheme::kSymmetric));
    } else {
      k_hat = *tq->Decode(*tq->Encode(k));
      v_hat = *tq->Decode(*tq->Encode(v));
    }
    auto packed = MakeStepAttention(name, s, cuda);
    auto dense = MakeStepAttention("dense_sdpa", s, cuda);
    ASSERT_TRUE(packed.ok() && dense.ok());
    // 298 tokens filled, the 299th appended through the slot, as the step does.
    ASSERT_TRUE((*packed)->Fill(0, k.narrow(0, 0, 298).to(cuda, torch::kBFloat16),
                                v.narrow(0, 0, 298).to(cuda, torch::kBFloat16)).ok());
    const KvSlot slot = (*packed)->Slot(0, 298);
    slot.k.copy_(k[298]);
    slot.v.copy_(v[298]);
    ASSERT_TRUE((*packed)->Append(0, slot, 298).ok());
    ASSERT_TRUE((*dense)->Fill(0, k_hat.to(cuda, torch::kBFloat16), v_hat.to(cuda, torch::kBFloat16)).ok());
    absl::StatusOr<torch::Tensor> got = (*packed)->Attend(0, q, 298);
    absl::StatusOr<torch::Tensor> want = (*dense)->Attend(0, q, 298);
    ASSERT_TRUE(got.ok() && want.ok());
    EXPECT_LT(RelL2(*got, *want), 2e-2) << name;
  }
}

// A history of one token: attention returns that token's reconstructed value exactly (softmax of
// one logit is 1), so the backend's quantize + dequantize must match the reference codec's.
TEST(PackedAttentionTest, OneTokenIsTheReferenceReconstruction) {
  const torch::Device cuda(torch::kCUDA, 0);
  const AttentionShape s{1, 8, 2, 128, 4};
  torch::manual_seed(9);
  kernels::TurboQuantOptions o;
  o.bits = 4;
  o.seed = 0;
  absl::StatusOr<kernels::TurboQuant> tq = kernels::TurboQuant::Make(o, 128);
  ASSERT_TRUE(tq.ok());
  for (int trial = 0; trial < 3; ++trial) {
    const torch::Tensor v =
        torch::randn({1, 2, 128}).mul(trial + 1).to(torch::kBFloat16).to(torch::kFloat32);
    for (const std::string name :
         {"int4_eager", "int4_fused", "turboquant_eager", "turboquant_fused"}) {
      const torch::Tensor v_hat =
          name.rfind("int4", 0) == 0
              ? *kernels::DequantizeInt4(*kernels::QuantizeInt4(v, kernels::Int4Scheme::kSymmetric))
              : *tq->Decode(*tq->Encode(v));
      auto packed = MakeStepAttention(name, s, cuda);
      ASSERT_TRUE(packed.ok());
      const KvSlot slot = (*packed)->Slot(0, 0);
      slot.k.copy_(torch::randn({2, 128}));
      slot.v.copy_(v[0]);
      ASSERT_TRUE((*packed)->Append(0, slot, 0).ok());
      absl::StatusOr<torch::Tensor> out =
          (*packed)->Attend(0, torch::randn({8, 128}).to(cuda, torch::kBFloat16), 0);
      ASSERT_TRUE(out.ok());
      // Query head h reads kv head h / 4.
      const torch::Tensor want = v_hat[0].repeat_interleave(4, 0);
      EXPECT_LT(RelL2(*out, want), 8e-3) << name << " trial " << trial;
    }
  }
}

}  // namespace
}  // namespace kvgate::gpu_decode
