// Times the CUDA codebook kernels against dense bf16 baselines in one run on one card (tag `gpu`):
//   logits:    codebook_logits_kernel2 (bf16 out, and float32 out) vs dense bf16 q.K^T, both
//              LibTorch bmm over the cache and dense_logits_kernel1 (the same mma loop on bf16 K)
//   attention: codebook_attention_kernel2 (K and V of the same bits) vs our dense CUDA decode
//              attention (DecodeAttentionCudaInto, kernel1) and LibTorch SDPA
// for the Qwen2.5-7B shape (28 query heads, 4 KV heads, head_dim 128) at each --tokens and --bits.
//
//   tools/gpu_bundle --out dist/codebook //kernels/turboquant:codebook_attention_cuda_benchmark
//   dist/codebook/run codebook_attention_cuda_benchmark --specs_dir=gates/specs \
//       --records_out=codebook_attention_cuda.jsonl --git_commit=$(git rev-parse HEAD) --host=...
//
// Method (device/METHOD.md): CUDA events around each call, L2 flushed before every timed run by
// reading a buffer twice the size of L2, warm-up first, the median of --iters runs. GB/s counts
// bytes read plus written by the kernel; the copy bandwidth is a 1 GiB device-to-device copy
// (read + written) timed the same way. Each codebook result is checked against the CPU path of
// codebook_attention.h before it is timed (relative L2, recorded). --records_out writes one record
// a (bits, tokens) for the logits (gate cuda_codebook_kernels v1) and one for the attention (gate
// fused_codebook_latency v1), judged here from the spec files in --specs_dir.

#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
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
#include "absl/strings/str_format.h"
#include "gates/record.h"
#include "gates/record_io.h"
#include "gates/spec_registry.h"
#include "gates/verdict.h"
#include "kernels/attention/decode_attention_cuda.h"
#include "kernels/common/cuda_timing.h"
#include "kernels/turboquant/codebook_attention.h"
#include "kernels/turboquant/codebook_attention_cuda.h"
#include "kernels/turboquant/turboquant.h"

ABSL_FLAG(std::vector<std::string>, tokens, std::vector<std::string>({"8192", "32768", "131072"}),
          "history lengths, comma separated");
ABSL_FLAG(std::vector<std::string>, bits, std::vector<std::string>({"4", "3", "2"}),
          "turboquant_mse bits of K and V, comma separated");
ABSL_FLAG(int, iters, 100, "timed runs a measurement; the median is reported");
ABSL_FLAG(uint64_t, seed, 1234, "seed of the random inputs and the formats");
ABSL_FLAG(std::string, specs_dir, "gates/specs", "the gate spec files");
ABSL_FLAG(std::string, records_out, "", "append records (gates/record_io) to this file");
ABSL_FLAG(std::string, git_commit, "unknown", "commit of the tree that built this binary");
ABSL_FLAG(bool, dirty, false, "whether that tree had uncommitted changes");
ABSL_FLAG(std::string, host, "unknown", "host name and driver, \"<host> (driver <version>)\"");

namespace {

namespace kk = kvgate::kernels;
namespace gates = kvgate::gates;

constexpr int kHeads = 28, kKvHeads = 4, kD = 128;

double RelativeL2(const torch::Tensor& got, const torch::Tensor& expected) {
  const torch::Tensor g = got.cpu().to(torch::kFloat64), e = expected.cpu().to(torch::kFloat64);
  return ((g - e).norm() / e.norm()).item<double>();
}

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "codebook_attention_cuda_benchmark: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace

// The device setup below (seed, bf16 options, device properties, L2 flush, copy bandwidth) is
// attention/selected_attention_cuda_benchmark.cc's too: each benchmark prints its own header and keeps its setup in view.
int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Times the CUDA codebook kernels against dense bf16 baselines.");
  absl::ParseCommandLine(argc, argv);
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  torch::NoGradGuard no_grad;
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const int iters = absl::GetFlag(FLAGS_iters);
  torch::manual_seed(seed);
  const torch::Device cuda(torch::kCUDA);
  const auto bf16 = torch::dtype(torch::kBFloat16).device(cuda);
  const std::string start_time = kvgate::kernels::NowUtc();

