#include "gates/judge_tables.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace kvgate::gates {
namespace {

std::string Cell(const std::string& text) { return absl::StrReplaceAll(text, {{"|", "\\|"}}); }

std::string Row(const std::vector<std::string>& cells) {
  std::vector<std::string> escaped;
  for (const std::string& c : cells) escaped.push_back(Cell(c));
  return absl::StrCat("| ", absl::StrJoin(escaped, " | "), " |\n");
}

std::string Header(const std::vector<std::string>& cells) {
  return absl::StrCat(Row(cells), "|",
                      absl::StrJoin(std::vector<std::string>(cells.size(), "---"), "|"), "|\n");
}

}  // namespace

std::string ConfigurationTables(const std::vector<ConfigurationJudgement>& configs) {
  if (configs.empty()) return "no records\n";
  std::string out;
  std::string gate;
  for (const ConfigurationJudgement& c : configs) {
    const std::string this_gate = absl::StrCat(c.gate_id, " v", c.gate_version);
    if (this_gate != gate) {
      absl::StrAppend(&out, out.empty() ? "" : "\n", "## ", this_gate, "\n\n",
                      Header({"model", "context", "dtype", "device", "weights", "variant", "runs",
                              "verdict", "failed"}));
      gate = this_gate;
    }
    const std::string runs = c.valid_runs == c.runs
                                 ? absl::StrCat(c.runs)
                                 : absl::StrCat(c.runs, " (", c.valid_runs, " valid)");
    absl::StrAppend(&out, Row({c.target.model, absl::StrCat(c.target.context), c.target.dtype,
                               c.target.device, c.target.weights_sha256, c.variant, runs,
                               std::string(VerdictName(c.judgement.verdict)),
                               absl::StrJoin(c.judgement.failed, "; ")}));
  }
  return out;
}

absl::StatusOr<std::string> SpeedCeilingTable(const std::vector<double>& p_attns,
                                              const std::vector<double>& fractions,
                                              const std::vector<double>& overheads,
                                              const SpeedCeilingGate& gate,
                                              const std::string& gate_name) {
  if (p_attns.empty() || fractions.empty()) {
    return absl::InvalidArgumentError("the table needs at least one p_attn and one f");
  }
  std::string out = absl::StrFormat(
      "## speed ceiling: 1 / ((1 - p_attn) + p_attn * f + h); %s passes at >= %.2fx with h = "
      "%g\n\n",
      gate_name, gate.min_speedup, gate.overhead);
  std::vector<std::string> header = {"p_attn", "f"};
  for (double h : overheads) header.push_back(absl::StrFormat("h = %g", h));
  header.push_back(absl::StrFormat("verdict at h = %g", gate.overhead));
  absl::StrAppend(&out, Header(header));
  for (double p : p_attns) {
    for (double f : fractions) {
      std::vector<std::string> row = {absl::StrFormat("%g", p), absl::StrFormat("%g", f)};
      for (double h : overheads) {
        absl::StatusOr<double> s = ProjectedSpeedup(p, f, h);
        if (!s.ok()) return s.status();
        row.push_back(absl::StrFormat("%.2fx", *s));
      }
      absl::StatusOr<SpeedCeilingVerdict> v = JudgeSpeedCeiling(p, f, gate);
      if (!v.ok()) return v.status();
      row.push_back(absl::StrFormat("%s (%.3fx)", v->pass ? "pass" : "fail", v->speedup));
      absl::StrAppend(&out, Row(row));
    }
  }
  return out;
}

}  // namespace kvgate::gates
