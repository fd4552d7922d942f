// The streaming split-K decode attention shared by dense decode_attention_kernel4
// (decode_attention.cu) and the int4 kernels (kernels/int4/int4_attention.cu): device code, for nvcc
// only.
//
// One CTA of kStreamWarps warps takes one (chunk of history, kv head) and serves all kGroup query
// heads of that kv head, so each K/V byte is read once. Each warp streams its own batches of rows
// (batch b of the chunk goes to warp b % kStreamWarps) through a private ring of kStreamStages
// shared-memory stages filled by cp.async, so up to kStreamStages - 1 batches of K and V are in
// flight per warp while it computes one; K and V of a batch arrive together and are used in one
// pass (an online softmax per warp: running max, sum and output, rescaled per batch). No barrier
// inside the loop: a warp only waits for its own copies (__syncwarp). At the end the warps merge in
// shared memory and the CTA writes the chunk's unnormalized output and (max, sum) in log2 units;
// decode_attention_merge3 merges the chunks.
//
// A Rows policy says how rows are stored (bf16 or int4 blocks):
//   kRowsPerBatch           rows a warp takes per stage (a multiple of 32 / (head_dim / 8))
//   kStageBytes             shared memory of one stage (16-byte multiple)
//   Issue(stage, first, valid, kv_head, lane)   cp.async the K and V rows [first, first + valid)
//                           (global token indices) of kv_head into stage, zero bytes for rows
//                           valid..kRowsPerBatch-1; does not commit
//   Key(stage, row, slice, f) / Value(...)      the 8 values (float) of coordinates
//                           slice*8 .. slice*8+7 of row `row` of the stage
// Lane layout: head_dim / 8 lanes (a "slice" each, 8 coordinates) read one row; a warp reads
// 32 / (head_dim / 8) rows at once.

#ifndef KVGATE_KERNELS_ATTENTION_DECODE_ATTENTION_STREAM_H_
#define KVGATE_KERNELS_ATTENTION_DECODE_ATTENTION_STREAM_H_

#ifdef __CUDACC__

#include <cuda_bf16.h>

#include <cstdint>

namespace kvgate::kernels::cuda::stream {

constexpr int kStreamWarps = 4;
constexpr int kStreamThreads = 32 * kStreamWarps;
constexpr int kStreamStages = 4;
constexpr float kLog2e = 1.4426950408889634f;

// cp.async of kBytes (4, 8 or 16) bytes; src_bytes 0 writes zeros and reads nothing.
template <int kBytes>
__device__ __forceinline__ void CpAsyncZfill(void* smem, const void* global, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int src_bytes = valid ? kBytes : 0;
  if constexpr (kBytes == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(global),
                 "r"(src_bytes)
                 : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(global),
                 "n"(kBytes), "r"(src_bytes)
                 : "memory");
  }
}
__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Eight bf16 (one 16-byte load) to float: a bf16 is the high half of a float32.
__device__ __forceinline__ void Bf16x8ToFloat(const uint4 raw, float (&f)[8]) {
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(words[i] << 16);  // the lower address is the low half
    f[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}

// Shared memory a kernel of this policy needs: the warps' stage rings, and at least the end merge.
template <int kHeadDim, int kGroup, class Rows>
__host__ __device__ constexpr int StreamSmemBytes() {
  constexpr int rings = kStreamWarps * kStreamStages * Rows::kStageBytes;
  constexpr int merge = kStreamWarps * kGroup * (kHeadDim * 4 + 8);
  return rings > merge ? rings : merge;
}

// Grid (splits, kv_heads), kStreamThreads threads, StreamSmemBytes dynamic shared memory.
// partial_out [heads][splits][kHeadDim] and partial_ml [heads][splits] as the merges read them.
template <int kHeadDim, int kGroup, class Rows>
__global__ void __launch_bounds__(kStreamThreads)
    decode_attention_stream(const std::uint16_t* __restrict__ q, const Rows rows,
                            float* __restrict__ partial_out, float2* __restrict__ partial_ml,
                            std::int64_t tokens, int chunk, int splits, float scale_log2) {
  constexpr int kLanes = kHeadDim / 8;
  constexpr int kRowsPerLoad = 32 / kLanes;
  constexpr int kBatch = Rows::kRowsPerBatch;
  constexpr int kUnits = kBatch / kRowsPerLoad;
  static_assert(kBatch % kRowsPerLoad == 0, "a batch is whole warp loads");
  extern __shared__ uint4 smem_vectors[];
  char* smem = reinterpret_cast<char*>(smem_vectors);
  const int split = blockIdx.x, kv_head = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row_in_load = lane / kLanes, slice = lane % kLanes;
  const std::int64_t first = static_cast<std::int64_t>(split) * chunk;
  const int n = static_cast<int>(min(static_cast<std::int64_t>(chunk), tokens - first));
  const int batches = (n + kBatch - 1) / kBatch;
  const int mine = batches > warp ? (batches - 1 - warp) / kStreamWarps + 1 : 0;
  char* ring = smem + warp * kStreamStages * Rows::kStageBytes;

  const auto issue = [&](int i) {  // the warp's i-th batch into stage i % kStreamStages
    if (i < mine) {
      const int base = (warp + i * kStreamWarps) * kBatch;
      rows.Issue(ring + (i % kStreamStages) * Rows::kStageBytes, first + base,
                 min(kBatch, n - base), kv_head, lane);
    }
    CpAsyncCommit();  // an empty group past the end keeps the wait counts uniform
  };
#pragma unroll
  for (int i = 0; i < kStreamStages - 1; ++i) issue(i);

  // This lane's 8 coordinates of each query head, scaled so that exp2 gives the softmax.
  float qf[kGroup][8];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    const uint4 raw = *reinterpret_cast<const uint4*>(q + (kv_head * kGroup + g) * kHeadDim +
                                                      slice * 8);
    Bf16x8ToFloat(raw, qf[g]);
#pragma unroll
    for (int i = 0; i < 8; ++i) qf[g][i] *= scale_log2;
  }

  float m[kGroup], l[kGroup], acc[kGroup][8];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[g][i] = 0.0f;
  }

  for (int i = 0; i < mine; ++i) {
    CpAsyncWait<kStreamStages - 2>();
    __syncwarp();  // every lane's copies of batch i landed; batch i - 1's stage is free
    issue(i + kStreamStages - 1);
    const char* stage = ring + (i % kStreamStages) * Rows::kStageBytes;
    const int base = (warp + i * kStreamWarps) * kBatch;

    float s[kUnits][kGroup];
#pragma unroll
    for (int u = 0; u < kUnits; ++u) {
      const int row = u * kRowsPerLoad + row_in_load;
      float kf[8];
      rows.Key(stage, row, slice, kf);
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int c = 0; c < 8; ++c) dot = fmaf(qf[g][c], kf[c], dot);
        s[u][g] = dot;
      }
    }
    // Sum the slices of each row (every lane of the row gets the logit), mask rows past n.
