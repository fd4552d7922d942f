// The fused CUDA kernels of the graph-captured decode step (decode_step.h): raw device pointers, no
// LibTorch, so nvcc compiles them alone. Every launch goes to `stream` and returns the launch
// error (cudaSuccess when the launch was accepted).
//
// Kernels (batch 1, bf16 weights and activations, float32 residual stream):
//   EmbedRow            h = float(embed[token])                       (token read on the device)
//   RmsNorm             out = bf16(h * rsqrt(mean(h^2) + eps)) * w    (transformers' order)
//   Gemv                y = W x (+ bias) -> bf16, or h += W x (the residual add fused)
//                       one warp a row, every lane 16-byte loads, 4 loads in flight
//   GemvSiluMul         act = silu(W_gate x) * (W_up x), W = [gate; up] stacked: the gate/up
//                       projection and the SwiGLU in one pass
//   RopeKv              q_out = rope(q); k_slot = rope(k); v_slot = v, from one fused qkv row, at
//                       one position (rotate-half, theta), writing K/V straight into cache slots
//   NewestOnly          out[h] = v[h / group]: attention that reads only the newest token (the
//                       ablation of speed_ceiling)

#ifndef KVGATE_EXPERIMENTS_GPU_DECODE_STEP_KERNELS_LAUNCH_H_
#define KVGATE_EXPERIMENTS_GPU_DECODE_STEP_KERNELS_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kvgate::gpu_decode {

// bf16 values travel as their 16-bit patterns.
using Bf16Bits = std::uint16_t;

cudaError_t LaunchEmbedRow(const Bf16Bits* embed, const std::int64_t* token, int hidden, float* h,
                           cudaStream_t stream);

cudaError_t LaunchRmsNorm(const float* h, const Bf16Bits* weight, int hidden, float eps,
                          Bf16Bits* out, cudaStream_t stream);

// W [rows, cols] row major, cols a multiple of 8; x [cols]. Exactly one of y (bf16 [rows]) and
// residual (float32 [rows], added to) is non-null; bias (bf16 [rows]) may be null.
cudaError_t LaunchGemv(const Bf16Bits* w, const Bf16Bits* x, int rows, int cols,
                       const Bf16Bits* bias, Bf16Bits* y, float* residual, cudaStream_t stream);

// w [2 * rows, cols]: rows 0..rows-1 the gate, rows..2*rows-1 the up projection. act [rows].
cudaError_t LaunchGemvSiluMul(const Bf16Bits* w, const Bf16Bits* x, int rows, int cols,
                              Bf16Bits* act, cudaStream_t stream);

// qkv [(heads + 2 * kv_heads) * head_dim] (q heads, then k heads, then v heads). q_out [heads,
// head_dim]; k_slot and v_slot: kv head j at k_slot + j * slot_head_stride (elements).
cudaError_t LaunchRopeKv(const Bf16Bits* qkv, int heads, int kv_heads, int head_dim,
                         std::int64_t position, double theta, Bf16Bits* q_out, Bf16Bits* k_slot,
                         Bf16Bits* v_slot, std::int64_t slot_head_stride, cudaStream_t stream);

// v [kv_heads, head_dim] with kv head j at v + j * v_head_stride; out [heads, head_dim].
cudaError_t LaunchNewestOnly(const Bf16Bits* v, std::int64_t v_head_stride, int heads,
                             int kv_heads, int head_dim, Bf16Bits* out, cudaStream_t stream);

}  // namespace kvgate::gpu_decode

#endif  // KVGATE_EXPERIMENTS_GPU_DECODE_STEP_KERNELS_LAUNCH_H_
