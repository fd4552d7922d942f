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

struct Split {
  int chunk = 0;
  int splits = 0;
};

// Chunks of the selected tokens (a multiple of 64, <= 512), about 2 CTAs an SM.
Split Plan(int64_t selected, int kv_heads, int multiprocessors) {
  const int64_t t = std::max<int64_t>(selected, 1);
  const int64_t target = (2LL * multiprocessors + kv_heads - 1) / std::max(kv_heads, 1);
  const int64_t splits = std::min((t + 63) / 64, std::max((t + kMaxChunk - 1) / kMaxChunk, target));
  const int64_t chunk = ((t + splits - 1) / splits + 63) / 64 * 64;
  return {static_cast<int>(chunk), static_cast<int>((t + chunk - 1) / chunk)};
}

__global__ void __launch_bounds__(kWarps * 32)
    selected_attention_kernel1(const uint16_t* q, const uint16_t* k, const uint16_t* v,
                               const int32_t* block_ids, SelectedAttentionShape s, int chunk,
                               float scale_log2, float* partial, float* ml) {
  __shared__ float s_logit[kMaxGroup * kMaxChunk];  // later the cross-warp sum [4][8][128]
  __shared__ __align__(16) uint16_t s_p[kMaxGroup * kMaxChunk];  // bf16 p, [head][token]
  __shared__ int64_t s_tok[kMaxChunk];                            // cache token, or -1
  __shared__ float s_m[kMaxGroup], s_l[kMaxGroup];
  const int split = blockIdx.x, hk = blockIdx.y, group = s.heads / s.kv_heads;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int64_t selected = s.blocks * s.block_size;
  const int64_t begin = static_cast<int64_t>(split) * chunk;
  const int n = static_cast<int>(min(static_cast<int64_t>(chunk), selected - begin));
  const int32_t* ids = block_ids + (s.id_rows == 1 ? 0 : static_cast<int64_t>(hk) * s.blocks);
  const int64_t num_blocks = (s.tokens + s.block_size - 1) / s.block_size;
  for (int i = threadIdx.x; i < chunk; i += blockDim.x) {
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

  // Phase 1: scaled logits (log2 domain).
  {
    uint32_t qb[16];
    LoadWords<4>(q + (hk * group + g) * kD + t4 * 32, g < group, qb);
    const int h0 = 2 * t4, h1 = 2 * t4 + 1;
    for (int tile = warp; tile < chunk / 16; tile += kWarps) {
      const int l0 = tile * 16 + g, l1 = l0 + 8;
      const int64_t t0 = s_tok[l0], t1 = s_tok[l1];
      uint32_t w0[16], w1[16];
      LoadWords<4>(k + (t0 * s.kv_heads + hk) * kD + t4 * 32, t0 >= 0, w0);
      LoadWords<4>(k + (t1 * s.kv_heads + hk) * kD + t4 * 32, t1 >= 0, w1);
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        MmaBf16(acc, w0[2 * i], w1[2 * i], w0[2 * i + 1], w1[2 * i + 1], qb[2 * i], qb[2 * i + 1]);
      }
      if (h0 < group) {
        s_logit[h0 * kMaxChunk + l0] = t0 >= 0 ? acc[0] * scale_log2 : -INFINITY;
        s_logit[h0 * kMaxChunk + l1] = t1 >= 0 ? acc[2] * scale_log2 : -INFINITY;
      }
      if (h1 < group) {
        s_logit[h1 * kMaxChunk + l0] = t0 >= 0 ? acc[1] * scale_log2 : -INFINITY;
        s_logit[h1 * kMaxChunk + l1] = t1 >= 0 ? acc[3] * scale_log2 : -INFINITY;
      }
    }
  }
  __syncthreads();

  // Phase 2: per head, the chunk's max and sum; s_p = bf16(2^(l - max)). A chunk whose tokens are
  // all masked has max -inf: its p and sum are 0 and the merge gives it weight 0.
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
      const float p = s_tok[i] >= 0 ? exp2f(s_logit[h * kMaxChunk + i] - m) : 0.0f;
      l += p;
      s_p[h * kMaxChunk + i] = __bfloat16_as_ushort(__float2bfloat16_rn(p));
    }
    l = WarpSum(l);
    if (lane == 0) {
      s_m[h] = m;
      s_l[h] = l;
    }
  }
  __syncthreads();

  // Phase 3: out^T += V^T P^T; lane (g, t4) holds coordinates g*16 .. +15 of tokens 2t4, 2t4+1,
  // 2t4+8, 2t4+9 of each 16-token slice.
  float acc[8][4];
