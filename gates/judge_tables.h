// The tables //gates:judge prints, as Markdown: per-configuration verdicts re-judged from records,
// and the speed-ceiling table for lists of p_attn, f and h. Deterministic: same input, same bytes.
//
// Usage:
//   std::string t = kvgate::gates::ConfigurationTables(JudgeConfigurations(JudgeRuns(specs,
//   rows))); absl::StatusOr<std::string> s = kvgate::gates::SpeedCeilingTable({0.334}, {0.337,
//   0.376},
//                                                                    {0, 0.05, 0.10}, gate, "v1");

#ifndef KVGATE_GATES_JUDGE_TABLES_H_
#define KVGATE_GATES_JUDGE_TABLES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gates/speed_ceiling/speed_ceiling.h"
#include "gates/verdict.h"

namespace kvgate::gates {

// One table per gate version: target, variant, runs, verdict, the failed conditions.
std::string ConfigurationTables(const std::vector<ConfigurationJudgement>& configs);

// One row per (p_attn, f): the projected speedup at each overhead h, and the gate's verdict at
// its own overhead. `gate_name` names the gate in the heading, e.g. "speed_ceiling v1".
absl::StatusOr<std::string> SpeedCeilingTable(const std::vector<double>& p_attns,
                                              const std::vector<double>& fractions,
                                              const std::vector<double>& overheads,
                                              const SpeedCeilingGate& gate,
                                              const std::string& gate_name);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_JUDGE_TABLES_H_