#pragma unroll
    for (int u = 0; u < kUnits; ++u) {
      const bool valid = base + u * kRowsPerLoad + row_in_load < n;
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
#pragma unroll
        for (int offset = kLanes / 2; offset > 0; offset >>= 1) {
          s[u][g] += __shfl_xor_sync(0xffffffffu, s[u][g], offset);
        }
        if (!valid) s[u][g] = -INFINITY;
      }
    }
    // Online softmax: the batch's max over the warp's rows, then rescale what came before; s
    // becomes the weights exp2(s - max).
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      float top = s[0][g];
#pragma unroll
      for (int u = 1; u < kUnits; ++u) top = fmaxf(top, s[u][g]);
#pragma unroll
      for (int offset = kLanes; offset < 32; offset <<= 1) {
        top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, offset));
      }
      const float m_new = fmaxf(m[g], top);  // finite: a batch has at least one valid row
      const float alpha = exp2f(m[g] - m_new);
      m[g] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int u = 0; u < kUnits; ++u) {
        s[u][g] = exp2f(s[u][g] - m_new);
        sum += s[u][g];
      }
      l[g] = fmaf(l[g], alpha, sum);
#pragma unroll
      for (int c = 0; c < 8; ++c) acc[g][c] *= alpha;
    }
#pragma unroll
    for (int u = 0; u < kUnits; ++u) {
      const int row = u * kRowsPerLoad + row_in_load;
      float vf[8];
      rows.Value(stage, row, slice, vf);  // zero-filled rows decode to 0; their weight is 0
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
#pragma unroll
        for (int c = 0; c < 8; ++c) acc[g][c] = fmaf(s[u][g], vf[c], acc[g][c]);
      }
    }
  }
  CpAsyncWait<0>();  // only empty groups remain, but the ring is reused below

  // Sum the rows of each load (lanes of equal slice), then merge the warps.
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
#pragma unroll
    for (int offset = kLanes; offset < 32; offset <<= 1) {
      l[g] += __shfl_xor_sync(0xffffffffu, l[g], offset);
#pragma unroll
      for (int c = 0; c < 8; ++c) acc[g][c] += __shfl_xor_sync(0xffffffffu, acc[g][c], offset);
    }
  }
  __syncthreads();  // every warp is done with its ring
  float* warp_out = reinterpret_cast<float*>(smem);  // [kStreamWarps][kGroup][kHeadDim]
  float2* warp_ml = reinterpret_cast<float2*>(warp_out + kStreamWarps * kGroup * kHeadDim);
  if (row_in_load == 0) {
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
#pragma unroll
      for (int c = 0; c < 8; ++c) warp_out[(warp * kGroup + g) * kHeadDim + slice * 8 + c] = acc[g][c];
      if (slice == 0) warp_ml[warp * kGroup + g] = make_float2(m[g], l[g]);
    }
  }
  // The cross-warp merge of decode_attention.cu's kernels, over this kernel's kStreamWarps: kept
  // inline in each kernel (not a shared device function): its loop bounds are the kernel's own
  // compile-time tile constants, and a shared version changes register use; merging them is a
  // kernel change to measure on an H100 first (CUDA_NOTES.md).
  __syncthreads();
  for (int idx = threadIdx.x; idx < kGroup * kHeadDim; idx += kStreamThreads) {
    const int g = idx / kHeadDim, d = idx % kHeadDim;
    float top = -INFINITY;
#pragma unroll
    for (int w = 0; w < kStreamWarps; ++w) top = fmaxf(top, warp_ml[w * kGroup + g].x);
    float sum = 0.0f, out = 0.0f;
#pragma unroll
    for (int w = 0; w < kStreamWarps; ++w) {
      const float2 ml = warp_ml[w * kGroup + g];
      const float weight = ml.x == -INFINITY ? 0.0f : exp2f(ml.x - top);  // a warp with no rows
      sum = fmaf(weight, ml.y, sum);
      out = fmaf(weight, warp_out[(w * kGroup + g) * kHeadDim + d], out);
    }
    const std::int64_t head = static_cast<std::int64_t>(kv_head) * kGroup + g;
    partial_out[(head * splits + split) * kHeadDim + d] = out;
    if (d == 0) partial_ml[head * splits + split] = make_float2(top, sum);
  }
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

