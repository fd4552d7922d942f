// quality_v2: the quality of KV formats and token selectors measured over many texts and
// positions, with intervals, instead of one prompt and one step.
//
// For each window (a token sequence of context + positions + 1 tokens, e.g. from a prompt set,
// experiments/runtime/prompt_set.h): prefill the first `context` tokens densely, then decode
// `positions` steps teacher-forced on the window's own next tokens (step i feeds token
// context + i; its logits predict token context + i + 1, the TRUE next token), once dense (the
// reference), and for each configuration, a KV format or a token selector:
//   - driven by the configuration (a format: KvRoundTripAttention, the same mechanics as
//     //experiments:hfkv_int4; a selector: SelectorPolicy of experiments/common/selector_policy.h,
//     the same mechanics as //experiments:qwen_oracle): per position KLD, decode-logit MSE,
//     top-10 overlap, argmax agreement, delta-p of the true next token and its absolute value
//     (gates/position_quality.h), and the negative log-likelihood of the true next token;
//   - layer-local: dense-driven with the configuration as local policy, so each layer's
//     attention sees the dense input to that layer; per position the median over layers of the
//     relative L2 of its post-o_proj output against the dense one;
//   - a selector also gives, per position, its active history fraction: the mean over layers of
//     the tokens its selection kept / the history's tokens (rows averaged).
// Selectors see what they would see in the oracle: global_block_mass and layer_block_mass (the
// oracles) this step's dense attention probabilities, from the dense reference run; h2o, tova
// and snapkv what a dense prefill of the window's context saw (captured on a separate prefill in
// chunks of kPrefillChunk, so the reference cache is the same one-shot prefill as the formats').
//
// Perplexity: per window, exp(mean over its positions of the NLL of the true next token), dense
// and under the configuration; per window their ratio and the difference of their logs.
//
// QualityRecords turns each configuration's [window][position] values into one record: mean,
// median, p95, p99 and the seeded 95% bootstrap interval over windows of the mean of each
// measure (gates/distribution.h); the same for the per-window perplexities (perplexity,
// dense_perplexity), perplexity_ratio and log_perplexity_ratio; plus windows,
// positions_per_window, reference_finite, and kv_ratio (a format) or the active_history_fraction
// distribution (a selector). A format's record is for the gate kv_format_quality_over_windows, a
// selector's for oracle_quality_over_windows (ConfigPositions::gate). Both go to the one
// experiment, quality_v2, and its one records file: the runs share windows, prefill and dense
// reference, so one run measures both against the same reference, and each row names its gate.
//
// Usage:
//   absl::StatusOr<std::vector<ConfigPositions>> r = RunOverWindows(
//       model, windows, /*context=*/512, /*positions=*/64, formats,
//       {"h2o:heavy=96:recent=96"}, progress);
//   absl::StatusOr<std::vector<gates::Record>> rows = QualityRecords(*r, target, /*seed=*/0);
//   // Resuming a killed run: RunOverWindows(..., progress, done, window_done), checkpoint.h.

#ifndef KVGATE_EXPERIMENTS_QUALITY_V2_QUALITY_V2_H_
#define KVGATE_EXPERIMENTS_QUALITY_V2_QUALITY_V2_H_

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/runtime/model.h"
#include "gates/distribution.h"
#include "gates/record.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::experiments {

inline constexpr char kQualityV2Experiment[] = "quality_v2";
inline constexpr char kFormatWindowsGate[] = "kv_format_quality_over_windows";
inline constexpr char kSelectorWindowsGate[] = "oracle_quality_over_windows";
inline constexpr int64_t kPrefillChunk = 256;  // prompt tokens a forward of the capturing prefill

