// GPU smoke and correctness test of the int4 CUDA path (tag `gpu`: runs on a GPU host through
// tools/gpu_bundle, never in CPU CI). Checks, on fresh random inputs each run:
//   1. the .cu kernel dequantize_int4_kernel1 against the CPU reference DequantizeInt4, with the
//      output poisoned with NaN first so an unwritten element fails;
//   2. a LibTorch CUDA op (matmul) against the same op on the CPU.

#include "kernels/int4/int4_cuda.h"

#include <cuda_runtime_api.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <random>

#include "gtest/gtest.h"
#include "kernels/int4/int4.h"

namespace kvgate::kernels {
namespace {

// A seed drawn per run and printed, so a failure can be replayed with KVGATE_SEED.
uint64_t Seed() {
  if (const char* env = std::getenv("KVGATE_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

class Int4CudaTest : public ::testing::TestWithParam<Int4Scheme> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_FAIL() << "no CUDA device visible to LibTorch";
    seed_ = Seed();
    torch::manual_seed(seed_);
    RecordProperty("seed", std::to_string(seed_));
  }
  uint64_t seed_ = 0;
};

TEST_P(Int4CudaTest, KernelMatchesCpuReference) {
  // KV-shaped: [tokens, kv heads, head_dim], values with the spread of real keys.
  for (int64_t tokens : {1, 7, 4096}) {
    SCOPED_TRACE(testing::Message() << "seed " << seed_ << " tokens " << tokens);
    const torch::Tensor x = torch::randn({tokens, 4, 128}) * 3.0 + 0.5;
    absl::StatusOr<Int4Tensor> q = QuantizeInt4(x, GetParam());
    ASSERT_TRUE(q.ok()) << q.status();
    absl::StatusOr<torch::Tensor> expected = DequantizeInt4(*q);
    ASSERT_TRUE(expected.ok()) << expected.status();

    const Int4Tensor on_gpu = Int4TensorTo(*q, torch::Device(torch::kCUDA));
    torch::Tensor out = torch::full(x.sizes(), std::numeric_limits<float>::quiet_NaN(),
                                    torch::dtype(torch::kFloat32).device(torch::kCUDA));
    ASSERT_TRUE(DequantizeInt4CudaInto(on_gpu, out).ok());
    torch::cuda::synchronize();
    const torch::Tensor got = out.cpu();
    ASSERT_TRUE(torch::isfinite(got).all().item<bool>()) << "an output element was not written";
    // Dequantizing has at most one rounding (int4.h), so the GPU must agree bit for bit.
    const double max_error = (got - *expected).abs().max().item<double>();
    EXPECT_EQ(max_error, 0.0) << "max |gpu - cpu| = " << max_error;
  }
}

TEST_P(Int4CudaTest, RejectsCpuTensors) {
  absl::StatusOr<Int4Tensor> q = QuantizeInt4(torch::randn({2, 64}), GetParam());
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(DequantizeInt4Cuda(*q).ok());
}

INSTANTIATE_TEST_SUITE_P(Schemes, Int4CudaTest,
                         ::testing::Values(Int4Scheme::kSymmetric, Int4Scheme::kAffine));

TEST(LibTorchCudaTest, MatmulMatchesCpu) {
  ASSERT_TRUE(torch::cuda::is_available());
  torch::manual_seed(Seed());
  const torch::Tensor a = torch::randn({512, 256}, torch::kFloat64);
  const torch::Tensor b = torch::randn({256, 384}, torch::kFloat64);
  const torch::Tensor cpu = torch::matmul(a, b);
  const torch::Tensor gpu = torch::matmul(a.cuda(), b.cuda()).cpu();
  const double relative = ((gpu - cpu).norm() / cpu.norm()).item<double>();
  EXPECT_LT(relative, 1e-12) << "float64 matmul on the GPU differs from the CPU";
  cudaDeviceProp properties{};
  ASSERT_EQ(cudaGetDeviceProperties(&properties, 0), cudaSuccess);
  std::printf("device: %s (sm_%d%d), float64 matmul relative error %.3g\n", properties.name,
              properties.major, properties.minor, relative);
}

}  // namespace
}  // namespace kvgate::kernels
