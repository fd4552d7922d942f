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

// Workspace layout (floats): qh fp16 [heads][128], sqh fp16 [heads][128], qscale [heads],
// sqscale [heads], then (attention) partial [splits][heads][128] and ml [splits][heads][2].
struct Workspace {
  uint16_t* qh;
  uint16_t* sqh;
  float* qscale;
  float* sqscale;
  float* partial;
  float* ml;
};

int64_t QueryFloats(int heads) { return (2 * heads * kD / 2 + 2 * heads + 3) / 4 * 4; }

Workspace Carve(float* base, int heads, int splits) {
  Workspace w;
  w.qh = reinterpret_cast<uint16_t*>(base);
  w.sqh = w.qh + heads * kD;
  w.qscale = base + heads * kD;  // after 2 * heads * 128 halves
  w.sqscale = w.qscale + heads;
  w.partial = base + QueryFloats(heads);
  w.ml = w.partial + static_cast<int64_t>(splits) * heads * kD;
  return w;
}

// ------------------------------------------------------------------------------------------------
// The rotated query: qh = R q / max|R q| (fp16) and qscale = max|R q|; for kProd the same of S q.
// One CTA of 128 threads a query head.

__device__ __forceinline__ float BlockMaxAbs(float x, float* s_red) {
  x = WarpMax(fabsf(x));
  const int warp = threadIdx.x >> 5;
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s_red[warp] = x;
  __syncthreads();
  return fmaxf(fmaxf(s_red[0], s_red[1]), fmaxf(s_red[2], s_red[3]));
}

__global__ void __launch_bounds__(kD) codebook_prepare_query_kernel1(const uint16_t* q,
                                                                      const float* rotation_t,
                                                                      const float* sketch_t,
                                                                      Workspace ws) {
  __shared__ float s_q[kD];
  __shared__ float s_red[4];
  const int h = blockIdx.x, i = threadIdx.x;
  s_q[i] = Bf16Bits(q[h * kD + i]);
  __syncthreads();
  float y = 0.0f;
  for (int j = 0; j < kD; ++j) y += rotation_t[j * kD + i] * s_q[j];
  float m = BlockMaxAbs(y, s_red);
  float scale = m > 0.0f ? m : 1.0f;
  ws.qh[h * kD + i] = __half_as_ushort(__float2half_rn(y / scale));
  if (i == 0) ws.qscale[h] = scale;
  if (sketch_t != nullptr) {
    float z = 0.0f;
    for (int j = 0; j < kD; ++j) z += sketch_t[j * kD + i] * s_q[j];
    m = BlockMaxAbs(z, s_red);
    scale = m > 0.0f ? m : 1.0f;
    ws.sqh[h * kD + i] = __half_as_ushort(__float2half_rn(z / scale));
    if (i == 0) ws.sqscale[h] = scale;
  }
}

// A lane's B fragments of a query: head `head` (zeros when !valid), coordinates t4*32 .. +31 as 16
// pairs; pair 2i is b0 and pair 2i+1 is b1 of k-slice i.
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

// Logits of one 16-token tile for the C fragment: rows tokens g and g+8, columns query heads 2t4
// and 2t4+1 of the group. Scales: qs* (codes) and ss* (QJL, qjl_scale folded in) per column.
template <int KB, bool kProd>
struct TileLogits {
  float v[4];  // (t0, h0), (t0, h1), (t1, h0), (t1, h1)
};

