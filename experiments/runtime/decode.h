// The decode loop of experiments/runtime, after gpt-fast: Prefill, DecodeOne, DecodeN (greedy) and
// DecodeForced (teacher forcing), with per-step captures for the gates.
//
// Usage:
//   KvCache cache = model.NewCache(prompt.size() + n);
//   absl::StatusOr<torch::Tensor> logits = Prefill(model, cache, prompt);       // float32 [vocab]
//   const int64_t first = logits->argmax().item<int64_t>();
//   absl::StatusOr<DecodeResult> dense = DecodeN(model, cache, first, n);       // greedy
//
//   // The same steps under another policy, fed the dense run's tokens so step i lines up:
//   KvCache cache2 = model.NewCache(prompt.size() + n);
//   Prefill(model, cache2, prompt);
//   DecodeOptions opts;
//   opts.policy = KvRoundTripAttention(format);
//   absl::StatusOr<DecodeResult> int4 = DecodeForced(model, cache2, dense->TokensIn(), opts);
//   // int4->steps[i].logits vs dense->steps[i].logits, int4->TokensOut() vs dense->TokensOut()
//
// Layer-local error: a dense run with opts.local_policy = X and capture_layer_outputs records, at
// every step and layer, X's post-o_proj output computed from the dense run's input to that layer
// and its cache (local_outputs) next to the dense output (layer_outputs).

#ifndef KVGATE_EXPERIMENTS_RUNTIME_DECODE_H_
#define KVGATE_EXPERIMENTS_RUNTIME_DECODE_H_

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/kv_cache.h"
#include "experiments/runtime/model.h"

namespace kvgate::runtime {

// Runs the prompt (T >= 1 tokens) at positions [cache.length, cache.length + T). Returns the last
// position's logits, float32 [vocab] on the model's device.
absl::StatusOr<torch::Tensor> Prefill(const Model& model, KvCache& cache,
                                      const std::vector<int64_t>& tokens,
                                      const ForwardHooks& hooks = {});

// Runs one token at position cache.length. Returns its logits, float32 [vocab] on the model's
// device.
absl::StatusOr<torch::Tensor> DecodeOne(const Model& model, KvCache& cache, int64_t token,
                                        const ForwardHooks& hooks = {});

struct DecodeOptions {
  AttentionPolicy policy;        // drives the decode; empty: DenseAttention()
  AttentionPolicy local_policy;  // layer-local evaluation; see ForwardHooks::local_policy
  bool capture_logits = true;
  bool capture_attention_probs = false;
  bool capture_layer_outputs = false;  // layer_outputs, and local_outputs with a local_policy
  bool capture_layer_inputs = false;   // layer_inputs
  int64_t stop_token = -1;             // DecodeN only: stop after a step that predicts it
};

// One decode step. Captured tensors are float32 on the CPU; empty when not captured.
struct DecodeStep {
  int64_t position = 0;                        // of token_in
  int64_t token_in = 0;                        // the token fed
  int64_t token_out = 0;                       // argmax of the step's logits: greedy's next token
  double seconds = 0;                          // wall time of the step, argmax included
  torch::Tensor logits;                        // [vocab]
  std::vector<torch::Tensor> attention_probs;  // per layer [heads, position + 1]
  std::vector<torch::Tensor> layer_outputs;    // per layer [hidden], post-o_proj
  std::vector<torch::Tensor> local_outputs;    // per layer [hidden], local_policy's post-o_proj
  std::vector<torch::Tensor> layer_inputs;     // per layer [hidden], the residual stream entering
};

struct DecodeResult {
  std::vector<DecodeStep> steps;
  double seconds = 0;  // all steps

  std::vector<int64_t> TokensIn() const;   // what DecodeForced takes to replay these steps
  std::vector<int64_t> TokensOut() const;  // the argmax of every step
  double TokensPerSecond() const { return seconds > 0 ? steps.size() / seconds : 0; }
};

// Greedy: step 0 feeds first_token (usually the argmax of Prefill's logits), step i > 0 the argmax
// of step i - 1; n steps, or fewer when options.stop_token comes. Step i calls the policies with
// AttentionCall::step = i.
absl::StatusOr<DecodeResult> DecodeN(const Model& model, KvCache& cache, int64_t first_token,
                                     int64_t n, const DecodeOptions& options = {});

// Teacher forcing: step i feeds tokens[i] whatever the model predicts.
absl::StatusOr<DecodeResult> DecodeForced(const Model& model, KvCache& cache,
                                          const std::vector<int64_t>& tokens,
                                          const DecodeOptions& options = {});

// Where a dense run first went non-finite (numerical guard).
struct NonFiniteAt {
  int64_t step = -1;  // the decode step; -1: the prefill
  // The first layer whose output (the residual stream leaving it) holds a NaN or an infinity;
  // num_hidden_layers: the final norm's output; num_hidden_layers + 1: only the logits (lm_head).
  int64_t layer = 0;

  // "decode step 2, layer 1 (the output of model.layers.1)", "the prefill, lm_head (the logits)".
  std::string Describe(int64_t num_hidden_layers) const;
};

// Records' metric names for NonFiniteAt, on rows whose dense reference is non-finite (step -1 is
// the prefill; layer as NonFiniteAt::layer).
inline constexpr char kReferenceNonfiniteStep[] = "reference_nonfinite_step";
inline constexpr char kReferenceNonfiniteLayer[] = "reference_nonfinite_layer";

// Replays a dense run, the prompt (prefilled `prefill_chunk` tokens a forward; 0: in one) then
// `tokens` teacher-forced, with the non-finite check after every layer; returns where it first
// goes non-finite, nullopt when it stays finite. For naming the step and layer after a dense
// reference came out non-finite: it costs one more run and a sync a layer, so never in a timed run.
absl::StatusOr<std::optional<NonFiniteAt>> LocateNonFinite(const Model& model,
                                                           const std::vector<int64_t>& prompt,
                                                           const std::vector<int64_t>& tokens,
                                                           int64_t prefill_chunk = 0);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_DECODE_H_
