// The CUDA int4 decode attention against the float64 reference (DecodeAttentionReference over
// DequantizeInt4's values of the same packed blocks, on the CPU). Tag `gpu`: runs on a GPU host
// through tools/gpu_bundle. Fresh random inputs each run (seed printed; KVGATE_SEED replays one);
// the output and the workspace are poisoned with NaN before each launch so an unwritten element
// fails.

#include "kernels/int4/int4_attention_cuda.h"

#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdlib>
#include <limits>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "kernels/attention/attention.h"
#include "kernels/int4/int4.h"
#include "kernels/int4/int4_cuda.h"

namespace kvgate::kernels {
namespace {

uint64_t Seed() {
  if (const char* env = std::getenv("KVGATE_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

struct Case {
  int64_t heads, kv_heads, head_dim, tokens;
};

class Int4DecodeAttentionCudaTest
    : public ::testing::TestWithParam<std::tuple<int, Int4Scheme, Case>> {};

TEST_P(Int4DecodeAttentionCudaTest, MatchesFloat64ReferenceOverDequantizedBlocks) {
  ASSERT_TRUE(torch::cuda::is_available());
  const auto [kernel, scheme, c] = GetParam();
  if (kernel == 2 && c.head_dim != 128) GTEST_SKIP() << "kernel2 is for head_dim 128";
  const uint64_t seed = Seed();
  torch::manual_seed(seed);
  SCOPED_TRACE(testing::Message() << "kernel" << kernel << " " << Int4SchemeName(scheme) << " seed " << seed << " heads "
                                  << c.heads << "/" << c.kv_heads << " D " << c.head_dim
                                  << " tokens " << c.tokens);
  // Keys with an offset and spread like real ones, so the softmax is neither flat nor one-hot.
  const torch::Tensor q = torch::randn({c.heads, c.head_dim}).to(torch::kBFloat16);
  const torch::Tensor k = torch::randn({c.tokens, c.kv_heads, c.head_dim}) * 1.5 + 0.3;
  const torch::Tensor v = torch::randn({c.tokens, c.kv_heads, c.head_dim});
  absl::StatusOr<Int4Tensor> kq = QuantizeInt4(k, scheme), vq = QuantizeInt4(v, scheme);
  ASSERT_TRUE(kq.ok() && vq.ok());
  absl::StatusOr<torch::Tensor> k_hat = DequantizeInt4(*kq), v_hat = DequantizeInt4(*vq);
  ASSERT_TRUE(k_hat.ok() && v_hat.ok());
  absl::StatusOr<AttentionOutput> reference =
      DecodeAttentionReference(q.to(torch::kFloat32), *k_hat, *v_hat);
  ASSERT_TRUE(reference.ok()) << reference.status();
  const torch::Tensor expected = reference->out;  // float64
  // Run, then check that every output was written and is near the float64 reference: the same
  // steps as decode_attention_cuda_test, kept in each test so that its tolerance reads beside its
  // kernel.

  const torch::Device cuda(torch::kCUDA);
  const torch::Tensor qd = q.to(cuda);
  const Int4Tensor kd = Int4TensorTo(*kq, cuda), vd = Int4TensorTo(*vq, cuda);
  torch::Tensor out = torch::full_like(qd, std::numeric_limits<float>::quiet_NaN());
  absl::StatusOr<torch::Tensor> workspace =
      Int4DecodeAttentionCudaWorkspace(qd, c.tokens, c.kv_heads, kernel);
  ASSERT_TRUE(workspace.ok()) << workspace.status();
  workspace->fill_(std::numeric_limits<float>::quiet_NaN());
  const absl::Status status =
      Int4DecodeAttentionCudaInto(qd, kd, vd, out, *workspace, 0.0, kernel);
  ASSERT_TRUE(status.ok()) << status;
  torch::cuda::synchronize();
  const torch::Tensor got = out.cpu().to(torch::kFloat64);
  ASSERT_TRUE(torch::isfinite(got).all().item<bool>()) << "an output element was not written";
  // kernel1 decodes exactly; the output's bf16 rounding is 2^-9 relative, the float32
  // accumulation far smaller. kernel2 also rounds the weights and V values to fp16 (2^-11).
  const double relative = ((got - expected).norm() / expected.norm()).item<double>();
  EXPECT_LT(relative, 4e-3);
  if (kernel == 2) {
    // kernel2 rounds each softmax weight and each decoded V value to fp16 (2^-11 relative), so
    // an output element moves by up to 2^-10 max|v| however small it is, plus its own bf16
    // rounding (2^-9 relative): a worst relative error of 0.023 on a small output was seen on the
    // H100 (run 11, 5 tokens). Checked against that bound with a factor 2.
    const double v_max = v_hat->abs().max().item<double>();
    const torch::Tensor allowed = expected.abs() * (1.0 / 256.0) + v_max * (1.0 / 512.0);
    EXPECT_TRUE(((got - expected).abs() <= allowed).all().item<bool>())
        << "largest error over its bound: "
        << ((got - expected).abs() / allowed).max().item<double>();
  } else {
    const double worst = ((got - expected).abs() / (expected.abs() + 1e-2)).max().item<double>();
    EXPECT_LT(worst, 2e-2);
  }

  // The allocating form (the default kernel) computes the same function.
  absl::StatusOr<torch::Tensor> again = Int4DecodeAttentionCuda(qd, kd, vd);
  ASSERT_TRUE(again.ok()) << again.status();
  const torch::Tensor got_again = again->cpu().to(torch::kFloat64);
  EXPECT_LT(((got_again - expected).norm() / expected.norm()).item<double>(), 4e-3);
}

// Lengths: 1, short, not a multiple of the 16-row batch or of a CTA's round, 8K, 32K + 17.
INSTANTIATE_TEST_SUITE_P(
    Shapes, Int4DecodeAttentionCudaTest,
    ::testing::Combine(::testing::Values(1, 2),
                       ::testing::Values(Int4Scheme::kSymmetric, Int4Scheme::kAffine),
                       ::testing::Values(Case{28, 4, 128, 1}, Case{28, 4, 128, 5},
                                         Case{28, 4, 128, 1000}, Case{28, 4, 128, 8192},
                                         Case{28, 4, 128, 32768 + 17}, Case{9, 3, 64, 333},
                                         Case{8, 8, 128, 77}, Case{16, 2, 128, 2049},
                                         Case{5, 1, 128, 300}, Case{32, 4, 64, 4099})));

// Each bad input is InvalidArgument and the message names the offending tensor.
TEST(Int4DecodeAttentionCudaErrorsTest, RejectsBadInputsNamingTheTensor) {
  ASSERT_TRUE(torch::cuda::is_available());
  const torch::Device cuda(torch::kCUDA);
  const auto bf16 = torch::dtype(torch::kBFloat16).device(cuda);
  const torch::Tensor q = torch::randn({8, 128}, bf16);
  const Int4Tensor k = Int4TensorTo(*QuantizeInt4(torch::randn({16, 2, 128}), Int4Scheme::kSymmetric), cuda);
  const Int4Tensor ka = Int4TensorTo(*QuantizeInt4(torch::randn({16, 2, 128}), Int4Scheme::kAffine), cuda);
  ASSERT_TRUE(Int4DecodeAttentionCuda(q, k, k).ok());
  ASSERT_TRUE(Int4DecodeAttentionCuda(q, ka, ka).ok());

  const auto expect_invalid = [](const absl::StatusOr<torch::Tensor>& result,
                                 const std::string& names) {
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_NE(std::string(result.status().message()).find(names), std::string::npos)
        << result.status() << " should name " << names;
  };
  expect_invalid(Int4DecodeAttentionCuda(q.to(torch::kFloat32), k, k), "q ");   // dtype
  expect_invalid(Int4DecodeAttentionCuda(q.cpu(), k, k), "q");                  // device
  expect_invalid(Int4DecodeAttentionCuda(q, k, ka), "v is affine_int4");         // schemes differ
  {
    Int4Tensor on_cpu = k;
    on_cpu.codes = k.codes.cpu();
    expect_invalid(Int4DecodeAttentionCuda(q, on_cpu, k), "k.codes");
  }
  {
    Int4Tensor short_v = k;
    short_v.codes = k.codes.narrow(0, 0, 8).contiguous();
    expect_invalid(Int4DecodeAttentionCuda(q, k, short_v), "v.codes");
  }
  {
    Int4Tensor wrong = k;
    wrong.scales = k.scales.to(torch::kFloat32);
    expect_invalid(Int4DecodeAttentionCuda(q, wrong, k), "k.scales");
  }
  {
    Int4Tensor strided = k;
    strided.scales = k.scales.transpose(0, 1).contiguous().transpose(0, 1);  // same shape, not contiguous
    expect_invalid(Int4DecodeAttentionCuda(q, k, strided), "v.scales");
  }
  {
    Int4Tensor no_zeros = ka;
    no_zeros.zeros = torch::Tensor();
    expect_invalid(Int4DecodeAttentionCuda(q, no_zeros, ka), "k.zeros");
  }
  {
    Int4Tensor extra = k;
    extra.zeros = ka.zeros;
    expect_invalid(Int4DecodeAttentionCuda(q, k, extra), "v.zeros");
  }
  expect_invalid(Int4DecodeAttentionCuda(torch::randn({8, 64}, bf16), k, k), "head_dim");
  expect_invalid(Int4DecodeAttentionCuda(torch::randn({18, 128}, bf16), k, k), "1 to 8");  // group 9
  expect_invalid(Int4DecodeAttentionCuda(torch::randn({7, 128}, bf16), k, k), "multiple");  // 7 % 2
  {
    const Int4Tensor k96 = Int4TensorTo(*QuantizeInt4(torch::randn({16, 2, 96}), Int4Scheme::kSymmetric), cuda);
    expect_invalid(Int4DecodeAttentionCuda(torch::randn({8, 96}, bf16), k96, k96), "64 or 128");
  }

  torch::Tensor out = torch::empty_like(q);
  torch::Tensor workspace = *Int4DecodeAttentionCudaWorkspace(q, 16, 2);
  EXPECT_TRUE(Int4DecodeAttentionCudaInto(q, k, k, out, workspace).ok());
  torch::Tensor small = workspace.narrow(0, 0, 16);
  const absl::Status too_small = Int4DecodeAttentionCudaInto(q, k, k, out, small);
  EXPECT_EQ(too_small.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(too_small.message()).find("workspace"), std::string::npos) << too_small;
  torch::Tensor wrong_out = torch::empty({8, 64}, bf16);
  const absl::Status bad_out = Int4DecodeAttentionCudaInto(q, k, k, wrong_out, workspace);
  EXPECT_EQ(bad_out.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad_out.message()).find("out"), std::string::npos) << bad_out;
  const absl::Status bad_kernel = Int4DecodeAttentionCudaInto(q, k, k, out, workspace, 0.0, 3);
  EXPECT_EQ(bad_kernel.code(), absl::StatusCode::kInvalidArgument);
  {  // kernel2 is for head_dim 128 only
    const torch::Tensor q64 = torch::randn({8, 64}, bf16);
    const Int4Tensor k64 =
        Int4TensorTo(*QuantizeInt4(torch::randn({16, 2, 64}), Int4Scheme::kSymmetric), cuda);
    torch::Tensor out64 = torch::empty_like(q64);
    torch::Tensor ws64 = *Int4DecodeAttentionCudaWorkspace(q64, 16, 2, 1);
    EXPECT_TRUE(Int4DecodeAttentionCudaInto(q64, k64, k64, out64, ws64, 0.0, 1).ok());
    const absl::Status no_kernel2 = Int4DecodeAttentionCudaInto(q64, k64, k64, out64, ws64, 0.0, 2);
    EXPECT_EQ(no_kernel2.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(no_kernel2.message()).find("kernel2"), std::string::npos) << no_kernel2;
  }
}

}  // namespace
}  // namespace kvgate::kernels