template <int KB, bool kProd>
__device__ __forceinline__ TileLogits<KB, kProd> ComputeTile(
    const CodebookRows& k, const uint32_t* s_table, const uint32_t (&qb)[16],
    const uint32_t (&sb)[16], int64_t r0, int64_t r1, bool v0, bool v1, int t4, float qs0,
    float qs1, float ss0, float ss1) {
  TileLogits<KB, kProd> out;
  float nu0 = 0.0f, nu1 = 0.0f, rho0 = 0.0f, rho1 = 0.0f;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if constexpr (KB > 0) {
    uint32_t w0[KB], w1[KB];
    LoadCodeWords<KB>(k.codes + r0 * 16 * KB + t4 * 4 * KB, v0, w0);
    LoadCodeWords<KB>(k.codes + r1 * 16 * KB + t4 * 4 * KB, v1, w1);
    nu0 = v0 ? HalfBits(k.norms[r0]) : 0.0f;
    nu1 = v1 ? HalfBits(k.norms[r1]) : 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      MmaF16(acc, s_table[PairField<KB>(w0, 2 * i)], s_table[PairField<KB>(w1, 2 * i)],
             s_table[PairField<KB>(w0, 2 * i + 1)], s_table[PairField<KB>(w1, 2 * i + 1)],
             qb[2 * i], qb[2 * i + 1]);
    }
  }
  float sacc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if constexpr (kProd) {
    const uint32_t s0 = v0 ? reinterpret_cast<const uint32_t*>(k.qjl + r0 * 16)[t4] : 0u;
    const uint32_t s1 = v1 ? reinterpret_cast<const uint32_t*>(k.qjl + r1 * 16)[t4] : 0u;
    rho0 = v0 ? HalfBits(k.rnorms[r0]) : 0.0f;
    rho1 = v1 ? HalfBits(k.rnorms[r1]) : 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      MmaF16(sacc, SignPair(s0, 2 * i), SignPair(s1, 2 * i), SignPair(s0, 2 * i + 1),
             SignPair(s1, 2 * i + 1), sb[2 * i], sb[2 * i + 1]);
    }
  }
  out.v[0] = acc[0] * nu0 * qs0 + sacc[0] * rho0 * ss0;
  out.v[1] = acc[1] * nu0 * qs1 + sacc[1] * rho0 * ss1;
  out.v[2] = acc[2] * nu1 * qs0 + sacc[2] * rho1 * ss0;
  out.v[3] = acc[3] * nu1 * qs1 + sacc[3] * rho1 * ss1;
  return out;
}

template <int KB>
__device__ __forceinline__ void LoadTable(const uint32_t* table, uint32_t* s_table) {
  if constexpr (KB > 0) {
    for (int i = threadIdx.x; i < (1 << (2 * KB)); i += blockDim.x) s_table[i] = table[i];
  }
}

// ------------------------------------------------------------------------------------------------
// Logits: grid (CTAs, kv_heads), 4 warps; warps stride over 16-token tiles.

template <int KB, bool kProd, bool kBf16Out>
__global__ void __launch_bounds__(kWarps * 32)
    codebook_logits_kernel1(Workspace ws, CodebookFormatDevice f, CodebookRows k, int heads,
                            int kv_heads, int64_t tokens, void* out) {
  __shared__ uint32_t s_table[256];
  LoadTable<KB>(f.pair_table, s_table);
  __syncthreads();
  const int hk = blockIdx.y, group = heads / kv_heads;
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  uint32_t qb[16], sb[16];
  LoadQueryPairs(ws.qh + (hk * group + g) * kD, g < group, t4, qb);
  LoadQueryPairs(ws.sqh + (hk * group + g) * kD, kProd && g < group, t4, sb);
  const int h0 = 2 * t4, h1 = 2 * t4 + 1;
  const float qs0 = h0 < group ? ws.qscale[hk * group + h0] : 0.0f;
  const float qs1 = h1 < group ? ws.qscale[hk * group + h1] : 0.0f;
  const float ss0 = kProd && h0 < group ? ws.sqscale[hk * group + h0] * f.qjl_scale : 0.0f;
  const float ss1 = kProd && h1 < group ? ws.sqscale[hk * group + h1] * f.qjl_scale : 0.0f;
  const int64_t tiles = (tokens + 15) / 16;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t tile = blockIdx.x * kWarps + (threadIdx.x >> 5); tile < tiles; tile += warps) {
    const int64_t t0 = tile * 16 + g, t1 = t0 + 8;
    const bool v0 = t0 < tokens, v1 = t1 < tokens;
    const TileLogits<KB, kProd> l =
        ComputeTile<KB, kProd>(k, s_table, qb, sb, t0 * kv_heads + hk, t1 * kv_heads + hk, v0, v1,
                               t4, qs0, qs1, ss0, ss1);
    const int64_t o0 = static_cast<int64_t>(hk * group + h0) * tokens;
    const int64_t o1 = static_cast<int64_t>(hk * group + h1) * tokens;
    if (h0 < group && v0) Store<kBf16Out>(out, o0 + t0, l.v[0]);
    if (h1 < group && v0) Store<kBf16Out>(out, o1 + t0, l.v[1]);
    if (h0 < group && v1) Store<kBf16Out>(out, o0 + t1, l.v[2]);
    if (h1 < group && v1) Store<kBf16Out>(out, o1 + t1, l.v[3]);
  }
}

