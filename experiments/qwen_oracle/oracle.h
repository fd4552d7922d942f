// The work-reduction oracle: does attending to a selected part of the history
// keep decode quality, step by step, under the pre-registered gate `work_reduction_oracle`?
//
// RunOracle, on one model and one prompt:
//   1. Prefill once (dense, in chunks), keeping what the deployable selectors may see of the
//      prompt: every token's accumulated attention (H2O), the last prompt query's attention
//      (TOVA), the last 64 prompt queries' attention over the prompt (SnapKV); per layer.
//   2. Dense reference: greedy decode of `decode_steps` steps from the prefill's argmax, capturing
//      logits, every layer's attention probabilities and post-o_proj outputs. The run is invalid
//      (every row reference_finite = 0, the other metrics NaN) if any of it is non-finite.
//   3. Each selector configuration, on a copy of the prefill cache, teacher-forced on the dense
//      tokens (so step i lines up with the reference's step i):
//        - driven by the selector's policy: decode logits vs the reference (MSE, top-10 overlap,
//          argmax agreement, KL) and the active history fraction (mean over layers of the
//          selection's kept tokens / history tokens, rows = heads or head groups averaged);
//        - layer-local: a dense-driven run with the selector as local policy, so each layer's
//          selected attention sees the dense input to that layer; median over layers of the
//          relative L2 between its post-o_proj output and the dense one (the error is not
//          propagated from layer to layer).
//   The oracles (global_block_mass, layer_block_mass) read this step's dense attention
//   probabilities (step_probs [layers, heads, T], from the reference); global_block_mass makes one
//   block selection a step shared by all layers and heads.
//
// Rows come back without gate and provenance: the caller judges and writes them
// (experiments/common JudgeAndAppend).

#ifndef KVGATE_EXPERIMENTS_QWEN_ORACLE_ORACLE_H_
#define KVGATE_EXPERIMENTS_QWEN_ORACLE_ORACLE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/common/selector_policy.h"
#include "experiments/runtime/model.h"
#include "gates/record.h"

namespace kvgate::experiments {

inline constexpr char kOracleExperiment[] = "qwen_oracle";
inline constexpr char kOracleGate[] = "work_reduction_oracle";
// DefaultSelectorSpecs (the configurations the oracle runs at a context) and
// kSnapKvCaptureWindow come from experiments/common/selector_policy.h.

struct OracleOptions {
  int64_t decode_steps = 4;
  std::vector<std::string> selectors;  // specs; canonicalized (unknown ones are an error)
  int64_t prefill_chunk = 256;         // prompt tokens per prefill forward
  // Progress lines (may be empty).
  std::function<void(const std::string&)> progress;
};

struct OracleResult {
  bool reference_finite = true;
  // Empty when finite; else where the dense reference first went non-finite, in words ("decode
  // step 2, layer 1 (...)"), also in every row (reference_nonfinite_step / _layer metrics).
  std::string reference_nonfinite;
  std::vector<int64_t> dense_tokens;  // tokens fed at each decode step (teacher forcing)
  std::vector<std::string> variants;  // canonical names, in run order
  // Per variant, decode_steps rows (experiment, variant, target, step, metrics); no gate yet.
  std::vector<gates::Record> rows;
  double prefill_seconds = 0;
  double reference_seconds = 0;
  double selectors_seconds = 0;
};

// Runs the oracle; `target` is copied into every row. InvalidArgument for an unknown selector,
// a prompt shorter than SnapKV's window, decode_steps < 1; errors of the model as they are.
absl::StatusOr<OracleResult> RunOracle(const runtime::Model& model,
                                       const std::vector<int64_t>& prompt,
                                       const gates::Target& target, const OracleOptions& options);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_QWEN_ORACLE_ORACLE_H_
