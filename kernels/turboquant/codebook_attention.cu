// TurboQuant fused codebook logits and attention on CUDA: see codebook_attention_launch.h for the
// format, the variant and the method. Build: tools/bazel build --config=cuda
// //kernels/turboquant:codebook_attention_cuda; tests and benchmark run on a GPU host through
// tools/gpu_bundle (codebook_attention_cuda_test, codebook_attention_cuda_benchmark).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/turboquant/codebook_attention_launch.h"

namespace kvgate::kernels::cuda {
namespace {

constexpr int kD = kCodebookHeadDim;  // 128
constexpr int kWarps = 4;             // a CTA of the logits and attention kernels
constexpr int kMaxChunk = 512;        // history tokens a CTA of the attention kernel takes at most
constexpr int kMaxGroup = 8;          // query heads a kv head serves (the mma's 8 columns)

// ------------------------------------------------------------------------------------------------
// Small device helpers.

__device__ __forceinline__ void MmaF16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                       uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void MmaBf16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                        uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float HalfBits(uint16_t bits) {
  return __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ float Bf16Bits(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

__device__ __forceinline__ float WarpMax(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

__device__ __forceinline__ float WarpSum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

template <bool kBf16>
__device__ __forceinline__ void Store(void* out, int64_t index, float value) {
  if constexpr (kBf16) {
    static_cast<__nv_bfloat16*>(out)[index] = __float2bfloat16_rn(value);
  } else {
    static_cast<float*>(out)[index] = value;
  }
}

// The 4B bytes (B 32-bit words) of 32 codes of B bits, or zeros.
template <int B>
__device__ __forceinline__ void LoadCodeWords(const uint8_t* p, bool valid, uint32_t (&w)[B]) {
  if (!valid) {
#pragma unroll
    for (int i = 0; i < B; ++i) w[i] = 0;
    return;
  }
  if constexpr (B == 4) {
    const uint4 x = *reinterpret_cast<const uint4*>(p);
    w[0] = x.x, w[1] = x.y, w[2] = x.z, w[3] = x.w;
  } else if constexpr (B == 2) {
    const uint2 x = *reinterpret_cast<const uint2*>(p);
    w[0] = x.x, w[1] = x.y;
  } else {
#pragma unroll
    for (int i = 0; i < B; ++i) w[i] = reinterpret_cast<const uint32_t*>(p)[i];
  }
}

// Pair p (codes 2p and 2p+1) of 32 codes of B bits: a 2B-bit index into the pair table.
template <int B>
__device__ __forceinline__ uint32_t PairField(const uint32_t (&w)[B], int p) {
  const int bit = 2 * p * B, wi = bit >> 5, off = bit & 31;
  uint32_t v = w[wi] >> off;
  if (off + 2 * B > 32) v |= w[wi + 1] << (32 - off);
  return v & ((1u << (2 * B)) - 1u);
}

// Two QJL signs (bit = 1: +1) as an fp16 pair.
__device__ __forceinline__ uint32_t SignPair(uint32_t word, int p) {
  const uint32_t f = word >> (2 * p);
  return 0xBC00BC00u ^ (((f & 1u) << 15) | ((f & 2u) << 30));
}

// The 2B bytes of 16 codes of B bits (a value row's share of one lane), or zeros.
template <int B>
__device__ __forceinline__ uint64_t LoadValueBits(const uint8_t* p, bool valid) {
  if (!valid) return 0;
  if constexpr (B == 4) {
    const uint2 x = *reinterpret_cast<const uint2*>(p);
    return static_cast<uint64_t>(x.x) | (static_cast<uint64_t>(x.y) << 32);
  } else if constexpr (B == 2) {
    return *reinterpret_cast<const uint32_t*>(p);
  } else {
    uint64_t v = 0;
#pragma unroll
    for (int i = 0; i < B; ++i) {
      v |= static_cast<uint64_t>(reinterpret_cast<const uint16_t*>(p)[i]) << (16 * i);
    }
    return v;
  }
}

template <int B>
__device__ __forceinline__ uint32_t ValueField(uint64_t bits, int p) {
  return static_cast<uint32_t>(bits >> (2 * p * B)) & ((1u << (2 * B)) - 1u);
}

// Workspace layout (floats): partial [splits][heads][128], then ml [splits][heads][2].
struct Workspace {
  float* partial;
  float* ml;
};

Workspace Carve(float* base, int heads, int splits) {
  return {base, base + static_cast<int64_t>(splits) * heads * kD};
}

// ------------------------------------------------------------------------------------------------
// The rotated query, made by every CTA for its kv head's group (a few thousand flops: cheaper than
// a kernel launch and its serialization): qh = fp16(R q / max|R q|), scale = max|R q|; for kProd
// the same of S q. R is applied as two rounds of signs and a shared-memory FWHT for the Hadamard
// rotation, as a dense product otherwise.

struct QueryShared {
  float q[kMaxGroup][kD];
  float y[kMaxGroup][kD];
  __align__(16) uint16_t qh[kMaxGroup][kD];
  __align__(16) uint16_t sqh[kMaxGroup][kD];
  float scale[kMaxGroup];
  float sscale[kMaxGroup];
};

__device__ __forceinline__ void Fwht(float (&y)[kMaxGroup][kD], int group) {
  for (int len = 1; len < kD; len <<= 1) {
    for (int e = threadIdx.x; e < group * (kD / 2); e += blockDim.x) {
      const int h = e / (kD / 2), b = e % (kD / 2);
      const int j = (b / len) * 2 * len + (b % len);
      const float a = y[h][j], c = y[h][j + len];
      y[h][j] = a + c;
      y[h][j + len] = a - c;
    }
    __syncthreads();
  }
}

// y[h] = M q[h] for a row-major M^T given (m_t[j * 128 + i] = M[i][j]).
__device__ __forceinline__ void DenseProduct(const float* m_t, QueryShared& s) {
  for (int i = threadIdx.x; i < kD; i += blockDim.x) {
    float acc[kMaxGroup] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < kD; ++j) {
      const float m = m_t[j * kD + i];
#pragma unroll
      for (int h = 0; h < kMaxGroup; ++h) acc[h] += m * s.q[h][j];
    }
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) s.y[h][i] = acc[h];
  }
  __syncthreads();
}

// out[h] = fp16(y[h] * mult / scale[h]), scale[h] = max |y[h] * mult| (1 when 0; 0 past group).
__device__ __forceinline__ void ScaleToHalf(QueryShared& s, int group, float mult,
                                            uint16_t (&out)[kMaxGroup][kD], float* scale) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int h = warp; h < kMaxGroup; h += blockDim.x >> 5) {
    float m = 0.0f;
    for (int i = lane; i < kD; i += 32) m = fmaxf(m, fabsf(s.y[h][i] * mult));
    m = WarpMax(m);
    const float sc = h < group ? (m > 0.0f ? m : 1.0f) : 0.0f;
    for (int i = lane; i < kD; i += 32) {
      out[h][i] = h < group ? __half_as_ushort(__float2half_rn(s.y[h][i] * mult / sc)) : 0;
    }
    if (lane == 0) scale[h] = sc;
  }
  __syncthreads();
}

template <bool kProd>
__device__ __forceinline__ void PrepareQuery(const uint16_t* q, int hk, int group,
                                             const CodebookFormatDevice& f, QueryShared& s) {
  for (int e = threadIdx.x; e < kMaxGroup * kD; e += blockDim.x) {
    const int h = e / kD, i = e % kD;
    s.q[h][i] = h < group ? Bf16Bits(q[(hk * group + h) * kD + i]) : 0.0f;
  }
  __syncthreads();
  if (f.signs != nullptr) {  // R = H D2 H D1 / d
    for (int e = threadIdx.x; e < kMaxGroup * kD; e += blockDim.x) {
      const int h = e / kD, i = e % kD;
      s.y[h][i] = s.q[h][i] * f.signs[i];
    }
    __syncthreads();
    Fwht(s.y, group);
    for (int e = threadIdx.x; e < kMaxGroup * kD; e += blockDim.x) {
      const int h = e / kD, i = e % kD;
      s.y[h][i] *= f.signs[kD + i];
    }
    __syncthreads();
    Fwht(s.y, group);
    ScaleToHalf(s, group, 1.0f / kD, s.qh, s.scale);
  } else {
    DenseProduct(f.rotation_t, s);
    ScaleToHalf(s, group, 1.0f, s.qh, s.scale);
  }
  if constexpr (kProd) {
    DenseProduct(f.sketch_t, s);
    ScaleToHalf(s, group, 1.0f, s.sqh, s.sscale);
  }
}

// A lane's B fragments of a query: row `head` of qh (zeros when !valid), coordinates t4*32 .. +31
// as 16 pairs; pair 2i is b0 and pair 2i+1 is b1 of k-slice i.
__device__ __forceinline__ void LoadQueryPairs(const uint16_t* base, bool valid, int t4,
                                               uint32_t (&b)[16]) {
  if (!valid) {
#pragma unroll
    for (int i = 0; i < 16; ++i) b[i] = 0;
    return;
  }
  const uint4* p = reinterpret_cast<const uint4*>(base + t4 * 32);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint4 x = p[i];
    b[4 * i] = x.x, b[4 * i + 1] = x.y, b[4 * i + 2] = x.z, b[4 * i + 3] = x.w;
  }
}

