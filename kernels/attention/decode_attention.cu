// CUDA decode attention over a bf16 KV cache; see decode_attention_launch.h for the variants.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "kernels/attention/decode_attention_launch.h"

namespace kvgate::kernels::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kUnroll = 4;  // key or value rows a lane has in flight
constexpr int kMaxChunk = 1024;
constexpr float kLog2e = 1.4426950408889634f;

// Eight bf16 (one 16-byte load) to float: a bf16 is the high half of a float32.
__device__ __forceinline__ void Bf16x8ToFloat(const uint4 raw, float (&f)[8]) {
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(words[i] << 16);  // the lower address is the low half
    f[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}

__device__ __forceinline__ float Bf16ToFloat(std::uint16_t bits) {
  return __uint_as_float(static_cast<unsigned>(bits) << 16);
}

// kernel2's K (and V) tile in uint4s: the chunk's rows, and at least the reduction buffer the K
// tile is reused for.
template <int kHeadDim, int kGroup>
__host__ __device__ constexpr int Kernel2TileVectors(int chunk) {
  const int rows = chunk * kHeadDim / 8;
  const int reduction = kWarps * kGroup * kHeadDim / 4;
  return rows > reduction ? rows : reduction;
}

// The three phases every split-K variant shares, for one CTA: kv head kv_head, chunk rows
// [0, n), all kGroup query heads of that kv head. Row j of K or V is read through load(j), which
// returns this lane's 16-byte slice (8 coordinates) of the row.
template <int kHeadDim>
struct Layout {
  static constexpr int kLanes = kHeadDim / 8;       // lanes reading one row (16 bytes each)
  static constexpr int kRowsPerWarp = 32 / kLanes;  // rows a warp reads at once
  static constexpr int kRowsPerStep = kRowsPerWarp * kWarps;
};

// Logits, scaled to log2 units, into p[g * stride + j]. The loop bound is uniform across the warp,
// so every lane reaches the shuffles.
template <int kHeadDim, int kGroup, typename LoadRow>
__device__ __forceinline__ void ChunkLogits(const float (&qf)[kGroup][8], int n, float* p,
                                            int stride, LoadRow load) {
  using L = Layout<kHeadDim>;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row = lane / L::kLanes, slice = lane % L::kLanes;
  for (int base = warp * L::kRowsPerWarp; base < n; base += L::kRowsPerStep * kUnroll) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + row + u * L::kRowsPerStep;
      raw[u] = j < n ? load(j) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + row + u * L::kRowsPerStep;
      float kf[8];
      Bf16x8ToFloat(raw[u], kf);
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) s = fmaf(qf[g][i], kf[i], s);
#pragma unroll
        for (int offset = L::kLanes / 2; offset > 0; offset >>= 1) {
          s += __shfl_xor_sync(0xffffffffu, s, offset);
        }
        if (slice == 0 && j < n) p[g * stride + j] = s;
      }
    }
  }
}

// Softmax statistics of the chunk, one warp a head; p becomes exp2(logit - max) and (max, sum)
// goes to ml[g]. Call between barriers.
template <int kGroup>
__device__ __forceinline__ void ChunkSoftmax(int n, float* p, int stride, float2* ml,
                                             int ml_stride) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int g = warp; g < kGroup; g += kWarps) {
    float m = -INFINITY;
    for (int j = lane; j < n; j += 32) m = fmaxf(m, p[g * stride + j]);
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
    }
    float l = 0.0f;
    for (int j = lane; j < n; j += 32) {
      const float e = exp2f(p[g * stride + j] - m);
      p[g * stride + j] = e;
      l += e;
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) l += __shfl_xor_sync(0xffffffffu, l, offset);
    if (lane == 0) ml[g * ml_stride] = make_float2(m, l);
  }
}

// sum_j p[g][j] * v[j] for every head of the group, summed over the CTA into out[g * out_stride
// + d] through reduce ([kWarps][kGroup][kHeadDim] floats of shared memory). Ends with no barrier
// pending; reduce may alias memory nobody reads after the previous barrier.
template <int kHeadDim, int kGroup, typename LoadRow>
__device__ __forceinline__ void ChunkValues(int n, const float* p, int stride, LoadRow load,
                                            float* reduce, float* out, std::int64_t out_stride) {
  using L = Layout<kHeadDim>;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row = lane / L::kLanes, slice = lane % L::kLanes;
  float acc[kGroup][8];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[g][i] = 0.0f;
  }
  for (int base = warp * L::kRowsPerWarp; base < n; base += L::kRowsPerStep * kUnroll) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + row + u * L::kRowsPerStep;
      raw[u] = j < n ? load(j) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + row + u * L::kRowsPerStep;
      if (j >= n) continue;
      float vf[8];
      Bf16x8ToFloat(raw[u], vf);
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        const float weight = p[g * stride + j];
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[g][i] = fmaf(weight, vf[i], acc[g][i]);
      }
    }
  }
  // Sum the rows of the warp, then the warps of the CTA.
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
#pragma unroll
      for (int offset = L::kLanes; offset < 32; offset <<= 1) {
        acc[g][i] += __shfl_xor_sync(0xffffffffu, acc[g][i], offset);
      }
    }
  }
  if (row == 0) {
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        reduce[(warp * kGroup + g) * kHeadDim + slice * 8 + i] = acc[g][i];
      }
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kGroup * kHeadDim; idx += kThreads) {
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += reduce[w * kGroup * kHeadDim + idx];
    out[(idx / kHeadDim) * out_stride + idx % kHeadDim] = sum;
  }
}

