// A pre-registered gate: what it judges, on which target, with which thresholds. Specs are files,
// gates/specs/<id>.json (version 1) and gates/specs/<id>.v<N>.json (version N >= 2); a spec file
// is never edited once committed, a changed threshold is a new version (specs/README.md).
//
// A spec's JSON (every field required; `context` and `decode_steps` may be null):
//   {"id": "work_reduction_oracle", "version": 1, "created": "2026-11-27",
//    "summary": "what the gate decides, in words",
//    "target": {"model": "Qwen2.5-7B-Instruct", "context": 8192, "dtype": "bfloat16",
//               "decode_steps": 4},
//    "multi_step_rule": "every_step_passes",
//    "validity": [{"metric": "reference_finite", "op": "==", "value": 1}],
//    "thresholds": [{"metric": "decode_logit_mse", "op": "<=", "value": 0.25}, ...]}
//
// A condition compares one quantity of a record's metrics with a value, op one of <= >= < > ==:
//   {"metric": "top10_overlap", ...}                          the metric itself
//   {"ratio": ["dense_decode_step_ms", "compressed_decode_step_ms"], ...}   numerator / denominator
//   {"projected_speedup": {"overhead": 0.05}, ...}            1 / ((1 - p_attn) + p_attn * f + h)
//                                                             from metrics p_attn and
//                                                             active_history_fraction
// `validity` conditions decide whether a row can be judged at all (failing one makes it invalid);
// `thresholds` decide pass or fail.
//
// Usage:
//   absl::StatusOr<GateSpec> spec = kvgate::gates::ParseGateSpec(bytes);

#ifndef KVGATE_GATES_GATE_SPEC_H_
#define KVGATE_GATES_GATE_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::gates {

enum class Op { kLessEqual, kGreaterEqual, kLess, kGreater, kEqual };

struct Condition {
  enum class Kind { kMetric, kRatio, kProjectedSpeedup };
  Kind kind = Kind::kMetric;
  std::string metric;                  // kMetric
  std::string numerator, denominator;  // kRatio: metric names
  double overhead = 0.0;               // kProjectedSpeedup: h, a fraction of the dense step
  Op op = Op::kLessEqual;
  double value = 0.0;
};

// The target a gate was registered for. A record must match every pinned field; a field left
// null (nullopt) pins nothing: the gate applies to any model, context or dtype, and each record
// names its own (the permission to implement still requires one target across gates).
struct SpecTarget {
  std::optional<std::string> model;
  std::optional<int64_t> context;
  std::optional<std::string> dtype;
  std::optional<int> decode_steps;  // nullopt: one measurement, not per decode step
};

enum class MultiStepRule {
  kEveryStepPasses,    // rows are decode steps 0..decode_steps-1; all must pass
  kSingleMeasurement,  // one row per run, step null
};

struct GateSpec {
  std::string id;
  int version = 0;
  std::string created;  // YYYY-MM-DD
  std::string summary;
  SpecTarget target;
  MultiStepRule multi_step_rule = MultiStepRule::kSingleMeasurement;
  std::vector<Condition> validity;
  std::vector<Condition> thresholds;
};

// Parses and validates a spec file's bytes.
absl::StatusOr<GateSpec> ParseGateSpec(absl::string_view bytes);

// The file name a spec must have: "<id>.json" for version 1, "<id>.v<N>.json" after.
std::string SpecFileName(absl::string_view id, int version);

// "<=", ">=", "<", ">", "==".
absl::string_view OpSymbol(Op op);

// What the condition measures, in words: "top10_overlap", "dense_decode_step_ms /
// compressed_decode_step_ms", "projected_speedup at h = 0.05".
std::string QuantityName(const Condition& condition);

// The whole condition in words: "top10_overlap >= 0.8".
std::string DescribeCondition(const Condition& condition);

// Whether `quantity` satisfies the condition's comparison.
bool Satisfies(const Condition& condition, double quantity);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_GATE_SPEC_H_
