// speed_ceiling (experiment): how much of a dense decode step is attention, and what ceiling that
// puts on long-context work reduction (gates/speed_ceiling/speed_ceiling.h).
//
// Measured on the real decode step at a fixed history: prefill the prompt, then `steps` times
// (after `warmup` untimed ones) decode one token at position = prompt length and roll the cache
// back, so every step sees exactly the same history. Three measures of p_attn:
//   per op (recorded as p_attn)  the dense AttentionPolicy wrapped with a timer: the sum over layers
//                                of attention time / step time, medians over the steps;
//   ablation                     (step with dense attention - step whose attention reads only the
//                                newest token) / step with dense attention, medians;
//   bytes projection             K/V bytes of the history / (weight bytes + K/V bytes): the share
//                                of memory traffic, the projection a bandwidth-bound step implies.
// The steps alternate dense and ablated so drift hits both alike.
//
// One such measurement is one run; a CPU run's p_attn moves with the machine's load (0.29 and
// 0.69 in two runs on a loaded machine), so the recorded p_attn is the median over `repeats`
// independent runs (each a fresh prefill, warm-up and timed steps), recorded with every run's
// value and their relative range (max - min) / median, which speed_ceiling v2 bounds.
//
// Usage:
//   absl::StatusOr<RepeatedSpeed> r = MeasureDenseDecodeRepeated(model, prompt, 20, 3, 5);
//   std::vector<ProjectionRow> t = ProjectionTable(r->median.p_attn, {0.337, 0.35, 0.376},
//                                                  {0, 0.05, 0.1});
//   absl::StatusOr<std::vector<gates::Record>> rows = SpeedCeilingRecords(*r, fractions, target);

#ifndef KVGATE_EXPERIMENTS_SPEED_CEILING_SPEED_CEILING_EXP_H_
#define KVGATE_EXPERIMENTS_SPEED_CEILING_SPEED_CEILING_EXP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/runtime/model.h"
#include "gates/record.h"

namespace kvgate::experiments {

inline constexpr char kSpeedCeilingExperiment[] = "speed_ceiling";
inline constexpr char kSpeedCeilingGate[] = "speed_ceiling";

// The active history fractions of the study, and the overheads of the table.
inline const std::vector<double>& StudyFractions() {
  static const auto* f = new std::vector<double>{0.337, 0.350, 0.376};
  return *f;
}
inline const std::vector<double>& TableOverheads() {
  static const auto* h = new std::vector<double>{0.0, 0.05, 0.10};
  return *h;
}

struct SpeedMeasurement {
  int64_t history = 0;  // tokens the timed steps attend to (prompt + the new token)
  int64_t steps = 0;
  std::vector<double> step_ms, attention_ms, ablated_step_ms;  // per timed step
  double dense_decode_step_ms = 0;   // median
  double dense_attention_ms = 0;     // median of the per-step sums over layers
  double ablated_step_ms_median = 0;
  double p_attn = 0;           // per op: dense_attention_ms / dense_decode_step_ms
  double p_attn_ablation = 0;  // (dense - ablated) / dense, medians; may be < 0 from noise
  double p_attn_bytes = 0;     // bytes projection
};

double Median(std::vector<double> values);

// prompt >= 1 token; steps >= 1; warmup >= 0. Errors of the model come back as they are.
absl::StatusOr<SpeedMeasurement> MeasureDenseDecode(
    const runtime::Model& model, const std::vector<int64_t>& prompt, int64_t steps,
    int64_t warmup, const std::function<void(const std::string&)>& progress = nullptr);

// The spread of repeated runs: (max - min) / median. The range rather than the interquartile
// range because with the few runs a timing affords (5) the IQR drops the two extreme runs, which
// are exactly where a burst of load lands; the range counts every run, so one disturbed run is
// seen. Divided by the median so the bound reads as a share of p_attn. InvalidArgument for no
// values, a non-finite value or a median <= 0.
absl::StatusOr<double> RelativeRange(const std::vector<double>& values);

// Repeated runs of MeasureDenseDecode and what is recorded of them.
struct RepeatedSpeed {
  std::vector<SpeedMeasurement> runs;
  // Medians over the runs of each run's figures (p_attn, step, attention and ablated step ms,
  // ablation p_attn, bytes projection); steps and history as in the runs, the per-step vectors
  // empty.
  SpeedMeasurement median;
  double p_attn_min = 0, p_attn_max = 0;
  double p_attn_relative_range = 0;  // RelativeRange of the runs' p_attn
};

// Combines runs measured at one history. InvalidArgument for no runs, runs at different
// histories, or RelativeRange's errors.
absl::StatusOr<RepeatedSpeed> CombineRuns(std::vector<SpeedMeasurement> runs);

// `repeats` >= 1 runs of MeasureDenseDecode, combined; progress says which run is going.
absl::StatusOr<RepeatedSpeed> MeasureDenseDecodeRepeated(
    const runtime::Model& model, const std::vector<int64_t>& prompt, int64_t steps,
    int64_t warmup, int64_t repeats,
    const std::function<void(const std::string&)>& progress = nullptr);

// K/V bytes / (weights + K/V bytes) of one decode step at `history` tokens in the model's dtype
// (tied embeddings counted once, as the lm_head).
double BytesProjectionPAttn(const runtime::ModelConfig& config, int64_t element_bytes,
                            int64_t history);

struct ProjectionRow {
  double active_fraction = 0;
  double overhead = 0;
  double speedup = 0;  // gates::ProjectedSpeedup(p_attn, active_fraction, overhead)
};

// fractions outer, overheads inner. InvalidArgument from ProjectedSpeedup on a bad value.
absl::StatusOr<std::vector<ProjectionRow>> ProjectionTable(double p_attn,
                                                           const std::vector<double>& fractions,
                                                           const std::vector<double>& overheads);

// A markdown table: one line a fraction, one column an overhead.
std::string ProjectionMarkdown(const std::vector<ProjectionRow>& rows);

// One record a fraction (variant "dense_decode_p_attn_per_op:f=<f>", step null): p_attn (the
// median over runs), active_history_fraction, dense_decode_step_ms, dense_attention_ms, the other
// two p_attn measures (medians), the projected speedups at 0/5/10% overhead from the median
// p_attn, and the repeats: `repeats`, `p_attn_run_<i>` (i = 1..repeats, in run order),
// `p_attn_min`, `p_attn_max` and `p_attn_relative_range`.
absl::StatusOr<std::vector<gates::Record>> SpeedCeilingRecords(const RepeatedSpeed& r,
                                                               const std::vector<double>& fractions,
                                                               const gates::Target& target);

// The records of a single run (repeats 1, relative range 0): what a caller that measured once
// writes. speed_ceiling v2 judges such rows invalid (it wants >= 5 runs).
absl::StatusOr<std::vector<gates::Record>> SpeedCeilingRecords(const SpeedMeasurement& m,
                                                               const std::vector<double>& fractions,
                                                               const gates::Target& target);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_SPEED_CEILING_SPEED_CEILING_EXP_H_
