// Times CUDA attention over selected blocks (selected_attention_kernel2) against dense decode
// attention over the whole history (our DecodeAttentionCudaInto kernel1 and LibTorch SDPA), in one
// run on one card (tag `gpu`), for the Qwen2.5-7B shape (28 query heads, 4 KV heads, head_dim 128,
// bf16 cache) at each --tokens and active fraction --fractions (blocks of --block_size tokens,
// chosen at random per kv head, listed in ascending order as a selector would).
//
//   tools/gpu_bundle --out dist/codebook //kernels/attention:selected_attention_cuda_benchmark
//   dist/codebook/run selected_attention_cuda_benchmark --specs_dir=gates/specs \
//       --records_out=selected_attention_cuda.jsonl --git_commit=$(git rev-parse HEAD) --host=...
//
// Method (device/METHOD.md): CUDA events, L2 flushed before every timed run by reading a buffer
// twice the size of L2, warm-up first, the median of --iters runs; GB/s counts the K and V bytes
// of the selected blocks; the copy bandwidth is a 1 GiB device-to-device copy (read + written).
// Each output is checked against a float64 reference over the same tokens (relative L2,
// recorded). --records_out writes one record a (tokens, fraction), judged by gate
// cuda_selected_attention v1 from the spec files in --specs_dir.

#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "gates/record.h"
#include "gates/record_io.h"
#include "gates/spec_registry.h"
#include "gates/verdict.h"
#include "kernels/attention/decode_attention_cuda.h"
#include "kernels/attention/selected_attention_cuda.h"
#include "kernels/common/cuda_timing.h"

ABSL_FLAG(std::vector<std::string>, tokens, std::vector<std::string>({"8192", "32768", "131072"}),
          "history lengths, comma separated");
ABSL_FLAG(std::vector<std::string>, fractions,
          std::vector<std::string>({"0.05", "0.1", "0.25", "0.5"}),
          "active history fractions, comma separated");
ABSL_FLAG(int, block_size, 16, "tokens a block");
ABSL_FLAG(int, iters, 100, "timed runs a measurement; the median is reported");
ABSL_FLAG(uint64_t, seed, 1234, "seed of the random inputs and selections");
ABSL_FLAG(std::string, specs_dir, "gates/specs", "the gate spec files");
ABSL_FLAG(std::string, records_out, "", "append records (gates/record_io) to this file");
ABSL_FLAG(std::string, git_commit, "unknown", "commit of the tree that built this binary");
ABSL_FLAG(bool, dirty, false, "whether that tree had uncommitted changes");
ABSL_FLAG(std::string, host, "unknown", "host name and driver, \"<host> (driver <version>)\"");

namespace {

namespace kk = kvgate::kernels;
namespace gates = kvgate::gates;

constexpr int kHeads = 28, kKvHeads = 4, kD = 128;

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "selected_attention_cuda_benchmark: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

// float64 attention of each query head over its kv head's selected tokens.
torch::Tensor Reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& ids, int64_t block_size, int64_t tokens) {
  const int64_t group = kHeads / kKvHeads;
  torch::Tensor out = torch::empty({kHeads, kD}, torch::dtype(torch::kFloat64).device(q.device()));
  const torch::Tensor offsets = torch::arange(block_size, ids.options().dtype(torch::kInt64));
  for (int64_t hk = 0; hk < kKvHeads; ++hk) {
    torch::Tensor t = (ids[hk].to(torch::kInt64).unsqueeze(1) * block_size + offsets).flatten();
    t = t.masked_select(t < tokens);
    const torch::Tensor kh = k.index_select(0, t).select(1, hk).to(torch::kFloat64);  // [n, D]
    const torch::Tensor vh = v.index_select(0, t).select(1, hk).to(torch::kFloat64);
    const torch::Tensor qh = q.slice(0, hk * group, (hk + 1) * group).to(torch::kFloat64);
    const torch::Tensor p = torch::softmax(qh.matmul(kh.t()) / std::sqrt(double{kD}), 1);
    out.slice(0, hk * group, (hk + 1) * group).copy_(p.matmul(vh));
  }
  return out;
}

}  // namespace

