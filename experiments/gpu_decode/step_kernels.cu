// Kernels of step_kernels_launch.h. Build: --config=cuda (//experiments/gpu_decode:step_kernels).

#include <cuda_bf16.h>

#include <cmath>

#include "experiments/gpu_decode/step_kernels_launch.h"

namespace kvgate::gpu_decode {
namespace {

__device__ __forceinline__ float ToFloat(Bf16Bits b) {
  return __uint_as_float(static_cast<unsigned>(b) << 16);
}

__device__ __forceinline__ Bf16Bits ToBf16(float f) {
  const __nv_bfloat16 b = __float2bfloat16_rn(f);
  return *reinterpret_cast<const Bf16Bits*>(&b);
}

// Dot product of 8 bf16 pairs packed in two uint4.
__device__ __forceinline__ float Dot8(const uint4& a, const uint4& b) {
  const unsigned* pa = reinterpret_cast<const unsigned*>(&a);
  const unsigned* pb = reinterpret_cast<const unsigned*>(&b);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    s = fmaf(__uint_as_float(pa[i] << 16), __uint_as_float(pb[i] << 16), s);
    s = fmaf(__uint_as_float(pa[i] & 0xffff0000u), __uint_as_float(pb[i] & 0xffff0000u), s);
  }
  return s;
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Streams W's rows (never reused: no L1 allocation) and keeps x in cache.
__device__ __forceinline__ uint4 LoadStream(const uint4* p) { return __ldcs(p); }

constexpr int kGemvWarps = 4;   // rows a block: small blocks keep the last wave balanced
constexpr int kGemvUnroll = 4;  // 16-byte loads in flight a lane

// sum over cols of w_row[c] * x[c], by one warp; chunks = cols / 8.
__device__ __forceinline__ float RowDot(const uint4* w_row, const uint4* x, int chunks, int lane) {
  float acc = 0.f;
  int c = lane;
  for (; c + 32 * (kGemvUnroll - 1) < chunks; c += 32 * kGemvUnroll) {
    uint4 w[kGemvUnroll], xv[kGemvUnroll];
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) w[u] = LoadStream(w_row + c + 32 * u);
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) xv[u] = __ldg(x + c + 32 * u);
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) acc += Dot8(w[u], xv[u]);
  }
  for (; c < chunks; c += 32) acc += Dot8(LoadStream(w_row + c), __ldg(x + c));
  return WarpSum(acc);
}

__global__ void GemvKernel(const Bf16Bits* __restrict__ w, const Bf16Bits* __restrict__ x,
                           int rows, int cols, const Bf16Bits* __restrict__ bias,
                           Bf16Bits* __restrict__ y, float* __restrict__ residual) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = blockIdx.x * kGemvWarps + warp;
  if (row >= rows) return;
  const int chunks = cols / 8;
  const float dot = RowDot(reinterpret_cast<const uint4*>(w + static_cast<std::int64_t>(row) * cols),
                           reinterpret_cast<const uint4*>(x), chunks, lane);
  if (lane != 0) return;
  if (residual != nullptr) {
    residual[row] += dot;
  } else {
    // transformers adds the bias in bf16 after the bf16 matmul output.
    float v = ToFloat(ToBf16(dot));
    if (bias != nullptr) v += ToFloat(bias[row]);
    y[row] = ToBf16(v);
  }
}

__global__ void GemvSiluMulKernel(const Bf16Bits* __restrict__ w, const Bf16Bits* __restrict__ x,
                                  int rows, int cols, Bf16Bits* __restrict__ act) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = blockIdx.x * kGemvWarps + warp;
  if (row >= rows) return;
  const int chunks = cols / 8;
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  const uint4* gate = reinterpret_cast<const uint4*>(w + static_cast<std::int64_t>(row) * cols);
  const uint4* up =
      reinterpret_cast<const uint4*>(w + static_cast<std::int64_t>(rows + row) * cols);
  const float g = ToFloat(ToBf16(RowDot(gate, xv, chunks, lane)));
  const float u = ToFloat(ToBf16(RowDot(up, xv, chunks, lane)));
  if (lane == 0) {
    const float silu = ToFloat(ToBf16(g / (1.f + __expf(-g))));
    act[row] = ToBf16(silu * u);
  }
}

__global__ void EmbedRowKernel(const Bf16Bits* __restrict__ embed,
                               const std::int64_t* __restrict__ token, int hidden,
                               float* __restrict__ h) {
  const std::int64_t t = *token;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < hidden; i += gridDim.x * blockDim.x) {
    h[i] = ToFloat(embed[t * hidden + i]);
  }
}

constexpr int kNormThreads = 1024;

__global__ void RmsNormKernel(const float* __restrict__ h, const Bf16Bits* __restrict__ weight,
                              int hidden, float eps, Bf16Bits* __restrict__ out) {
  __shared__ float partial[kNormThreads / 32];
  float s = 0.f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) s += h[i] * h[i];
  s = WarpSum(s);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x < 32) {
    float t = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.f;
    t = WarpSum(t);
    if (threadIdx.x == 0) partial[0] = t;
  }
  __syncthreads();
  const float inv = rsqrtf(partial[0] / hidden + eps);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    out[i] = ToBf16(ToFloat(weight[i]) * ToFloat(ToBf16(h[i] * inv)));
  }
}

