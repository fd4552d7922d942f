// CUDA decode attention for one step of grouped-query attention over a bf16 KV cache: the dense
// baseline every compressed path is timed against. Raw device pointers, no LibTorch, so nvcc
// compiles it alone; decode_attention_cuda.h adapts it to tensors.
//
// Shapes (all contiguous, row major):
//   q    bf16 [heads, head_dim]                 heads = kv_heads * group
//   k, v bf16 [tokens, kv_heads, head_dim]      the cache layout of kernels/kv_format
//   out  bf16 [heads, head_dim]
// head_dim 64 or 128; group 1 to 8; softmax scale given (1/sqrt(head_dim) as a rule).
//
// Variants (llm.c style; records name the one measured):
//   decode_attention_kernel1: split-K ("flash decoding"). The history is cut into chunks; one CTA
//     of 4 warps takes one (kv head, chunk) and serves all `group` query heads of that kv head, so
//     each K/V byte is read once. Every lane loads 16 bytes (8 bf16) of a key row per token, four
//     tokens in flight; logits go to shared memory, then the CTA's softmax statistics, then the
//     value pass. A second kernel merges the chunks' partial outputs with their max and sum.
//   decode_attention_kernel2: kernel1 with the whole chunk of K and of V requested at once by
//     cp.async into shared memory (at most 64 KB a CTA), so all of a CTA's bytes are in flight
//     before its first logit; the same phases then read shared memory.
//   decode_attention_kernel3: tensor cores (mma.m16n8k16, bf16 in, float32 accumulate), head_dim
//     128 only. Per warp and 16 rows, S = Q K^T and O += P V are 16 mma each, query heads as the
//     mma rows; each warp keeps an online softmax, K/V arrive in 64-row tiles by cp.async into a
//     swizzled double buffer read with ldmatrix, and the warps merge at the end.
//   decode_attention_kernel4: the streaming kernel of decode_attention_stream.h: one pass, each
//     warp its own ring of four cp.async stages (8 rows of K and V each) and its own online
//     softmax, no CTA barrier until the end, where the warps merge; two CTAs a multiprocessor.
//     int4_decode_attention_kernel1 (kernels/int4/int4_attention_launch.h) is it over int4 rows.
//   decode_attention_merge3 (all): merges the chunks in one pass, each of 4 threads a coordinate
//     keeping a running (max, sum, output) over its chunks (merge2, with two block-wide
//     reductions first, merged runs 3 to 9 and stays in decode_attention_stream.h).
//
// Workspace: DecodeAttentionWorkspaceFloats() floats of device memory, owned by the caller.

#ifndef KVGATE_KERNELS_ATTENTION_DECODE_ATTENTION_LAUNCH_H_
#define KVGATE_KERNELS_ATTENTION_DECODE_ATTENTION_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kvgate::kernels::cuda {

struct DecodeAttentionShape {
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  std::int64_t tokens = 0;
};

// Which kernel runs and how it splits the history: chunk tokens per CTA, splits chunks.
struct DecodeAttentionSplit {
  int kernel = 1;
  int chunk = 0;
  int splits = 0;
};

// The split for a kernel variant (1 to 4), deterministic in the shape and the multiprocessor
// count.
DecodeAttentionSplit PlanDecodeAttention(const DecodeAttentionShape& shape, int multiprocessors,
                                         int kernel = 1);

// Floats of workspace the plan needs: heads * splits * (head_dim + 2).
std::int64_t DecodeAttentionWorkspaceFloats(const DecodeAttentionShape& shape,
                                            const DecodeAttentionSplit& split);

// Launches split.kernel and its merge. q, k, v, out: bf16 bit patterns. Returns
// cudaErrorInvalidValue for an unsupported shape (head_dim not 64/128, group not 1..8, tokens < 1)
// or kernel, else the launch status.
cudaError_t LaunchDecodeAttention(const std::uint16_t* q, const std::uint16_t* k,
                                  const std::uint16_t* v, std::uint16_t* out,
                                  const DecodeAttentionShape& shape,
                                  const DecodeAttentionSplit& split, float scale, float* workspace,
                                  cudaStream_t stream);

}  // namespace kvgate::kernels::cuda

#endif  // KVGATE_KERNELS_ATTENTION_DECODE_ATTENTION_LAUNCH_H_
