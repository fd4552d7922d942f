// Benchmark of the decode attention primitives (attention.h) on the CPU: one decode step of 16
// query heads over 4 kv heads, head_dim 64 and 128, histories of 2K, 8K and 32K tokens, float32
// q/K/V (the dense baseline reads float32; formats are encoded from the same K/V).
//
// Each benchmark first checks its primitive against dense attention (variant 1) on the same,
// dequantized or selected inputs (max |diff| <= 1e-4; the tests hold them to 1e-5 against the
// float64 reference), then times it with the dense baseline (variant 1, kBatchedMatmul) run
// interleaved in every iteration, so both see the same machine load: the reported time is the
// primitive's alone (manual time), and the counters say
//   dense_ms   the dense baseline's mean time over the same iterations
//   vs_dense   primitive time / dense time (below 1: faster than dense)
//   kv_bytes   bytes of K + V the primitive reads (its format's exact bytes; float32 for dense)
// Primitives: dense1 (batched matmul), dense2 (blocked split-K loop), eager:<format> (decode K and
// V to float32, then dense1), int4_direct (symmetric_int4 blocks read directly), selected_tokens
// (25% of tokens, one random list per kv head), selected_blocks (25% of 16-token blocks, shared).
// Threads: LibTorch's intra-op pool, --torch_threads=N (default: LibTorch's own choice, the
// physical cores). Timer: wall clock; with --torch_threads=1 everything runs on the calling thread
// and the timer is that thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which other processes on a
// busy machine disturb far less. Both are printed in the context.
//
// Run: tools/bazel run //kernels/attention:attention_benchmark -- --benchmark_min_time=0.2
//      [--torch_threads=1]

#include <ATen/Parallel.h>
#include <time.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "kernels/attention/attention.h"
#include "kernels/int4/int4.h"
#include "kernels/kv_format/kv_format_registry.h"