// This lane's 8 coordinates of each query head of kv_head, scaled so that exp2 gives the softmax.
template <int kHeadDim, int kGroup>
__device__ __forceinline__ void LoadQuery(const std::uint16_t* q, int kv_head, float scale_log2,
                                          float (&qf)[kGroup][8]) {
  const int slice = (threadIdx.x & 31) % Layout<kHeadDim>::kLanes;
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      qf[g][i] = Bf16ToFloat(q[(kv_head * kGroup + g) * kHeadDim + slice * 8 + i]) * scale_log2;
    }
  }
}

// kernel1: rows read straight from global memory, four a lane in flight.
// Grid (splits, kv_heads); shared memory [kGroup][chunk] + [kWarps][kGroup][kHeadDim] floats.
template <int kHeadDim, int kGroup>
__global__ void __launch_bounds__(kThreads)
    decode_attention_kernel1(const std::uint16_t* __restrict__ q, const uint4* __restrict__ k,
                             const uint4* __restrict__ v, float* __restrict__ partial_out,
                             float2* __restrict__ partial_ml, int kv_heads, std::int64_t tokens,
                             int chunk, int splits, float scale_log2) {
  using L = Layout<kHeadDim>;
  extern __shared__ float smem[];
  float* p = smem;
  float* reduce = smem + kGroup * chunk;
  const int split = blockIdx.x, kv_head = blockIdx.y;
  const std::int64_t first = static_cast<std::int64_t>(split) * chunk;
  const int n = static_cast<int>(min(static_cast<std::int64_t>(chunk), tokens - first));
  float qf[kGroup][8];
  LoadQuery<kHeadDim, kGroup>(q, kv_head, scale_log2, qf);
  const std::int64_t row_stride = static_cast<std::int64_t>(kv_heads) * L::kLanes;  // uint4s
  const std::int64_t origin =
      (first * kv_heads + kv_head) * L::kLanes + (threadIdx.x & 31) % L::kLanes;
  ChunkLogits<kHeadDim, kGroup>(qf, n, p, chunk,
                                [&](int j) { return __ldg(k + origin + j * row_stride); });
  __syncthreads();
  ChunkSoftmax<kGroup>(n, p, chunk, partial_ml + kv_head * kGroup * splits + split, splits);
  __syncthreads();
  ChunkValues<kHeadDim, kGroup>(
      n, p, chunk, [&](int j) { return __ldg(v + origin + j * row_stride); }, reduce,
      partial_out + (static_cast<std::int64_t>(kv_head * kGroup) * splits + split) * kHeadDim,
      static_cast<std::int64_t>(splits) * kHeadDim);
}

