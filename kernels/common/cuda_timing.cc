#include "kernels/common/cuda_timing.h"

#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <ctime>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kvgate::kernels {

torch::Tensor MakeL2Flush() {
  cudaDeviceProp properties{};
  cudaGetDeviceProperties(&properties, at::cuda::current_device());
  return torch::ones({2 * static_cast<int64_t>(properties.l2CacheSize) + (64 << 20)},
                     torch::dtype(torch::kUInt8).device(torch::kCUDA));
}

double MedianCudaMs(const std::function<void()>& fn, const torch::Tensor& flush, int iters,
                    int warmup) {
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < std::max(iters, 1); ++i) {
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

double CopyBandwidthGbs(const torch::Tensor& flush) {
  const int64_t bytes = int64_t{1} << 30;
  const torch::Tensor src =
      torch::full({bytes}, 7, torch::dtype(torch::kUInt8).device(flush.device()));
  torch::Tensor dst = torch::empty_like(src);
  const double ms = MedianCudaMs([&] { dst.copy_(src); }, flush, 20);
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
}

std::string CudaRuntimeVersion() {
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  return absl::StrCat(runtime / 1000, ".", (runtime % 1000) / 10);
}

std::string NowUtc() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

}  // namespace kvgate::kernels