// The key bytes of one 16-token tile a lane needs: rows g and g+8, its 32 coordinates.
template <int KB, bool kProd>
struct KeyTile {
  uint32_t w0[KB > 0 ? KB : 1], w1[KB > 0 ? KB : 1];
  uint16_t nu0, nu1, rho0, rho1;
  uint32_t s0, s1;
  bool v0, v1;
};

template <int KB, bool kProd>
__device__ __forceinline__ void LoadKeyTile(const CodebookRows& k, int64_t r0, int64_t r1, bool v0,
                                            bool v1, int t4, KeyTile<KB, kProd>& x) {
  x.v0 = v0;
  x.v1 = v1;
  if constexpr (KB > 0) {
    LoadCodeWords<KB>(k.codes + r0 * 16 * KB + t4 * 4 * KB, v0, x.w0);
    LoadCodeWords<KB>(k.codes + r1 * 16 * KB + t4 * 4 * KB, v1, x.w1);
    x.nu0 = v0 ? k.norms[r0] : 0;
    x.nu1 = v1 ? k.norms[r1] : 0;
  }
  if constexpr (kProd) {
    x.s0 = v0 ? reinterpret_cast<const uint32_t*>(k.qjl + r0 * 16)[t4] : 0u;
    x.s1 = v1 ? reinterpret_cast<const uint32_t*>(k.qjl + r1 * 16)[t4] : 0u;
    x.rho0 = v0 ? k.rnorms[r0] : 0;
    x.rho1 = v1 ? k.rnorms[r1] : 0;
  }
}

