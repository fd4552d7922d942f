// CUDA decode attention over a bf16 KV cache; see decode_attention_launch.h for the variants.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "kernels/attention/decode_attention_launch.h"
#include "kernels/attention/decode_attention_stream.h"

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
// ChunkLogits and ChunkValues walk the rows the same way (load a tile, then use it), and the
// cross-warp merge at the end of each kernel is decode_attention_stream.h's; kept inline in each
// kernel (not a shared device function): its loop bounds are the kernel's own compile-time tile
// constants, and a shared version changes register use; merging them is a kernel change to measure
// on an H100 first (CUDA_NOTES.md).
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

// kernel3: tensor cores. Per warp and 16 history rows, S = Q K^T is 16 mma.m16n8k16 (query
// heads as the 16 rows, of which `group` are real; 8 head_dim steps; 2 tiles of 8 tokens) and
// O += P V another 16; S's accumulator fragment is P's operand fragment as it stands (the
// FlashAttention-2 layout), so the softmax needs no shuffles beyond 2 per row maximum. Each warp
// keeps its own online softmax over its rows; K and V come in 64-row tiles by cp.async into a
// double buffer (swizzled so ldmatrix is conflict-free), and the 4 warps merge at the end.
constexpr int kTileRows = 64;     // rows a CTA loads per stage: 16 per warp
constexpr int kChunks = 128 / 8;  // 16-byte pieces of a 128-wide bf16 row

// The 16-byte piece `piece` of row `row` in a swizzled tile, in uint4 units.
__device__ __forceinline__ int Swizzled(int row, int piece) {
  return row * kChunks + (piece ^ (row & 7));
}

__device__ __forceinline__ void CpAsync16Zfill(void* shared, const void* global, bool valid) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  const int bytes = valid ? 16 : 0;  // 0: the 16 bytes are zero-filled
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address), "l"(global),
               "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void LdMatrixX4(const void* shared, unsigned (&r)[4]) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

__device__ __forceinline__ void LdMatrixX4Trans(const void* shared, unsigned (&r)[4]) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// c += a * b, bf16 operands, float32 accumulators (m16n8k16, row.col).
__device__ __forceinline__ void Mma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                         unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned PackBf16x2(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const unsigned*>(&pair);
}

