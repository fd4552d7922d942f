// CUDA decode attention straight from packed int4 K/V blocks (int4.h's layout: blocks of 32 along
// head_dim, two codes a byte, fp16 scale and, for affine, fp16 zero point), grouped-query, split
// over history. Raw device pointers, no LibTorch, so nvcc compiles it alone;
// int4_attention_cuda.h adapts it to tensors.
//
// Shapes (all contiguous, row major), as DecodeAttentionShape names them:
//   q             bf16    [heads, head_dim]                    heads = kv_heads * group
//   k/v codes     uint8   [tokens, kv_heads, head_dim / 2]
//   k/v scales    fp16    [tokens, kv_heads, head_dim / 32]
//   k/v zeros     fp16    [tokens, kv_heads, head_dim / 32]    affine only (null for symmetric)
//   out           bf16    [heads, head_dim]
// head_dim 64 or 128; group 1 to 8; K and V of one scheme. Float32 arithmetic throughout: each
// element is decoded exactly as DequantizeInt4 does ((nibble - 8) * scale, or nibble * scale +
// zero), then the softmax is taken in log2 units.
//
// Variants (records name the one measured):
//   int4_decode_attention_kernel1: the streaming split-K kernel of
//     kernels/attention/decode_attention_stream.h over int4 rows: each warp its own ring of four
//     cp.async stages of 16 rows (codes in 16-byte copies, a row's scales and zeros in one 8-byte
//     copy each), its own online softmax; the warps merge at the end.
//   int4_decode_attention_kernel2: tensor cores, head_dim 128. Four stages of 64-row tiles by
//     cp.async (one CTA barrier a tile), each warp 16 rows and its own online softmax. Logits per
//     int4 block by mma.m16n8k16 in bf16 on the exact nibble integers, then scaled per (token,
//     block) in float32 (plus zero * sum of q over the block for affine); values by mma in fp16,
//     P in fp16 and V decoded to fp16 with one rounding ((nibble - 8) * scale, or fma(nibble,
//     scale, zero)): V values beyond fp16's range (65504) are not supported.
//   decode_attention_merge3 merges the chunks of either.
//
// Workspace: Int4DecodeAttentionWorkspaceFloats() floats of device memory, owned by the caller.

#ifndef KVGATE_KERNELS_INT4_INT4_ATTENTION_LAUNCH_H_
#define KVGATE_KERNELS_INT4_INT4_ATTENTION_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/attention/decode_attention_launch.h"

namespace kvgate::kernels::cuda {

// One packed int4 tensor on the device: codes, fp16 scales and zeros as bit patterns (zeros null
// for the symmetric scheme).
struct Int4Operand {
  const std::uint8_t* codes = nullptr;
  const std::uint16_t* scales = nullptr;
  const std::uint16_t* zeros = nullptr;
};

// The split for an int4 kernel variant (1 or 2), deterministic in the shape and the multiprocessor
// count. split.kernel is the variant.
DecodeAttentionSplit PlanInt4DecodeAttention(const DecodeAttentionShape& shape,
                                             int multiprocessors, int kernel = 1);

// Floats of workspace the plan needs: heads * splits * (head_dim + 2).
std::int64_t Int4DecodeAttentionWorkspaceFloats(const DecodeAttentionShape& shape,
                                                const DecodeAttentionSplit& split);

// Launches split.kernel and the merge. affine: whether k and v carry zero points (both must, or
// neither). Returns cudaErrorInvalidValue for an unsupported shape (head_dim not 64/128, group not
// 1..8, tokens < 1), a split that does not cover the tokens, an unknown kernel or zero points that
// do not match `affine`, else the launch status.
cudaError_t LaunchInt4DecodeAttention(const std::uint16_t* q, const Int4Operand& k,
                                      const Int4Operand& v, bool affine, std::uint16_t* out,
                                      const DecodeAttentionShape& shape,
                                      const DecodeAttentionSplit& split, float scale,
                                      float* workspace, cudaStream_t stream);

}  // namespace kvgate::kernels::cuda

#endif  // KVGATE_KERNELS_INT4_INT4_ATTENTION_LAUNCH_H_