// Logits of a tile for the C fragment: (row g, head 2t4), (g, 2t4+1), (g+8, 2t4), (g+8, 2t4+1).
template <int KB, bool kProd>
__device__ __forceinline__ void TileLogits(const KeyTile<KB, kProd>& x, const uint32_t* s_table,
                                           const uint32_t (&qb)[16], const uint32_t (&sb)[16],
                                           float qs0, float qs1, float ss0, float ss1,
                                           float (&l)[4]) {
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float nu0 = 0.0f, nu1 = 0.0f;
  if constexpr (KB > 0) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      MmaF16(acc, s_table[PairField<KB>(x.w0, 2 * i)], s_table[PairField<KB>(x.w1, 2 * i)],
             s_table[PairField<KB>(x.w0, 2 * i + 1)], s_table[PairField<KB>(x.w1, 2 * i + 1)],
             qb[2 * i], qb[2 * i + 1]);
    }
    nu0 = HalfBits(x.nu0);
    nu1 = HalfBits(x.nu1);
  }
  float sacc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float rho0 = 0.0f, rho1 = 0.0f;
  if constexpr (kProd) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      MmaF16(sacc, SignPair(x.s0, 2 * i), SignPair(x.s1, 2 * i), SignPair(x.s0, 2 * i + 1),
             SignPair(x.s1, 2 * i + 1), sb[2 * i], sb[2 * i + 1]);
    }
    rho0 = HalfBits(x.rho0);
    rho1 = HalfBits(x.rho1);
  }
  l[0] = acc[0] * nu0 * qs0 + sacc[0] * rho0 * ss0;
  l[1] = acc[1] * nu0 * qs1 + sacc[1] * rho0 * ss1;
  l[2] = acc[2] * nu1 * qs0 + sacc[2] * rho1 * ss0;
  l[3] = acc[3] * nu1 * qs1 + sacc[3] * rho1 * ss1;
}

template <int KB>
__device__ __forceinline__ void LoadTable(const uint32_t* table, uint32_t* s_table) {
  if constexpr (KB > 0) {
    for (int i = threadIdx.x; i < (1 << (2 * KB)); i += blockDim.x) s_table[i] = table[i];
  }
}

// ------------------------------------------------------------------------------------------------
// Logits: grid (CTAs, kv_heads) filling the card once, 4 warps; each warp takes kTiles consecutive
// 16-token tiles at a time, all their loads issued before the first mma.

constexpr int kTiles = 4;