// merge3: one pass. Thread (part, d) walks chunks part, part + kMergeParts, ... keeping its own
// running (max, sum, output) (no block-wide max first: merge2's two reductions cost ~20 barriers),
// then the kMergeParts parts of each coordinate combine through shared memory (one barrier).
template <int kHeadDim>
__global__ void __launch_bounds__(kHeadDim* kMergeParts)
    decode_attention_merge3(const float* __restrict__ partial_out,
                            const float2* __restrict__ partial_ml, std::uint16_t* __restrict__ out,
                            int splits) {
  __shared__ float3 parts[kMergeParts][kHeadDim];  // (max, sum, output) of each part
  const int head = blockIdx.x;
  const int d = threadIdx.x % kHeadDim, part = threadIdx.x / kHeadDim;
  const float2* ml = partial_ml + static_cast<std::int64_t>(head) * splits;
  const float* po = partial_out + static_cast<std::int64_t>(head) * splits * kHeadDim + d;
  float m = -INFINITY, l = 0.0f, o = 0.0f;
#pragma unroll 4
  for (int s = part; s < splits; s += kMergeParts) {
    const float2 chunk = ml[s];
    const float value = po[static_cast<std::int64_t>(s) * kHeadDim];
    if (!(chunk.y > 0.0f)) continue;  // an empty chunk weighs 0
    const float m_new = fmaxf(m, chunk.x);
    const float old_weight = exp2f(m - m_new), weight = exp2f(chunk.x - m_new);
    l = l * old_weight + chunk.y * weight;
    o = o * old_weight + value * weight;
    m = m_new;
  }
  parts[part][d] = make_float3(m, l, o);
  __syncthreads();
  if (part == 0) {
    float top = -INFINITY;
#pragma unroll
    for (int p = 0; p < kMergeParts; ++p) top = fmaxf(top, parts[p][d].x);
    float sum = 0.0f, total = 0.0f;
#pragma unroll
    for (int p = 0; p < kMergeParts; ++p) {
      const float3 x = parts[p][d];
      const float weight = x.x == -INFINITY ? 0.0f : exp2f(x.x - top);
      sum = fmaf(weight, x.y, sum);
      total = fmaf(weight, x.z, total);
    }
    out[head * kHeadDim + d] = __bfloat16_as_ushort(__float2bfloat16_rn(total / sum));
  }
}

// Splits for a stream kernel: about `ctas_per_sm` CTAs a multiprocessor, chunks whole rounds of
// the warps' batches. Returns {chunk, splits}.
__host__ inline void PlanStream(std::int64_t tokens, int kv_heads, int multiprocessors,
                                int rows_per_batch, int ctas_per_sm, int* chunk, int* splits) {
  const int round = rows_per_batch * kStreamWarps;
  std::int64_t wanted = (static_cast<std::int64_t>(ctas_per_sm) * multiprocessors + kv_heads - 1) /
                        kv_heads;
  if (wanted < 1) wanted = 1;
  std::int64_t c = (tokens + wanted - 1) / wanted;
  c = (c + round - 1) / round * round;
  if (c < round) c = round;
  // Never more than kMaxSplits chunks (merge2's shared weights).
  const std::int64_t least = (tokens + kMaxSplits - 1) / kMaxSplits;
  if (c < least) c = (least + round - 1) / round * round;
  *chunk = static_cast<int>(c);
  *splits = static_cast<int>((tokens + c - 1) / c);
}

}  // namespace kvgate::kernels::cuda::stream

#endif  // __CUDACC__
#endif  // KVGATE_KERNELS_ATTENTION_DECODE_ATTENTION_STREAM_H_
