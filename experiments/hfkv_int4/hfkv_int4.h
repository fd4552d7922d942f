// hfkv_int4: the real-KV quality of compressed KV caches.
//
// Prefill the prompt densely once, then for every format: quantize the whole cache (every layer,
// K and V) with the format, decode with the round-tripped cache (KvRoundTripAttention, fed the
// dense run's tokens so step i lines up) and compare each step's logits with the dense run's:
// decode_logit_mse, top10_overlap, argmax_agreement, kl_divergence (gates/metrics.h), kv_ratio
// (format bytes of K + V over the same K + V in bf16, at the prompt's length) and
// reference_finite. Rows are judged by the `hfkv_real_kv_quality` gate (experiment_io.h).
//
// Usage:
//   std::vector<std::shared_ptr<const kernels::KvFormat>> formats = *MakeFormats(DefaultFormatSpecs());
//   absl::StatusOr<HfkvResult> r = RunHfkvQuality(model, prompt, formats, /*decode_steps=*/1);
//   std::cout << HfkvTable(r->rows);
//   std::vector<gates::Record> rows = HfkvRecords(r->rows, target, /*recorded_steps=*/1);

#ifndef KVGATE_EXPERIMENTS_HFKV_INT4_HFKV_INT4_H_
#define KVGATE_EXPERIMENTS_HFKV_INT4_HFKV_INT4_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/runtime/model.h"
#include "gates/record.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::experiments {

inline constexpr char kHfkvExperiment[] = "hfkv_int4";
inline constexpr char kHfkvGate[] = "hfkv_real_kv_quality";

// The formats of the study first (symmetric and affine int4, block 32), then every other format
// of kernels/ (KnownKvFormats) and TurboQuant mse/prod at 2, 3 and 4 bits; canonical specs,
// without duplicates.
std::vector<std::string> DefaultFormatSpecs();

// MakeKvFormat of each spec; InvalidArgument naming the first bad spec.
absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> MakeFormats(
    const std::vector<std::string>& specs);


struct HfkvRow {
  std::string format;  // canonical spec: the record's variant
  int64_t step = 0;
  double decode_logit_mse = 0, top10_overlap = 0, argmax_agreement = 0, kl_divergence = 0;
  double kv_ratio = 0, reference_finite = 0;
  // Where the dense reference first went non-finite (runtime::NonFiniteAt), on rows whose
  // reference_finite is 0; recorded as reference_nonfinite_step / _layer.
  std::optional<int64_t> nonfinite_step, nonfinite_layer;
  double seconds = 0;  // the format's decode steps, wall time
};

struct HfkvResult {
  std::vector<HfkvRow> rows;          // formats outer (in the given order), steps inner
  std::vector<std::string> failures;  // "<format>: <error>" for a format that could not run
  double prefill_seconds = 0, dense_decode_seconds = 0;
  // Empty when the dense reference is finite at every step; else where it first went non-finite,
  // in words ("decode step 2, layer 1 (...)"), also in the rows (nonfinite_step, nonfinite_layer).
  std::string reference_nonfinite;
};

// prompt: the history (>= 1 token ids). A format whose encode fails (e.g. a shape it does not
// take) is listed in failures and has no rows; any other error fails the call. `progress`, when
// set, receives one line per format.
absl::StatusOr<HfkvResult> RunHfkvQuality(
    const runtime::Model& model, const std::vector<int64_t>& prompt,
    const std::vector<std::shared_ptr<const kernels::KvFormat>>& formats, int64_t decode_steps,
    const std::function<void(const std::string&)>& progress = nullptr);

// A markdown table of the rows. verdicts: empty, or one a row (e.g. read back from the records
// JudgeAndAppend wrote: the verdict is the gate's, never this code's), shown in a last column.
std::string HfkvTable(const std::vector<HfkvRow>& rows,
                      const std::vector<std::string>& verdicts = {});

// Records (experiment, variant, target, step, metrics) of the rows with step < recorded_steps;
// gate and provenance are JudgeAndAppend's.
std::vector<gates::Record> HfkvRecords(const std::vector<HfkvRow>& rows,
                                       const gates::Target& target, int64_t recorded_steps);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_HFKV_INT4_HFKV_INT4_H_
