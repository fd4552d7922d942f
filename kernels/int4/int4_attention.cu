// CUDA decode attention over packed int4 K/V; see int4_attention_launch.h for the variants.
#include <cuda_bf16.h>
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

// ---------------------------------------------------------------------------------------------
// kernel2: tensor cores, head_dim 128. Grid (splits, kv_heads), 4 warps; the chunk streams through
// kStages2 shared-memory stages of 64-row tiles (cp.async, one CTA barrier a tile); warp w takes
// rows 16w..16w+15 of each tile and keeps its own online softmax.
//
// Logits: per n-tile of 8 tokens and per int4 block b, C_b = Q_b (nibbles - 8 or nibbles)^T by two
// mma.m16n8k16 in bf16 (query heads are the mma rows, the nibble integers are exact in bf16), then
// s = sum_b scale[t][b] * C_b (+ zero[t][b] * sum(q_b) for affine) in float32: the same function
// as decoding first. Thread (group g = lane / 4, quad q = lane % 4) holds for token row g the 32-bit
// word q of block b (its 8 nibbles are its 8 dims of the block); the mma's k order is permuted
// within a block to match, and Q's fragments are loaded in the same order.
// Values: O += P V by mma in fp16: P (softmax weights in [0, 1]) as fp16, V decoded to fp16 with
// its scale (and zero) in half2 arithmetic, one rounding: (nibble - 8) * scale or
// fma(nibble, scale, zero). Thread g holds the dims 16g..16g+15 (one block), so one scale a token.
// ---------------------------------------------------------------------------------------------
constexpr int kTile2 = 64;                  // rows a stage
constexpr int kStages2 = 4;
constexpr int kCodeStride2 = 80;            // bytes a row of codes in shared memory (64 + 16 pad)
constexpr int kThreads2 = 128;

template <bool kAffine>
struct Tile2 {
  static constexpr int kCodes = kTile2 * kCodeStride2;     // bytes of one tensor's codes
  static constexpr int kParams = kTile2 * 8;               // bytes of one tensor's scales (or zeros)
  static constexpr int kStage = 2 * kCodes + (kAffine ? 4 : 2) * kParams;
  // Offsets within a stage.
  static constexpr int kKCodes = 0, kVCodes = kCodes, kKScales = 2 * kCodes,
                       kVScales = 2 * kCodes + kParams, kKZeros = 2 * kCodes + 2 * kParams,
                       kVZeros = 2 * kCodes + 3 * kParams;
};

