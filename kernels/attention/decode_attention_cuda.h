// Dense decode attention on CUDA for LibTorch tensors: the kernels of decode_attention.cu (see
// decode_attention_launch.h for the variants) behind a tensor interface.
//
// Usage:
//   // q [heads, D], k and v [tokens, kv_heads, D], all bf16 on one CUDA device
//   absl::StatusOr<torch::Tensor> out = DecodeAttentionCuda(q, k, v);   // bf16 [heads, D]
//
// For timing and CUDA graphs, DecodeAttentionCudaInto writes into caller-owned out and workspace
// (sized by DecodeAttentionCudaWorkspace) and allocates nothing.

#ifndef KVGATE_KERNELS_ATTENTION_DECODE_ATTENTION_CUDA_H_
#define KVGATE_KERNELS_ATTENTION_DECODE_ATTENTION_CUDA_H_

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kvgate::kernels {

// The kernel variant that runs by default (decode_attention_launch.h lists them): 0 picks the
// fastest measured for the head_dim (kernel3 for 128, kernel1 for 64; CUDA_NOTES.md run 10).
inline constexpr int kDefaultDecodeAttentionKernel = 0;

// A float32 workspace tensor large enough for q, k and v of these shapes on their device.
absl::StatusOr<torch::Tensor> DecodeAttentionCudaWorkspace(
    const torch::Tensor& q, const torch::Tensor& k, int kernel = kDefaultDecodeAttentionKernel);

// out = softmax(q k^T * scale) v per query head, query head h reading kv head h / (heads /
// kv_heads). scale <= 0 means 1/sqrt(head_dim). InvalidArgument naming the tensor on a shape,
// dtype, device or layout mismatch, or an unknown kernel; Internal on a launch failure.
absl::Status DecodeAttentionCudaInto(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, torch::Tensor& out,
                                     torch::Tensor& workspace, double scale = 0.0,
                                     int kernel = kDefaultDecodeAttentionKernel);

absl::StatusOr<torch::Tensor> DecodeAttentionCuda(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v, double scale = 0.0);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_ATTENTION_DECODE_ATTENTION_CUDA_H_
