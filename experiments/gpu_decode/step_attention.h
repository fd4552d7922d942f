// Pluggable attention for the CUDA decode step (decode_step.h): one interface over a static,
// preallocated KV history, so the dense baseline and every compressed path run inside the same
// step, the same graph and the same timing.
//
// A backend owns the history of every layer, [0, capacity) tokens. Per layer the step
//   1. asks Slot(layer, position) where to write the new token's rotated k and v ([kv_heads, D]
//      bf16 views; the dense cache itself, or a staging buffer),
//   2. writes them there (the RoPE kernel), then calls Append(layer, slot, position) (dense: nothing
//      left to do; int4 / TurboQuant: quantize the token into the packed history),
//   3. calls Attend(layer, q, position): softmax(q K^T / sqrt(D)) V over tokens [0, position],
//      q [heads, D] bf16 -> [heads, D] bf16.
// Every call only launches work on the current CUDA stream (no host sync, no allocation that
// outlives the call), so a step can be captured in a CUDA graph.
//
// Backends (MakeStepAttention names):
//   dense_sdpa        bf16 cache [tokens, kv_heads, D]; LibTorch scaled_dot_product_attention
//                     (enable_gqa) on strided [1, kv_heads, tokens, D] views
//   dense_kernel1, dense_kernel3, dense_kernel4
//                     the same cache; kernels/attention DecodeAttentionCudaInto, that variant
//   newest_only       attends to the newest token only (out[h] = v_new[h / group]): the ablation
//                     that speed_ceiling subtracts; keeps no history
//   int4_eager        symmetric int4, block 32 (kernels/int4 layout); per step dequantizes the
//                     whole history with kernels/int4 DequantizeInt4CudaInto (float32), casts to
//                     bf16, then dense_sdpa-style attention (dequantize then attend)
//   turboquant_eager  TurboQuant_mse, 4 bits, Hadamard rotation, seed 0 (kernels/turboquant's
//                     codebook and rotation; codes as nibbles, an fp16 norm a vector); per step
//                     unpacks, looks up the centroids, scales, rotates back (R^T) in LibTorch ops,
//                     casts to bf16 and attends (dequantize then attend)
//   int4_fused        int4_eager's history; kernels/int4 Int4DecodeAttentionCudaInto reads the
//                     packed blocks directly (no dequantized copy)
//   turboquant_fused  turboquant_eager's history; kernels/turboquant CodebookAttentionCudaInto
//                     (logits from codes, fused value integration)

#ifndef KVGATE_EXPERIMENTS_GPU_DECODE_STEP_ATTENTION_H_
#define KVGATE_EXPERIMENTS_GPU_DECODE_STEP_ATTENTION_H_

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::gpu_decode {

struct AttentionShape {
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t capacity = 0;  // tokens of history a layer holds
};

// Where the step writes the new token: k and v are [kv_heads, D] bf16 views, kv head j at
// data + j * head_stride elements.
struct KvSlot {
  torch::Tensor k, v;
  int64_t head_stride = 0;
};

class StepAttention {
 public:
  virtual ~StepAttention() = default;

  // The backend's name (records' variant names use it), e.g. "dense_sdpa".
  virtual std::string Name() const = 0;

  // Bytes of K/V history one decode step reads at `tokens` tokens, all layers.
  virtual int64_t HistoryBytes(int64_t tokens) const = 0;

  // Sets tokens [0, k.size(0)) of `layer` from k, v: bf16 [tokens, kv_heads, D] on the device
  // (quantized by backends that store codes).
  virtual absl::Status Fill(int64_t layer, const torch::Tensor& k, const torch::Tensor& v) = 0;

  virtual KvSlot Slot(int64_t layer, int64_t position) = 0;
  virtual absl::Status Append(int64_t layer, const KvSlot& written, int64_t position) = 0;

  // q: [heads, D] bf16 contiguous; history [0, position]. Returns [heads, D] bf16 contiguous.
  virtual absl::StatusOr<torch::Tensor> Attend(int64_t layer, const torch::Tensor& q,
                                               int64_t position) = 0;
};

// The TurboQuant format of the turboquant backends: TurboQuant_mse, 4 bits, Hadamard, seed 0.
absl::StatusOr<kernels::TurboQuant> StepTurboQuant(int64_t head_dim);

// The names MakeStepAttention takes.
std::vector<std::string> StepAttentionNames();

// A backend with its history allocated on `device`. InvalidArgument for an unknown name or a shape
// it cannot take (int4 and TurboQuant need head_dim a multiple of 32 / a power of two).
absl::StatusOr<std::unique_ptr<StepAttention>> MakeStepAttention(const std::string& name,
                                                                 const AttentionShape& shape,
                                                                 const torch::Device& device);

}  // namespace kvgate::gpu_decode

#endif  // KVGATE_EXPERIMENTS_GPU_DECODE_STEP_ATTENTION_H_