// MmaBf16 and MmaF16 differ only in the PTX type of the operands (one instruction string each).
__device__ __forceinline__ void MmaBf16(float (&c)[4], unsigned a0, unsigned a2, unsigned b0,
                                        unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void MmaF16(float (&c)[4], unsigned a0, unsigned a2, unsigned b0,
                                       unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned AsU32(__half2 h) { return *reinterpret_cast<unsigned*>(&h); }
__device__ __forceinline__ __half2 AsHalf2(unsigned u) { return *reinterpret_cast<__half2*>(&u); }
__device__ __forceinline__ unsigned AsU32(__nv_bfloat162 h) {
  return *reinterpret_cast<unsigned*>(&h);
}
__device__ __forceinline__ __nv_bfloat162 AsBf162(unsigned u) {
  return *reinterpret_cast<__nv_bfloat162*>(&u);
}
__device__ __forceinline__ unsigned PackBf16(std::uint16_t lo, std::uint16_t hi) {
  return static_cast<unsigned>(lo) | (static_cast<unsigned>(hi) << 16);
}

// The online-softmax update inside is the one of attention/decode_attention.cu's MMA kernel; kept
// inline in each kernel (not a shared device function): its loop bounds are the kernel's own
// compile-time tile constants, and a shared version changes register use; merging them is a kernel
// change to measure on an H100 first (CUDA_NOTES.md).
template <int kGroup, bool kAffine>
__global__ void __launch_bounds__(kThreads2)
    int4_decode_attention_kernel2(const std::uint16_t* __restrict__ q,
                                  const std::uint8_t* __restrict__ k_codes,
                                  const std::uint8_t* __restrict__ v_codes,
                                  const std::uint16_t* __restrict__ k_scales,
                                  const std::uint16_t* __restrict__ v_scales,
                                  const std::uint16_t* __restrict__ k_zeros,
                                  const std::uint16_t* __restrict__ v_zeros,
                                  float* __restrict__ partial_out, float2* __restrict__ partial_ml,
                                  int kv_heads, std::int64_t tokens, int chunk, int splits,
                                  float scale_log2) {
  constexpr int kHeadDim = 128;
  using T = Tile2<kAffine>;
  extern __shared__ uint4 smem_vectors[];
  char* smem = reinterpret_cast<char*>(smem_vectors);
  const int split = blockIdx.x, kv_head = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, quad = lane & 3;
  const std::int64_t first = static_cast<std::int64_t>(split) * chunk;
  const int n = static_cast<int>(min(static_cast<std::int64_t>(chunk), tokens - first));
  const int tiles = (n + kTile2 - 1) / kTile2;

  const auto issue = [&](int tile) {
    if (tile < tiles) {
      char* stage = smem + (tile % kStages2) * T::kStage;
      // Codes: 4 pieces of 16 bytes a row and tensor.
      for (int idx = threadIdx.x; idx < kTile2 * 4; idx += kThreads2) {
        const int row = idx >> 2, piece = idx & 3;
        const int j = tile * kTile2 + row;
        const bool real = j < n;
        const std::int64_t offset = real ? ((first + j) * kv_heads + kv_head) * 64 + piece * 16 : 0;
        const int at = row * kCodeStride2 + piece * 16;
        stream::CpAsyncZfill<16>(stage + T::kKCodes + at, k_codes + offset, real);
        stream::CpAsyncZfill<16>(stage + T::kVCodes + at, v_codes + offset, real);
      }
      // Scales (and zeros): 8 bytes a row and tensor.
      for (int idx = threadIdx.x; idx < kTile2; idx += kThreads2) {
        const int j = tile * kTile2 + idx;
        const bool real = j < n;
        const std::int64_t offset = real ? ((first + j) * kv_heads + kv_head) * 4 : 0;
        stream::CpAsyncZfill<8>(stage + T::kKScales + idx * 8, k_scales + offset, real);
        stream::CpAsyncZfill<8>(stage + T::kVScales + idx * 8, v_scales + offset, real);
        if constexpr (kAffine) {
          stream::CpAsyncZfill<8>(stage + T::kKZeros + idx * 8, k_zeros + offset, real);
          stream::CpAsyncZfill<8>(stage + T::kVZeros + idx * 8, v_zeros + offset, real);
        }
      }
    }
    stream::CpAsyncCommit();
  };
#pragma unroll
  for (int i = 0; i < kStages2 - 1; ++i) issue(i);

  // Q fragments in the permuted k order: for block b and half h, a0 = (q[d(2h)], q[d(2h+4)]) and
  // a2 = (q[d(2h+1)], q[d(2h+5)]) with d(i) = 32b + 8 quad + i; row g is query head g of this kv
  // head (zero past the group). qsum: the sum of head g's q over block b (affine zero points).
  unsigned qa[4][2][2];
  float qsum[4];
  {
    const bool real = g < kGroup;
    const std::uint16_t* row = q + (kv_head * kGroup + (real ? g : 0)) * kHeadDim;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const uint4 raw = *reinterpret_cast<const uint4*>(row + 32 * b + 8 * quad);
      const std::uint16_t* e = reinterpret_cast<const std::uint16_t*>(&raw);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        qa[b][h][0] = real ? PackBf16(e[2 * h], e[2 * h + 4]) : 0u;
        qa[b][h][1] = real ? PackBf16(e[2 * h + 1], e[2 * h + 5]) : 0u;
      }
      float sum = 0.0f;
      if constexpr (kAffine) {
        for (int d = 0; d < 32; ++d) sum += __uint_as_float(static_cast<unsigned>(row[32 * b + d]) << 16);
      }
      qsum[b] = real ? sum : 0.0f;
    }
  }
  // exact nibble integers: bf16 (128 + n) has bits 0x4300 | n.
  const __nv_bfloat162 k_offset = __floats2bfloat162_rn(kAffine ? 128.0f : 136.0f,
                                                        kAffine ? 128.0f : 136.0f);
  // fp16 (1024 + n) has bits 0x6400 | n.
  const __half2 v_offset = __floats2half2_rn(kAffine ? 1024.0f : 1032.0f, kAffine ? 1024.0f : 1032.0f);

  float m = -INFINITY;  // running max of row g (log2 units), equal in the 4 lanes of a quad
  float l = 0.0f;       // this lane's share of row g's running sum
  float acc[16][4];     // O: n-tile j, columns 2 quad, 2 quad + 1 -> dims 16 (2 quad) + j, 16 (2 quad + 1) + j
#pragma unroll
  for (int j = 0; j < 16; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;

  for (int tile = 0; tile < tiles; ++tile) {
    stream::CpAsyncWait<kStages2 - 2>();
    __syncthreads();  // tile's copies landed for every thread; tile - 1's stage is free
    issue(tile + kStages2 - 1);
    const char* stage = smem + (tile % kStages2) * T::kStage;
    const int row0 = warp * 16;

    // Logits of this warp's 16 rows: two n-tiles of 8 tokens.
    float s[2][2];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const int token = row0 + nt * 8 + g;  // this thread's B column
      const char* codes = stage + T::kKCodes + token * kCodeStride2 + 4 * quad;
      float c[4][4];
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const unsigned word = *reinterpret_cast<const unsigned*>(codes + 16 * b);
        c[b][0] = c[b][1] = c[b][2] = c[b][3] = 0.0f;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const unsigned lo = ((word >> (8 * h)) & 0x000F000Fu) | 0x43004300u;
          const unsigned hi = ((word >> (8 * h + 4)) & 0x000F000Fu) | 0x43004300u;
          const unsigned b0 = AsU32(__hsub2(AsBf162(lo), k_offset));
          const unsigned b1 = AsU32(__hsub2(AsBf162(hi), k_offset));
          MmaBf16(c[b], qa[b][h][0], qa[b][h][1], b0, b1);
        }
      }
      // Columns 2 quad and 2 quad + 1 of the n-tile: their scales (and zeros), 4 halves a row.
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int t = row0 + nt * 8 + 2 * quad + e;
        const uint2 raw = *reinterpret_cast<const uint2*>(stage + T::kKScales + t * 8);
        const __half2 s01 = AsHalf2(raw.x), s23 = AsHalf2(raw.y);
        float logit = __low2float(s01) * c[0][e] + __high2float(s01) * c[1][e] +
                      __low2float(s23) * c[2][e] + __high2float(s23) * c[3][e];
        if constexpr (kAffine) {
          const uint2 zraw = *reinterpret_cast<const uint2*>(stage + T::kKZeros + t * 8);
          const __half2 z01 = AsHalf2(zraw.x), z23 = AsHalf2(zraw.y);
          logit += __low2float(z01) * qsum[0] + __high2float(z01) * qsum[1] +
                   __low2float(z23) * qsum[2] + __high2float(z23) * qsum[3];
        }
        s[nt][e] = tile * kTile2 + t < n ? logit * scale_log2 : -INFINITY;
      }
    }
    // Online softmax of row g over these 16 tokens.
    float top = fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1]));
    top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));
    top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 2));
    const float m_new = fmaxf(m, top);
    const float alpha = m_new == -INFINITY ? 1.0f : exp2f(m - m_new);
    float p[2][2];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) p[nt][e] = m_new == -INFINITY ? 0.0f : exp2f(s[nt][e] - m_new);
    }
    l = l * alpha + p[0][0] + p[0][1] + p[1][0] + p[1][1];
    m = m_new;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      acc[j][0] *= alpha;
      acc[j][1] *= alpha;
    }
    // P as the A operand in fp16: k = token; a0 tokens 2 quad, +1 (n-tile 0), a2 the same of
    // n-tile 1 (tokens 8 + 2 quad, +1).
    const unsigned pa0 = AsU32(__floats2half2_rn(p[0][0], p[0][1]));
    const unsigned pa2 = AsU32(__floats2half2_rn(p[1][0], p[1][1]));
    // V as the B operand: rows (tokens) 2 quad, 2 quad + 1, 2 quad + 8, 2 quad + 9 of the warp's
    // 16; this thread's 16 dims 16g..16g+15 are bytes 8g..8g+7 of a row, all in block g / 2.
    const int r[4] = {row0 + 2 * quad, row0 + 2 * quad + 1, row0 + 2 * quad + 8, row0 + 2 * quad + 9};
    uint2 w[4];
    __half scale_h[4], zero_h[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      w[i] = *reinterpret_cast<const uint2*>(stage + T::kVCodes + r[i] * kCodeStride2 + 8 * g);
      scale_h[i] = reinterpret_cast<const __half*>(stage + T::kVScales)[r[i] * 4 + g / 2];
      if constexpr (kAffine) {
        zero_h[i] = reinterpret_cast<const __half*>(stage + T::kVZeros)[r[i] * 4 + g / 2];
      }
    }
    const __half2 s01 = __halves2half2(scale_h[0], scale_h[1]);
    const __half2 s89 = __halves2half2(scale_h[2], scale_h[3]);
    __half2 z01, z89;
    if constexpr (kAffine) {
      z01 = __halves2half2(zero_h[0], zero_h[1]);
      z89 = __halves2half2(zero_h[2], zero_h[3]);
    }
    const auto decode = [&](unsigned pair, __half2 scale, __half2 zero) -> unsigned {
      const __half2 centered = __hsub2(AsHalf2(pair | 0x64006400u), v_offset);
      if constexpr (kAffine) {
        return AsU32(__hfma2(centered, scale, zero));
      } else {
        return AsU32(__hmul2(centered, scale));
      }
    };
