// Selector configurations of kernels/selectors as attention policies of experiments/runtime, with
// the state each selector needs across the layers and steps of one decode run. Shared by the
// work-reduction oracle (experiments/qwen_oracle) and the passkey retrieval experiment.
//
// What a selector may read:
//   - deployable selectors read what the dense prefill saw (PromptCapture, recorded by
//     CapturingDense): H2O the attention each prompt token received, TOVA the last prompt query's
//     attention, SnapKV the last `window` prompt queries' attention; H2O and TOVA then update
//     their state from their own decode-step attention; Quest reads the call's keys and query.
//   - the oracles (global_block_mass, layer_block_mass) read this step's dense attention
//     probabilities, step_probs[step] = [layers, heads, T], which the caller provides (from a
//     dense reference run, or from a dense step on the same cache); global_block_mass makes one
//     block selection a step shared by all layers and heads.
// Selection runs on single-token decode steps only (AttentionCall::step >= 0, one query).
//
// Usage:
//   auto capture = std::make_shared<PromptCapture>();
//   capture->prompt = prompt.size();
//   capture->window = 64;                                  // 0 when no SnapKV runs
//   ForwardHooks hooks;
//   hooks.policy = CapturingDense(capture, config.num_hidden_layers);
//   Prefill(model, cache, prompt, hooks);                  // in chunks, any size
//   std::vector<torch::Tensor> step_probs = ...;           // per step [layers, heads, T]
//   std::shared_ptr<SelectorState> st = NewSelectorState("h2o:heavy=64:recent=64", step_probs,
//                                                        *capture);
//   DecodeOptions options;
//   options.policy = SelectorPolicy(st);
//   DecodeForced(model, cache, tokens, options);           // st->fraction: kept share by step

#ifndef KVGATE_EXPERIMENTS_COMMON_SELECTOR_POLICY_H_
#define KVGATE_EXPERIMENTS_COMMON_SELECTOR_POLICY_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "experiments/runtime/attention_policy.h"

namespace kvgate::experiments {

// "h2o:heavy=256:recent=256" -> "h2o".
std::string SelectorName(const std::string& canonical);
// The value of one integer parameter of a canonical selector name, or `fallback`.
int64_t SelectorParam(const std::string& canonical, absl::string_view key, int64_t fallback);

// What the deployable selectors may see of the prompt, per layer (float32, CPU).
struct PromptCapture {
  int64_t prompt = 0;   // P
  int64_t window = 0;   // W: prompt queries kept for SnapKV (0: none)
  std::vector<torch::Tensor> accumulated;   // [heads, P]: attention each token received
  std::vector<torch::Tensor> last_probs;    // [heads, P]: the last prompt query's attention
  std::vector<torch::Tensor> window_probs;  // [heads, W, P]: the last W queries' attention
};

// Dense attention that also records PromptCapture from the probabilities of each prefill chunk.
runtime::AttentionPolicy CapturingDense(std::shared_ptr<PromptCapture> capture, int64_t layers);

// One selector configuration's state across the layers and steps of one decode run.
struct SelectorState {
  std::string spec;  // canonical
  std::string name;
  const std::vector<torch::Tensor>* step_probs = nullptr;    // per step [layers, heads, T]
  std::vector<torch::Tensor> accumulated;                    // h2o, per layer [heads, T']
  std::vector<torch::Tensor> last_probs;                     // tova, per layer [heads, T']
  const std::vector<torch::Tensor>* window_probs = nullptr;  // snapkv, per layer [heads, W, P]
  int64_t capture_window = 0;
  std::map<int64_t, std::pair<torch::Tensor, double>> shared;  // global_block_mass by step
  std::map<int64_t, std::pair<double, int64_t>> fraction;      // by step: sum over layers, count
};

// The policy attending where the selector keeps. step_probs and capture must outlive it.
runtime::AttentionPolicy SelectorPolicy(std::shared_ptr<SelectorState> st);

// A fresh state for `spec` (canonical) over a prefill's capture.
std::shared_ptr<SelectorState> NewSelectorState(const std::string& spec,
                                                const std::vector<torch::Tensor>& step_probs,
                                                const PromptCapture& capture);

// Whether the selector reads this step's dense attention probabilities (the oracles).
bool SelectorNeedsStepProbs(const std::string& canonical);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_COMMON_SELECTOR_POLICY_H_