  cudaDeviceProp properties{};
  cudaGetDeviceProperties(&properties, 0);
  const std::string cuda_version = kvgate::kernels::CudaRuntimeVersion();
  const torch::Tensor flush = kvgate::kernels::MakeL2Flush();
  const double copy_gbs = kvgate::kernels::CopyBandwidthGbs(flush);
  std::printf("device: %s (%d SMs, L2 %d MB), CUDA runtime %s, torch %s, %s\n", properties.name,
              properties.multiProcessorCount, properties.l2CacheSize >> 20, cuda_version.c_str(),
              TORCH_VERSION, absl::GetFlag(FLAGS_host).c_str());
  std::printf("copy bandwidth: %.0f GB/s (1 GiB device-to-device, read + write)\n", copy_gbs);

  absl::StatusOr<gates::SpecRegistry> specs = gates::LoadSpecDir(absl::GetFlag(FLAGS_specs_dir));
  Check(specs.status());
  const gates::RegisteredSpec* logits_spec = gates::FindSpec(*specs, "cuda_codebook_kernels", 1);
  const gates::RegisteredSpec* attention_spec = gates::FindSpec(*specs, "fused_codebook_latency", 1);
  if (logits_spec == nullptr || attention_spec == nullptr) {
    Check(absl::NotFoundError("specs cuda_codebook_kernels v1 or fused_codebook_latency v1"));
  }
  std::vector<gates::Record> records;
  auto add_record = [&](const gates::RegisteredSpec& spec, const std::string& variant,
                        int64_t tokens, std::map<std::string, double> metrics) {
    gates::Record r;
    r.experiment = "codebook_attention_cuda";
    r.variant = variant;
    r.target = {"Qwen2.5-7B-Instruct", absl::StrCat("random:seed=", seed), tokens, "bfloat16",
                properties.name};
    r.metrics = std::move(metrics);
    r.gate = {spec.spec.id, spec.spec.version, spec.sha256, gates::Verdict::kInvalid, {}};
    const gates::Judgement j = gates::JudgeRow(spec.spec, r);
    r.gate.verdict = j.verdict;
    r.gate.failed = j.failed;
    r.provenance = {absl::GetFlag(FLAGS_git_commit), absl::GetFlag(FLAGS_dirty), "opt --config=cuda",
                    TORCH_VERSION, cuda_version, absl::GetFlag(FLAGS_host), start_time,
                    static_cast<int64_t>(seed)};
    std::printf("    record %s: %s %s\n", spec.spec.id.c_str(), variant.c_str(),
                std::string(gates::VerdictName(j.verdict)).c_str());
    records.push_back(std::move(r));
  };

  std::printf("%8s %5s %-28s %10s %9s %8s %12s\n", "tokens", "bits", "kernel", "us", "GB/s",
              "% copy", "rel. error");
  auto row = [&](int64_t tokens, const std::string& bits, const std::string& name, double ms,
                 double bytes, double error) {
    const double gbs = bytes / (ms * 1e-3) / 1e9;
    std::printf("%8lld %5s %-28s %10.2f %9.0f %7.1f%% %12.2e\n", static_cast<long long>(tokens),
                bits.c_str(), name.c_str(), ms * 1e3, gbs, 100.0 * gbs / copy_gbs, error);
    return gbs;
  };