#pragma unroll
  for (int i = 0; i < 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
  for (int slice = warp; slice < chunk / 16; slice += kWarps) {
    const int la = slice * 16 + 2 * t4;
    const int lt[4] = {la, la + 1, la + 8, la + 9};
    uint32_t w[4][8];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t t = s_tok[lt[j]];
      LoadWords<2>(v + (t * s.kv_heads + hk) * kD + g * 16, t >= 0, w[j]);
    }
    const uint32_t b0 = *reinterpret_cast<const uint32_t*>(&s_p[g * kMaxChunk + la]);
    const uint32_t b1 = *reinterpret_cast<const uint32_t*>(&s_p[g * kMaxChunk + la + 8]);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      MmaBf16(acc[i], __byte_perm(w[0][i], w[1][i], 0x5410), __byte_perm(w[0][i], w[1][i], 0x7632),
              __byte_perm(w[2][i], w[3][i], 0x5410), __byte_perm(w[2][i], w[3][i], 0x7632), b0, b1);
    }
  }
  __syncthreads();

  // Phase 4: sum the warps; write the chunk's partial out, max and sum.
  float* s_red = s_logit;
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

// out[h] = sum_s w_s acc_s / sum_s w_s l_s, w_s = 2^(m_s - max m); chunks with m = -inf weigh 0.
// A head none of whose tokens is valid (every id out of range) gets zeros.
template <bool kBf16Out>
__global__ void __launch_bounds__(512) selected_merge_kernel1(const float* partial, const float* ml,
                                                              int splits, int heads, void* out) {
  __shared__ float s_acc[4][kD];
  const int h = blockIdx.x, part = threadIdx.x >> 7, j = threadIdx.x & (kD - 1);
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, ml[(static_cast<int64_t>(s) * heads + h) * 2]);
  float l = 0.0f, a = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const int64_t at = static_cast<int64_t>(s) * heads + h;
    const float ms = ml[at * 2];
    const float w = ms == -INFINITY ? 0.0f : exp2f(ms - m);
    l += w * ml[at * 2 + 1];
    if ((s & 3) == part) a += w * partial[at * kD + j];
  }
  s_acc[part][j] = a;
  __syncthreads();
  if (threadIdx.x < kD) {
    const float sum = s_acc[0][j] + s_acc[1][j] + s_acc[2][j] + s_acc[3][j];
    const float o = l > 0.0f ? sum / l : 0.0f;
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
  const int64_t target = (2LL * multiprocessors + shape.kv_heads - 1) / std::max(shape.kv_heads, 1);
  const int64_t splits = std::min((t + 63) / 64, std::max((t + kMaxChunk - 1) / kMaxChunk, target));
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
  const Split plan = Plan(s.blocks * s.block_size, s.kv_heads, multiprocessors);
  float* partial = workspace;
  float* ml = workspace + static_cast<int64_t>(plan.splits) * s.heads * kD;
  selected_attention_kernel1<<<dim3(plan.splits, s.kv_heads), kWarps * 32, 0, stream>>>(
      q, k, v, block_ids, s, plan.chunk, scale * 1.4426950408889634f, partial, ml);
  if (out_bf16) {
    selected_merge_kernel1<true><<<s.heads, 512, 0, stream>>>(partial, ml, plan.splits, s.heads, out);
  } else {
    selected_merge_kernel1<false>
        <<<s.heads, 512, 0, stream>>>(partial, ml, plan.splits, s.heads, out);
  }
  return cudaGetLastError();
}

}  // namespace kvgate::kernels::cuda