// Grid (splits, kv_heads), 128 threads; head_dim 128. Shared memory: two stages of a K and a V
// tile ([64][128] bf16 each, 64 KB in all), reused at the end for the warps' merge.
template <int kGroup>
__global__ void __launch_bounds__(kThreads)
    decode_attention_kernel3(const std::uint16_t* __restrict__ q, const uint4* __restrict__ k,
                             const uint4* __restrict__ v, float* __restrict__ partial_out,
                             float2* __restrict__ partial_ml, int kv_heads, std::int64_t tokens,
                             int chunk, int splits, float scale_log2) {
  constexpr int kHeadDim = 128;
  constexpr int kTileVectors = kTileRows * kChunks;
  extern __shared__ uint4 stages[];  // [stage][K tile, V tile]
  const int split = blockIdx.x, kv_head = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const std::int64_t first = static_cast<std::int64_t>(split) * chunk;
  const int n = static_cast<int>(min(static_cast<std::int64_t>(chunk), tokens - first));
  const int tiles = (n + kTileRows - 1) / kTileRows;
  const std::int64_t row_stride = static_cast<std::int64_t>(kv_heads) * kChunks;  // uint4s
  const uint4* k_rows = k + (first * kv_heads + kv_head) * kChunks;
  const uint4* v_rows = v + (first * kv_heads + kv_head) * kChunks;

  const auto issue = [&](int tile, int stage) {
    uint4* k_tile = stages + stage * 2 * kTileVectors;
    uint4* v_tile = k_tile + kTileVectors;
    for (int idx = threadIdx.x; idx < kTileVectors; idx += kThreads) {
      const int row = idx / kChunks, piece = idx % kChunks;
      const int j = tile * kTileRows + row;
      const bool valid = j < n;
      const std::int64_t offset = valid ? j * row_stride + piece : 0;
      CpAsync16Zfill(k_tile + Swizzled(row, piece), k_rows + offset, valid);
      CpAsync16Zfill(v_tile + Swizzled(row, piece), v_rows + offset, valid);
    }
    CpAsyncCommit();
  };
  if (tiles > 0) issue(0, 0);

  // Q as the A operand, for each of the 8 head_dim steps: row lane/4 is query head lane/4 of
  // this kv head (zero beyond the group); rows 8..15 are zero.
  const int h = lane >> 2;
  const int quad = lane & 3;
  unsigned qa[8][4];
#pragma unroll
  for (int step = 0; step < 8; ++step) {
    const int d = step * 16 + quad * 2;
    const std::uint16_t* row = q + (kv_head * kGroup + h) * kHeadDim;
    const bool real = h < kGroup;
    qa[step][0] =
        real ? (static_cast<unsigned>(row[d]) | (static_cast<unsigned>(row[d + 1]) << 16)) : 0u;
    qa[step][1] = 0u;
    qa[step][2] =
        real ? (static_cast<unsigned>(row[d + 8]) | (static_cast<unsigned>(row[d + 9]) << 16)) : 0u;
    qa[step][3] = 0u;
  }

  float m = -INFINITY;  // running max of row h (log2 units), the same in the 4 lanes of a quad
  float l = 0.0f;       // this lane's share of the running sum of row h
  float acc[16][4];     // O for row h (and the zero row h + 8), 16 tiles of 8 coordinates
#pragma unroll
  for (int t = 0; t < 16; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;

  for (int tile = 0; tile < tiles; ++tile) {
    if (tile + 1 < tiles) {
      issue(tile + 1, (tile + 1) & 1);
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();
    const uint4* k_tile = stages + (tile & 1) * 2 * kTileVectors;
    const uint4* v_tile = k_tile + kTileVectors;
    const int row0 = warp * 16;  // this warp's 16 rows of the tile

    // S = Q K^T: two tiles of 8 tokens.
    float s[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
#pragma unroll
    for (int step = 0; step < 8; ++step) {
      // Matrices: (tokens 0-7, dims +0..7), (tokens 0-7, +8..15), (tokens 8-15, +0..7), (8-15,
      // +8..15).
      const int matrix = lane >> 3;
      const int row = row0 + (matrix >> 1) * 8 + (lane & 7);
      unsigned b[4];
      LdMatrixX4(k_tile + Swizzled(row, step * 2 + (matrix & 1)), b);
      Mma16816(s[0], qa[step], b[0], b[1]);
      Mma16816(s[1], qa[step], b[2], b[3]);
    }
    // Online softmax of row h over these 16 tokens; tokens past the history are -inf.
    const int base = tile * kTileRows + row0;
    float top = -INFINITY;
#pragma unroll
    for (int t = 0; t < 2; ++t) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int j = base + t * 8 + quad * 2 + c;
        s[t][c] = j < n ? s[t][c] * scale_log2 : -INFINITY;
        top = fmaxf(top, s[t][c]);
      }
    }
    top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));
    top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 2));
    const float m_new = fmaxf(m, top);
    const float alpha = m_new == -INFINITY ? 1.0f : exp2f(m - m_new);
    float p[2][2];
#pragma unroll
    for (int t = 0; t < 2; ++t) {
#pragma unroll
      for (int c = 0; c < 2; ++c) p[t][c] = m_new == -INFINITY ? 0.0f : exp2f(s[t][c] - m_new);
    }
    l = l * alpha + p[0][0] + p[0][1] + p[1][0] + p[1][1];
    m = m_new;
#pragma unroll
    for (int t = 0; t < 16; ++t) {
      acc[t][0] *= alpha;
      acc[t][1] *= alpha;
    }
    // P as the A operand (rows 8..15 zero), then O += P V over 16 tiles of 8 coordinates.
    const unsigned pa[4] = {PackBf16x2(p[0][0], p[0][1]), 0u, PackBf16x2(p[1][0], p[1][1]), 0u};
