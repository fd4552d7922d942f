// Decode attention over selected blocks of a bf16 KV cache on CUDA (selected_attention.cu), paged-
// attention style: only the listed blocks of K and V are read. Raw device pointers, no LibTorch;
// selected_attention_cuda.h adapts it to tensors.
//
// Shapes (contiguous, row major): q bf16 [heads, 128]; k, v bf16 [rows >= tokens, kv_heads, 128];
// block_ids int32 [id_rows, n] with id_rows 1 (shared by all heads) or kv_heads (query head h uses
// row h / (heads / kv_heads)); block b covers tokens b*block_size .. min((b+1)*block_size, tokens)
// - 1. Ids must be distinct within a row; an id outside [0, ceil(tokens / block_size)) selects
// nothing (its tokens are masked), so a bad id cannot read outside the cache.
//
// Variants (records name the one measured):
//   selected_attention_kernel1 (commit dabd83c, measured in the first H100 run): split-K over the
//     selected tokens in their list order, one chunk of at most 512 a CTA (about 2 CTAs an SM);
//     logits by mma.m16n8k16 (bf16 in, float32 accumulate) with 16 selected tokens as the A rows
//     and the group's query heads as the 8 columns; the chunk's softmax; out^T += V^T P^T by mma
//     (P in bf16); a merge kernel combines the chunks. Query groups 1..8.
//   selected_attention_kernel2 (this file): kernel1's tiles, but a grid that fills the card once
//     (one CTA a resident slot, from the occupancy calculator): each CTA takes a span of the
//     selected tokens in sub-chunks of 512 with an online softmax across them, two tiles of loads
//     in flight a warp; a merge that reads the spans in parallel.

#ifndef KVGATE_KERNELS_ATTENTION_SELECTED_ATTENTION_LAUNCH_H_
#define KVGATE_KERNELS_ATTENTION_SELECTED_ATTENTION_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kvgate::kernels::cuda {

struct SelectedAttentionShape {
  int heads = 0;
  int kv_heads = 0;
  std::int64_t tokens = 0;   // history length (rows beyond it are never read)
  int block_size = 0;
  int id_rows = 1;           // 1 or kv_heads
  std::int64_t blocks = 0;   // n, ids a row
};

// Floats of workspace for these shapes (a workspace for n ids serves any fewer).
std::int64_t SelectedAttentionWorkspaceFloats(const SelectedAttentionShape& shape,
                                              int multiprocessors);

// out [heads, 128], bf16 (out_bf16) or float32. cudaErrorInvalidValue for unsupported shapes.
cudaError_t LaunchSelectedAttention(const std::uint16_t* q, const std::uint16_t* k,
                                    const std::uint16_t* v, const std::int32_t* block_ids,
                                    const SelectedAttentionShape& shape, float scale, void* out,
                                    bool out_bf16, float* workspace, int multiprocessors,
                                    cudaStream_t stream);

}  // namespace kvgate::kernels::cuda

#endif  // KVGATE_KERNELS_ATTENTION_SELECTED_ATTENTION_LAUNCH_H_
