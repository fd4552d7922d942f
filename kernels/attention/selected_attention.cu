// Decode attention over selected blocks of a bf16 KV cache on CUDA: see selected_attention_launch.h
// for shapes and the variant. Build: tools/bazel build --config=cuda
// //kernels/attention:selected_attention_cuda; test and benchmark run on a GPU host through
// tools/gpu_bundle (selected_attention_cuda_test, selected_attention_cuda_benchmark).

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/attention/selected_attention_launch.h"

namespace kvgate::kernels::cuda {
namespace {

constexpr int kD = 128;
constexpr int kWarps = 4;
constexpr int kMaxChunk = 512;
constexpr int kMaxGroup = 8;

__device__ __forceinline__ void MmaBf16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                        uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float WarpMax(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

__device__ __forceinline__ float WarpSum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// `count` 16-byte pieces from p as 4*count words, or zeros.
template <int kCount>
__device__ __forceinline__ void LoadWords(const uint16_t* p, bool valid, uint32_t (&w)[4 * kCount]) {
#pragma unroll
  for (int i = 0; i < kCount; ++i) {
    const uint4 x = valid ? reinterpret_cast<const uint4*>(p)[i] : make_uint4(0, 0, 0, 0);
    w[4 * i] = x.x, w[4 * i + 1] = x.y, w[4 * i + 2] = x.z, w[4 * i + 3] = x.w;
  }
}

// The most spans any plan makes: resident CTAs of 128 threads are at most 32 an SM.
constexpr int kMaxCtasPerSm = 32;

struct Split {
  int64_t span = 0;
  int splits = 0;
};

// Spans of the selected tokens (a multiple of 64) so that about one CTA a resident slot runs.
Split Plan(int64_t selected, int kv_heads, int multiprocessors, int ctas_per_sm) {
  const int64_t t = std::max<int64_t>(selected, 1);
  const int64_t per_sm = std::min(std::max(ctas_per_sm, 1), kMaxCtasPerSm);
  const int64_t target = std::max<int64_t>(1, per_sm * multiprocessors / std::max(kv_heads, 1));
  const int64_t splits = std::min((t + 63) / 64, target);
  const int64_t span = ((t + splits - 1) / splits + 63) / 64 * 64;
  return {span, static_cast<int>((t + span - 1) / span)};
}

// A CTA takes a span of the selected tokens in sub-chunks of up to 512, with an online softmax
// across them; two tiles of loads in flight a warp. The online softmax and the P*V MMA phases below
// follow codebook_attention.cu's fused kernel (same phases, bf16 K/V here, codes there); kept
// inline in each kernel (not a shared device function): its loop bounds are the kernel's own
// compile-time tile constants, and a shared version changes register use; merging them is a kernel
// change to measure on an H100 first (CUDA_NOTES.md).
__global__ void __launch_bounds__(kWarps * 32)
    selected_attention_kernel2(const uint16_t* q, const uint16_t* k, const uint16_t* v,
                               const int32_t* block_ids, SelectedAttentionShape s, int64_t span,
                               float scale_log2, float* partial, float* ml) {
  __shared__ float s_logit[kMaxGroup * kMaxChunk];  // at the end the cross-warp sum [4][8][128]
  __shared__ __align__(16) uint16_t s_p[kMaxGroup * kMaxChunk];  // bf16 p, [head][token]
  __shared__ int64_t s_tok[kMaxChunk];                            // cache token, or -1
  __shared__ float s_m[kMaxGroup], s_l[kMaxGroup], s_alpha[kMaxGroup];
  const int split = blockIdx.x, hk = blockIdx.y, group = s.heads / s.kv_heads;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int64_t selected = s.blocks * s.block_size;
  const int32_t* ids = block_ids + (s.id_rows == 1 ? 0 : static_cast<int64_t>(hk) * s.blocks);
  const int64_t num_blocks = (s.tokens + s.block_size - 1) / s.block_size;
  if (threadIdx.x < kMaxGroup) {
    s_m[threadIdx.x] = -INFINITY;
    s_l[threadIdx.x] = 0.0f;
    s_alpha[threadIdx.x] = 1.0f;
  }
  uint32_t qb[16];
  LoadWords<4>(q + (hk * group + g) * kD + t4 * 32, g < group, qb);
  const int h0 = 2 * t4, h1 = 2 * t4 + 1;
  float acc[8][4];
#pragma unroll
  for (int i = 0; i < 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;

  const int64_t end = min(selected, (split + 1) * span);
  for (int64_t begin = split * span; begin < end; begin += kMaxChunk) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kMaxChunk), end - begin));
    const int ntiles = (n + 15) / 16;
    for (int i = threadIdx.x; i < ntiles * 16; i += blockDim.x) {
      int64_t token = -1;
      if (i < n) {
        const int64_t logical = begin + i;
        const int64_t block = ids[logical / s.block_size];
        const int64_t t = block * s.block_size + logical % s.block_size;
        if (block >= 0 && block < num_blocks && t < s.tokens) token = t;
      }
      s_tok[i] = token;
    }
    __syncthreads();