#pragma unroll
    for (int pair = 0; pair < 8; ++pair) {
      // Matrices: (tokens 0-7, dims 0-7), (tokens 8-15, dims 0-7), (0-7, 8-15), (8-15, 8-15).
      const int matrix = lane >> 3;
      const int row = row0 + (matrix & 1) * 8 + (lane & 7);
      unsigned b[4];
      LdMatrixX4Trans(v_tile + Swizzled(row, pair * 2 + (matrix >> 1)), b);
      Mma16816(acc[2 * pair], pa, b[0], b[1]);
      Mma16816(acc[2 * pair + 1], pa, b[2], b[3]);
    }
    __syncthreads();  // the stage is overwritten by the next issue
  }

  // Merge the 4 warps: each writes its (m, l) and O rows; then one pass over the group's
  // coordinates writes the chunk's unnormalized output and (max, sum).
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  float* warp_out = reinterpret_cast<float*>(stages);  // [kWarps][kGroup][128]
  float2* warp_ml =
      reinterpret_cast<float2*>(warp_out + kWarps * kGroup * kHeadDim);  // [kWarps][kGroup]
  if (h < kGroup) {
#pragma unroll
    for (int t = 0; t < 16; ++t) {
      warp_out[(warp * kGroup + h) * kHeadDim + t * 8 + quad * 2] = acc[t][0];
      warp_out[(warp * kGroup + h) * kHeadDim + t * 8 + quad * 2 + 1] = acc[t][1];
    }
    if (quad == 0) warp_ml[warp * kGroup + h] = make_float2(m, l);
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kGroup * kHeadDim; idx += kThreads) {
    const int g = idx / kHeadDim, d = idx % kHeadDim;
    float top = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) top = fmaxf(top, warp_ml[w * kGroup + g].x);
    float sum = 0.0f, out = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float2 ml = warp_ml[w * kGroup + g];
      const float weight = ml.x == -INFINITY ? 0.0f : exp2f(ml.x - top);
      sum = fmaf(weight, ml.y, sum);
      out = fmaf(weight, warp_out[(w * kGroup + g) * kHeadDim + d], out);
    }
    const std::int64_t head = kv_head * kGroup + g;
    partial_out[(head * splits + split) * kHeadDim + d] = out;
    if (d == 0) partial_ml[head * splits + split] = make_float2(top, sum);
  }
}

using stream::decode_attention_merge2;
using stream::kMaxSplits;
using stream::kMergeParts;

// kernel4's rows: bf16 K and V, a stage holding K [kRowsPerBatch][kHeadDim] then V likewise.
template <int kHeadDim>
struct DenseStreamRows {
  static constexpr int kLanes = kHeadDim / 8;  // 16-byte pieces a row
  static constexpr int kRowsPerBatch = 8;
  static constexpr int kStageBytes = 2 * kRowsPerBatch * kHeadDim * 2;
  const uint4* k;
  const uint4* v;
  int kv_heads;

  __device__ __forceinline__ void Issue(char* stage, std::int64_t first, int valid, int kv_head,
                                        int lane) const {
    uint4* k_tile = reinterpret_cast<uint4*>(stage);
    uint4* v_tile = k_tile + kRowsPerBatch * kLanes;
#pragma unroll
    for (int idx = lane; idx < kRowsPerBatch * kLanes; idx += 32) {
      const int row = idx / kLanes, piece = idx % kLanes;
      const bool real = row < valid;
      const std::int64_t offset =
          real ? ((first + row) * kv_heads + kv_head) * kLanes + piece : 0;
      stream::CpAsyncZfill<16>(k_tile + idx, k + offset, real);
      stream::CpAsyncZfill<16>(v_tile + idx, v + offset, real);
    }
  }
  __device__ __forceinline__ void Key(const char* stage, int row, int slice, float (&f)[8]) const {
    stream::Bf16x8ToFloat(reinterpret_cast<const uint4*>(stage)[row * kLanes + slice], f);
  }
  __device__ __forceinline__ void Value(const char* stage, int row, int slice,
                                        float (&f)[8]) const {
    stream::Bf16x8ToFloat(
        reinterpret_cast<const uint4*>(stage)[(kRowsPerBatch + row) * kLanes + slice], f);
  }
};

