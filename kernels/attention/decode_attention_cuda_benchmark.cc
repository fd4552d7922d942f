// Times the CUDA decode attention against LibTorch's scaled_dot_product_attention and against the
// card's measured copy bandwidth, all in one run on one card (tag `gpu`).
//
//   tools/gpu_bundle --out dist/gpu_bundle //kernels/attention:decode_attention_cuda_benchmark
//   dist/gpu_bundle/run decode_attention_cuda_benchmark --tokens=8192,32768,131072 --out=x.jsonl
//
// Method (device/METHOD.md): CUDA events around each call, L2 flushed before every timed run by
// reading a buffer twice the size of L2, warm-up first, the median of --iters runs. Bandwidth
// counts the K and V bytes a step must read; the copy bandwidth counts bytes read plus written of a
// 1 GiB device-to-device copy. Prints a table; --out appends one JSON object a shape.

#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "kernels/attention/decode_attention_cuda.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::vector<std::string>, tokens, std::vector<std::string>({"8192", "32768", "131072"}),
          "history lengths to time, comma separated");
ABSL_FLAG(int, heads, 28, "query heads (Qwen2.5-7B: 28)");
ABSL_FLAG(int, kv_heads, 4, "key/value heads (Qwen2.5-7B: 4)");
ABSL_FLAG(int, head_dim, 128, "head dimension (64 or 128)");
ABSL_FLAG(int, iters, 100, "timed runs per variant; the median is reported");
ABSL_FLAG(uint64_t, seed, 1234, "seed of the random inputs");
ABSL_FLAG(std::string, out, "", "append one JSON line per shape to this file");