    // Phase 1: scaled logits (log2 domain), two tiles at a time.
    for (int tile = warp * 2; tile < ntiles; tile += kWarps * 2) {
      uint32_t w[2][2][16];
      int64_t tt[2][2];
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int l0 = min((tile + u) * 16 + g, ntiles * 16 - 1);
        tt[u][0] = (tile + u) < ntiles ? s_tok[l0] : -1;
        tt[u][1] = (tile + u) < ntiles ? s_tok[l0 + 8 < ntiles * 16 ? l0 + 8 : l0] : -1;
        LoadWords<4>(k + (tt[u][0] * s.kv_heads + hk) * kD + t4 * 32, tt[u][0] >= 0, w[u][0]);
        LoadWords<4>(k + (tt[u][1] * s.kv_heads + hk) * kD + t4 * 32, tt[u][1] >= 0, w[u][1]);
      }
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        if (tile + u >= ntiles) break;
        float a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          MmaBf16(a, w[u][0][2 * i], w[u][1][2 * i], w[u][0][2 * i + 1], w[u][1][2 * i + 1],
                  qb[2 * i], qb[2 * i + 1]);
        }
        const int l0 = (tile + u) * 16 + g, l1 = l0 + 8;
        const bool v0 = tt[u][0] >= 0, v1 = tt[u][1] >= 0;
        if (h0 < group) {
          s_logit[h0 * kMaxChunk + l0] = v0 ? a[0] * scale_log2 : -INFINITY;
          s_logit[h0 * kMaxChunk + l1] = v1 ? a[2] * scale_log2 : -INFINITY;
        }
        if (h1 < group) {
          s_logit[h1 * kMaxChunk + l0] = v0 ? a[1] * scale_log2 : -INFINITY;
          s_logit[h1 * kMaxChunk + l1] = v1 ? a[3] * scale_log2 : -INFINITY;
        }
      }
    }
    __syncthreads();

    // Phase 2: running max and sum per head; s_p = bf16(2^(l - max)). A head whose tokens so far
    // are all masked keeps max -inf: its p and sum are 0 and alpha is taken as 1.
    for (int h = warp; h < kMaxGroup; h += kWarps) {
      if (h >= group) {
        for (int i = lane; i < ntiles * 16; i += 32) s_p[h * kMaxChunk + i] = 0;
        continue;
      }
      float m = -INFINITY;
      for (int i = lane; i < ntiles * 16; i += 32) m = fmaxf(m, s_logit[h * kMaxChunk + i]);
      m = fmaxf(WarpMax(m), s_m[h]);
      float l = 0.0f;
      for (int i = lane; i < ntiles * 16; i += 32) {
        const float p = s_tok[i] >= 0 ? exp2f(s_logit[h * kMaxChunk + i] - m) : 0.0f;
        l += p;
        s_p[h * kMaxChunk + i] = __bfloat16_as_ushort(__float2bfloat16_rn(p));
      }
      l = WarpSum(l);
      if (lane == 0) {
        const float alpha = m == -INFINITY ? 1.0f : exp2f(s_m[h] - m);
        s_l[h] = s_l[h] * alpha + l;
        s_m[h] = m;
        s_alpha[h] = alpha;
      }
    }
    __syncthreads();

    // Phase 3: rescale, then out^T += V^T P^T, two slices at a time.
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
      uint32_t w[2][4][8];
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int la = min((slice + u) * 16, (ntiles - 1) * 16) + 2 * t4;
        const int lt[4] = {la, la + 1, la + 8, la + 9};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int64_t t = (slice + u) < ntiles ? s_tok[lt[j]] : -1;
          LoadWords<2>(v + (t * s.kv_heads + hk) * kD + g * 16, t >= 0, w[u][j]);
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
          MmaBf16(acc[i], __byte_perm(w[u][0][i], w[u][1][i], 0x5410),
                  __byte_perm(w[u][0][i], w[u][1][i], 0x7632),
                  __byte_perm(w[u][2][i], w[u][3][i], 0x5410),
                  __byte_perm(w[u][2][i], w[u][3][i], 0x7632), b0, b1);
        }
      }
    }
    __syncthreads();  // s_tok, s_logit and s_p are rewritten by the next sub-chunk
  }

  // Phase 4: sum the warps; write the span's partial out, max and sum.
  float* s_red = s_logit;
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
    partial[(static_cast<int64_t>(split) * s.heads + hk * group + h) * kD + c] =
        s_red[h * kD + c] + s_red[(8 + h) * kD + c] + s_red[(16 + h) * kD + c] +
        s_red[(24 + h) * kD + c];
  }
  if (threadIdx.x < group) {
    const int64_t at = (static_cast<int64_t>(split) * s.heads + hk * group + threadIdx.x) * 2;
    ml[at] = s_m[threadIdx.x];
    ml[at + 1] = s_l[threadIdx.x];
  }
}

