// Times the CUDA decode attention kernels (dense bf16 variants and int4 symmetric/affine straight
// from packed blocks) against LibTorch's scaled_dot_product_attention, a device-to-device copy of
// the same K/V bytes and the card's copy bandwidth, all in one run on one card (tag `gpu`).
//
//   tools/gpu_bundle --out dist/gpu_bundle //kernels/attention:decode_attention_cuda_benchmark
//   dist/gpu_bundle/run decode_attention_cuda_benchmark --tokens=8192,32768,131072
//       --records=reports/records/cuda_attention_kernels.jsonl   (one command line)
//
// Method (device/METHOD.md): CUDA events around each call, L2 flushed before every timed run by
// reading a buffer twice the size of L2 (a write flush would leave dirty lines for the timed
// kernel to write back), warm-up first, the median of --iters runs. Every kernel's output is first
// checked against a float32 reference of the same inputs computed by LibTorch on the GPU (for
// int4: over the dequantized blocks). Bandwidth counts the bytes a step must read (bf16 K and V, or
// the int4 codes, scales and zeros); the copy bandwidth counts bytes read plus written of a 1 GiB
// device-to-device copy. Prints a table; --records appends gated rows (gates/specs
// cuda_dense_attention_bandwidth and cuda_int4_attention_speedup) for contexts of at least
// --record_min_tokens, the goals' range; shorter contexts are printed only.

#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
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
#include "kernels/common/cuda_timing.h"
#include "kernels/int4/int4.h"
#include "kernels/int4/int4_attention_cuda.h"
#include "kernels/int4/int4_cuda.h"

ABSL_FLAG(std::vector<std::string>, tokens, std::vector<std::string>({"8192", "32768", "131072"}),
          "history lengths to time, comma separated");
ABSL_FLAG(std::vector<std::string>, dense_kernels, std::vector<std::string>({"1", "3", "4"}),
          "dense kernel variants to time (decode_attention_launch.h)");
ABSL_FLAG(std::vector<std::string>, int4_kernels, std::vector<std::string>({"1", "2"}),
          "int4 kernel variants to time (kernels/int4/int4_attention_launch.h)");
ABSL_FLAG(int, heads, 28, "query heads (Qwen2.5-7B: 28)");
ABSL_FLAG(int, kv_heads, 4, "key/value heads (Qwen2.5-7B: 4)");
ABSL_FLAG(int, head_dim, 128, "head dimension (64 or 128)");
ABSL_FLAG(int, iters, 100, "timed runs per variant; the median is reported");
ABSL_FLAG(uint64_t, seed, 1234, "seed of the random inputs");
ABSL_FLAG(std::string, records, "", "append gated records to this JSONL file");
ABSL_FLAG(int64_t, record_min_tokens, 32768, "contexts below this are printed, not recorded");
ABSL_FLAG(std::string, specs_dir, "gates/specs", "the registered gate specs");
ABSL_FLAG(std::string, model, "Qwen2.5-7B-Instruct", "the model whose attention shape this is");

namespace {

namespace gates = kvgate::gates;
namespace k = kvgate::kernels;
using Fn = std::function<void()>;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "decode_attention_cuda_benchmark: %s\n", what.c_str());
  std::exit(1);
}

// softmax(q k^T / sqrt(D)) v in float32 on the GPU, query head h reading kv head h / group.
torch::Tensor Reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t group = q.size(0) / k.size(1);
  const torch::Tensor qf = q.to(torch::kFloat32);
  torch::Tensor out = torch::empty_like(qf);
  for (int64_t h = 0; h < k.size(1); ++h) {  // one kv head at a time keeps memory small
    const torch::Tensor kh = k.select(1, h).to(torch::kFloat32);  // [T, D]
    const torch::Tensor vh = v.select(1, h).to(torch::kFloat32);
    const torch::Tensor qh = qf.narrow(0, h * group, group);      // [G, D]
    const torch::Tensor p =
        torch::softmax(torch::matmul(qh, kh.t()) / std::sqrt(static_cast<double>(q.size(1))), 1);
    out.narrow(0, h * group, group).copy_(torch::matmul(p, vh));
  }
  return out;
}

