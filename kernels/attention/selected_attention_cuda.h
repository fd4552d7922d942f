// Decode attention over selected blocks of a bf16 KV cache on CUDA, for LibTorch tensors: the
// kernel of selected_attention.cu (selected_attention_launch.h) behind a tensor interface. The CPU
// reference is SelectedDecodeAttention / DecodeAttentionReference with HistorySelection::Blocks
// (attention.h).
//
// Usage:
//   // q bf16 [28, 128]; k, v bf16 [T, 4, 128]; ids int32 [n] (shared) or [4, n] (per kv head)
//   absl::StatusOr<torch::Tensor> out = SelectedAttentionCuda(q, k, v, ids, /*block_size=*/16);
//
// SelectedAttentionCudaInto writes caller-owned out (bf16 or float32 [heads, 128]) and workspace
// (SelectedAttentionCudaWorkspace) and allocates nothing, so it can be captured in a CUDA graph
// (checked by selected_attention_cuda_test on the H100). The API is stable.
// `tokens` (default: all rows of k) is the history length of a larger preallocated cache.
// Ids must be distinct within a row (not checked: that would read them back from the device);
// an id outside [0, ceil(tokens / block_size)) selects nothing.
//
// Errors: InvalidArgument naming the tensor ("q", "k", "v", "block_ids", "out", "workspace") on
// a dtype, shape, device or layout mismatch, block_size < 1, or heads not 1..8 times kv_heads;
// Internal on a launch failure.

#ifndef KVGATE_KERNELS_ATTENTION_SELECTED_ATTENTION_CUDA_H_
#define KVGATE_KERNELS_ATTENTION_SELECTED_ATTENTION_CUDA_H_

#include <torch/types.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kvgate::kernels {

// A float32 workspace on q's device for block_ids of `blocks` ids a row (any fewer too).
absl::StatusOr<torch::Tensor> SelectedAttentionCudaWorkspace(const torch::Tensor& q,
                                                             int64_t kv_heads, int64_t blocks,
                                                             int64_t block_size);

// out = softmax(scale q k_sel^T) v_sel per query head over the selected blocks. scale <= 0 means
// 1/sqrt(128).
absl::Status SelectedAttentionCudaInto(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const torch::Tensor& block_ids,
                                       int64_t block_size, torch::Tensor& out,
                                       torch::Tensor& workspace, double scale = 0.0,
                                       int64_t tokens = -1);

absl::StatusOr<torch::Tensor> SelectedAttentionCuda(const torch::Tensor& q, const torch::Tensor& k,
                                                    const torch::Tensor& v,
                                                    const torch::Tensor& block_ids,
                                                    int64_t block_size, double scale = 0.0);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_ATTENTION_SELECTED_ATTENTION_CUDA_H_