namespace {

using Fn = std::function<void()>;

// Median milliseconds of fn over iters runs, each after an L2 flush. The flush reads a buffer
// twice the size of L2: a flush by writing would leave L2 full of dirty lines whose write-back the
// timed kernel would pay for.
double MedianMs(const Fn& fn, torch::Tensor& flush, int iters) {
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < 3; ++i) fn();  // warm-up
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    (void)flush.sum();
    cudaEventRecord(start, stream);
    fn();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "decode_attention_cuda_benchmark: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Times CUDA decode attention against LibTorch SDPA and the copy bandwidth, on one GPU.");
  absl::ParseCommandLine(argc, argv);
  if (!torch::cuda::is_available()) return Fail("no CUDA device");
  torch::NoGradGuard no_grad;
  torch::manual_seed(absl::GetFlag(FLAGS_seed));
  const int heads = absl::GetFlag(FLAGS_heads), kv_heads = absl::GetFlag(FLAGS_kv_heads);
  const int head_dim = absl::GetFlag(FLAGS_head_dim), iters = absl::GetFlag(FLAGS_iters);
  const auto bf16 = torch::dtype(torch::kBFloat16).device(torch::kCUDA);

  cudaDeviceProp properties{};
  cudaGetDeviceProperties(&properties, 0);
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  torch::Tensor flush =
      torch::empty({2 * static_cast<int64_t>(properties.l2CacheSize) + (64 << 20)},
                   torch::dtype(torch::kUInt8).device(torch::kCUDA));

  // Copy bandwidth: bytes read plus written.
  const int64_t copy_bytes = 1LL << 30;
  torch::Tensor src = torch::empty({copy_bytes}, torch::dtype(torch::kUInt8).device(torch::kCUDA));
  torch::Tensor dst = torch::empty_like(src);
  src.fill_(7);
  const double copy_ms = MedianMs([&] { dst.copy_(src); }, flush, 20);
  const double copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e9;
  src = torch::Tensor();
  dst = torch::Tensor();

  std::printf("device: %s, %d SMs, L2 %d MB, driver %d, runtime %d, torch %s\n", properties.name,
              properties.multiProcessorCount, properties.l2CacheSize >> 20, driver, runtime,
              TORCH_VERSION);
  std::printf("copy bandwidth: %.0f GB/s (1 GiB device-to-device, read + write)\n", copy_gbs);
  std::printf("%8s %8s %10s %9s %7s %10s %10s\n", "tokens", "variant", "us", "GB/s", "% copy",
              "sdpa us", "sdpa/ours");

  std::ofstream out_file;
  if (!absl::GetFlag(FLAGS_out).empty()) {
    out_file.open(absl::GetFlag(FLAGS_out), std::ios::app);
    if (!out_file) return Fail("cannot open --out " + absl::GetFlag(FLAGS_out));
  }
  for (const std::string& tokens_text : absl::GetFlag(FLAGS_tokens)) {
    const int64_t tokens = std::stoll(tokens_text);
    const torch::Tensor q = torch::randn({heads, head_dim}, bf16);
    const torch::Tensor k = torch::randn({tokens, kv_heads, head_dim}, bf16);
    const torch::Tensor v = torch::randn({tokens, kv_heads, head_dim}, bf16);
    // SDPA in its own preferred layout [B, H, T, D], made before timing.
    const torch::Tensor q4 = q.view({1, heads, 1, head_dim});
    const torch::Tensor k4 = k.permute({1, 0, 2}).contiguous().unsqueeze(0);
    const torch::Tensor v4 = v.permute({1, 0, 2}).contiguous().unsqueeze(0);
    torch::Tensor sdpa_out;
    const auto sdpa = [&] {
      sdpa_out = at::scaled_dot_product_attention(q4, k4, v4, {}, 0.0, false, std::nullopt,
                                                  /*enable_gqa=*/true);
    };
    sdpa();
    const torch::Tensor reference = sdpa_out.view({heads, head_dim}).to(torch::kFloat32);
    const double sdpa_ms = MedianMs(sdpa, flush, iters);
    const double bytes = 2.0 * tokens * kv_heads * head_dim * 2;

    for (int kernel : {1, 2, 3}) {
      if (kernel == 3 && head_dim != 128) continue;
      torch::Tensor out = torch::empty_like(q);
      absl::StatusOr<torch::Tensor> workspace =
          kvgate::kernels::DecodeAttentionCudaWorkspace(q, k, kernel);
      if (!workspace.ok()) return Fail(workspace.status().ToString());
      const auto ours = [&] {
        absl::Status s =
            kvgate::kernels::DecodeAttentionCudaInto(q, k, v, out, *workspace, 0.0, kernel);
        if (!s.ok()) std::abort();
      };
      ours();
      const double difference =
          ((out.to(torch::kFloat32) - reference).norm() / reference.norm()).item<double>();
      const double ms = MedianMs(ours, flush, iters);
      const double gbs = bytes / (ms * 1e-3) / 1e9;
      std::printf("%8lld %8s %10.2f %9.0f %6.1f%% %10.2f %9.2fx   |ours-sdpa|/|sdpa| = %.1e\n",
                  static_cast<long long>(tokens), ("kernel" + std::to_string(kernel)).c_str(),
                  ms * 1e3, gbs, 100.0 * gbs / copy_gbs, sdpa_ms * 1e3, sdpa_ms / ms, difference);
      if (out_file) {
        nlohmann::json row = {
            {"experiment", "decode_attention_cuda"},
            {"variant", "decode_attention_kernel" + std::to_string(kernel)},
            {"device", properties.name},
            {"driver", driver},
            {"cuda_runtime", runtime},
            {"torch", TORCH_VERSION},
            {"shape",
             {{"heads", heads},
              {"kv_heads", kv_heads},
              {"head_dim", head_dim},
              {"tokens", tokens},
              {"dtype", "bfloat16"}}},
            {"metrics",
             {{"ms", ms},
              {"sdpa_ms", sdpa_ms},
              {"gb_per_s", gbs},
              {"copy_gb_per_s", copy_gbs},
              {"share_of_copy_bandwidth", gbs / copy_gbs},
              {"sdpa_over_ours", sdpa_ms / ms},
              {"relative_difference_to_sdpa", difference}}},
            {"method",
             {{"timer", "cuda events"},
              {"statistic", "median"},
              {"iters", iters},
              {"l2_flush", "read 2x L2"}}},
        };
        out_file << row.dump() << "\n";
      }
    }
  }
  return 0;
}