double RelativeL2(const torch::Tensor& got, const torch::Tensor& expected) {
  return ((got.to(torch::kFloat32) - expected).norm() / expected.norm()).item<double>();
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

gates::Provenance RunProvenance(int64_t seed, int runtime) {
  gates::Provenance p;
  p.git_commit = Env("KVGATE_GIT_COMMIT").empty() ? "unknown" : Env("KVGATE_GIT_COMMIT");
  p.dirty = Env("KVGATE_GIT_DIRTY") == "1";
  p.build_config = "opt --config=cuda";
  p.torch_version = TORCH_VERSION;
  p.cuda_version = absl::StrCat(runtime / 1000, ".", (runtime % 1000) / 10);
  std::array<char, 256> host{};
  const std::string hostname = gethostname(host.data(), host.size() - 1) == 0 ? host.data() : "unknown";
  p.host = Env("KVGATE_DRIVER").empty()
               ? hostname
               : absl::StrCat(hostname, " (driver ", Env("KVGATE_DRIVER"), ")");
  p.start_time = k::NowUtc();
  p.seed = seed;
  return p;
}

struct Timed {
  std::string variant;
  double ms = 0;
  double bytes = 0;
  double relative_l2 = 0;
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Times CUDA decode attention (dense and int4) against LibTorch SDPA and the copy bandwidth.");
  absl::ParseCommandLine(argc, argv);
  if (!torch::cuda::is_available()) Fail("no CUDA device");
  torch::NoGradGuard no_grad;
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  torch::manual_seed(seed);
  const int heads = absl::GetFlag(FLAGS_heads), kv_heads = absl::GetFlag(FLAGS_kv_heads);
  const int head_dim = absl::GetFlag(FLAGS_head_dim), iters = absl::GetFlag(FLAGS_iters);
  const torch::Device cuda(torch::kCUDA);
  const auto bf16 = torch::dtype(torch::kBFloat16).device(cuda);

  cudaDeviceProp properties{};
  cudaGetDeviceProperties(&properties, 0);
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  const torch::Tensor flush = kvgate::kernels::MakeL2Flush();
  const double copy_gbs = kvgate::kernels::CopyBandwidthGbs(flush);
  std::printf("device: %s, %d SMs, L2 %d MB, driver API %d, runtime %d, torch %s\n",
              properties.name, properties.multiProcessorCount, properties.l2CacheSize >> 20,
              driver, runtime, TORCH_VERSION);
  std::printf("copy bandwidth: %.0f GB/s (1 GiB device-to-device, read + write)\n", copy_gbs);

  const std::string records_path = absl::GetFlag(FLAGS_records);
  absl::StatusOr<gates::SpecRegistry> specs;
  const gates::RegisteredSpec* dense_spec = nullptr;
  const gates::RegisteredSpec* int4_spec = nullptr;
  if (!records_path.empty()) {
    specs = gates::LoadSpecDir(absl::GetFlag(FLAGS_specs_dir));
    if (!specs.ok()) Fail(specs.status().ToString());
    dense_spec = gates::LatestSpec(*specs, "cuda_dense_attention_bandwidth");
    int4_spec = gates::LatestSpec(*specs, "cuda_int4_attention_speedup");
    if (dense_spec == nullptr || int4_spec == nullptr) Fail("gate specs not found");
  }
  const gates::Provenance provenance = RunProvenance(static_cast<int64_t>(seed), runtime);
  std::vector<gates::Record> rows;

  std::printf("\n%8s %-34s %10s %9s %8s %10s %10s\n", "tokens", "variant", "us", "GB/s",
              "% copy", "rel. L2", "vs dense");
  for (const std::string& tokens_text : absl::GetFlag(FLAGS_tokens)) {
    const int64_t tokens = std::stoll(tokens_text);
    const torch::Tensor q = torch::randn({heads, head_dim}, bf16);
    const torch::Tensor kk = (torch::randn({tokens, kv_heads, head_dim}, bf16) * 1.5 + 0.3)
                                 .to(torch::kBFloat16);
    const torch::Tensor v = torch::randn({tokens, kv_heads, head_dim}, bf16);
    const double dense_bytes = 2.0 * tokens * kv_heads * head_dim * 2;
    const torch::Tensor expected = Reference(q, kk, v);
    std::vector<Timed> timed;

    // A device-to-device copy of the same K/V bytes (read + write is twice them).
    {
      torch::Tensor src = torch::cat({kk.flatten(), v.flatten()});
      torch::Tensor dst = torch::empty_like(src);
      timed.push_back({"copy_same_bytes", k::MedianCudaMs([&] { dst.copy_(src); }, flush, iters),
                       dense_bytes, 0.0});
    }
    // SDPA in its own preferred layout [B, H, T, D], made before timing.
    {
      const torch::Tensor q4 = q.view({1, heads, 1, head_dim});
      const torch::Tensor k4 = kk.permute({1, 0, 2}).contiguous().unsqueeze(0);
      const torch::Tensor v4 = v.permute({1, 0, 2}).contiguous().unsqueeze(0);
      torch::Tensor sdpa_out;
      const auto sdpa = [&] {
        sdpa_out = at::scaled_dot_product_attention(q4, k4, v4, {}, 0.0, false, std::nullopt,
                                                    /*enable_gqa=*/true);
      };
      sdpa();
      const double difference = RelativeL2(sdpa_out.view({heads, head_dim}), expected);
      timed.push_back({"libtorch_sdpa", k::MedianCudaMs(sdpa, flush, iters), dense_bytes, difference});
    }
    for (const std::string& kernel_text : absl::GetFlag(FLAGS_dense_kernels)) {
      const int kernel = std::stoi(kernel_text);
      torch::Tensor out = torch::full_like(q, std::numeric_limits<float>::quiet_NaN());
      absl::StatusOr<torch::Tensor> workspace = k::DecodeAttentionCudaWorkspace(q, kk, kernel);
      if (!workspace.ok()) Fail(workspace.status().ToString());
      const auto ours = [&] {
        absl::Status s = k::DecodeAttentionCudaInto(q, kk, v, out, *workspace, 0.0, kernel);
        if (!s.ok()) Fail(s.ToString());
      };
      ours();
      const double difference = RelativeL2(out, expected);
      timed.push_back({absl::StrCat("decode_attention_kernel", kernel),
                       k::MedianCudaMs(ours, flush, iters), dense_bytes, difference});
    }
    // The fastest dense kernel of this run is "our dense" for the int4 speedup.
    const Timed* best_dense = nullptr;
    for (const Timed& t : timed) {
      if (t.variant.rfind("decode_attention_kernel", 0) == 0 &&
          (best_dense == nullptr || t.ms < best_dense->ms)) {
        best_dense = &t;
      }
    }
    const Timed dense = best_dense != nullptr ? *best_dense : Timed{};
    const torch::Tensor k_cpu = kk.to(torch::kFloat32).cpu(), v_cpu = v.to(torch::kFloat32).cpu();
    for (k::Int4Scheme scheme : {k::Int4Scheme::kSymmetric, k::Int4Scheme::kAffine}) {
      absl::StatusOr<k::Int4Tensor> kq = k::QuantizeInt4(k_cpu, scheme);
      absl::StatusOr<k::Int4Tensor> vq = k::QuantizeInt4(v_cpu, scheme);
      if (!kq.ok() || !vq.ok()) Fail("quantize failed");
      const k::Int4Tensor kd = k::Int4TensorTo(*kq, cuda), vd = k::Int4TensorTo(*vq, cuda);
      absl::StatusOr<torch::Tensor> k_hat = k::DequantizeInt4Cuda(kd);
      absl::StatusOr<torch::Tensor> v_hat = k::DequantizeInt4Cuda(vd);
      if (!k_hat.ok() || !v_hat.ok()) Fail("dequantize failed");
      const torch::Tensor int4_expected = Reference(q, *k_hat, *v_hat);
      k_hat = torch::Tensor();
      v_hat = torch::Tensor();
      for (const std::string& kernel_text : absl::GetFlag(FLAGS_int4_kernels)) {
        const int kernel = std::stoi(kernel_text);
        torch::Tensor out = torch::full_like(q, std::numeric_limits<float>::quiet_NaN());
        absl::StatusOr<torch::Tensor> workspace =
            k::Int4DecodeAttentionCudaWorkspace(q, tokens, kv_heads, kernel);
        if (!workspace.ok()) Fail(workspace.status().ToString());
        const auto ours = [&] {
          absl::Status s = k::Int4DecodeAttentionCudaInto(q, kd, vd, out, *workspace, 0.0, kernel);
          if (!s.ok()) Fail(s.ToString());
        };
        ours();
        const double difference = RelativeL2(out, int4_expected);
        timed.push_back({absl::StrCat(std::string(k::Int4SchemeName(scheme)),
                                      ":block=32:int4_kernel", kernel),
                         k::MedianCudaMs(ours, flush, iters),
                         static_cast<double>(kq->bytes() + vq->bytes()), difference});
      }
    }

    const double sdpa_ms = timed[1].ms;
    for (const Timed& t : timed) {
      const double gbs = t.bytes / (t.ms * 1e-3) / 1e9 * (t.variant == "copy_same_bytes" ? 2 : 1);
      std::printf("%8lld %-34s %10.2f %9.0f %7.1f%% %10.1e %9.2fx\n",
                  static_cast<long long>(tokens), t.variant.c_str(), t.ms * 1e3, gbs,
                  100.0 * gbs / copy_gbs, t.relative_l2, dense.ms / t.ms);
    }
    if (records_path.empty() || tokens < absl::GetFlag(FLAGS_record_min_tokens)) continue;
    const double copy_same_ms = timed[0].ms;
    for (const Timed& t : timed) {
      const bool is_dense = t.variant.rfind("decode_attention_kernel", 0) == 0;
      const bool is_int4 = t.variant.find("_int4:") != std::string::npos;
      if (!is_dense && !is_int4) continue;
      gates::Record row;
      row.experiment = "cuda_attention_kernels";
      row.variant = is_dense ? t.variant : absl::StrCat(t.variant, ":vs=", dense.variant);
      row.target = {absl::GetFlag(FLAGS_model), absl::StrCat("random:seed=", seed), tokens,
                    "bfloat16", properties.name};
      row.step = std::nullopt;
      const double gbs = t.bytes / (t.ms * 1e-3) / 1e9;
      row.metrics = {{"kv_bytes", t.bytes},
                     {"gb_per_s", gbs},
                     {"copy_gb_per_s", copy_gbs},
                     {"share_of_copy_bandwidth", gbs / copy_gbs},
                     {"copy_same_bytes_ms", copy_same_ms},
                     {"sdpa_attention_ms", sdpa_ms},
                     {"relative_l2_to_reference", t.relative_l2},
                     {"heads", heads},
                     {"kv_heads", kv_heads},
                     {"head_dim", head_dim},
                     {"iters", iters}};
      if (is_dense) {
        row.metrics["dense_attention_ms"] = t.ms;
        row.metrics["sdpa_over_ours"] = sdpa_ms / t.ms;
      } else {
        row.metrics["dense_attention_ms"] = dense.ms;
        row.metrics["compressed_attention_ms"] = t.ms;
        row.metrics["speedup_over_dense"] = dense.ms / t.ms;
        row.metrics["kv_ratio"] = t.bytes / dense_bytes;  // bytes_vs_bf16 (RECORDS.md)
      }
      const gates::RegisteredSpec* spec = is_dense ? dense_spec : int4_spec;
      row.provenance = provenance;
      row.gate = {spec->spec.id, spec->spec.version, spec->sha256};
      const gates::Judgement judgement = gates::JudgeRow(spec->spec, row);
      row.gate.verdict = judgement.verdict;
      row.gate.failed = judgement.failed;
      rows.push_back(row);
    }
  }
  if (!records_path.empty()) {
    if (absl::Status s = gates::AppendRecords(records_path, rows); !s.ok()) Fail(s.ToString());
    std::printf("\nappended %zu records to %s\n", rows.size(), records_path.c_str());
  }
  return 0;
}