// ------------------------------------------------------------------------------------------------
// Attention: grid (splits, kv_heads), 4 warps; one chunk of history a CTA.

template <int KB, bool kProd, int VB>
__global__ void __launch_bounds__(kWarps * 32)
    codebook_attention_kernel1(Workspace ws, CodebookFormatDevice kf, CodebookRows k,
                               CodebookFormatDevice vf, CodebookRows v, int heads, int kv_heads,
                               int64_t tokens, int chunk, float scale_log2) {
  __shared__ float s_logit[kMaxGroup * kMaxChunk];  // later the cross-warp sum [4][8][128]
  __shared__ __align__(16) uint16_t s_p[kMaxGroup * kMaxChunk];  // fp16 p * nu, [head][token]
  __shared__ uint32_t s_ktable[256], s_vtable[256];
  __shared__ float s_m[kMaxGroup], s_l[kMaxGroup];
  LoadTable<KB>(kf.pair_table, s_ktable);
  LoadTable<VB>(vf.pair_table, s_vtable);
  __syncthreads();
  const int split = blockIdx.x, hk = blockIdx.y, group = heads / kv_heads;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int64_t begin = static_cast<int64_t>(split) * chunk;
  const int n = static_cast<int>(min(static_cast<int64_t>(chunk), tokens - begin));

  // Phase 1: scaled logits (log2 domain) of the chunk into s_logit[head][token].
  {
    uint32_t qb[16], sb[16];
    LoadQueryPairs(ws.qh + (hk * group + g) * kD, g < group, t4, qb);
    LoadQueryPairs(ws.sqh + (hk * group + g) * kD, kProd && g < group, t4, sb);
    const int h0 = 2 * t4, h1 = 2 * t4 + 1;
    const float qs0 = h0 < group ? ws.qscale[hk * group + h0] * scale_log2 : 0.0f;
    const float qs1 = h1 < group ? ws.qscale[hk * group + h1] * scale_log2 : 0.0f;
    const float ss0 =
        kProd && h0 < group ? ws.sqscale[hk * group + h0] * kf.qjl_scale * scale_log2 : 0.0f;
    const float ss1 =
        kProd && h1 < group ? ws.sqscale[hk * group + h1] * kf.qjl_scale * scale_log2 : 0.0f;
    for (int tile = warp; tile < chunk / 16; tile += kWarps) {
      const int l0 = tile * 16 + g, l1 = l0 + 8;
      const bool v0 = l0 < n, v1 = l1 < n;
      const TileLogits<KB, kProd> l = ComputeTile<KB, kProd>(
          k, s_ktable, qb, sb, (begin + l0) * kv_heads + hk, (begin + l1) * kv_heads + hk, v0, v1,
          t4, qs0, qs1, ss0, ss1);
      if (h0 < group) {
        s_logit[h0 * kMaxChunk + l0] = v0 ? l.v[0] : -INFINITY;
        s_logit[h0 * kMaxChunk + l1] = v1 ? l.v[2] : -INFINITY;
      }
      if (h1 < group) {
        s_logit[h1 * kMaxChunk + l0] = v0 ? l.v[1] : -INFINITY;
        s_logit[h1 * kMaxChunk + l1] = v1 ? l.v[3] : -INFINITY;
      }
    }
  }
  __syncthreads();

  // Phase 2: per head, the chunk's max and sum; s_p = fp16(2^(l - max) * nu_v).
  for (int h = warp; h < kMaxGroup; h += kWarps) {
    if (h >= group) {
      for (int i = lane; i < chunk; i += 32) s_p[h * kMaxChunk + i] = 0;
      continue;
    }
    float m = -INFINITY;
    for (int i = lane; i < chunk; i += 32) m = fmaxf(m, s_logit[h * kMaxChunk + i]);
    m = WarpMax(m);
    float l = 0.0f;
    for (int i = lane; i < chunk; i += 32) {
      const bool valid = i < n;
      const float p = valid ? exp2f(s_logit[h * kMaxChunk + i] - m) : 0.0f;
      const float nu = valid ? HalfBits(v.norms[(begin + i) * kv_heads + hk]) : 0.0f;
      l += p;
      s_p[h * kMaxChunk + i] = __half_as_ushort(__float2half_rn(p * nu));
    }
    l = WarpSum(l);
    if (lane == 0) {
      s_m[h] = m;
      s_l[h] = l;
    }
  }
  __syncthreads();

  // Phase 3: out^T[coord][head] += V^T P^T over 16-token slices. Lane (g, t4) holds coordinates
  // g*16 .. g*16+15 of tokens 2t4, 2t4+1, 2t4+8, 2t4+9; m-tile i covers coordinates g*16+2i (row g)
  // and g*16+2i+1 (row g+8).
  float acc[8][4];
#pragma unroll
  for (int i = 0; i < 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
  for (int slice = warp; slice < chunk / 16; slice += kWarps) {
    const int la = slice * 16 + 2 * t4;
    const int lt[4] = {la, la + 1, la + 8, la + 9};
    uint64_t bits[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      bits[j] = LoadValueBits<VB>(v.codes + ((begin + lt[j]) * kv_heads + hk) * 16 * VB + g * 2 * VB,
                                  lt[j] < n);
    }
    const uint32_t b0 = *reinterpret_cast<const uint32_t*>(&s_p[g * kMaxChunk + la]);
    const uint32_t b1 = *reinterpret_cast<const uint32_t*>(&s_p[g * kMaxChunk + la + 8]);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t pa = s_vtable[ValueField<VB>(bits[0], i)];
      const uint32_t pb = s_vtable[ValueField<VB>(bits[1], i)];
      const uint32_t pc = s_vtable[ValueField<VB>(bits[2], i)];
      const uint32_t pd = s_vtable[ValueField<VB>(bits[3], i)];
      MmaF16(acc[i], __byte_perm(pa, pb, 0x5410), __byte_perm(pa, pb, 0x7632),
             __byte_perm(pc, pd, 0x5410), __byte_perm(pc, pd, 0x7632), b0, b1);
    }
  }
  __syncthreads();  // s_logit becomes the cross-warp sum

  // Phase 4: sum the warps, write the chunk's partial out (rotated domain) and its max and sum.
  float* s_red = s_logit;  // [warp][head 0..7][coord]
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int c0 = g * 16 + 2 * i, c1 = c0 + 1;
    s_red[(warp * 8 + 2 * t4) * kD + c0] = acc[i][0];
    s_red[(warp * 8 + 2 * t4 + 1) * kD + c0] = acc[i][1];
    s_red[(warp * 8 + 2 * t4) * kD + c1] = acc[i][2];
    s_red[(warp * 8 + 2 * t4 + 1) * kD + c1] = acc[i][3];
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

// Merges the chunks of one query head and unrotates once: out = R^T (sum_s w_s acc_s / sum_s w_s
// l_s), w_s = 2^(m_s - max m). One CTA of 512 threads a query head.
template <bool kBf16Out>
__global__ void __launch_bounds__(512) codebook_merge_kernel1(Workspace ws, int splits, int heads,
                                                              const float* rotation, void* out) {
  __shared__ float s_acc[4][kD];
  __shared__ float s_a[kD];
  const int h = blockIdx.x, part = threadIdx.x >> 7, j = threadIdx.x & (kD - 1);
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, ws.ml[(static_cast<int64_t>(s) * heads + h) * 2]);
  float l = 0.0f, a = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const int64_t at = static_cast<int64_t>(s) * heads + h;
    const float w = exp2f(ws.ml[at * 2] - m);
    l += w * ws.ml[at * 2 + 1];
    if ((s & 3) == part) a += w * ws.partial[at * kD + j];
  }
  s_acc[part][j] = a;
  __syncthreads();
  if (threadIdx.x < kD) s_a[j] = (s_acc[0][j] + s_acc[1][j] + s_acc[2][j] + s_acc[3][j]) / l;
  __syncthreads();
  if (threadIdx.x < kD) {
    float o = 0.0f;
    for (int i = 0; i < kD; ++i) o += rotation[i * kD + j] * s_a[i];  // (R^T a)_j
    Store<kBf16Out>(out, static_cast<int64_t>(h) * kD + j, o);
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

int LogitsCtas(const CodebookShape& s, int multiprocessors) {
  const int64_t tiles = (s.tokens + 15) / 16;
  const int64_t wanted = (tiles + 2 * kWarps - 1) / (2 * kWarps);  // ~2 tiles a warp at least
  const int64_t cap = std::max<int64_t>(1, 8LL * multiprocessors / s.kv_heads);
  return static_cast<int>(std::max<int64_t>(1, std::min(wanted, cap)));
}

template <int KB, bool kProd>
cudaError_t LogitsFor(const Workspace& ws, const CodebookFormatDevice& f, const CodebookRows& k,
                      const CodebookShape& s, void* out, bool out_bf16, int ctas,
                      cudaStream_t stream) {
  const dim3 grid(ctas, s.kv_heads);
  if (out_bf16) {
    codebook_logits_kernel1<KB, kProd, true>
        <<<grid, kWarps * 32, 0, stream>>>(ws, f, k, s.heads, s.kv_heads, s.tokens, out);
  } else {
    codebook_logits_kernel1<KB, kProd, false>
        <<<grid, kWarps * 32, 0, stream>>>(ws, f, k, s.heads, s.kv_heads, s.tokens, out);
  }
  return cudaGetLastError();
}

template <int KB, bool kProd, int VB>
cudaError_t AttentionFor(const Workspace& ws, const CodebookFormatDevice& kf,
                         const CodebookRows& k, const CodebookFormatDevice& vf,
                         const CodebookRows& v, const CodebookShape& s, const CodebookSplit& split,
                         float scale_log2, cudaStream_t stream) {
  codebook_attention_kernel1<KB, kProd, VB>
      <<<dim3(split.splits, s.kv_heads), kWarps * 32, 0, stream>>>(
          ws, kf, k, vf, v, s.heads, s.kv_heads, s.tokens, split.chunk, scale_log2);
  return cudaGetLastError();
}

template <int KB, bool kProd>
cudaError_t AttentionForV(int vb, const Workspace& ws, const CodebookFormatDevice& kf,
                          const CodebookRows& k, const CodebookFormatDevice& vf,
                          const CodebookRows& v, const CodebookShape& s,
                          const CodebookSplit& split, float scale_log2, cudaStream_t stream) {
  switch (vb) {
    case 1:
      return AttentionFor<KB, kProd, 1>(ws, kf, k, vf, v, s, split, scale_log2, stream);
    case 2:
      return AttentionFor<KB, kProd, 2>(ws, kf, k, vf, v, s, split, scale_log2, stream);
    case 3:
      return AttentionFor<KB, kProd, 3>(ws, kf, k, vf, v, s, split, scale_log2, stream);
    case 4:
      return AttentionFor<KB, kProd, 4>(ws, kf, k, vf, v, s, split, scale_log2, stream);
  }
  return cudaErrorInvalidValue;
}

struct LogitsCall {
  Workspace ws;
  CodebookFormatDevice f;
  CodebookRows k;
  CodebookShape s;
  void* out;
  bool out_bf16;
  int ctas;
  cudaStream_t stream;
  template <int KB, bool kProd>
  cudaError_t operator()() const {
    return LogitsFor<KB, kProd>(ws, f, k, s, out, out_bf16, ctas, stream);
  }
};

struct AttentionCall {
  Workspace ws;
  CodebookFormatDevice kf;
  CodebookRows k;
  CodebookFormatDevice vf;
  CodebookRows v;
  CodebookShape s;
  CodebookSplit split;
  float scale_log2;
  cudaStream_t stream;
  template <int KB, bool kProd>
  cudaError_t operator()() const {
    return AttentionForV<KB, kProd>(vf.mse_bits, ws, kf, k, vf, v, s, split, scale_log2, stream);
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

void PrepareQuery(const uint16_t* q, const CodebookFormatDevice& f, const Workspace& ws, int heads,
                  cudaStream_t stream) {
  codebook_prepare_query_kernel1<<<heads, kD, 0, stream>>>(q, f.rotation_t,
                                                           f.prod ? f.sketch_t : nullptr, ws);
}

}  // namespace

CodebookSplit PlanCodebookAttention(const CodebookShape& shape, int multiprocessors) {
  const int64_t t = std::max<int64_t>(shape.tokens, 1);
  const int64_t target = (2LL * multiprocessors + shape.kv_heads - 1) / std::max(shape.kv_heads, 1);
  const int64_t by_min = (t + 63) / 64, by_max = (t + kMaxChunk - 1) / kMaxChunk;
  const int64_t splits = std::min(by_min, std::max(by_max, target));
  const int64_t chunk = ((t + splits - 1) / splits + 63) / 64 * 64;
  CodebookSplit plan;
  plan.chunk = static_cast<int>(chunk);
  plan.splits = static_cast<int>((t + chunk - 1) / chunk);
  return plan;
}

std::int64_t CodebookLogitsWorkspaceFloats(const CodebookShape& shape) {
  return QueryFloats(shape.heads);
}

std::int64_t CodebookAttentionWorkspaceFloats(const CodebookShape& shape, int multiprocessors) {
  // Bound the splits of every tokens <= shape.tokens: each term of the plan grows with tokens.
  const int64_t t = std::max<int64_t>(shape.tokens, 1);
  const int64_t target = (2LL * multiprocessors + shape.kv_heads - 1) / std::max(shape.kv_heads, 1);
  const int64_t splits = std::min((t + 63) / 64, std::max((t + kMaxChunk - 1) / kMaxChunk, target));
  return QueryFloats(shape.heads) + splits * shape.heads * (kD + 2);
}

cudaError_t LaunchCodebookLogits(const std::uint16_t* q, const CodebookFormatDevice& format,
                                 const CodebookRows& k, const CodebookShape& shape, void* out,
                                 bool out_bf16, float* workspace, int multiprocessors,
                                 cudaStream_t stream) {
  if (!Supported(shape)) return cudaErrorInvalidValue;
  const Workspace ws = Carve(workspace, shape.heads, 0);
  PrepareQuery(q, format, ws, shape.heads, stream);
  const LogitsCall call{ws, format, k, shape, out, out_bf16, LogitsCtas(shape, multiprocessors),
                        stream};
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
  const CodebookSplit split = PlanCodebookAttention(shape, multiprocessors);
  const Workspace ws = Carve(workspace, shape.heads, split.splits);
  PrepareQuery(q, k_format, ws, shape.heads, stream);
  const float scale_log2 = scale * 1.4426950408889634f;
  const AttentionCall call{ws, k_format, k, v_format, v, shape, split, scale_log2, stream};
  const cudaError_t status = DispatchKey(k_format, call);
  if (status != cudaSuccess) return status;
  if (out_bf16) {
    codebook_merge_kernel1<true>
        <<<shape.heads, 512, 0, stream>>>(ws, split.splits, shape.heads, v_format.rotation, out);
  } else {
    codebook_merge_kernel1<false>
        <<<shape.heads, 512, 0, stream>>>(ws, split.splits, shape.heads, v_format.rotation, out);
  }
  return cudaGetLastError();
}

cudaError_t LaunchDenseLogits(const std::uint16_t* q, const std::uint16_t* k,
                              const CodebookShape& shape, void* out, bool out_bf16,
                              int multiprocessors, cudaStream_t stream) {
  if (!Supported(shape)) return cudaErrorInvalidValue;
  const dim3 grid(LogitsCtas(shape, multiprocessors), shape.kv_heads);
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