// The phases of the kernels below (logits, online softmax, rescale, P*V by MMA) follow
// attention/selected_attention.cu's; kept inline in each kernel (not a shared device function): its
// loop bounds are the kernel's own compile-time tile constants, and a shared version changes
// register use; merging them is a kernel change to measure on an H100 first (CUDA_NOTES.md).
template <int KB, bool kProd, bool kBf16Out>
__global__ void __launch_bounds__(kWarps * 32)
    codebook_logits_kernel2(const uint16_t* q, CodebookFormatDevice f, CodebookRows k, int heads,
                            int kv_heads, int64_t tokens, void* out) {
  __shared__ QueryShared sq;
  __shared__ uint32_t s_table[256];
  const int hk = blockIdx.y, group = heads / kv_heads;
  LoadTable<KB>(f.pair_table, s_table);
  PrepareQuery<kProd>(q, hk, group, f, sq);
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  uint32_t qb[16], sb[16];
  LoadQueryPairs(sq.qh[g], g < group, t4, qb);
  LoadQueryPairs(sq.sqh[g], kProd && g < group, t4, sb);
  const int h0 = 2 * t4, h1 = 2 * t4 + 1;
  const float qs0 = sq.scale[h0], qs1 = sq.scale[h1];
  const float ss0 = kProd ? sq.sscale[h0] * f.qjl_scale : 0.0f;
  const float ss1 = kProd ? sq.sscale[h1] * f.qjl_scale : 0.0f;
  const int64_t tiles = (tokens + 15) / 16;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarps;
  const int64_t o0 = static_cast<int64_t>(hk * group + h0) * tokens;
  const int64_t o1 = static_cast<int64_t>(hk * group + h1) * tokens;
  for (int64_t base = (blockIdx.x * kWarps + (threadIdx.x >> 5)) * kTiles; base < tiles;
       base += warps * kTiles) {
    KeyTile<KB, kProd> x[kTiles];
#pragma unroll
    for (int u = 0; u < kTiles; ++u) {
      const int64_t t0 = (base + u) * 16 + g, t1 = t0 + 8;
      LoadKeyTile<KB, kProd>(k, t0 * kv_heads + hk, t1 * kv_heads + hk, t0 < tokens, t1 < tokens,
                             t4, x[u]);
    }
#pragma unroll
    for (int u = 0; u < kTiles; ++u) {
      float l[4];
      TileLogits<KB, kProd>(x[u], s_table, qb, sb, qs0, qs1, ss0, ss1, l);
      const int64_t t0 = (base + u) * 16 + g, t1 = t0 + 8;
      if (h0 < group && x[u].v0) Store<kBf16Out>(out, o0 + t0, l[0]);
      if (h1 < group && x[u].v0) Store<kBf16Out>(out, o1 + t0, l[1]);
      if (h0 < group && x[u].v1) Store<kBf16Out>(out, o0 + t1, l[2]);
      if (h1 < group && x[u].v1) Store<kBf16Out>(out, o1 + t1, l[3]);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Attention: grid (splits, kv_heads) filling the card once, 4 warps; a CTA takes a span of
// history in sub-chunks of up to 512 tokens with an online softmax across them.

template <int KB, bool kProd, int VB>
__global__ void __launch_bounds__(kWarps * 32)
    codebook_attention_kernel2(const uint16_t* q, CodebookFormatDevice kf, CodebookRows k,
                               CodebookFormatDevice vf, CodebookRows v, int heads, int kv_heads,
                               int64_t tokens, int64_t span, float scale_log2, Workspace ws) {
  __shared__ float s_logit[kMaxGroup * kMaxChunk];  // at the end the cross-warp sum [4][8][128]
  __shared__ __align__(16) uint16_t s_p[kMaxGroup * kMaxChunk];  // fp16 p * nu, [head][token]
  __shared__ uint32_t s_ktable[256], s_vtable[256];
  __shared__ QueryShared sq;
  __shared__ float s_m[kMaxGroup], s_l[kMaxGroup], s_alpha[kMaxGroup];
  const int split = blockIdx.x, hk = blockIdx.y, group = heads / kv_heads;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  LoadTable<KB>(kf.pair_table, s_ktable);
  LoadTable<VB>(vf.pair_table, s_vtable);
  if (threadIdx.x < kMaxGroup) {
    s_m[threadIdx.x] = -INFINITY;
    s_l[threadIdx.x] = 0.0f;
    s_alpha[threadIdx.x] = 1.0f;
  }
  PrepareQuery<kProd>(q, hk, group, kf, sq);
  uint32_t qb[16], sb[16];
  LoadQueryPairs(sq.qh[g], g < group, t4, qb);
  LoadQueryPairs(sq.sqh[g], kProd && g < group, t4, sb);
  const int h0 = 2 * t4, h1 = 2 * t4 + 1;
  const float qs0 = sq.scale[h0] * scale_log2, qs1 = sq.scale[h1] * scale_log2;
  const float ss0 = kProd ? sq.sscale[h0] * kf.qjl_scale * scale_log2 : 0.0f;
  const float ss1 = kProd ? sq.sscale[h1] * kf.qjl_scale * scale_log2 : 0.0f;

  float acc[8][4];
#pragma unroll
  for (int i = 0; i < 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
  const int64_t end = min(tokens, (split + 1) * span);
  for (int64_t begin = split * span; begin < end; begin += kMaxChunk) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kMaxChunk), end - begin));
    const int ntiles = (n + 15) / 16;

    // Phase 1: scaled logits (log2 domain) into s_logit[head][token], two tiles at a time.
    for (int tile = warp * 2; tile < ntiles; tile += kWarps * 2) {
      KeyTile<KB, kProd> x[2];
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int l0 = (tile + u) * 16 + g, l1 = l0 + 8;
        LoadKeyTile<KB, kProd>(k, (begin + l0) * kv_heads + hk, (begin + l1) * kv_heads + hk,
                               l0 < n, l1 < n, t4, x[u]);
      }
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        if (tile + u >= ntiles) break;
        float l[4];
        TileLogits<KB, kProd>(x[u], s_ktable, qb, sb, qs0, qs1, ss0, ss1, l);
        const int l0 = (tile + u) * 16 + g, l1 = l0 + 8;
        if (h0 < group) {
          s_logit[h0 * kMaxChunk + l0] = x[u].v0 ? l[0] : -INFINITY;
          s_logit[h0 * kMaxChunk + l1] = x[u].v1 ? l[2] : -INFINITY;
        }
        if (h1 < group) {
          s_logit[h1 * kMaxChunk + l0] = x[u].v0 ? l[1] : -INFINITY;
          s_logit[h1 * kMaxChunk + l1] = x[u].v1 ? l[3] : -INFINITY;
        }
      }
    }
    __syncthreads();

    // Phase 2: the running max and sum per head; s_p = fp16(2^(l - max) * nu_v).
    for (int h = warp; h < kMaxGroup; h += kWarps) {
      if (h >= group) {
        for (int i = lane; i < ntiles * 16; i += 32) s_p[h * kMaxChunk + i] = 0;
        continue;
      }
      float m = -INFINITY;
      for (int i = lane; i < n; i += 32) m = fmaxf(m, s_logit[h * kMaxChunk + i]);
      m = fmaxf(WarpMax(m), s_m[h]);
      float l = 0.0f;
      for (int i = lane; i < ntiles * 16; i += 32) {
        const bool valid = i < n;
        const float p = valid ? exp2f(s_logit[h * kMaxChunk + i] - m) : 0.0f;
        const float nu = valid ? HalfBits(v.norms[(begin + i) * kv_heads + hk]) : 0.0f;
        l += p;
        s_p[h * kMaxChunk + i] = __half_as_ushort(__float2half_rn(p * nu));
      }
      l = WarpSum(l);
      if (lane == 0) {
        const float alpha = exp2f(s_m[h] - m);  // 0 on the first sub-chunk (s_m = -inf)
        s_l[h] = s_l[h] * alpha + l;
        s_m[h] = m;
        s_alpha[h] = alpha;
      }
    }
    __syncthreads();

    // Phase 3: rescale, then out^T[coord][head] += V^T P^T over 16-token slices, two at a time.
    // Lane (g, t4) holds coordinates g*16 .. g*16+15 of tokens 2t4, 2t4+1, 2t4+8, 2t4+9; m-tile i
    // covers coordinates g*16+2i (row g) and g*16+2i+1 (row g+8).
    {
      const float a0 = s_alpha[h0], a1 = s_alpha[h1];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        acc[i][0] *= a0;
        acc[i][1] *= a1;
        acc[i][2] *= a0;
        acc[i][3] *= a1;
      }
    }
    for (int slice = warp * 2; slice < ntiles; slice += kWarps * 2) {
      uint64_t bits[2][4];
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int la = (slice + u) * 16 + 2 * t4;
        const int lt[4] = {la, la + 1, la + 8, la + 9};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          bits[u][j] = LoadValueBits<VB>(
              v.codes + ((begin + lt[j]) * kv_heads + hk) * 16 * VB + g * 2 * VB, lt[j] < n);
        }
      }
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        if (slice + u >= ntiles) break;
        const int la = (slice + u) * 16 + 2 * t4;
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(&s_p[g * kMaxChunk + la]);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(&s_p[g * kMaxChunk + la + 8]);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const uint32_t pa = s_vtable[ValueField<VB>(bits[u][0], i)];
          const uint32_t pb = s_vtable[ValueField<VB>(bits[u][1], i)];
          const uint32_t pc = s_vtable[ValueField<VB>(bits[u][2], i)];
          const uint32_t pd = s_vtable[ValueField<VB>(bits[u][3], i)];
          MmaF16(acc[i], __byte_perm(pa, pb, 0x5410), __byte_perm(pa, pb, 0x7632),
                 __byte_perm(pc, pd, 0x5410), __byte_perm(pc, pd, 0x7632), b0, b1);
        }
      }
    }
    __syncthreads();  // s_logit and s_p are rewritten by the next sub-chunk
  }

  // Phase 4: sum the warps, write the span's partial out (rotated domain), max and sum.
  float* s_red = s_logit;  // [warp][head 0..7][coord]
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int c0 = g * 16 + 2 * i, c1 = c0 + 1;
    s_red[(warp * 8 + h0) * kD + c0] = acc[i][0];
    s_red[(warp * 8 + h1) * kD + c0] = acc[i][1];
    s_red[(warp * 8 + h0) * kD + c1] = acc[i][2];
    s_red[(warp * 8 + h1) * kD + c1] = acc[i][3];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < group * kD; e += blockDim.x) {
    const int h = e / kD, c = e % kD;
    const float sum = s_red[(0 * 8 + h) * kD + c] + s_red[(1 * 8 + h) * kD + c] +
                      s_red[(2 * 8 + h) * kD + c] + s_red[(3 * 8 + h) * kD + c];
    ws.partial[(static_cast<int64_t>(split) * heads + hk * group + h) * kD + c] = sum;
  }
  if (threadIdx.x < group) {
    const int64_t at = (static_cast<int64_t>(split) * heads + hk * group + threadIdx.x) * 2;
    ws.ml[at] = s_m[threadIdx.x];
    ws.ml[at + 1] = s_l[threadIdx.x];
  }
}