// One block a head (q heads, then k heads, then v heads), head_dim / 2 threads.
__global__ void RopeKvKernel(const Bf16Bits* __restrict__ qkv, int heads, int kv_heads,
                             int head_dim, std::int64_t position, double theta,
                             Bf16Bits* __restrict__ q_out, Bf16Bits* __restrict__ k_slot,
                             Bf16Bits* __restrict__ v_slot, std::int64_t slot_head_stride) {
  const int head = blockIdx.x, i = threadIdx.x, half = head_dim / 2;
  const Bf16Bits* src = qkv + static_cast<std::int64_t>(head) * head_dim;
  if (head >= heads + kv_heads) {  // v: copied
    Bf16Bits* dst = v_slot + (head - heads - kv_heads) * slot_head_stride;
    dst[i] = src[i];
    dst[i + half] = src[i + half];
    return;
  }
  Bf16Bits* dst = head < heads ? q_out + static_cast<std::int64_t>(head) * head_dim
                               : k_slot + (head - heads) * slot_head_stride;
  // transformers: inv_freq in float32, angle = position * inv_freq in float32, cos/sin cast to
  // the model dtype; here cos/sin stay float32 (one rounding at the end).
  const float inv_freq = static_cast<float>(1.0 / pow(theta, (2.0 * i) / head_dim));
  const float angle = static_cast<float>(position) * inv_freq;
  float s, c;
  sincosf(angle, &s, &c);
  const float x1 = ToFloat(src[i]), x2 = ToFloat(src[i + half]);
  dst[i] = ToBf16(x1 * c - x2 * s);
  dst[i + half] = ToBf16(x2 * c + x1 * s);
}

__global__ void NewestOnlyKernel(const Bf16Bits* __restrict__ v, std::int64_t v_head_stride,
                                 int group, int head_dim, Bf16Bits* __restrict__ out) {
  const int head = blockIdx.x;
  for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
    out[static_cast<std::int64_t>(head) * head_dim + i] = v[(head / group) * v_head_stride + i];
  }
}

int Blocks(std::int64_t n, int per) { return static_cast<int>((n + per - 1) / per); }

}  // namespace

cudaError_t LaunchEmbedRow(const Bf16Bits* embed, const std::int64_t* token, int hidden, float* h,
                           cudaStream_t stream) {
  EmbedRowKernel<<<Blocks(hidden, 256), 256, 0, stream>>>(embed, token, hidden, h);
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const float* h, const Bf16Bits* weight, int hidden, float eps,
                          Bf16Bits* out, cudaStream_t stream) {
  RmsNormKernel<<<1, kNormThreads, 0, stream>>>(h, weight, hidden, eps, out);
  return cudaGetLastError();
}

cudaError_t LaunchGemv(const Bf16Bits* w, const Bf16Bits* x, int rows, int cols,
                       const Bf16Bits* bias, Bf16Bits* y, float* residual, cudaStream_t stream) {
  if (cols % 8 != 0 || (y == nullptr) == (residual == nullptr)) return cudaErrorInvalidValue;
  GemvKernel<<<Blocks(rows, kGemvWarps), 32 * kGemvWarps, 0, stream>>>(w, x, rows, cols, bias, y,
                                                                       residual);
  return cudaGetLastError();
}

cudaError_t LaunchGemvSiluMul(const Bf16Bits* w, const Bf16Bits* x, int rows, int cols,
                              Bf16Bits* act, cudaStream_t stream) {
  if (cols % 8 != 0) return cudaErrorInvalidValue;
  GemvSiluMulKernel<<<Blocks(rows, kGemvWarps), 32 * kGemvWarps, 0, stream>>>(w, x, rows, cols,
                                                                              act);
  return cudaGetLastError();
}

cudaError_t LaunchRopeKv(const Bf16Bits* qkv, int heads, int kv_heads, int head_dim,
                         std::int64_t position, double theta, Bf16Bits* q_out, Bf16Bits* k_slot,
                         Bf16Bits* v_slot, std::int64_t slot_head_stride, cudaStream_t stream) {
  if (head_dim % 2 != 0 || head_dim > 2048) return cudaErrorInvalidValue;
  RopeKvKernel<<<heads + 2 * kv_heads, head_dim / 2, 0, stream>>>(
      qkv, heads, kv_heads, head_dim, position, theta, q_out, k_slot, v_slot, slot_head_stride);
  return cudaGetLastError();
}

cudaError_t LaunchNewestOnly(const Bf16Bits* v, std::int64_t v_head_stride, int heads,
                             int kv_heads, int head_dim, Bf16Bits* out, cudaStream_t stream) {
  if (kv_heads < 1 || heads % kv_heads != 0) return cudaErrorInvalidValue;
  NewestOnlyKernel<<<heads, 128, 0, stream>>>(v, v_head_stride, heads / kv_heads, head_dim, out);
  return cudaGetLastError();
}

}  // namespace kvgate::gpu_decode
