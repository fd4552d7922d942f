// A decoder-only Llama-family / Qwen2 forward in LibTorch, built from ModelWeights.
//
// Token embedding, RMSNorm (float32 inside, as transformers does), rotary embeddings (theta from
// the config, Hugging Face rotate-half layout), grouped-query attention through a pluggable
// AttentionPolicy (attention_policy.h), SwiGLU MLP, Qwen2's q/k/v biases, tied or untied lm_head.
// float32, bfloat16 or float16 weights on any device LibTorch has (plain ops only). One sequence
// (batch 1): activations are [tokens, hidden].
//
// Usage (decode.h has the gpt-fast style loop around Forward):
//   ModelOptions options;
//   options.dtype = torch::kBFloat16;
//   absl::StatusOr<Model> model = Model::Create(weights, options);
//   KvCache cache = model->NewCache(/*capacity=*/4096);
//   absl::StatusOr<torch::Tensor> h = model->Forward(torch::tensor({1, 2, 3}), cache);
//   torch::Tensor logits = model->Logits(*h);  // h: [3, hidden], logits: [3, vocab]
//
// Hooks are arguments (ForwardHooks): the attention policy, an optional second "local" policy
// evaluated on the same inputs, and pointers that receive per-layer captures.

#ifndef KVGATE_EXPERIMENTS_RUNTIME_MODEL_H_
#define KVGATE_EXPERIMENTS_RUNTIME_MODEL_H_

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/kv_cache.h"
#include "experiments/runtime/model_weights.h"

namespace kvgate::runtime {

struct ModelOptions {
  torch::Dtype dtype = torch::kFloat32;  // float32, bfloat16 or float16: weights and activations
  std::optional<torch::Device> device;   // default: the device of model.embed_tokens.weight
  // Create rejects a weight holding NaN or an infinity (after conversion to `dtype`, so a value a
  // float16 cannot hold counts too) unless this is set: such a model cannot give a valid dense
  // reference. Tests of the numerical guards set it to build a poisoned model on purpose.
  bool allow_non_finite_weights = false;
};

// What one Forward call does besides the forward itself. Every field is optional.
struct ForwardHooks {
  AttentionPolicy policy;  // drives the forward; empty: DenseAttention()
  // Layer-local evaluation: at every layer, also run this policy on the same queries and cache
  // (the driving run's input to that layer) and record its post-o_proj output in local_outputs;
  // the forward itself continues with `policy`'s output, so the local error is not propagated.
  AttentionPolicy local_policy;
  int64_t step = -1;  // passed to the policies as AttentionCall::step

  // Captures, per layer (resized to num_hidden_layers), on the model's device:
  std::vector<torch::Tensor>* attention_probs = nullptr;  // float32 [T, heads, S]
  std::vector<torch::Tensor>* layer_outputs = nullptr;    // [T, hidden] post-o_proj, model dtype
  std::vector<torch::Tensor>* local_outputs = nullptr;    // [T, hidden] local_policy's post-o_proj
  std::vector<torch::Tensor>* layer_inputs = nullptr;     // [T, hidden] residual stream entering

  // Numerical guard: when set, receives the first layer whose output (the residual stream leaving
  // it) holds a NaN or an infinity, num_hidden_layers when only the final norm's output does, -1
  // when none does. Costs one device sync a layer: for diagnosis, not for timed runs.
  int64_t* first_nonfinite_layer = nullptr;
};

class Model {
 public:
  // Checks the config (architecture "llama" or "qwen2", positive sizes, heads divisible by kv
  // heads) and every tensor (present, floating point, the shape the config implies); errors are
  // InvalidArgument naming the tensor. Tensors are converted to options' dtype and device; q/k/v
  // and gate/up weights are concatenated for one matmul each. A tensor no layer uses (other than
  // a tied model's lm_head.weight and rotary_emb.inv_freq) is an error too, so a loader's naming
  // mistake cannot be silently ignored. A tensor holding NaN or an infinity is an error naming
  // it and its count unless options.allow_non_finite_weights.
  static absl::StatusOr<Model> Create(const ModelWeights& weights,
                                      const ModelOptions& options = {});

  const ModelConfig& config() const { return config_; }
  torch::Dtype dtype() const { return options_.dtype; }
  torch::Device device() const { return *options_.device; }

  // An empty cache for this model: [capacity, kv_heads, head_dim] a layer, the model's dtype.
  KvCache NewCache(int64_t capacity) const;

  // Runs tokens (int64 [T], T >= 1) at positions [cache.length, cache.length + T), writes their
  // keys and values into the cache and advances cache.length by T. Returns the hidden states after
  // the final norm, [T, hidden]. OutOfRange when the cache is too small; InvalidArgument for a
  // token outside the vocabulary; a policy's error as it is.
  absl::StatusOr<torch::Tensor> Forward(const torch::Tensor& tokens, KvCache& cache,
                                        const ForwardHooks& hooks = {}) const;

  // Logits [T, vocab] (model dtype) of hidden states [T, hidden].
  torch::Tensor Logits(const torch::Tensor& hidden) const;

 private:
  struct Layer {
    torch::Tensor input_norm;  // [hidden]
    torch::Tensor wqkv;        // [(heads + 2 * kv_heads) * head_dim, hidden]
    torch::Tensor bqkv;        // [(heads + 2 * kv_heads) * head_dim]; undefined without biases
    torch::Tensor wo;          // [hidden, heads * head_dim]
    torch::Tensor bo;          // [hidden]; Llama with attention_bias only
    torch::Tensor post_norm;   // [hidden]
    torch::Tensor w_gate_up;   // [2 * intermediate, hidden]
    torch::Tensor w_down;      // [hidden, intermediate]
  };

  Model() = default;

  ModelConfig config_;
  ModelOptions options_;
  torch::Tensor embed_;     // [vocab, hidden]
  torch::Tensor norm_;      // [hidden]
  torch::Tensor lm_head_;   // [vocab, hidden]; embed_ when tied
  torch::Tensor inv_freq_;  // float32 [head_dim / 2], 1 / theta^(2i / head_dim)
  std::vector<Layer> layers_;
};

// Seeded random weights of a config's exact shapes (float32 on the CPU): for speed measurements,
// which need no trained weights. Linear weights N(0, 1/fan_in), norms 1, biases N(0, 0.01^2),
// embeddings N(0, 0.02^2).
ModelWeights RandomModelWeights(const ModelConfig& config, uint64_t seed);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_MODEL_H_