// out[h] = sum_s w_s acc_s / sum_s w_s l_s, w_s = 2^(m_s - max m); spans with m = -inf weigh 0;
// a head none of whose tokens is valid (every id out of range) gets zeros. One CTA of 512 threads
// a query head: 4 parts share the spans.
template <bool kBf16Out>
__global__ void __launch_bounds__(512) selected_merge_kernel2(const float* partial, const float* ml,
                                                              int splits, int heads, void* out) {
  __shared__ float s_part[4][kD];
  __shared__ float s_red[16], s_lp[4];
  const int h = blockIdx.x, part = threadIdx.x >> 7, j = threadIdx.x & (kD - 1);
  float m = -INFINITY;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) {
    m = fmaxf(m, ml[(static_cast<int64_t>(s) * heads + h) * 2]);
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
    const float ms = ml[at * 2];
    const float w = ms == -INFINITY ? 0.0f : exp2f(ms - m);
    l += w * ml[at * 2 + 1];
    a += w * partial[at * kD + j];
  }
  s_part[part][j] = a;
  if (j == 0) s_lp[part] = l;
  __syncthreads();
  if (threadIdx.x < kD) {
    const float sum = s_part[0][j] + s_part[1][j] + s_part[2][j] + s_part[3][j];
    const float total = s_lp[0] + s_lp[1] + s_lp[2] + s_lp[3];
    const float o = total > 0.0f ? sum / total : 0.0f;
    if constexpr (kBf16Out) {
      static_cast<__nv_bfloat16*>(out)[h * kD + j] = __float2bfloat16_rn(o);
    } else {
      static_cast<float*>(out)[h * kD + j] = o;
    }
  }
}

}  // namespace

std::int64_t SelectedAttentionWorkspaceFloats(const SelectedAttentionShape& shape,
                                              int multiprocessors) {
  const int64_t t = std::max<int64_t>(shape.blocks * shape.block_size, 1);
  const int64_t splits =
      std::min((t + 63) / 64, std::max<int64_t>(1, static_cast<int64_t>(kMaxCtasPerSm) *
                                                        multiprocessors /
                                                        std::max(shape.kv_heads, 1)));
  return splits * shape.heads * (kD + 2);
}

cudaError_t LaunchSelectedAttention(const std::uint16_t* q, const std::uint16_t* k,
                                    const std::uint16_t* v, const std::int32_t* block_ids,
                                    const SelectedAttentionShape& s, float scale, void* out,
                                    bool out_bf16, float* workspace, int multiprocessors,
                                    cudaStream_t stream) {
  if (s.heads < 1 || s.kv_heads < 1 || s.heads % s.kv_heads != 0 ||
      s.heads / s.kv_heads > kMaxGroup || s.tokens < 1 || s.block_size < 1 || s.blocks < 1 ||
      (s.id_rows != 1 && s.id_rows != s.kv_heads)) {
    return cudaErrorInvalidValue;
  }
  static const int per_sm = [] {
    int n = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, selected_attention_kernel2, kWarps * 32,
                                                      0) != cudaSuccess ||
        n < 1) {
      n = 1;
    }
    return n;
  }();
  const Split plan = Plan(s.blocks * s.block_size, s.kv_heads, multiprocessors, per_sm);
  float* partial = workspace;
  float* ml = workspace + static_cast<int64_t>(plan.splits) * s.heads * kD;
  selected_attention_kernel2<<<dim3(plan.splits, s.kv_heads), kWarps * 32, 0, stream>>>(
      q, k, v, block_ids, s, plan.span, scale * 1.4426950408889634f, partial, ml);
  if (out_bf16) {
    selected_merge_kernel2<true><<<s.heads, 512, 0, stream>>>(partial, ml, plan.splits, s.heads, out);
  } else {
    selected_merge_kernel2<false>
        <<<s.heads, 512, 0, stream>>>(partial, ml, plan.splits, s.heads, out);
  }
  return cudaGetLastError();
}

}  // namespace kvgate::kernels::cuda