#pragma unroll
    for (int byte = 0; byte < 8; ++byte) {
      // Byte `byte` of rows (2 quad, 2 quad + 1) side by side: bytes 0 and 2 of x01.
      const unsigned selector = (byte & 3) | ((4 + (byte & 3)) << 8);
      const unsigned x01 = __byte_perm(byte < 4 ? w[0].x : w[0].y, byte < 4 ? w[1].x : w[1].y, selector);
      const unsigned x89 = __byte_perm(byte < 4 ? w[2].x : w[2].y, byte < 4 ? w[3].x : w[3].y, selector);
      // n-tile 2 byte: the low nibbles (dim 16g + 2 byte); n-tile 2 byte + 1: the high ones.
      MmaF16(acc[2 * byte], pa0, pa2, decode(x01 & 0x000F000Fu, s01, z01),
             decode(x89 & 0x000F000Fu, s89, z89));
      MmaF16(acc[2 * byte + 1], pa0, pa2, decode((x01 >> 4) & 0x000F000Fu, s01, z01),
             decode((x89 >> 4) & 0x000F000Fu, s89, z89));
    }
  }
  stream::CpAsyncWait<0>();

  // Merge the 4 warps: each writes its (m, l) and O rows (dims un-permuted); then one pass over
  // the group's coordinates writes the chunk's unnormalized output and (max, sum).
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  __syncthreads();  // every warp is done with the stages
  float* warp_out = reinterpret_cast<float*>(smem);  // [4][kGroup][128]
  float2* warp_ml = reinterpret_cast<float2*>(warp_out + 4 * kGroup * kHeadDim);
  if (g < kGroup) {
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      warp_out[(warp * kGroup + g) * kHeadDim + 16 * (2 * quad) + j] = acc[j][0];
      warp_out[(warp * kGroup + g) * kHeadDim + 16 * (2 * quad + 1) + j] = acc[j][1];
    }
    if (quad == 0) warp_ml[warp * kGroup + g] = make_float2(m, l);
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kGroup * kHeadDim; idx += kThreads2) {
    const int head_in_group = idx / kHeadDim, d = idx % kHeadDim;
    float top = -INFINITY;
#pragma unroll
    for (int w = 0; w < 4; ++w) top = fmaxf(top, warp_ml[w * kGroup + head_in_group].x);
    float sum = 0.0f, out = 0.0f;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float2 ml = warp_ml[w * kGroup + head_in_group];
      const float weight = ml.x == -INFINITY ? 0.0f : exp2f(ml.x - top);
      sum = fmaf(weight, ml.y, sum);
      out = fmaf(weight, warp_out[(w * kGroup + head_in_group) * kHeadDim + d], out);
    }
    const std::int64_t head = static_cast<std::int64_t>(kv_head) * kGroup + head_in_group;
    partial_out[(head * splits + split) * kHeadDim + d] = out;
    if (d == 0) partial_ml[head * splits + split] = make_float2(top, sum);
  }
}