__device__ __forceinline__ void CpAsync16(void* shared, const void* global) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(address), "l"(global)
               : "memory");
}
__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// kernel2: the whole chunk of K and of V is requested at once with cp.async into shared memory
// (two commit groups), so every byte of the CTA is in flight before the first logit; the phases
// then read shared memory. Shared memory: K tile [chunk][kHeadDim] bf16 (later reused for the
// reduction), V tile, then [kGroup][chunk] floats.
template <int kHeadDim, int kGroup>
__global__ void __launch_bounds__(kThreads)
    decode_attention_kernel2(const std::uint16_t* __restrict__ q, const uint4* __restrict__ k,
                             const uint4* __restrict__ v, float* __restrict__ partial_out,
                             float2* __restrict__ partial_ml, int kv_heads, std::int64_t tokens,
                             int chunk, int splits, float scale_log2) {
  using L = Layout<kHeadDim>;
  extern __shared__ uint4 tiles[];
  const int tile_vectors = Kernel2TileVectors<kHeadDim, kGroup>(chunk);
  uint4* k_tile = tiles;
  uint4* v_tile = tiles + tile_vectors;
  float* p = reinterpret_cast<float*>(tiles + 2 * tile_vectors);
  const int split = blockIdx.x, kv_head = blockIdx.y;
  const std::int64_t first = static_cast<std::int64_t>(split) * chunk;
  const int n = static_cast<int>(min(static_cast<std::int64_t>(chunk), tokens - first));
  const std::int64_t row_stride = static_cast<std::int64_t>(kv_heads) * L::kLanes;
  const std::int64_t origin = (first * kv_heads + kv_head) * L::kLanes;
  for (int idx = threadIdx.x; idx < n * L::kLanes; idx += kThreads) {
    CpAsync16(k_tile + idx, k + origin + (idx / L::kLanes) * row_stride + idx % L::kLanes);
  }
  CpAsyncCommit();
  for (int idx = threadIdx.x; idx < n * L::kLanes; idx += kThreads) {
    CpAsync16(v_tile + idx, v + origin + (idx / L::kLanes) * row_stride + idx % L::kLanes);
  }
  CpAsyncCommit();
  float qf[kGroup][8];
  LoadQuery<kHeadDim, kGroup>(q, kv_head, scale_log2, qf);
  const int slice = (threadIdx.x & 31) % L::kLanes;
  CpAsyncWait<1>();
  __syncthreads();
  ChunkLogits<kHeadDim, kGroup>(qf, n, p, chunk,
                                [&](int j) { return k_tile[j * L::kLanes + slice]; });
  __syncthreads();
  ChunkSoftmax<kGroup>(n, p, chunk, partial_ml + kv_head * kGroup * splits + split, splits);
  CpAsyncWait<0>();
  __syncthreads();
  ChunkValues<kHeadDim, kGroup>(
      n, p, chunk, [&](int j) { return v_tile[j * L::kLanes + slice]; },
      reinterpret_cast<float*>(k_tile),
      partial_out + (static_cast<std::int64_t>(kv_head * kGroup) * splits + split) * kHeadDim,
      static_cast<std::int64_t>(splits) * kHeadDim);
}

// Merges the chunks of one head (blockIdx.x). merge1 (one thread a coordinate, walking every
// chunk in turn) spent ~25 us at 128 chunks waiting on one load at a time; merge2 spreads the
// chunks over kMergeParts threads a coordinate and keeps several loads in flight.
constexpr int kMergeParts = 4;
constexpr int kMaxSplits = 4096;

template <int kHeadDim>
__global__ void __launch_bounds__(kHeadDim* kMergeParts)
    decode_attention_merge2(const float* __restrict__ partial_out,
                            const float2* __restrict__ partial_ml, std::uint16_t* __restrict__ out,
                            int splits) {
  __shared__ float weight[kMaxSplits];  // exp2(m_s - M), then scaled by 1 / denominator
  __shared__ float scratch[kHeadDim * kMergeParts];
  const int head = blockIdx.x;
  const int tid = threadIdx.x;
  const float2* ml = partial_ml + static_cast<std::int64_t>(head) * splits;

  float m = -INFINITY;
  for (int s = tid; s < splits; s += blockDim.x) m = fmaxf(m, ml[s].x);
  scratch[tid] = m;
  __syncthreads();
  for (int width = blockDim.x / 2; width > 0; width >>= 1) {
    if (tid < width) scratch[tid] = fmaxf(scratch[tid], scratch[tid + width]);
    __syncthreads();
  }
  const float top = scratch[0];
  __syncthreads();
  float denominator = 0.0f;
  for (int s = tid; s < splits; s += blockDim.x) {
    const float2 chunk = ml[s];
    const float w = chunk.y > 0.0f ? exp2f(chunk.x - top) : 0.0f;  // an empty chunk weighs 0
    weight[s] = w;
    denominator += w * chunk.y;
  }
  scratch[tid] = denominator;
  __syncthreads();
  for (int width = blockDim.x / 2; width > 0; width >>= 1) {
    if (tid < width) scratch[tid] += scratch[tid + width];
    __syncthreads();
  }
  const float inverse = 1.0f / scratch[0];
  __syncthreads();

  const int d = tid % kHeadDim;
  const int part = tid / kHeadDim;
  const float* po = partial_out + static_cast<std::int64_t>(head) * splits * kHeadDim + d;
  float sum = 0.0f;
#pragma unroll 8
  for (int s = part; s < splits; s += kMergeParts) sum = fmaf(weight[s], po[s * kHeadDim], sum);
  scratch[tid] = sum;
  __syncthreads();
  if (part == 0) {
    float total = 0.0f;
#pragma unroll
    for (int p = 0; p < kMergeParts; ++p) total += scratch[p * kHeadDim + d];
    out[head * kHeadDim + d] = __bfloat16_as_ushort(__float2bfloat16_rn(total * inverse));
  }
}