// Record metric names besides the distributions'.
inline constexpr char kWindows[] = "windows";
inline constexpr char kPositionsPerWindow[] = "positions_per_window";
// Distributions over windows of per-window values (one value a window).
inline constexpr char kPerplexity[] = "perplexity";             // under the configuration
inline constexpr char kDensePerplexity[] = "dense_perplexity";  // the dense reference's
inline constexpr char kPerplexityRatio[] = "perplexity_ratio";  // perplexity / dense_perplexity
inline constexpr char kLogPerplexityRatio[] = "log_perplexity_ratio";  // log of that ratio

// One configuration's per-position values, [window][position] each.
struct ConfigPositions {
  std::string variant;  // the format's or the selector's canonical spec
  std::string gate;     // kFormatWindowsGate or kSelectorWindowsGate
  bool selector = false;
  gates::Windows kl_divergence, decode_logit_mse, top10_overlap, argmax_agreement, delta_p,
      abs_delta_p, layer_median_o_proj_rel_l2;
  gates::Windows nll, dense_nll;           // -log p(true next token), configuration and dense
  gates::Windows active_history_fraction;  // selectors only
  bool reference_finite = true;  // the dense logits and layer outputs, every window and position
  double kv_ratio = 0;           // formats: at the context's length
  double seconds = 0;            // wall time of this configuration, all windows
};

// ConfigPositions's per-window measures ([window][position] each) by name: the one list that
// code checking or storing a run's values walks (RunOverWindows's resume check, checkpoint.h).
struct WindowMeasure {
  const char* name;
  gates::Windows ConfigPositions::*field;
  bool selectors_only;  // empty for a format
};
const std::vector<WindowMeasure>& WindowMeasures();

// -log softmax(logits)[token], in float64; logits float32 on the CPU, contiguous.
double NegativeLogLikelihood(const torch::Tensor& logits, int64_t token);

// Called after each window with the number of windows done and every configuration's values so
// far (a checkpoint's contents); an error stops the run and is returned.
using WindowDone =
    std::function<absl::Status(size_t windows_done, const std::vector<ConfigPositions>& configs)>;

// windows: each exactly context + positions + 1 token ids; formats first, then selectors
// (specs, canonicalized), in the order given. InvalidArgument for a window of another length,
// context < 1, positions < 1, a bad selector spec (or a snapkv with context < its window); a
// configuration's error fails the call, naming it. Tensors follow the model's device; captures
// come back to the CPU in float32.
//
// Resuming: `done` empty starts at window 0; otherwise it is an earlier call's configurations
// after its first W windows (e.g. from a checkpoint, checkpoint.h), which this call continues at
// window W, giving what one uninterrupted call gives (seconds add up). InvalidArgument when `done`
// is not that: other configurations or order, more windows than `windows`, rows of other than
// `positions` values, measures of unequal window counts. Windows before W are not read again:
// the caller keys `done` to them.
absl::StatusOr<std::vector<ConfigPositions>> RunOverWindows(
    const runtime::Model& model, const std::vector<std::vector<int64_t>>& windows, int64_t context,
    int64_t positions, const std::vector<std::shared_ptr<const kernels::KvFormat>>& formats,
    const std::vector<std::string>& selectors,
    const std::function<void(const std::string&)>& progress = nullptr,
    std::vector<ConfigPositions> done = {}, const WindowDone& window_done = nullptr);

// One record a configuration (experiment quality_v2, variant, target, step null, metrics);
// gate and provenance are JudgeAndAppend's (with ConfigPositions::gate). `seed` seeds the
// bootstrap.
absl::StatusOr<std::vector<gates::Record>> QualityRecords(
    const std::vector<ConfigPositions>& configs, const gates::Target& target, uint64_t seed);

// A markdown table: per configuration the mean (and interval) of MSE, top-10, argmax rate, KLD
// mean and p99, delta-p mean, layer-local L2 mean, kv_ratio (formats) or kept fraction
// (selectors), dense and configuration perplexity and their ratio with its interval; "-" where a
// record lacks the metric. verdicts: empty or one a configuration.
std::string QualityTable(const std::vector<gates::Record>& records,
                         const std::vector<std::string>& verdicts = {});

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_QUALITY_V2_QUALITY_V2_H_
