// CUDA decode attention over packed int4 K/V; see int4_attention_launch.h for the variants.
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/attention/decode_attention_stream.h"
#include "kernels/int4/int4_attention_launch.h"

namespace kvgate::kernels::cuda {
namespace {

// kernel1's rows: a stage holds K codes [kRowsPerBatch][head_dim / 2], V codes likewise, then
// K scales [kRowsPerBatch][head_dim / 32], V scales, and for affine K zeros and V zeros.
template <int kHeadDim, bool kAffine>
struct Int4StreamRows {
  static constexpr int kRowsPerBatch = 16;
  static constexpr int kBlocks = kHeadDim / 32;      // blocks (and 16-byte code pieces) a row
  static constexpr int kCodeBytes = kHeadDim / 2;    // a row's codes
  static constexpr int kParamBytes = kBlocks * 2;    // a row's scales (or zeros): 8 or 4 bytes
  static constexpr int kCodesBytes = kRowsPerBatch * kCodeBytes;
  static constexpr int kParamsBytes = kRowsPerBatch * kParamBytes;
  static constexpr int kStageBytes =
      (2 * kCodesBytes + (kAffine ? 4 : 2) * kParamsBytes + 15) / 16 * 16;
  const std::uint8_t* k_codes;
  const std::uint8_t* v_codes;
  const __half* k_scales;
  const __half* v_scales;
  const __half* k_zeros;
  const __half* v_zeros;
  int kv_heads;

  __device__ __forceinline__ void Issue(char* stage, std::int64_t first, int valid, int kv_head,
                                        int lane) const {
#pragma unroll
    for (int idx = lane; idx < kRowsPerBatch * kBlocks; idx += 32) {
      const int row = idx / kBlocks, piece = idx % kBlocks;
      const bool real = row < valid;
      const std::int64_t offset =
          real ? ((first + row) * kv_heads + kv_head) * kCodeBytes + piece * 16 : 0;
      stream::CpAsyncZfill<16>(stage + idx * 16, k_codes + offset, real);
      stream::CpAsyncZfill<16>(stage + kCodesBytes + idx * 16, v_codes + offset, real);
    }
    // One copy of kParamBytes per row and tensor: lanes 0..15 K's rows, 16..31 V's.
    static_assert(kRowsPerBatch == 16, "a lane per row and tensor");
    const int row = lane % kRowsPerBatch;
    const bool is_v = lane >= kRowsPerBatch;
    const bool real = row < valid;
    const std::int64_t offset = real ? ((first + row) * kv_heads + kv_head) * kBlocks : 0;
    char* params = stage + 2 * kCodesBytes + (is_v ? kParamsBytes : 0) + row * kParamBytes;
    stream::CpAsyncZfill<kParamBytes>(params, (is_v ? v_scales : k_scales) + offset, real);
    if constexpr (kAffine) {
      stream::CpAsyncZfill<kParamBytes>(params + 2 * kParamsBytes,
                                        (is_v ? v_zeros : k_zeros) + offset, real);
    }
  }

  // Values of coordinates slice*8 .. slice*8+7: nibble i of the slice's 32-bit word is element i
  // (int4.h). 0x4B000000 | n is the float 2^23 + n, so one subtraction gives n (or n - 8) exactly.
  __device__ __forceinline__ static void Decode(const char* codes, const char* params, int row,
                                                int slice, float (&f)[8]) {
    const unsigned word = *reinterpret_cast<const unsigned*>(codes + row * kCodeBytes + slice * 4);
    const int block = slice / 4;
    const __half* scales = reinterpret_cast<const __half*>(params);
    const float scale = __half2float(scales[row * kBlocks + block]);
    if constexpr (kAffine) {
      const __half* zeros = reinterpret_cast<const __half*>(params + 2 * kParamsBytes);
      const float zero = __half2float(zeros[row * kBlocks + block]);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float nibble = __uint_as_float(0x4B000000u | ((word >> (4 * i)) & 0xFu)) - 8388608.0f;
        f[i] = fmaf(nibble, scale, zero);
      }
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float centered =
            __uint_as_float(0x4B000000u | ((word >> (4 * i)) & 0xFu)) - 8388616.0f;
        f[i] = centered * scale;
      }
    }
  }
  __device__ __forceinline__ void Key(const char* stage, int row, int slice, float (&f)[8]) const {
    Decode(stage, stage + 2 * kCodesBytes, row, slice, f);
  }
  __device__ __forceinline__ void Value(const char* stage, int row, int slice,
                                        float (&f)[8]) const {
    Decode(stage + kCodesBytes, stage + 2 * kCodesBytes + kParamsBytes, row, slice, f);
  }
};

