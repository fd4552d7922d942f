// The int4 KV format's CUDA path for LibTorch tensors: an Int4Tensor on a CUDA device in, float32
// values out, computed by the kernels of int4.cu (see int4_launch.h for the variants).
//
// Usage:
//   Int4Tensor q = *QuantizeInt4(x, Int4Scheme::kAffine);        // on the CPU
//   Int4Tensor on_gpu = Int4TensorTo(q, torch::Device(torch::kCUDA));
//   absl::StatusOr<torch::Tensor> values = DequantizeInt4Cuda(on_gpu);

#ifndef KVGATE_KERNELS_INT4_INT4_CUDA_H_
#define KVGATE_KERNELS_INT4_INT4_CUDA_H_

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/int4/int4.h"

namespace kvgate::kernels {

// A copy of q whose tensors live on device.
Int4Tensor Int4TensorTo(const Int4Tensor& q, const torch::Device& device);

// Dequantizes q (on a CUDA device) into out: float32, contiguous, q's shape, on q's device.
// InvalidArgument on a mismatch; Internal when the launch fails.
absl::Status DequantizeInt4CudaInto(const Int4Tensor& q, torch::Tensor& out);

// As above, into a new tensor.
absl::StatusOr<torch::Tensor> DequantizeInt4Cuda(const Int4Tensor& q);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_INT4_INT4_CUDA_H_
