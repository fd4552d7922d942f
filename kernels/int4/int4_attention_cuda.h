// Int4 decode attention on CUDA for LibTorch tensors: the kernels of int4_attention.cu (see
// int4_attention_launch.h for the variants) behind a tensor interface, reading the packed blocks
// of Int4Tensor (int4.h) directly, never a dequantized copy of K or V.
//
// Usage:
//   // q bf16 [heads, D] on CUDA; k, v Int4Tensor of shape [tokens, kv_heads, D] on the same device
//   Int4Tensor k = Int4TensorTo(*QuantizeInt4(k_cpu, Int4Scheme::kSymmetric), q.device());
//   Int4Tensor v = Int4TensorTo(*QuantizeInt4(v_cpu, Int4Scheme::kSymmetric), q.device());
//   absl::StatusOr<torch::Tensor> out = Int4DecodeAttentionCuda(q, k, v);   // bf16 [heads, D]
//
// For timing and CUDA graphs, Int4DecodeAttentionCudaInto writes into caller-owned out and
// workspace (sized by Int4DecodeAttentionCudaWorkspace) and allocates nothing.

#ifndef KVGATE_KERNELS_INT4_INT4_ATTENTION_CUDA_H_
#define KVGATE_KERNELS_INT4_INT4_ATTENTION_CUDA_H_

#include <torch/types.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/int4/int4.h"

namespace kvgate::kernels {

// The kernel variant that runs by default (int4_attention_launch.h lists them): 0 picks the best
// measured variant for the head_dim.
inline constexpr int kDefaultInt4AttentionKernel = 0;

// A float32 workspace tensor large enough for q [heads, D] over a history of `tokens` tokens and
// `kv_heads` kv heads, on q's device. InvalidArgument unless q is a rank-2 CUDA tensor and tokens,
// kv_heads >= 1.
absl::StatusOr<torch::Tensor> Int4DecodeAttentionCudaWorkspace(
    const torch::Tensor& q, int64_t tokens, int64_t kv_heads,
    int kernel = kDefaultInt4AttentionKernel);

// out = softmax(q k^T * scale) v per query head, query head h reading kv head h / (heads /
// kv_heads), with k and v the values DequantizeInt4 gives (computed on the fly in float32).
// q, out: contiguous bf16 [heads, D]; k, v: one scheme, codes uint8 [tokens, kv_heads, D/2],
// scales (and affine zeros) float16 [tokens, kv_heads, D/32], contiguous, on q's device; D 64 or
// 128, heads / kv_heads 1 to 8. scale <= 0 means 1/sqrt(D). InvalidArgument naming the tensor
// (q, k.codes, v.scales, out, workspace, ...) on a shape, dtype, device, layout or scheme
// mismatch, or an unknown kernel (kernel2 needs head_dim 128); Internal on a launch failure.
absl::Status Int4DecodeAttentionCudaInto(const torch::Tensor& q, const Int4Tensor& k,
                                         const Int4Tensor& v, torch::Tensor& out,
                                         torch::Tensor& workspace, double scale = 0.0,
                                         int kernel = kDefaultInt4AttentionKernel);

// As above, allocating out and the workspace.
absl::StatusOr<torch::Tensor> Int4DecodeAttentionCuda(const torch::Tensor& q, const Int4Tensor& k,
                                                      const Int4Tensor& v, double scale = 0.0);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_INT4_INT4_ATTENTION_CUDA_H_
