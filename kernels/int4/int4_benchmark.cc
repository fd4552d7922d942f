// Benchmark of int4 K/V (int4.h) on the CPU: QuantizeInt4 and DequantizeInt4, both schemes, on
// one layer's K of [4096 tokens, 4 heads, 128] float32: 8 MiB in, 1.125 MiB (symmetric) or
// 1.25 MiB (affine) of int4 out. Each timed call goes through the tensor API, so it includes
// allocating its outputs; the loops are the scalar reference of int4_ref.cc (the only variant so
// far), on one thread. Before timing, each benchmark checks its round trip against the stored
// scales (|x - x_hat| <= scale/2, plus the fp16 step of the zero point for affine).
// Bytes/s count the input: float32 for quantize, the int4 tensor's bytes() for dequantize.
//
// Run: tools/bazel run //kernels/int4:int4_benchmark -- --benchmark_min_time=0.1

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "kernels/int4/int4.h"

namespace kvgate::kernels {
namespace {

constexpr int64_t kTokens = 4096, kHeads = 4, kHeadDim = 128;

// Gaussian K/V-like values with a per-block magnitude, from a fixed seed (turboquant_benchmark.cc
// draws plain Gaussians the same way: each benchmark keeps its inputs beside its timings).
torch::Tensor RandomKv() {
  std::mt19937_64 rng(2024);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_magnitude(-3.0f, 3.0f);
  torch::Tensor x = torch::empty({kTokens, kHeads, kHeadDim}, torch::kFloat32);
  float* data = x.data_ptr<float>();
  float magnitude = 1.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (i % kInt4BlockSize == 0) magnitude = std::exp(log_magnitude(rng));
    data[i] = magnitude * normal(rng);
  }
  return x;
}

// The round trip must hold before anything is timed (a wrong kernel is not worth a number).
bool RoundTripOk(const torch::Tensor& x, const Int4Tensor& q, benchmark::State& state) {
  absl::StatusOr<torch::Tensor> x_hat = DequantizeInt4(q);
  if (!x_hat.ok()) {
    state.SkipWithError(std::string(x_hat.status().message()).c_str());
    return false;
  }
  // Per-block bound: scale/2 (symmetric), scale/2 plus the fp16 step of the zero point (affine).
  const torch::Tensor err = (x - *x_hat).abs().view({-1, kInt4BlockSize});
  torch::Tensor bound = q.scales.to(torch::kFloat32).view({-1, 1}) * 0.5f * (1 + 1e-5f);
  if (q.zeros.defined()) bound = bound + q.zeros.to(torch::kFloat32).abs().view({-1, 1}) / 2048;
  if (!(err <= bound + 1e-7f).all().item<bool>()) {
    state.SkipWithError("round trip exceeds the error bound");
    return false;
  }
  return true;
}

void BM_QuantizeInt4(benchmark::State& state, Int4Scheme scheme) {
  const torch::Tensor x = RandomKv();
  absl::StatusOr<Int4Tensor> check = QuantizeInt4(x, scheme);
  if (!check.ok()) return state.SkipWithError(std::string(check.status().message()).c_str());
  if (!RoundTripOk(x, *check, state)) return;
  for (auto _ : state) {
    absl::StatusOr<Int4Tensor> q = QuantizeInt4(x, scheme);
    benchmark::DoNotOptimize(q);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(x.nbytes()));
  state.SetItemsProcessed(state.iterations() * x.numel());
  state.counters["bytes_out"] = static_cast<double>(check->bytes());
}

void BM_DequantizeInt4(benchmark::State& state, Int4Scheme scheme) {
  const torch::Tensor x = RandomKv();
  absl::StatusOr<Int4Tensor> q = QuantizeInt4(x, scheme);
  if (!q.ok()) return state.SkipWithError(std::string(q.status().message()).c_str());
  if (!RoundTripOk(x, *q, state)) return;
  for (auto _ : state) {
    absl::StatusOr<torch::Tensor> x_hat = DequantizeInt4(*q);
    benchmark::DoNotOptimize(x_hat);
  }
  state.SetBytesProcessed(state.iterations() * q->bytes());
  state.SetItemsProcessed(state.iterations() * x.numel());
  state.counters["bytes_out"] = static_cast<double>(x.nbytes());
}

BENCHMARK_CAPTURE(BM_QuantizeInt4, symmetric_int4, Int4Scheme::kSymmetric)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_QuantizeInt4, affine_int4, Int4Scheme::kAffine)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DequantizeInt4, symmetric_int4, Int4Scheme::kSymmetric)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DequantizeInt4, affine_int4, Int4Scheme::kAffine)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvgate::kernels
