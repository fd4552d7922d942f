// quality_v2: the quality of KV formats measured over many texts and positions, with intervals,
// instead of one prompt and one step.
//
// For each window (a token sequence of context + positions + 1 tokens, e.g. from a prompt set,
// experiments/runtime/prompt_set.h): prefill the first `context` tokens densely, then decode
// `positions` steps teacher-forced on the window's own next tokens (step i feeds token
// context + i; its logits predict token context + i + 1, the TRUE next token), once dense (the
// reference), and for each KV format:
//   - driven by the format (KvRoundTripAttention, the same mechanics as //experiments:hfkv_int4):
//     per position KLD, decode-logit MSE, top-10 overlap, argmax agreement, delta-p of the true
//     next token and its absolute value (gates/position_quality.h);
//   - layer-local: dense-driven with the format as local policy, so each layer's round-tripped
//     attention sees the dense input to that layer; per position the median over layers of the
//     relative L2 of its post-o_proj output against the dense one.
// FormatRecords turns each format's [window][position] values into one record: mean, median,
// p95, p99 and the seeded 95% bootstrap interval over windows of the mean of each measure
// (gates/distribution.h), plus windows, positions_per_window, kv_ratio and reference_finite, for
// the gate kv_format_quality_over_windows.
//
// Usage:
//   absl::StatusOr<std::vector<ConfigPositions>> r =
//       RunFormatsOverWindows(model, windows, /*context=*/512, /*positions=*/64, formats, progress);
//   absl::StatusOr<std::vector<gates::Record>> rows = FormatRecords(*r, target, /*seed=*/0);

#ifndef KVGATE_EXPERIMENTS_QUALITY_V2_QUALITY_V2_H_
#define KVGATE_EXPERIMENTS_QUALITY_V2_QUALITY_V2_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/runtime/model.h"
#include "gates/distribution.h"
#include "gates/record.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::experiments {

inline constexpr char kQualityV2Experiment[] = "quality_v2";
inline constexpr char kFormatWindowsGate[] = "kv_format_quality_over_windows";

// Record metric names besides the distributions'.
inline constexpr char kWindows[] = "windows";
inline constexpr char kPositionsPerWindow[] = "positions_per_window";

// One configuration's per-position values, [window][position] each.
struct ConfigPositions {
  std::string variant;  // the format's canonical spec
  gates::Windows kl_divergence, decode_logit_mse, top10_overlap, argmax_agreement, delta_p,
      abs_delta_p, layer_median_o_proj_rel_l2;
  bool reference_finite = true;  // the dense logits and layer outputs, every window and position
  double kv_ratio = 0;           // at the context's length
  double seconds = 0;            // wall time of this configuration, all windows
};

// windows: each exactly context + positions + 1 token ids. InvalidArgument for a window of
// another length, context < 1 or positions < 1; a format's error fails the call, naming it.
absl::StatusOr<std::vector<ConfigPositions>> RunFormatsOverWindows(
    const runtime::Model& model, const std::vector<std::vector<int64_t>>& windows,
    int64_t context, int64_t positions,
    const std::vector<std::shared_ptr<const kernels::KvFormat>>& formats,
    const std::function<void(const std::string&)>& progress = nullptr);

// One record a configuration (experiment quality_v2, variant, target, step null, metrics);
// gate and provenance are JudgeAndAppend's. `seed` seeds the bootstrap.
absl::StatusOr<std::vector<gates::Record>> FormatRecords(const std::vector<ConfigPositions>& configs,
                                                         const gates::Target& target,
                                                         uint64_t seed);

// A markdown table: per configuration the mean (and interval) of MSE, top-10, argmax rate, KLD
// mean and p99, delta-p mean, layer-local L2 mean. verdicts: empty or one a configuration.
std::string QualityTable(const std::vector<gates::Record>& records,
                         const std::vector<std::string>& verdicts = {});

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_QUALITY_V2_QUALITY_V2_H_
