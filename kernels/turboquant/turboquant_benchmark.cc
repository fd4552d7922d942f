// Benchmark of TurboQuant encode and decode (turboquant.h) on the CPU, one thread, through the
// tensor API's fast path (rotation=hadamard): one layer's K of [4096 tokens, 4 kv heads, 128]
// float32 (8 MiB), for turboquant_mse and turboquant_prod at bits 1..4 and the split at 2.5 and
// 3.5. Each timed call includes allocating its outputs. Before timing, each benchmark checks its
// round trip: the relative MSE is within 10% of the codebook's distortion D_b (kMse) or of
// (pi/2 - 1/m) D_{b-1} (kProd: the QJL part's variance; D_0 = 1), or below the worse group's
// figure (split).
// Bytes/s count the input: float32 for encode, the encoded bytes for decode; items are elements.
//
// Run: tools/bazel run //kernels/turboquant:turboquant_benchmark -- --benchmark_min_time=0.1

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "kernels/turboquant/lloyd_max.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::kernels {
namespace {

constexpr int64_t kTokens = 4096, kHeads = 4, kHeadDim = 128;

torch::Tensor RandomKv() {
  std::mt19937_64 rng(2024);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  torch::Tensor x = torch::empty({kTokens, kHeads, kHeadDim}, torch::kFloat32);
  float* p = x.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = normal(rng);
  return x;
}

const torch::Tensor& Input() {
  static const torch::Tensor* x = new torch::Tensor(RandomKv());
  return *x;
}

// The expected relative MSE of one codec of `bits` bits and kind in dimension d.
double Expected(TurboQuantKind kind, int bits, int64_t d) {
  if (kind == TurboQuantKind::kMse) return CachedSphereCodebook(d, bits).unit_vector_distortion();
  return (1.5707963267948966 - 1.0 / d) *
         CachedSphereCodebook(d, bits - 1).unit_vector_distortion();
}

// Makes the format and checks its round trip; null (and the state skipped) on a failure.
std::unique_ptr<TurboQuant> Setup(benchmark::State& state, TurboQuantKind kind, int bits,
                                  bool split, TurboQuantTensor* encoded) {
  TurboQuantOptions o;
  o.kind = kind;
  o.bits = bits;
  o.split = split;
  o.seed = 7;
  absl::StatusOr<TurboQuant> tq = TurboQuant::Make(o, kHeadDim);
  if (!tq.ok()) {
    state.SkipWithError(std::string(tq.status().message()).c_str());
    return nullptr;
  }
  absl::StatusOr<TurboQuantTensor> t = tq->Encode(Input());
  absl::StatusOr<torch::Tensor> x_hat = t.ok() ? tq->Decode(*t) : t.status();
  if (!x_hat.ok()) {
    state.SkipWithError(std::string(x_hat.status().message()).c_str());
    return nullptr;
  }
  const torch::Tensor& x = Input();
  const double rel = ((x - *x_hat).pow(2).sum() / x.pow(2).sum()).item<double>();
  const double expected =
      split ? std::max(Expected(kind, bits, kHeadDim / 2), Expected(kind, bits + 1, kHeadDim / 2))
            : Expected(kind, bits, kHeadDim);
  if (split ? rel > 1.1 * expected : std::fabs(rel - expected) > 0.1 * expected) {
    state.SkipWithError("round trip MSE is not the expected distortion");
    return nullptr;
  }
  state.counters["rel_mse"] = rel;
  state.counters["bytes_per_vector"] = static_cast<double>(tq->BytesPerVector());
  *encoded = *std::move(t);
  return std::make_unique<TurboQuant>(*std::move(tq));
}

void BM_Encode(benchmark::State& state, TurboQuantKind kind, int bits, bool split) {
  TurboQuantTensor encoded;
  std::unique_ptr<TurboQuant> tq = Setup(state, kind, bits, split, &encoded);
  if (tq == nullptr) return;
  for (auto _ : state) {
    absl::StatusOr<TurboQuantTensor> t = tq->Encode(Input());
    benchmark::DoNotOptimize(t);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(Input().nbytes()));
  state.SetItemsProcessed(state.iterations() * Input().numel());
}

void BM_Decode(benchmark::State& state, TurboQuantKind kind, int bits, bool split) {
  TurboQuantTensor encoded;
  std::unique_ptr<TurboQuant> tq = Setup(state, kind, bits, split, &encoded);
  if (tq == nullptr) return;
  for (auto _ : state) {
    absl::StatusOr<torch::Tensor> x = tq->Decode(encoded);
    benchmark::DoNotOptimize(x);
  }
  state.SetBytesProcessed(state.iterations() * encoded.bytes());
  state.SetItemsProcessed(state.iterations() * Input().numel());
}

constexpr TurboQuantKind kMse = TurboQuantKind::kMse, kProd = TurboQuantKind::kProd;

#define TQ_BENCHMARKS(fn)                                                                \
  BENCHMARK_CAPTURE(fn, mse_b1, kMse, 1, false)->Unit(benchmark::kMillisecond);          \
  BENCHMARK_CAPTURE(fn, mse_b2, kMse, 2, false)->Unit(benchmark::kMillisecond);          \
  BENCHMARK_CAPTURE(fn, mse_b3, kMse, 3, false)->Unit(benchmark::kMillisecond);          \
  BENCHMARK_CAPTURE(fn, mse_b4, kMse, 4, false)->Unit(benchmark::kMillisecond);          \
  BENCHMARK_CAPTURE(fn, prod_b1, kProd, 1, false)->Unit(benchmark::kMillisecond);        \
  BENCHMARK_CAPTURE(fn, prod_b2, kProd, 2, false)->Unit(benchmark::kMillisecond);        \
  BENCHMARK_CAPTURE(fn, prod_b3, kProd, 3, false)->Unit(benchmark::kMillisecond);        \
  BENCHMARK_CAPTURE(fn, prod_b4, kProd, 4, false)->Unit(benchmark::kMillisecond);        \
  BENCHMARK_CAPTURE(fn, mse_split_b2_5, kMse, 2, true)->Unit(benchmark::kMillisecond);   \
  BENCHMARK_CAPTURE(fn, mse_split_b3_5, kMse, 3, true)->Unit(benchmark::kMillisecond);   \
  BENCHMARK_CAPTURE(fn, prod_split_b2_5, kProd, 2, true)->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(fn, prod_split_b3_5, kProd, 3, true)->Unit(benchmark::kMillisecond)

TQ_BENCHMARKS(BM_Encode);
TQ_BENCHMARKS(BM_Decode);

}  // namespace
}  // namespace kvgate::kernels
