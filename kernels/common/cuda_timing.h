// CUDA-event timing shared by the kernel benchmarks: the L2 flush, the median of timed runs, and
// the device-to-device copy bandwidth every share-of-bandwidth figure is quoted against.
//
// Usage (on a CUDA device):
//   const torch::Tensor flush = MakeL2Flush();
//   const double copy_gbs = CopyBandwidthGbs(flush);
//   const double ms = MedianCudaMs([&] { kernel(); }, flush, /*iters=*/100);

#ifndef KVGATE_KERNELS_COMMON_CUDA_TIMING_H_
#define KVGATE_KERNELS_COMMON_CUDA_TIMING_H_

#include <torch/types.h>

#include <functional>
#include <string>

namespace kvgate::kernels {

// A uint8 buffer of twice the L2 size plus 64 MiB on the current device. Reading it evicts what a
// timed kernel would otherwise find in L2; writing would leave dirty lines to drain into the next
// timed run, so MedianCudaMs reads it (a sum).
torch::Tensor MakeL2Flush();

// Median milliseconds of fn over `iters` runs on the current stream, timed with CUDA events, each
// run preceded by reading `flush`, after `warmup` untimed runs.
double MedianCudaMs(const std::function<void()>& fn, const torch::Tensor& flush, int iters,
                    int warmup = 3);

// Device-to-device copy bandwidth of a 1 GiB buffer in GB/s, counting bytes read plus written
// (median of 20 copies, L2 flushed before each).
double CopyBandwidthGbs(const torch::Tensor& flush);

// "13.0": the CUDA runtime's version.
std::string CudaRuntimeVersion();

// The current time as RFC 3339 UTC ("2026-11-27T22:38:28Z"), a record's provenance.start_time.
std::string NowUtc();

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_COMMON_CUDA_TIMING_H_