template <int kHeadDim, int kGroup>
cudaError_t Launch(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                   std::uint16_t* out, const DecodeAttentionShape& shape,
                   const DecodeAttentionSplit& split, float scale, float* workspace,
                   cudaStream_t stream) {
  const std::int64_t out_floats = static_cast<std::int64_t>(shape.heads) * split.splits * kHeadDim;
  float* partial_out = workspace;
  float2* partial_ml = reinterpret_cast<float2*>(workspace + out_floats);  // 8-byte aligned
  if (split.kernel == 4) {
    using Rows = DenseStreamRows<kHeadDim>;
    auto* kernel = stream::decode_attention_stream<kHeadDim, kGroup, Rows>;
    constexpr int smem = stream::StreamSmemBytes<kHeadDim, kGroup, Rows>();
    if (smem > 48 * 1024) {
      const cudaError_t s =
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      if (s != cudaSuccess) return s;
    }
    const Rows rows{reinterpret_cast<const uint4*>(k), reinterpret_cast<const uint4*>(v),
                    shape.kv_heads};
    kernel<<<dim3(split.splits, shape.kv_heads), stream::kStreamThreads, smem, stream>>>(
        q, rows, partial_out, partial_ml, shape.tokens, split.chunk, split.splits,
        scale * kLog2e);
  } else if (split.kernel == 3) {
    if constexpr (kHeadDim == 128) {
      auto* kernel = decode_attention_kernel3<kGroup>;
      constexpr int smem = 2 * 2 * kTileRows * kChunks * sizeof(uint4);
      const cudaError_t s =
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      if (s != cudaSuccess) return s;
      kernel<<<dim3(split.splits, shape.kv_heads), kThreads, smem, stream>>>(
          q, reinterpret_cast<const uint4*>(k), reinterpret_cast<const uint4*>(v), partial_out,
          partial_ml, shape.kv_heads, shape.tokens, split.chunk, split.splits, scale * kLog2e);
    } else {
      return cudaErrorInvalidValue;
    }
  } else {
    // kernel3 was planned but never launched before this dispatch existed: runs 7 and 8 of
    // CUDA_NOTES.md timed kernel1 under kernel3's split.
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
  }
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess) return launched;
  stream::decode_attention_merge3<kHeadDim><<<shape.heads, kHeadDim * kMergeParts, 0, stream>>>(
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
  if (kernel == 4) {
    // kernel4: two CTAs a multiprocessor (212 registers a thread; 64 KB of stages each), chunks
    // whole rounds of the warps' 8-row batches.
    DecodeAttentionSplit split;
    split.kernel = 4;
    stream::PlanStream(shape.tokens, shape.kv_heads, multiprocessors,
                       DenseStreamRows<128>::kRowsPerBatch, 2, &split.chunk, &split.splits);
    return split;
  }
  // kernel1: about four CTAs a multiprocessor keep enough loads in flight; chunks are whole steps
  // of the read loop (32 rows for head_dim 128, 64 for 64) and at most kMaxChunk.
  // kernel2: the chunk's K and V tiles take at most 64 KB of shared memory (three CTAs fit).
  const int step = (32 / (shape.head_dim / 8)) * kWarps * kUnroll;
  // kernel3: chunks are whole 64-row tiles, up to 32 tiles a CTA.
  const int max_chunk = kernel == 3 ? 2048 : kernel == 2 ? 16384 / shape.head_dim : kMaxChunk;
  const std::int64_t wanted_splits = std::max<std::int64_t>(
      1, ((kernel == 3 ? 3LL : 4LL) * multiprocessors + shape.kv_heads - 1) / shape.kv_heads);
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
      split.chunk < 1 || split.splits < 1 || split.splits > kMaxSplits || split.kernel < 1 ||
      split.kernel > 4 || (split.kernel == 3 && shape.head_dim != 128) ||
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
