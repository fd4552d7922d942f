// Dense decode on CUDA, batch 1, bfloat16: the whole step (embedding row, every layer, final norm,
// lm_head) as a few fused kernels over preallocated buffers, so it can be captured in one CUDA
// graph and replayed (at::cuda::CUDAGraph, warmed up on a side stream first).
//
// Per layer: RmsNorm -> one GEMV for q, k and v (+ biases) -> RoPE writing k and v into the
// attention backend's slot -> Append -> Attend (step_attention.h) -> o_proj GEMV adding into the
// float32 residual -> RmsNorm -> one GEMV for gate and up with SiLU(gate) * up fused -> down_proj
// GEMV adding into the residual. Then RmsNorm and the lm_head GEMV: logits bf16 [vocab].
// GEMVs are step_kernels.cu's (one warp a row) or, with StepOptions::cublas, LibTorch matmuls.
//
// The step runs at one fixed position (the KV history [0, position) is whatever the backend
// holds): for timing, the same step is replayed at that position.
//
// Usage:
//   StepWeights w = *RandomStepWeights(*runtime::ModelConfigNamed("qwen2.5-7b"), /*seed=*/0, torch::Device("cuda"));
//   auto attention = *MakeStepAttention("dense_sdpa", shape, device);
//   DecodeStep step(w, attention.get(), /*position=*/8191);
//   step.Run();                     // eager
//   step.Capture();  step.Replay(); // graph
//   torch::Tensor logits = step.logits();

#ifndef KVGATE_EXPERIMENTS_GPU_DECODE_DECODE_STEP_H_
#define KVGATE_EXPERIMENTS_GPU_DECODE_DECODE_STEP_H_

#include <ATen/cuda/CUDAGraph.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/gpu_decode/step_attention.h"
#include "experiments/runtime/model_configs.h"
#include "experiments/runtime/model_weights.h"

namespace kvgate::gpu_decode {

// Weights in the step's fused layout, bf16 on one CUDA device.
struct StepWeights {
  runtime::ModelConfig config;
  torch::Tensor embed;       // [vocab, hidden]
  torch::Tensor final_norm;  // [hidden]
  torch::Tensor lm_head;     // [vocab, hidden] (the embedding when tied)
  struct Layer {
    torch::Tensor input_norm;  // [hidden]
    torch::Tensor wqkv;        // [(heads + 2 kv_heads) D, hidden]
    torch::Tensor bqkv;        // [(heads + 2 kv_heads) D]; undefined without biases
    torch::Tensor wo;          // [hidden, heads D]
    torch::Tensor post_norm;   // [hidden]
    torch::Tensor w_gate_up;   // [2 intermediate, hidden]: gate rows, then up rows
    torch::Tensor w_down;      // [hidden, intermediate]
  };
  std::vector<Layer> layers;

  // Bytes one decode step reads from the weights: everything but the embedding table (one row
  // of it is read); a tied lm_head counts once.
  int64_t StepReadBytes() const;
};

// Seeded random weights generated on `device` (a CUDA generator seeded with `seed`): linear
// weights N(0, 1/fan_in), norms 1, biases N(0, 0.01^2), embeddings and lm_head N(0, 0.02^2), as
// runtime::RandomModelWeights draws them (not the same values: a different generator).
absl::StatusOr<StepWeights> RandomStepWeights(const runtime::ModelConfig& config, uint64_t seed,
                                              const torch::Device& device);

// The step layout of Hugging Face-named weights (runtime/model_weights.h), cast to bf16 on device.
absl::StatusOr<StepWeights> StepWeightsFrom(const runtime::ModelWeights& weights,
                                            const torch::Device& device);

struct StepOptions {
  bool cublas = false;  // LibTorch matmuls instead of step_kernels.cu's GEMVs
};

class DecodeStep {
 public:
  // `attention` must outlive the step; position < the backend's capacity.
  DecodeStep(const StepWeights& weights, StepAttention* attention, int64_t position,
             StepOptions options = {});

  // The input token of the step (int64 [1] on the device); set it before Run or Replay.
  torch::Tensor& token() { return token_; }
  // bf16 [vocab], written by Run and Replay.
  const torch::Tensor& logits() const { return logits_; }

  // One step, eagerly, on the current stream.
  absl::Status Run();

  // Only the attention of every layer (Attend of the last q, once a layer, at the step's
  // position): what speed_ceiling times as the step's attention share.
  absl::Status RunAttentionOnly();

  // Warms `body` up on a side stream, then captures it into a graph. Errors of body as they are.
  static absl::StatusOr<std::unique_ptr<at::cuda::CUDAGraph>> CaptureGraph(
      const std::function<absl::Status()>& body, int warmup = 3);

 private:
  absl::Status Gemv(const torch::Tensor& w, const torch::Tensor& x, const torch::Tensor& bias,
                    torch::Tensor* y, torch::Tensor* residual);

  const StepWeights& w_;
  StepAttention* attention_;
  int64_t position_;
  StepOptions options_;
  torch::Tensor token_, h_, xn_, qkv_, q_, act_, logits_;
};

}  // namespace kvgate::gpu_decode

#endif  // KVGATE_EXPERIMENTS_GPU_DECODE_DECODE_STEP_H_