template <int kGroup, bool kAffine>
cudaError_t LaunchKernel2(const std::uint16_t* q, const Int4Operand& k, const Int4Operand& v,
                          std::uint16_t* out, const DecodeAttentionShape& shape,
                          const DecodeAttentionSplit& split, float scale, float* workspace,
                          cudaStream_t stream) {
  const std::int64_t out_floats = static_cast<std::int64_t>(shape.heads) * split.splits * 128;
  float* partial_out = workspace;
  float2* partial_ml = reinterpret_cast<float2*>(workspace + out_floats);
  auto* kernel = int4_decode_attention_kernel2<kGroup, kAffine>;
  constexpr int stages = kStages2 * Tile2<kAffine>::kStage;
  constexpr int merge = 4 * kGroup * (128 * 4 + 8);
  constexpr int smem = stages > merge ? stages : merge;
  const cudaError_t set =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (set != cudaSuccess) return set;
  kernel<<<dim3(split.splits, shape.kv_heads), kThreads2, smem, stream>>>(
      q, k.codes, v.codes, k.scales, v.scales, k.zeros, v.zeros, partial_out, partial_ml,
      shape.kv_heads, shape.tokens, split.chunk, split.splits, scale * stream::kLog2e);
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess) return launched;
  stream::decode_attention_merge3<128><<<shape.heads, 128 * stream::kMergeParts, 0, stream>>>(
      partial_out, partial_ml, out, split.splits);
  return cudaGetLastError();
}

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
  stream::decode_attention_merge3<kHeadDim>
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
#define KVGATE_GROUP_CASE(G)                                                                  \
  case G:                                                                                     \
    if constexpr (kHeadDim == 128) {                                                          \
      if (split.kernel == 2) {                                                                \
        return LaunchKernel2<G, kAffine>(q, k, v, out, shape, split, scale, workspace, stream); \
      }                                                                                       \
    }                                                                                         \
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
  DecodeAttentionSplit split;
  split.kernel = kernel;
  if (kernel == 2) {
    // kernel2: three CTAs a multiprocessor, chunks whole 64-row tiles (PlanStream's round is
    // rows_per_batch * 4 warps).
    stream::PlanStream(shape.tokens, shape.kv_heads, multiprocessors, kTile2 / 4, 3, &split.chunk,
                       &split.splits);
    return split;
  }
  // kernel1: two CTAs a multiprocessor (the registers allow two), chunks whole rounds of 16-row
  // batches.
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
      split.kernel < 1 || split.kernel > 2 || (split.kernel == 2 && shape.head_dim != 128) ||
      split.chunk < 1 || split.splits < 1 ||
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