// The device setup below (seed, bf16 options, device properties, L2 flush, copy bandwidth) is
// turboquant/codebook_attention_cuda_benchmark.cc's too: each benchmark prints its own header and keeps its setup in view.
int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Times CUDA selected-blocks attention against dense attention.");
  absl::ParseCommandLine(argc, argv);
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  torch::NoGradGuard no_grad;
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const int iters = absl::GetFlag(FLAGS_iters);
  const int64_t bs = absl::GetFlag(FLAGS_block_size);
  torch::manual_seed(seed);
  const torch::Device cuda(torch::kCUDA);
  const auto bf16 = torch::dtype(torch::kBFloat16).device(cuda);
  const std::string start_time = kvgate::kernels::NowUtc();

  cudaDeviceProp properties{};
  cudaGetDeviceProperties(&properties, 0);
  const std::string cuda_version = kvgate::kernels::CudaRuntimeVersion();
  const torch::Tensor flush = kvgate::kernels::MakeL2Flush();
  const double copy_gbs = kvgate::kernels::CopyBandwidthGbs(flush);
  std::printf("device: %s (%d SMs), CUDA runtime %s, torch %s, %s\n", properties.name,
              properties.multiProcessorCount, cuda_version.c_str(), TORCH_VERSION,
              absl::GetFlag(FLAGS_host).c_str());
  std::printf("copy bandwidth: %.0f GB/s (1 GiB device-to-device, read + write)\n", copy_gbs);

  absl::StatusOr<gates::SpecRegistry> specs = gates::LoadSpecDir(absl::GetFlag(FLAGS_specs_dir));
  Check(specs.status());
  const gates::RegisteredSpec* spec = gates::FindSpec(*specs, "cuda_selected_attention", 1);
  if (spec == nullptr) Check(absl::NotFoundError("spec cuda_selected_attention v1"));
  std::vector<gates::Record> records;

  std::printf("%8s %9s %-26s %10s %9s %8s %12s\n", "tokens", "fraction", "kernel", "us", "GB/s",
              "% copy", "rel. error");
  for (const std::string& tokens_text : absl::GetFlag(FLAGS_tokens)) {
    const int64_t T = std::stoll(tokens_text);
    const int64_t blocks = (T + bs - 1) / bs;
    const torch::Tensor q = torch::randn({kHeads, kD}, bf16);
    const torch::Tensor k = (torch::randn({T, kKvHeads, kD}, cuda) * 1.5 + 0.3).to(torch::kBFloat16);
    const torch::Tensor v = torch::randn({T, kKvHeads, kD}, bf16);
    const double kv_bytes = 2.0 * 2.0 * T * kKvHeads * kD;

    torch::Tensor dense_out = torch::empty_like(q);
    absl::StatusOr<torch::Tensor> dense_ws = kk::DecodeAttentionCudaWorkspace(q, k, 1);
    Check(dense_ws.status());
    const double ours_dense_ms = kvgate::kernels::MedianCudaMs(
        [&] { Check(kk::DecodeAttentionCudaInto(q, k, v, dense_out, *dense_ws, 0.0, 1)); }, flush,
        iters);
    const torch::Tensor q4 = q.view({1, kHeads, 1, kD});
    const torch::Tensor k4 = k.permute({1, 0, 2}).contiguous().unsqueeze(0);
    const torch::Tensor v4 = v.permute({1, 0, 2}).contiguous().unsqueeze(0);
    torch::Tensor sdpa_out;
    const double sdpa_ms = kvgate::kernels::MedianCudaMs(
        [&] {
          sdpa_out =
              at::scaled_dot_product_attention(q4, k4, v4, {}, 0.0, false, std::nullopt, true);
        },
        flush, iters);
    const double dense_ms = std::min(ours_dense_ms, sdpa_ms);
    std::printf("%8lld %9s %-26s %10.2f %9.0f %7.1f%%\n", static_cast<long long>(T), "1",
                "dense: kernel1", ours_dense_ms * 1e3, kv_bytes / (ours_dense_ms * 1e-3) / 1e9,
                100.0 * kv_bytes / (ours_dense_ms * 1e-3) / 1e9 / copy_gbs);
    std::printf("%8lld %9s %-26s %10.2f %9.0f %7.1f%%\n", static_cast<long long>(T), "1",
                "dense: SDPA", sdpa_ms * 1e3, kv_bytes / (sdpa_ms * 1e-3) / 1e9,
                100.0 * kv_bytes / (sdpa_ms * 1e-3) / 1e9 / copy_gbs);

    for (const std::string& fraction_text : absl::GetFlag(FLAGS_fractions)) {
      const double fraction = std::stod(fraction_text);
      const int64_t n = std::max<int64_t>(1, std::llround(fraction * blocks));
      // Per kv head: n distinct random blocks, ascending.
      torch::Tensor ids = torch::empty({kKvHeads, n}, torch::dtype(torch::kInt32).device(cuda));
      for (int64_t hk = 0; hk < kKvHeads; ++hk) {
        ids[hk].copy_(std::get<0>(torch::randperm(blocks, torch::dtype(torch::kInt64).device(cuda))
                                      .slice(0, 0, n)
                                      .sort()));
      }
      // Tokens actually selected (the last block may be partial), averaged over kv heads.
      const torch::Tensor last = (ids == static_cast<int32_t>(blocks - 1)).sum();
      const double selected_tokens =
          (static_cast<double>(kKvHeads * n * bs) -
           last.item<int64_t>() * static_cast<double>(blocks * bs - T)) /
          kKvHeads;
      const double active = selected_tokens / static_cast<double>(T);
      absl::StatusOr<torch::Tensor> ws = kk::SelectedAttentionCudaWorkspace(q, kKvHeads, n, bs);
      Check(ws.status());
      torch::Tensor out = torch::empty_like(q);
      const auto selected = [&] {
        Check(kk::SelectedAttentionCudaInto(q, k, v, ids, bs, out, *ws));
      };
      selected();
      const torch::Tensor expected = Reference(q, k, v, ids, bs, T);
      const double error = ((out.to(torch::kFloat64) - expected).norm() / expected.norm()).item<double>();
      const double ms = kvgate::kernels::MedianCudaMs(selected, flush, iters);
      const double bytes = active * kv_bytes;
      const double gbs = bytes / (ms * 1e-3) / 1e9;
      std::printf("%8lld %9.4f %-26s %10.2f %9.0f %7.1f%% %12.2e   dense/selected %.2fx (1/f %.1fx)\n",
                  static_cast<long long>(T), active, "selected_attention_kernel2", ms * 1e3, gbs,
                  100.0 * gbs / copy_gbs, error, dense_ms / ms, 1.0 / active);
      gates::Record r;
      r.experiment = "selected_attention_cuda";
      r.variant = absl::StrCat("selected_attention_kernel2:random_blocks:f=", fraction_text,
                               ":b=", bs, ":per_kv_head");
      r.target = {"Qwen2.5-7B-Instruct", absl::StrCat("random:seed=", seed), T, "bfloat16",
                  properties.name};
      r.metrics = {{"dense_attention_ms", dense_ms},
                   {"dense_attention_kernel1_ms", ours_dense_ms},
                   {"sdpa_ms", sdpa_ms},
                   {"selected_attention_ms", ms},
                   {"active_history_fraction", active},
                   {"byte_proportional_ms", active * dense_ms},
                   {"relative_error", error},
                   {"gb_per_s", gbs},
                   {"copy_gb_per_s", copy_gbs},
                   {"share_of_copy_bandwidth", gbs / copy_gbs}};
      r.gate = {spec->spec.id, spec->spec.version, spec->sha256, gates::Verdict::kInvalid, {}};
      const gates::Judgement j = gates::JudgeRow(spec->spec, r);
      r.gate.verdict = j.verdict;
      r.gate.failed = j.failed;
      r.provenance = {absl::GetFlag(FLAGS_git_commit), absl::GetFlag(FLAGS_dirty),
                      "opt --config=cuda", TORCH_VERSION, cuda_version,
                      absl::GetFlag(FLAGS_host), start_time, static_cast<int64_t>(seed)};
      std::printf("    record %s: %s\n", r.variant.c_str(),
                  std::string(gates::VerdictName(j.verdict)).c_str());
      records.push_back(std::move(r));
    }
  }
  if (!absl::GetFlag(FLAGS_records_out).empty()) {
    Check(gates::AppendRecords(absl::GetFlag(FLAGS_records_out), records));
    std::printf("wrote %zu records to %s\n", records.size(),
                absl::GetFlag(FLAGS_records_out).c_str());
  }
  return 0;
}
