// Verdicts, recomputed from a record's metrics and its gate spec; the verdict a record stores is
// never trusted (evidence.h compares the two).
//
// Three levels:
//   row            one record against its spec: invalid if its target is not the one the spec
//                  pins, its step does not fit the spec, a metric is non-finite, a metric the spec
//                  reads is missing or a quantity is undefined, or a validity condition fails;
//                  else fail if a threshold fails; else pass.
//   run            the rows one process wrote for one variant on one target under one gate
//                  version (equal experiment, variant, target, gate id and version, provenance).
//                  every_step_passes: decode steps 0..n-1 each exactly once, else invalid; invalid
//                  if any step is invalid (e.g. a non-finite dense reference on any step), else
//                  fail if any step fails, else pass. single_measurement: exactly one row.
//   configuration  all runs of one variant on one target under one gate version: invalid when
//                  no run is valid; fail when any valid run fails (re-running until a pass does
//                  not erase a fail); else pass.
//
// Usage:
//   Judgement j = kvgate::gates::JudgeRow(spec, record);
//   std::vector<RunJudgement> runs = kvgate::gates::JudgeRuns(specs, rows);
//   std::vector<ConfigurationJudgement> configs = kvgate::gates::JudgeConfigurations(runs);

#ifndef KVGATE_GATES_VERDICT_H_
#define KVGATE_GATES_VERDICT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gates/gate_spec.h"
#include "gates/record.h"
#include "gates/record_io.h"
#include "gates/spec_registry.h"

namespace kvgate::gates {

struct Judgement {
  Verdict verdict = Verdict::kInvalid;
  std::vector<std::string> failed;  // in words; empty exactly when pass
};

// The value a condition compares, from a row's metrics. NotFound for a missing metric,
// InvalidArgument for an undefined quantity (a zero denominator, p_attn outside [0, 1]).
absl::StatusOr<double> ConditionQuantity(const Condition& condition,
                                         const std::map<std::string, double>& metrics);

// One row against its spec; the row's stored gate result is ignored.
Judgement JudgeRow(const GateSpec& spec, const Record& row);

struct RunJudgement {
  std::string gate_id;
  int gate_version = 0;
  std::string experiment;
  std::string variant;
  Target target;
  Provenance provenance;
  std::vector<const RecordAt*> rows;  // in step order; point into the rows given to JudgeRuns
  Judgement judgement;
};

// Groups rows into runs and judges each; rows naming an unknown spec make invalid runs. Sorted by
// gate id, version, target, variant, start time.
std::vector<RunJudgement> JudgeRuns(const SpecRegistry& specs, const std::vector<RecordAt>& rows);

struct ConfigurationJudgement {
  std::string gate_id;
  int gate_version = 0;
  Target target;
  std::string variant;
  int runs = 0;
  int valid_runs = 0;
  Judgement judgement;
};

// Aggregates runs per (gate id, version, target, variant), in the order of `runs`.
std::vector<ConfigurationJudgement> JudgeConfigurations(const std::vector<RunJudgement>& runs);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_VERDICT_H_