template <int kHeadDim, int kGroup, bool kAffine>
cudaError_t Launch(const std::uint16_t* q, const Int4Operand& k, const Int4Operand& v,
                   std::uint16_t* out, const DecodeAttentionShape& shape,
                   const DecodeAttentionSplit& split, float scale, float* workspace,
                   cudaStream_t stream) {
  using Rows = Int4StreamRows<kHeadDim, kAffine>;
  const std::int64_t out_floats = static_cast<std::int64_t>(shape.heads) * split.splits * kHeadDim;
  float* partial_out = workspace;
  float2* partial_ml = reinterpret_cast<float2*>(workspace + out_floats);  // 8-byte aligned
  auto* kernel = stream::decode_attention_stream<kHeadDim, kGroup, Rows>;
  constexpr int smem = stream::StreamSmemBytes<kHeadDim, kGroup, Rows>();
  if (smem > 48 * 1024) {
    const cudaError_t s =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (s != cudaSuccess) return s;
  }
  const Rows rows{k.codes,
                  v.codes,
                  reinterpret_cast<const __half*>(k.scales),
                  reinterpret_cast<const __half*>(v.scales),
                  reinterpret_cast<const __half*>(k.zeros),
                  reinterpret_cast<const __half*>(v.zeros),
                  shape.kv_heads};
  kernel<<<dim3(split.splits, shape.kv_heads), stream::kStreamThreads, smem, stream>>>(
      q, rows, partial_out, partial_ml, shape.tokens, split.chunk, split.splits,
      scale * stream::kLog2e);
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess) return launched;
  stream::decode_attention_merge2<kHeadDim>
      <<<shape.heads, kHeadDim * stream::kMergeParts, 0, stream>>>(partial_out, partial_ml, out,
                                                                   split.splits);
  return cudaGetLastError();
}

template <int kHeadDim, bool kAffine>
cudaError_t LaunchForGroup(int group, const std::uint16_t* q, const Int4Operand& k,
                           const Int4Operand& v, std::uint16_t* out,
                           const DecodeAttentionShape& shape, const DecodeAttentionSplit& split,
                           float scale, float* workspace, cudaStream_t stream) {
  switch (group) {
#define KVGATE_GROUP_CASE(G) \
  case G:                    \
    return Launch<kHeadDim, G, kAffine>(q, k, v, out, shape, split, scale, workspace, stream);
    KVGATE_GROUP_CASE(1)
    KVGATE_GROUP_CASE(2)
    KVGATE_GROUP_CASE(3)
    KVGATE_GROUP_CASE(4)
    KVGATE_GROUP_CASE(5)
    KVGATE_GROUP_CASE(6)
    KVGATE_GROUP_CASE(7)
    KVGATE_GROUP_CASE(8)
#undef KVGATE_GROUP_CASE
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

DecodeAttentionSplit PlanInt4DecodeAttention(const DecodeAttentionShape& shape,
                                             int multiprocessors, int kernel) {
  // Two CTAs a multiprocessor (the registers allow two), chunks whole rounds of 16-row batches.
  DecodeAttentionSplit split;
  split.kernel = kernel;
  stream::PlanStream(shape.tokens, shape.kv_heads, multiprocessors,
                     Int4StreamRows<128, false>::kRowsPerBatch, 2, &split.chunk, &split.splits);
  return split;
}

std::int64_t Int4DecodeAttentionWorkspaceFloats(const DecodeAttentionShape& shape,
                                                const DecodeAttentionSplit& split) {
  return static_cast<std::int64_t>(shape.heads) * split.splits * (shape.head_dim + 2);
}

cudaError_t LaunchInt4DecodeAttention(const std::uint16_t* q, const Int4Operand& k,
                                      const Int4Operand& v, bool affine, std::uint16_t* out,
                                      const DecodeAttentionShape& shape,
                                      const DecodeAttentionSplit& split, float scale,
                                      float* workspace, cudaStream_t stream) {
  if (shape.tokens < 1 || shape.kv_heads < 1 || shape.heads % shape.kv_heads != 0 ||
      split.kernel != 1 || split.chunk < 1 || split.splits < 1 ||
      split.splits > stream::kMaxSplits ||
      static_cast<std::int64_t>(split.chunk) * split.splits < shape.tokens ||
      (affine != (k.zeros != nullptr)) || (affine != (v.zeros != nullptr))) {
    return cudaErrorInvalidValue;
  }
  const int group = shape.heads / shape.kv_heads;
  switch (shape.head_dim * 2 + (affine ? 1 : 0)) {
    case 128:
      return LaunchForGroup<64, false>(group, q, k, v, out, shape, split, scale, workspace, stream);
    case 129:
      return LaunchForGroup<64, true>(group, q, k, v, out, shape, split, scale, workspace, stream);
    case 256:
      return LaunchForGroup<128, false>(group, q, k, v, out, shape, split, scale, workspace,
                                        stream);
    case 257:
      return LaunchForGroup<128, true>(group, q, k, v, out, shape, split, scale, workspace, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace kvgate::kernels::cuda