// Merges the spans of one query head and unrotates once: out = R^T (sum_s w_s acc_s / sum_s w_s
// l_s), w_s = 2^(m_s - max m). One CTA of 512 threads a query head: 4 parts of 128 coordinates
// share the spans, then the four quarters of R^T.
template <bool kBf16Out>
__global__ void __launch_bounds__(512) codebook_merge_kernel2(Workspace ws, int splits, int heads,
                                                              const float* rotation, void* out) {
  __shared__ float s_part[4][kD];
  __shared__ float s_a[kD];
  __shared__ float s_red[16], s_lp[4];
  const int h = blockIdx.x, part = threadIdx.x >> 7, j = threadIdx.x & (kD - 1);
  float m = -INFINITY;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) {
    m = fmaxf(m, ws.ml[(static_cast<int64_t>(s) * heads + h) * 2]);
  }
  m = WarpMax(m);
  if ((threadIdx.x & 31) == 0) s_red[threadIdx.x >> 5] = m;
  __syncthreads();
  m = s_red[0];
  for (int w = 1; w < 16; ++w) m = fmaxf(m, s_red[w]);
  float l = 0.0f, a = 0.0f;
#pragma unroll 4
  for (int s = part; s < splits; s += 4) {
    const int64_t at = static_cast<int64_t>(s) * heads + h;
    const float w = exp2f(ws.ml[at * 2] - m);
    l += w * ws.ml[at * 2 + 1];
    a += w * ws.partial[at * kD + j];
  }
  s_part[part][j] = a;
  if (j == 0) s_lp[part] = l;
  __syncthreads();
  if (threadIdx.x < kD) {
    s_a[j] = (s_part[0][j] + s_part[1][j] + s_part[2][j] + s_part[3][j]) /
             (s_lp[0] + s_lp[1] + s_lp[2] + s_lp[3]);
  }
  __syncthreads();
  float o = 0.0f;  // (R^T a)_j over rows part*32 .. part*32+31
