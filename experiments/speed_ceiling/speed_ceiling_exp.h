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
// Usage:
//   absl::StatusOr<SpeedMeasurement> m = MeasureDenseDecode(model, prompt, 20, 3);
//   std::vector<ProjectionRow> t = ProjectionTable(m->p_attn, {0.337, 0.35, 0.376}, {0, 0.05, 0.1});

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

// One record a fraction (variant "dense_decode_p_attn_per_op:f=<f>", step null): p_attn,
// active_history_fraction, dense_decode_step_ms, dense_attention_ms, the other two p_attn
// measures and the projected speedups at 0/5/10% overhead.
absl::StatusOr<std::vector<gates::Record>> SpeedCeilingRecords(const SpeedMeasurement& m,
                                                               const std::vector<double>& fractions,
                                                               const gates::Target& target);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_SPEED_CEILING_SPEED_CEILING_EXP_H_