template <int kHeadDim, int kGroup>
cudaError_t Launch(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                   std::uint16_t* out, const DecodeAttentionShape& shape,
                   const DecodeAttentionSplit& split, float scale, float* workspace,
                   cudaStream_t stream) {
  const std::int64_t out_floats = static_cast<std::int64_t>(shape.heads) * split.splits * kHeadDim;
  float* partial_out = workspace;
  float2* partial_ml = reinterpret_cast<float2*>(workspace + out_floats);  // 8-byte aligned
  auto* kernel = split.kernel == 2 ? decode_attention_kernel2<kHeadDim, kGroup>
                                   : decode_attention_kernel1<kHeadDim, kGroup>;
  const std::size_t smem =
      split.kernel == 2 ? 2 * sizeof(uint4) * Kernel2TileVectors<kHeadDim, kGroup>(split.chunk) +
                              sizeof(float) * kGroup * split.chunk
                        : sizeof(float) * (kGroup * split.chunk + kWarps * kGroup * kHeadDim);
  if (smem > 48 * 1024) {
    const cudaError_t s =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (s != cudaSuccess) return s;
  }
  kernel<<<dim3(split.splits, shape.kv_heads), kThreads, smem, stream>>>(
      q, reinterpret_cast<const uint4*>(k), reinterpret_cast<const uint4*>(v), partial_out,
      partial_ml, shape.kv_heads, shape.tokens, split.chunk, split.splits, scale * kLog2e);
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess) return launched;
  decode_attention_merge2<kHeadDim><<<shape.heads, kHeadDim * kMergeParts, 0, stream>>>(
      partial_out, partial_ml, out, split.splits);
  return cudaGetLastError();
}

template <int kHeadDim>
cudaError_t LaunchForGroup(int group, const std::uint16_t* q, const std::uint16_t* k,
                           const std::uint16_t* v, std::uint16_t* out,
                           const DecodeAttentionShape& shape, const DecodeAttentionSplit& split,
                           float scale, float* workspace, cudaStream_t stream) {
  switch (group) {
#define KVGATE_GROUP_CASE(G) \
  case G:                    \
    return Launch<kHeadDim, G>(q, k, v, out, shape, split, scale, workspace, stream);
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

DecodeAttentionSplit PlanDecodeAttention(const DecodeAttentionShape& shape, int multiprocessors,
                                         int kernel) {
  // kernel1: about four CTAs a multiprocessor keep enough loads in flight; chunks are whole steps
  // of the read loop (32 rows for head_dim 128, 64 for 64) and at most kMaxChunk.
  // kernel2: the chunk's K and V tiles take at most 64 KB of shared memory (three CTAs fit).
  const int step = (32 / (shape.head_dim / 8)) * kWarps * kUnroll;
  const int max_chunk = kernel == 2 ? 16384 / shape.head_dim : kMaxChunk;
  const std::int64_t wanted_splits =
      std::max<std::int64_t>(1, (4LL * multiprocessors + shape.kv_heads - 1) / shape.kv_heads);
  std::int64_t chunk = (shape.tokens + wanted_splits - 1) / wanted_splits;
  chunk = ((chunk + step - 1) / step) * step;
  chunk = std::min<std::int64_t>(std::max<std::int64_t>(chunk, step), max_chunk);
  DecodeAttentionSplit split;
  split.kernel = kernel;
  split.chunk = static_cast<int>(chunk);
  split.splits = static_cast<int>((shape.tokens + chunk - 1) / chunk);
  return split;
}

std::int64_t DecodeAttentionWorkspaceFloats(const DecodeAttentionShape& shape,
                                            const DecodeAttentionSplit& split) {
  return static_cast<std::int64_t>(shape.heads) * split.splits * (shape.head_dim + 2);
}

cudaError_t LaunchDecodeAttention(const std::uint16_t* q, const std::uint16_t* k,
                                  const std::uint16_t* v, std::uint16_t* out,
                                  const DecodeAttentionShape& shape,
                                  const DecodeAttentionSplit& split, float scale, float* workspace,
                                  cudaStream_t stream) {
  if (shape.tokens < 1 || shape.kv_heads < 1 || shape.heads % shape.kv_heads != 0 ||
      split.chunk < 1 || split.splits < 1 || split.splits > kMaxSplits ||
      (split.kernel != 1 && split.kernel != 2) ||
      static_cast<std::int64_t>(split.chunk) * split.splits < shape.tokens) {
    return cudaErrorInvalidValue;
  }
  const int group = shape.heads / shape.kv_heads;
  switch (shape.head_dim) {
    case 64:
      return LaunchForGroup<64>(group, q, k, v, out, shape, split, scale, workspace, stream);
    case 128:
      return LaunchForGroup<128>(group, q, k, v, out, shape, split, scale, workspace, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace kvgate::kernels::cuda