#pragma unroll 8
  for (int i = part * 32; i < part * 32 + 32; ++i) o += rotation[i * kD + j] * s_a[i];
  s_part[part][j] = o;
  __syncthreads();
  if (threadIdx.x < kD) {
    Store<kBf16Out>(out, static_cast<int64_t>(h) * kD + j,
                    s_part[0][j] + s_part[1][j] + s_part[2][j] + s_part[3][j]);
  }
}

// ------------------------------------------------------------------------------------------------
// Dense baseline: logits from a bf16 cache with the same tiles (bf16 mma, the query unrotated).

template <bool kBf16Out>
__global__ void __launch_bounds__(kWarps * 32)
    dense_logits_kernel1(const uint16_t* q, const uint16_t* k, int heads, int kv_heads,
                         int64_t tokens, void* out) {
  const int hk = blockIdx.y, group = heads / kv_heads;
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  uint32_t qb[16];
  LoadQueryPairs(q + (hk * group + g) * kD, g < group, t4, qb);
  const int h0 = 2 * t4, h1 = 2 * t4 + 1;
  const int64_t tiles = (tokens + 15) / 16;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t tile = blockIdx.x * kWarps + (threadIdx.x >> 5); tile < tiles; tile += warps) {
    const int64_t t0 = tile * 16 + g, t1 = t0 + 8;
    const bool v0 = t0 < tokens, v1 = t1 < tokens;
    uint32_t w0[16], w1[16];
    LoadQueryPairs(k + (t0 * kv_heads + hk) * kD, v0, t4, w0);
    LoadQueryPairs(k + (t1 * kv_heads + hk) * kD, v1, t4, w1);
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      MmaBf16(acc, w0[2 * i], w1[2 * i], w0[2 * i + 1], w1[2 * i + 1], qb[2 * i], qb[2 * i + 1]);
    }
    const int64_t o0 = static_cast<int64_t>(hk * group + h0) * tokens;
    const int64_t o1 = static_cast<int64_t>(hk * group + h1) * tokens;
    if (h0 < group && v0) Store<kBf16Out>(out, o0 + t0, acc[0]);
    if (h1 < group && v0) Store<kBf16Out>(out, o1 + t0, acc[1]);
    if (h0 < group && v1) Store<kBf16Out>(out, o0 + t1, acc[2]);
    if (h1 < group && v1) Store<kBf16Out>(out, o1 + t1, acc[3]);
  }
}