namespace kvgate::kernels {
namespace {

constexpr int64_t kHeads = 16, kKvHeads = 4;
constexpr double kFraction = 0.25;  // of history, for the selected primitives

enum class Primitive { kDense1, kDense2, kEager, kInt4Direct, kSelectedTokens, kSelectedBlocks };

// Seconds on the timer: the calling thread's CPU time when LibTorch runs on one thread, else the
// wall clock.
bool thread_cpu_timer = false;

double Now() {
  if (thread_cpu_timer) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void BM_DecodeAttention(benchmark::State& state, Primitive primitive, std::string format_spec) {
  const int64_t head_dim = state.range(0), tokens = state.range(1);
  torch::manual_seed(2024);
  const torch::Tensor q = torch::randn({kHeads, head_dim});
  const torch::Tensor k = torch::randn({tokens, kKvHeads, head_dim});
  const torch::Tensor v = torch::randn({tokens, kKvHeads, head_dim});
  AttentionOptions dense_options;  // variant 1
  int64_t kv_bytes = 2 * k.numel() * 4;

  // The primitive as a closure, and the dense-equivalent inputs it must match.
  std::function<absl::StatusOr<AttentionOutput>()> run;
  torch::Tensor k_equiv = k, v_equiv = v;
  const HistorySelection* selection = nullptr;
  std::unique_ptr<KvFormat> format;
  EncodedKv k_enc, v_enc;
  Int4Tensor k4, v4;
  HistorySelection chosen;
  switch (primitive) {
    case Primitive::kDense1:
      run = [&] { return DenseDecodeAttention(q, k, v, dense_options); };
      break;
    case Primitive::kDense2: {
      AttentionOptions options;
      options.dense_kernel = DenseKernel::kBlockedLoop;
      run = [&, options] { return DenseDecodeAttention(q, k, v, options); };
      break;
    }
    case Primitive::kEager: {
      absl::StatusOr<std::unique_ptr<KvFormat>> made = MakeKvFormat(format_spec);
      if (!made.ok()) return state.SkipWithError(std::string(made.status().message()).c_str());
      format = *std::move(made);
      absl::StatusOr<EncodedKv> ke = format->Encode(k, KvRole::kKey);
      absl::StatusOr<EncodedKv> ve = format->Encode(v, KvRole::kValue);
      if (!ke.ok() || !ve.ok()) return state.SkipWithError("encoding failed");
      k_enc = *ke;
      v_enc = *ve;
      kv_bytes = k_enc.bytes() + v_enc.bytes();
      k_equiv = *format->Decode(k_enc);
      v_equiv = *format->Decode(v_enc);
      run = [&] { return EagerDecodeAttention(q, *format, k_enc, v_enc); };
      break;
    }
    case Primitive::kInt4Direct: {
      k4 = *QuantizeInt4(k, Int4Scheme::kSymmetric);
      v4 = *QuantizeInt4(v, Int4Scheme::kSymmetric);
      kv_bytes = k4.bytes() + v4.bytes();
      k_equiv = *DequantizeInt4(k4);
      v_equiv = *DequantizeInt4(v4);
      run = [&] { return Int4DecodeAttention(q, k4, v4); };
      break;
    }
    case Primitive::kSelectedTokens: {
      const int64_t n = static_cast<int64_t>(kFraction * tokens);
      std::vector<torch::Tensor> rows;
      for (int64_t g = 0; g < kKvHeads; ++g) rows.push_back(torch::randperm(tokens).slice(0, 0, n));
      chosen = HistorySelection::Tokens(torch::stack(rows));
      selection = &chosen;
      kv_bytes = 2 * n * kKvHeads * head_dim * 4;
      run = [&] { return SelectedDecodeAttention(q, k, v, chosen); };
      break;
    }
    case Primitive::kSelectedBlocks: {
      const int64_t b = 16, blocks = (tokens + b - 1) / b;
      torch::Tensor mask = torch::zeros({blocks}, torch::kBool);
      mask.index_fill_(
          0, torch::randperm(blocks).slice(0, 0, static_cast<int64_t>(kFraction * blocks)), true);
      chosen = HistorySelection::Blocks(mask, b);
      selection = &chosen;
      kv_bytes = static_cast<int64_t>(kFraction * 2 * k.numel() * 4);
      run = [&] { return SelectedDecodeAttention(q, k, v, chosen); };
      break;
    }
  }

  // Correct before timed.
  absl::StatusOr<AttentionOutput> got = run();
  if (!got.ok()) return state.SkipWithError(std::string(got.status().message()).c_str());
  absl::StatusOr<AttentionOutput> want =
      selection ? DecodeAttentionReference(q, k_equiv, v_equiv, {}, selection)
                : DenseDecodeAttention(q, k_equiv, v_equiv, dense_options);
  if (!want.ok()) return state.SkipWithError(std::string(want.status().message()).c_str());
  if ((got->out.to(torch::kFloat64) - want->out.to(torch::kFloat64)).abs().max().item<double>() >
      1e-4) {
    return state.SkipWithError("output differs from dense attention on the same inputs");
  }

  double primitive_s = 0, dense_s = 0;
  for (auto _ : state) {
    const double t0 = Now();
    absl::StatusOr<AttentionOutput> out = run();
    benchmark::DoNotOptimize(out);
    const double t1 = Now();
    absl::StatusOr<AttentionOutput> dense = DenseDecodeAttention(q, k, v, dense_options);
    benchmark::DoNotOptimize(dense);
    const double t2 = Now();
    state.SetIterationTime(t1 - t0);
    primitive_s += t1 - t0;
    dense_s += t2 - t1;
  }
  state.counters["dense_ms"] = 1e3 * dense_s / static_cast<double>(state.iterations());
  state.counters["vs_dense"] = primitive_s / dense_s;
  state.counters["kv_bytes"] = static_cast<double>(kv_bytes);
  state.SetBytesProcessed(state.iterations() * kv_bytes);
}

void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"head_dim", "tokens"});
  for (int64_t head_dim : {64, 128}) {
    for (int64_t tokens : {2048, 8192, 32768}) b->Args({head_dim, tokens});
  }
  b->UseManualTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_DecodeAttention, dense1, Primitive::kDense1, "")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_DecodeAttention, dense2, Primitive::kDense2, "")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_DecodeAttention, int4_direct, Primitive::kInt4Direct, "")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_DecodeAttention, eager_symmetric_int4, Primitive::kEager,
                  "symmetric_int4:block=32")
    ->Apply(Shapes);
BENCHMARK_CAPTURE(BM_DecodeAttention, eager_kivi2, Primitive::kEager,
                  "kivi:bits=2:group=32:residual=128")
    ->Apply(Shapes);
BENCHMARK_CAPTURE(BM_DecodeAttention, eager_fp8_e4m3, Primitive::kEager, "fp8_e4m3:scale=token")
    ->Apply(Shapes);
BENCHMARK_CAPTURE(BM_DecodeAttention, selected_tokens, Primitive::kSelectedTokens, "")
    ->Apply(Shapes);
BENCHMARK_CAPTURE(BM_DecodeAttention, selected_blocks, Primitive::kSelectedBlocks, "")
    ->Apply(Shapes);

}  // namespace
}  // namespace kvgate::kernels

// Google Benchmark's main, after taking --torch_threads=N out of argv; LibTorch's thread count and
// the timer go in the context.
int main(int argc, char** argv) {
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--torch_threads=", 0) == 0) {
      at::set_num_threads(std::stoi(arg.substr(16)));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  kvgate::kernels::thread_cpu_timer = at::get_num_threads() == 1;
  benchmark::AddCustomContext("torch_threads", std::to_string(at::get_num_threads()));
  benchmark::AddCustomContext(
      "timer", kvgate::kernels::thread_cpu_timer ? "thread CPU time (one thread)" : "wall clock");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
