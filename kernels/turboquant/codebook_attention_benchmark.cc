// Benchmark of one decode step of attention on the CPU, one thread: the fused packed-codebook
// attention (codebook_attention.h) against dense float32 baselines, in one binary.
//
// Shape: 8 query heads over 2 kv heads (GQA 4), head_dim 64 and 128, history T = 2K, 8K, 32K.
// K/V are seeded Gaussians with every 7th channel 4x larger, encoded once (outside the timing).
//   Dense/...           DenseAttention: float32 K/V [T, 2, D], the loops of fused variant 2
//   Torch/...           torch::bmm + softmax + bmm over K/V laid out [2, T, D] (the HF cache
//                       layout), at::set_num_threads(1): a BLAS baseline
//   Fused_v1_mse3/...   CodebookAttention variant 1 over turboquant_mse:bits=3
//   Fused_v2_<fmt>/...  variant 2 over turboquant_mse bits 2, 3, 4 and turboquant_prod bits 3
//   Fused_v2_exact/...  variant 2 over exact-cleanup tensors of turboquant_mse:bits=3 (the fused
//                       integration without approximation: its overhead alone)
//   *Logits*            the logits alone: DenseLogits, CodebookLogits variants 1 and 2 (mse3)
// Before timing, each fused benchmark checks its output against the eager path (decode, then
// dense reference attention; 1e-4 of the value scale), and each dense one against the reference.
// Items are kv vectors (T * kv_heads) a step; bytes are those of K and V as stored (float32 for
// the dense baselines, the encoded bytes for the fused ones). Numbers are CPU numbers of the host
// that ran them: the ratio to Dense in the same run is the figure to read.
//
// Run: tools/bazel run //kernels/turboquant:codebook_attention_benchmark --
//      --benchmark_min_time=0.1

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "kernels/turboquant/codebook_attention.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::kernels {
namespace {

constexpr int64_t kHeads = 8, kKvHeads = 2;

torch::Tensor KvLike(int64_t tokens, int64_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  torch::Tensor x = torch::empty({tokens, kKvHeads, d}, torch::kFloat32);
  float* p = x.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = normal(rng) * ((i % d) % 7 == 0 ? 4.0f : 1.0f);
  return x;
}

struct Inputs {
  torch::Tensor q, k, v;  // [heads, D], [T, kv_heads, D] x2
};

// One set of inputs per (D, T), made once.
const Inputs& GetInputs(int64_t d, int64_t tokens) {
  static auto* cache = new std::map<std::pair<int64_t, int64_t>, Inputs>;
  auto it = cache->find({d, tokens});
  if (it != cache->end()) return it->second;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  Inputs in;
  in.q = torch::empty({kHeads, d}, torch::kFloat32);
  for (int64_t i = 0; i < in.q.numel(); ++i) in.q.data_ptr<float>()[i] = normal(rng);
  in.k = KvLike(tokens, d, 1);
  in.v = KvLike(tokens, d, 2);
  return cache->emplace(std::pair{d, tokens}, in).first->second;
}

struct Encoded {
  std::unique_ptr<TurboQuant> tq;
  TurboQuantTensor k, v;
};

// K and V encoded by a format (bits 0: exact cleanup of mse:bits=3), once per (kind, bits, D, T).
const Encoded& GetEncoded(TurboQuantKind kind, int bits, int64_t d, int64_t tokens) {
  static auto* cache = new std::map<std::tuple<int, int, int64_t, int64_t>, Encoded>;
  const auto key = std::tuple{static_cast<int>(kind), bits, d, tokens};
  auto it = cache->find(key);
  if (it != cache->end()) return it->second;
  TurboQuantOptions o;
  o.kind = kind;
  o.bits = bits == 0 ? 3 : bits;
  o.seed = 3;
  Encoded e;
  e.tq = std::make_unique<TurboQuant>(*TurboQuant::Make(o, d));
  const Inputs& in = GetInputs(d, tokens);
  e.k = bits == 0 ? *e.tq->EncodeExactCleanup(in.k) : *e.tq->Encode(in.k);
  e.v = bits == 0 ? *e.tq->EncodeExactCleanup(in.v) : *e.tq->Encode(in.v);
  return cache->emplace(key, std::move(e)).first->second;
}

float Scale(int64_t d) { return 1.0f / std::sqrt(static_cast<float>(d)); }

bool Close(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& values,
           benchmark::State& state) {
  const double worst = ((a - b).abs().max() / values.abs().max()).item<double>();
  if (!(worst < 1e-4)) {
    state.SkipWithError("output differs from the reference");
    return false;
  }
  return true;
}

void SetCounters(benchmark::State& state, int64_t tokens, int64_t kv_bytes) {
  state.SetItemsProcessed(state.iterations() * tokens * kKvHeads);
  state.SetBytesProcessed(state.iterations() * kv_bytes);
  state.counters["kv_bytes"] = static_cast<double>(kv_bytes);
}

void BM_Dense(benchmark::State& state) {
  const int64_t d = state.range(0), tokens = state.range(1);
  const Inputs& in = GetInputs(d, tokens);
  absl::StatusOr<torch::Tensor> out = DenseAttention(in.q, in.k, in.v, Scale(d));
  if (!out.ok()) return state.SkipWithError(std::string(out.status().message()).c_str());
  if (!Close(*out, *DenseAttentionRef(in.q, in.k, in.v, Scale(d)), in.v, state)) return;
  for (auto _ : state) {
    absl::StatusOr<torch::Tensor> o = DenseAttention(in.q, in.k, in.v, Scale(d));
    benchmark::DoNotOptimize(o);
  }
  SetCounters(state, tokens, static_cast<int64_t>(in.k.nbytes() + in.v.nbytes()));
}

void BM_Torch(benchmark::State& state) {
  at::set_num_threads(1);
  const int64_t d = state.range(0), tokens = state.range(1);
  const Inputs& in = GetInputs(d, tokens);
  const torch::Tensor k = in.k.permute({1, 0, 2}).contiguous();  // [kv_heads, T, D]
  const torch::Tensor v = in.v.permute({1, 0, 2}).contiguous();
  const torch::Tensor q = in.q.view({kKvHeads, kHeads / kKvHeads, d});
  auto attend = [&] {
    const torch::Tensor p = torch::softmax(torch::bmm(q, k.transpose(1, 2)) * Scale(d), -1);
    return torch::bmm(p, v).view({kHeads, d});
  };
  if (!Close(attend(), *DenseAttentionRef(in.q, in.k, in.v, Scale(d)), in.v, state)) return;
  for (auto _ : state) {
    torch::Tensor o = attend();
    benchmark::DoNotOptimize(o);
  }
  SetCounters(state, tokens, static_cast<int64_t>(k.nbytes() + v.nbytes()));
}

// bits 0: exact cleanup.
void BM_Fused(benchmark::State& state, int variant, TurboQuantKind kind, int bits) {
  const int64_t d = state.range(0), tokens = state.range(1);
  const Inputs& in = GetInputs(d, tokens);
  const Encoded& e = GetEncoded(kind, bits, d, tokens);
  absl::StatusOr<torch::Tensor> out =
      CodebookAttention(in.q, *e.tq, e.k, *e.tq, e.v, Scale(d), variant);
  if (!out.ok()) return state.SkipWithError(std::string(out.status().message()).c_str());
  const torch::Tensor reference = bits == 0
                                      ? *DenseAttentionRef(in.q, in.k, in.v, Scale(d))
                                      : *EagerAttentionRef(in.q, *e.tq, e.k, *e.tq, e.v, Scale(d));
  if (!Close(*out, reference, in.v, state)) return;
  for (auto _ : state) {
    absl::StatusOr<torch::Tensor> o =
        CodebookAttention(in.q, *e.tq, e.k, *e.tq, e.v, Scale(d), variant);
    benchmark::DoNotOptimize(o);
  }
  SetCounters(state, tokens, e.k.bytes() + e.v.bytes());
}

void BM_DenseLogits(benchmark::State& state) {
  const int64_t d = state.range(0), tokens = state.range(1);
  const Inputs& in = GetInputs(d, tokens);
  for (auto _ : state) {
    absl::StatusOr<torch::Tensor> l = DenseLogits(in.q, in.k);
    benchmark::DoNotOptimize(l);
  }
  SetCounters(state, tokens, static_cast<int64_t>(in.k.nbytes()));
}

void BM_FusedLogits(benchmark::State& state, int variant) {
  const int64_t d = state.range(0), tokens = state.range(1);
  const Inputs& in = GetInputs(d, tokens);
  const Encoded& e = GetEncoded(TurboQuantKind::kMse, 3, d, tokens);
  const torch::Tensor ref = *DenseLogitsRef(in.q, *e.tq->Decode(e.k));
  absl::StatusOr<torch::Tensor> l = CodebookLogits(in.q, *e.tq, e.k, variant);
  if (!l.ok()) return state.SkipWithError(std::string(l.status().message()).c_str());
  if (!((*l - ref).norm() / ref.norm()).lt(1e-5).item<bool>()) {
    return state.SkipWithError("logits differ from the reference");
  }
  for (auto _ : state) {
    absl::StatusOr<torch::Tensor> x = CodebookLogits(in.q, *e.tq, e.k, variant);
    benchmark::DoNotOptimize(x);
  }
  SetCounters(state, tokens, e.k.bytes());
}

// head_dim x history: a modest grid.
void Shapes(benchmark::internal::Benchmark* b) {
  for (int64_t d : {64, 128}) {
    for (int64_t tokens : {2048, 8192, 32768}) b->Args({d, tokens});
  }
  b->ArgNames({"D", "T"})->Unit(benchmark::kMillisecond);
}

constexpr TurboQuantKind kMse = TurboQuantKind::kMse, kProd = TurboQuantKind::kProd;

BENCHMARK(BM_Dense)->Apply(Shapes);
BENCHMARK(BM_Torch)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Fused, v1_mse3, 1, kMse, 3)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Fused, v2_mse2, 2, kMse, 2)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Fused, v2_mse3, 2, kMse, 3)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Fused, v2_mse4, 2, kMse, 4)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Fused, v2_prod3, 2, kProd, 3)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Fused, v2_exact, 2, kMse, 0)->Apply(Shapes);
BENCHMARK(BM_DenseLogits)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_FusedLogits, v1_mse3, 1)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_FusedLogits, v2_mse3, 2)->Apply(Shapes);

}  // namespace
}  // namespace kvgate::kernels