// ------------------------------------------------------------------------------------------------
// Dispatch.

bool Supported(const CodebookShape& s) {
  return s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0 &&
         s.heads / s.kv_heads <= kMaxGroup && s.tokens >= 1;
}

// Resident CTAs of 128 threads an SM for `kernel` (computed once an instantiation).
template <typename Kernel>
int CtasPerSm(Kernel kernel) {
  int n = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kWarps * 32, 0) != cudaSuccess ||
      n < 1) {
    n = 1;
  }
  return n;
}

template <int KB, bool kProd, bool kBf16Out>
cudaError_t LogitsFor(const uint16_t* q, const CodebookFormatDevice& f, const CodebookRows& k,
                      const CodebookShape& s, void* out, int multiprocessors,
                      cudaStream_t stream) {
  static const int per_sm = CtasPerSm(codebook_logits_kernel2<KB, kProd, kBf16Out>);
  const int64_t tiles = (s.tokens + 15) / 16;
  const int64_t wanted = (tiles + kWarps * kTiles - 1) / (kWarps * kTiles);
  const int64_t fill = std::max<int64_t>(1, static_cast<int64_t>(per_sm) * multiprocessors / s.kv_heads);
  const dim3 grid(static_cast<unsigned>(std::max<int64_t>(1, std::min(wanted, fill))), s.kv_heads);
  codebook_logits_kernel2<KB, kProd, kBf16Out>
      <<<grid, kWarps * 32, 0, stream>>>(q, f, k, s.heads, s.kv_heads, s.tokens, out);
  return cudaGetLastError();
}

struct LogitsCall {
  const uint16_t* q;
  CodebookFormatDevice f;
  CodebookRows k;
  CodebookShape s;
  void* out;
  bool out_bf16;
  int multiprocessors;
  cudaStream_t stream;
  template <int KB, bool kProd>
  cudaError_t operator()() const {
    return out_bf16 ? LogitsFor<KB, kProd, true>(q, f, k, s, out, multiprocessors, stream)
                    : LogitsFor<KB, kProd, false>(q, f, k, s, out, multiprocessors, stream);
  }
};

template <bool kBf16Out>
void Merge(const Workspace& ws, int splits, const CodebookShape& s, const float* rotation,
           void* out, cudaStream_t stream) {
  codebook_merge_kernel2<kBf16Out><<<s.heads, 512, 0, stream>>>(ws, splits, s.heads, rotation, out);
}

template <int KB, bool kProd, int VB>
cudaError_t AttentionFor(const uint16_t* q, const CodebookFormatDevice& kf, const CodebookRows& k,
                         const CodebookFormatDevice& vf, const CodebookRows& v,
                         const CodebookShape& s, float scale_log2, void* out, bool out_bf16,
                         float* workspace, int multiprocessors, cudaStream_t stream) {
  static const int per_sm = CtasPerSm(codebook_attention_kernel2<KB, kProd, VB>);
  const CodebookSplit plan = PlanCodebookAttention(s, multiprocessors, per_sm);
  const Workspace ws = Carve(workspace, s.heads, plan.splits);
  codebook_attention_kernel2<KB, kProd, VB><<<dim3(plan.splits, s.kv_heads), kWarps * 32, 0, stream>>>(
      q, kf, k, vf, v, s.heads, s.kv_heads, s.tokens, plan.chunk, scale_log2, ws);
  if (out_bf16) {
    Merge<true>(ws, plan.splits, s, vf.rotation, out, stream);
  } else {
    Merge<false>(ws, plan.splits, s, vf.rotation, out, stream);
  }
  return cudaGetLastError();
}

struct AttentionCall {
  const uint16_t* q;
  CodebookFormatDevice kf;
  CodebookRows k;
  CodebookFormatDevice vf;
  CodebookRows v;
  CodebookShape s;
  float scale_log2;
  void* out;
  bool out_bf16;
  float* workspace;
  int multiprocessors;
  cudaStream_t stream;
  template <int KB, bool kProd>
  cudaError_t operator()() const {
    switch (vf.mse_bits) {
      case 1:
        return AttentionFor<KB, kProd, 1>(q, kf, k, vf, v, s, scale_log2, out, out_bf16, workspace,
                                          multiprocessors, stream);
      case 2:
        return AttentionFor<KB, kProd, 2>(q, kf, k, vf, v, s, scale_log2, out, out_bf16, workspace,
                                          multiprocessors, stream);
      case 3:
        return AttentionFor<KB, kProd, 3>(q, kf, k, vf, v, s, scale_log2, out, out_bf16, workspace,
                                          multiprocessors, stream);
      case 4:
        return AttentionFor<KB, kProd, 4>(q, kf, k, vf, v, s, scale_log2, out, out_bf16, workspace,
                                          multiprocessors, stream);
    }
    return cudaErrorInvalidValue;
  }
};

