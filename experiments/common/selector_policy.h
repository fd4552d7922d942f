// Token selectors of kernels/selectors as attention policies of experiments/runtime: what the
// oracle (experiments/qwen_oracle) and quality_v2 share to drive a decode by a selector.
//
//   - PromptCapture / CapturingDense: a dense prefill that keeps what the deployable selectors may
//     see of the prompt, per layer: every token's accumulated attention (H2O), the last prompt
//     query's attention (TOVA), the last kSnapKvCaptureWindow prompt queries' attention (SnapKV).
//   - SelectorState / SelectorPolicy: one selector configuration across the layers and steps of
//     one decode run. The oracles (global_block_mass, layer_block_mass) read this step's dense
//     attention probabilities (step_probs, per step [layers, heads, T], from a dense reference run
//     with capture_attention_probs); global_block_mass makes one block selection a step shared by
//     all layers and heads; h2o and tova update their scores from the selected attention of each
//     step. The policy records, per step, the active history fraction of every layer's selection.
//   - DefaultSelectorSpecs: the configurations the oracle runs at a context.
//
// Keep masks are built on the CPU and moved to the queries' device; the scores a selector reads
// are float32 on the CPU, so a run on CUDA in bfloat16 selects from the same kind of inputs.
//
// Usage:
//   absl::StatusOr<SelectorSpecs> specs = CheckSelectorSpecs({"h2o:heavy=96:recent=96"}, 512);
//   auto capture = std::make_shared<PromptCapture>();
//   capture->prompt = 512;
//   capture->window = specs->wants_window ? kSnapKvCaptureWindow : 0;
//   runtime::ForwardHooks hooks;
//   hooks.policy = CapturingDense(capture, layers);
//   runtime::Prefill(model, scratch, prompt, hooks);
//   std::shared_ptr<SelectorState> st = NewSelectorState(specs->canonical[0], step_probs,
//   *capture); runtime::DecodeOptions opts; opts.policy = SelectorPolicy(st);  // then
//   st->fraction[i]: the kept fraction at step i

#ifndef KVGATE_EXPERIMENTS_COMMON_SELECTOR_POLICY_H_
#define KVGATE_EXPERIMENTS_COMMON_SELECTOR_POLICY_H_

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experiments/runtime/attention_policy.h"

namespace kvgate::experiments {

inline constexpr int64_t kSnapKvCaptureWindow = 64;  // prompt queries kept for SnapKV

// The configurations the oracle runs at a context of `context` tokens (specs for
// kernels/selectors Select). `note` receives a line saying how budgets were scaled.
//   global_block_mass f = 0.376, 0.350, 0.337, b = 16       (the study's fractions)
//   recent_sink sink = 4, recent = 3072 * context / 8192     (3072 at 8192)
//   and the other selectors of kernels/ at a comparable budget B = 3072 * context / 8192:
//   layer_block_mass f = 0.376 b = 16, streaming_llm sink = 4 window = B, h2o heavy = recent = B/2,
//   tova budget = B, snapkv budget = B window = 64, quest budget = B b = 16.
std::vector<std::string> DefaultSelectorSpecs(int64_t context, std::string* note = nullptr);

// "h2o:heavy=256:recent=256" -> "h2o".
std::string SelectorName(const std::string& canonical);
// The integer value of parameter `key` of a canonical name, else `fallback`.
int64_t SelectorParam(const std::string& canonical, absl::string_view key, int64_t fallback);

// Whether the selector reads this step's dense attention probabilities (the oracles).
bool SelectorNeedsStepProbs(const std::string& canonical);

struct SelectorSpecs {
  std::vector<std::string> canonical;  // in the order given
  bool wants_window = false;           // some snapkv: the prefill must capture its window
  bool wants_prompt = false;           // some h2o, tova or snapkv: needs a PromptCapture
  bool wants_step_probs = false;       // some global_/layer_block_mass: dense step probabilities
};

// Canonical names and what the selectors need. InvalidArgument for an unknown or ill-formed spec
// (kernels' message), a snapkv window above kSnapKvCaptureWindow, or, when prompt_tokens >= 0, a
// snapkv with a prompt shorter than that window.
absl::StatusOr<SelectorSpecs> CheckSelectorSpecs(const std::vector<std::string>& specs,
                                                 int64_t prompt_tokens = -1);

// What the deployable selectors may see of the prompt, per layer (float32, CPU).
struct PromptCapture {
  int64_t prompt = 0;                       // P
  int64_t window = 0;                       // W: prompt queries kept for SnapKV (0: none)
  std::vector<torch::Tensor> accumulated;   // [heads, P]: attention each token received
  std::vector<torch::Tensor> last_probs;    // [heads, P]: the last prompt query's attention
  std::vector<torch::Tensor> window_probs;  // [heads, W, P]: the last W queries' attention
};

// Dense attention that also records PromptCapture from the probabilities of each prefill call
// (the prompt may come in chunks; positions must run from 0 to capture->prompt).
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

  // The mean over layers of the active history fraction at `step`; NaN when nothing ran.
  double MeanFraction(int64_t step) const;
};

// A fresh state; step_probs and capture must outlive it (they are read, not copied, except the
// h2o and tova scores, which the state updates).
std::shared_ptr<SelectorState> NewSelectorState(const std::string& canonical,
                                                const std::vector<torch::Tensor>& step_probs,
                                                const PromptCapture& capture);

// Attend at single-token decode steps only to what the state's selector keeps.
runtime::AttentionPolicy SelectorPolicy(std::shared_ptr<SelectorState> st);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_COMMON_SELECTOR_POLICY_H_