  for (const std::string& tokens_text : absl::GetFlag(FLAGS_tokens)) {
    const int64_t T = std::stoll(tokens_text);
    const torch::Tensor q = torch::randn({kHeads, kD}).to(torch::kBFloat16);
    const torch::Tensor qf = q.to(torch::kFloat32), qd = q.to(cuda);
    const torch::Tensor keys = torch::randn({T, kKvHeads, kD}) * 1.5 + 0.3;
    const torch::Tensor values = torch::randn({T, kKvHeads, kD});
    const torch::Tensor kd = keys.to(torch::kBFloat16).to(cuda);
    const torch::Tensor vd = values.to(torch::kBFloat16).to(cuda);
    const double kv_bf16_bytes = 2.0 * T * kKvHeads * kD;  // one of K or V

    // Dense logits: LibTorch bmm over the cache layout (no copy: K^T is a strided view), and
    // dense_logits_kernel1. Output bf16 [28, T] (28 * T * 2 bytes written).
    const torch::Tensor qg = qd.view({kKvHeads, kHeads / kKvHeads, kD});
    const torch::Tensor kt = kd.permute({1, 2, 0});  // [4, 128, T]
    torch::Tensor bmm_out = torch::empty({kKvHeads, kHeads / kKvHeads, T}, bf16);
    torch::Tensor dense_logits = torch::empty({kHeads, T}, bf16);
    const auto bmm = [&] { at::bmm_out(bmm_out, qg, kt); };
    const auto dense_kernel = [&] { Check(kk::DenseLogitsCudaInto(qd, kd, dense_logits)); };
    bmm();
    dense_kernel();
    const double dense_check = RelativeL2(dense_logits, bmm_out.reshape({kHeads, T}).to(torch::kFloat32));
    const double logits_out_bytes = 2.0 * kHeads * T;
    const double bmm_ms = kvgate::kernels::MedianCudaMs(bmm, flush, iters);
    const double dense_kernel_ms = kvgate::kernels::MedianCudaMs(dense_kernel, flush, iters);
    const double dense_logits_ms = std::min(bmm_ms, dense_kernel_ms);
    row(T, "bf16", "dense logits: bmm", bmm_ms, kv_bf16_bytes + logits_out_bytes, 0);
    row(T, "bf16", "dense_logits_kernel1", dense_kernel_ms, kv_bf16_bytes + logits_out_bytes,
        dense_check);

    // Dense attention: ours (kernel1) and SDPA.
    torch::Tensor dense_out = torch::empty_like(qd);
    absl::StatusOr<torch::Tensor> dense_ws = kk::DecodeAttentionCudaWorkspace(qd, kd, 1);
    Check(dense_ws.status());
    const auto dense_attention = [&] {
      Check(kk::DecodeAttentionCudaInto(qd, kd, vd, dense_out, *dense_ws, 0.0, 1));
    };
    const torch::Tensor q4 = qd.view({1, kHeads, 1, kD});
    const torch::Tensor k4 = kd.permute({1, 0, 2}).contiguous().unsqueeze(0);
    const torch::Tensor v4 = vd.permute({1, 0, 2}).contiguous().unsqueeze(0);
    torch::Tensor sdpa_out;
    const auto sdpa = [&] {
      sdpa_out = at::scaled_dot_product_attention(q4, k4, v4, {}, 0.0, false, std::nullopt, true);
    };
    const double ours_dense_ms = kvgate::kernels::MedianCudaMs(dense_attention, flush, iters);
    const double sdpa_ms = kvgate::kernels::MedianCudaMs(sdpa, flush, iters);
    const double dense_attention_ms = std::min(ours_dense_ms, sdpa_ms);
    row(T, "bf16", "dense attention: kernel1", ours_dense_ms, 2 * kv_bf16_bytes, 0);
    row(T, "bf16", "dense attention: SDPA", sdpa_ms, 2 * kv_bf16_bytes, 0);

    for (const std::string& bits_text : absl::GetFlag(FLAGS_bits)) {
      kk::TurboQuantOptions options;
      options.bits = std::stoi(bits_text);
      options.seed = seed;
      absl::StatusOr<kk::TurboQuant> kq = kk::TurboQuant::Make(options, kD);
      options.seed = seed + 1;
      absl::StatusOr<kk::TurboQuant> vq = kk::TurboQuant::Make(options, kD);
      Check(kq.status());
      Check(vq.status());
      absl::StatusOr<kk::TurboQuantTensor> k = kq->Encode(keys);
      absl::StatusOr<kk::TurboQuantTensor> v = vq->Encode(values);
      Check(k.status());
      Check(v.status());
      absl::StatusOr<kk::CodebookCudaFormat> kf = kk::CodebookCudaFormat::Make(*kq, cuda);
      absl::StatusOr<kk::CodebookCudaFormat> vf = kk::CodebookCudaFormat::Make(*vq, cuda);
      absl::StatusOr<kk::TurboQuantTensor> kc = kk::TurboQuantTensorToCuda(*k, cuda);
      absl::StatusOr<kk::TurboQuantTensor> vc = kk::TurboQuantTensorToCuda(*v, cuda);
      Check(kf.status());
      Check(vf.status());
      Check(kc.status());
      Check(vc.status());
      absl::StatusOr<torch::Tensor> ws = kk::CodebookCudaWorkspace(qd, kKvHeads, T);
      Check(ws.status());
      const double code_bytes = static_cast<double>(kq->Bytes(T, kKvHeads));

      // Logits, checked against the CPU fused path on the same codes.
      absl::StatusOr<torch::Tensor> cpu_logits = kk::CodebookLogits(qf, *kq, *k);
      Check(cpu_logits.status());
      torch::Tensor logits = torch::empty({kHeads, T}, bf16);
      torch::Tensor logits_f32 = torch::empty({kHeads, T}, torch::dtype(torch::kFloat32).device(cuda));
      const auto codebook = [&] { Check(kk::CodebookLogitsCudaInto(qd, *kf, *kc, logits, *ws)); };
      const auto codebook_f32 = [&] {
        Check(kk::CodebookLogitsCudaInto(qd, *kf, *kc, logits_f32, *ws));
      };
      codebook();
      codebook_f32();
      const double logits_error = RelativeL2(logits_f32, *cpu_logits);
      const double logits_error_bf16 = RelativeL2(logits.to(torch::kFloat32), *cpu_logits);
      const double codebook_ms = kvgate::kernels::MedianCudaMs(codebook, flush, iters);
      const double codebook_f32_ms = kvgate::kernels::MedianCudaMs(codebook_f32, flush, iters);
      const double gbs = row(T, bits_text, "codebook_logits_kernel2", codebook_ms,
                             code_bytes + logits_out_bytes, logits_error_bf16);
      row(T, bits_text, "codebook_logits_kernel2 f32", codebook_f32_ms,
          code_bytes + 2 * logits_out_bytes, logits_error);
      std::printf("    logits speedup vs dense bf16 (faster of bmm and kernel): %.2fx\n",
                  dense_logits_ms / codebook_ms);
      add_record(*logits_spec, absl::StrCat("codebook_logits_kernel2:", kq->name()), T,
                 {{"dense_logits_ms", dense_logits_ms},
                  {"dense_logits_bmm_ms", bmm_ms},
                  {"dense_logits_kernel_ms", dense_kernel_ms},
                  {"codebook_logits_ms", codebook_ms},
                  {"codebook_logits_f32_out_ms", codebook_f32_ms},
                  {"logits_relative_error", logits_error_bf16},
                  {"logits_relative_error_f32_out", logits_error},
                  {"kv_ratio", code_bytes / kv_bf16_bytes},
                  {"gb_per_s", gbs},
                  {"copy_gb_per_s", copy_gbs},
                  {"share_of_copy_bandwidth", gbs / copy_gbs}});

      // Fused attention, checked against the CPU fused path on the same codes.
      const float scale = 1.0f / std::sqrt(static_cast<float>(kD));
      absl::StatusOr<torch::Tensor> cpu_out = kk::CodebookAttention(qf, *kq, *k, *vq, *v, scale);
      Check(cpu_out.status());
      torch::Tensor out = torch::empty_like(qd);
      const auto fused = [&] {
        Check(kk::CodebookAttentionCudaInto(qd, *kf, *kc, *vf, *vc, out, *ws));
      };
      fused();
      const double attention_error = RelativeL2(out.to(torch::kFloat32), *cpu_out);
      const double fused_ms = kvgate::kernels::MedianCudaMs(fused, flush, iters);
      const double both = code_bytes + static_cast<double>(vq->Bytes(T, kKvHeads));
      const double fused_gbs =
          row(T, bits_text, "codebook_attention_kernel2", fused_ms, both, attention_error);
      std::printf("    attention speedup vs dense (faster of kernel1 and SDPA): %.2fx\n",
                  dense_attention_ms / fused_ms);
      add_record(*attention_spec, absl::StrCat("codebook_attention_kernel2:", kq->name()), T,
                 {{"dense_attention_ms", dense_attention_ms},
                  {"dense_attention_kernel1_ms", ours_dense_ms},
                  {"sdpa_ms", sdpa_ms},
                  {"compressed_attention_ms", fused_ms},
                  {"relative_error", attention_error},
                  {"kv_ratio", both / (2 * kv_bf16_bytes)},
                  {"gb_per_s", fused_gbs},
                  {"copy_gb_per_s", copy_gbs},
                  {"share_of_copy_bandwidth", fused_gbs / copy_gbs}});
    }
  }
  if (!absl::GetFlag(FLAGS_records_out).empty()) {
    Check(gates::AppendRecords(absl::GetFlag(FLAGS_records_out), records));
    std::printf("wrote %zu records to %s\n", records.size(),
                absl::GetFlag(FLAGS_records_out).c_str());
  }
  return 0;
}