// Calls fn.template operator()<KB, kProd>() for the key format, or returns InvalidValue.
template <typename Fn>
cudaError_t DispatchKey(const CodebookFormatDevice& f, const Fn& fn) {
  if (!f.prod) {
    switch (f.mse_bits) {
      case 1:
        return fn.template operator()<1, false>();
      case 2:
        return fn.template operator()<2, false>();
      case 3:
        return fn.template operator()<3, false>();
      case 4:
        return fn.template operator()<4, false>();
    }
  } else {
    switch (f.mse_bits) {
      case 0:
        return fn.template operator()<0, true>();
      case 1:
        return fn.template operator()<1, true>();
      case 2:
        return fn.template operator()<2, true>();
      case 3:
        return fn.template operator()<3, true>();
    }
  }
  return cudaErrorInvalidValue;
}

// The most spans any plan makes: resident CTAs of 128 threads are at most 32 an SM.
constexpr int kMaxCtasPerSm = 32;

}  // namespace

CodebookSplit PlanCodebookAttention(const CodebookShape& shape, int multiprocessors,
                                    int ctas_per_sm) {
  const int64_t t = std::max<int64_t>(shape.tokens, 1);
  const int64_t per_sm = std::min(std::max(ctas_per_sm, 1), kMaxCtasPerSm);
  const int64_t target =
      std::max<int64_t>(1, per_sm * multiprocessors / std::max(shape.kv_heads, 1));
  const int64_t splits = std::min((t + 63) / 64, target);
  const int64_t span = ((t + splits - 1) / splits + 63) / 64 * 64;
  CodebookSplit plan;
  plan.chunk = static_cast<int>(span);
  plan.splits = static_cast<int>((t + span - 1) / span);
  return plan;
}

std::int64_t CodebookLogitsWorkspaceFloats(const CodebookShape& shape) { return 0; }

std::int64_t CodebookAttentionWorkspaceFloats(const CodebookShape& shape, int multiprocessors) {
  // Bounds the splits of every plan for tokens <= shape.tokens.
  const int64_t t = std::max<int64_t>(shape.tokens, 1);
  const int64_t splits =
      std::min((t + 63) / 64, std::max<int64_t>(1, static_cast<int64_t>(kMaxCtasPerSm) *
                                                        multiprocessors /
                                                        std::max(shape.kv_heads, 1)));
  return splits * shape.heads * (kD + 2);
}

cudaError_t LaunchCodebookLogits(const std::uint16_t* q, const CodebookFormatDevice& format,
                                 const CodebookRows& k, const CodebookShape& shape, void* out,
                                 bool out_bf16, float* /*workspace*/, int multiprocessors,
                                 cudaStream_t stream) {
  if (!Supported(shape)) return cudaErrorInvalidValue;
  const LogitsCall call{q, format, k, shape, out, out_bf16, multiprocessors, stream};
  return DispatchKey(format, call);
}

cudaError_t LaunchCodebookAttention(const std::uint16_t* q, const CodebookFormatDevice& k_format,
                                    const CodebookRows& k, const CodebookFormatDevice& v_format,
                                    const CodebookRows& v, const CodebookShape& shape, float scale,
                                    void* out, bool out_bf16, float* workspace,
                                    int multiprocessors, cudaStream_t stream) {
  if (!Supported(shape) || v_format.prod || v_format.mse_bits < 1 || v_format.mse_bits > 4) {
    return cudaErrorInvalidValue;
  }
  const AttentionCall call{q,     k_format, k,        v_format,  v,
                           shape, scale * 1.4426950408889634f, out, out_bf16, workspace,
                           multiprocessors, stream};
  return DispatchKey(k_format, call);
}

cudaError_t LaunchDenseLogits(const std::uint16_t* q, const std::uint16_t* k,
                              const CodebookShape& shape, void* out, bool out_bf16,
                              int multiprocessors, cudaStream_t stream) {
  if (!Supported(shape)) return cudaErrorInvalidValue;
  const int64_t tiles = (shape.tokens + 15) / 16;
  const int64_t wanted = (tiles + 2 * kWarps - 1) / (2 * kWarps);
  const int64_t cap = std::max<int64_t>(1, 8LL * multiprocessors / shape.kv_heads);
  const dim3 grid(static_cast<unsigned>(std::max<int64_t>(1, std::min(wanted, cap))),
                  shape.kv_heads);
  if (out_bf16) {
    dense_logits_kernel1<true>
        <<<grid, kWarps * 32, 0, stream>>>(q, k, shape.heads, shape.kv_heads, shape.tokens, out);
  } else {
    dense_logits_kernel1<false>
        <<<grid, kWarps * 32, 0, stream>>>(q, k, shape.heads, shape.kv_heads, shape.tokens, out);
  }
  return cudaGetLastError();
}

}  // namespace kvgate::kernels::cuda
