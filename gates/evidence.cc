#include "gates/evidence.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gates/verdict.h"

namespace kvgate::gates {

std::vector<std::string> CheckRecords(const SpecRegistry& specs,
                                      const std::vector<RecordAt>& rows) {
  std::vector<std::string> problems;
  for (const RecordAt& row : rows) {
    if (!HasGate(row.record)) continue;  // data only: no verdict to check
    const GateResult& gate = row.record.gate;
    const RegisteredSpec* spec = FindSpec(specs, gate.id, gate.version);
    if (spec == nullptr) {
      problems.push_back(absl::StrCat(row.Where(), ": names unknown spec ", gate.id, " v",
                                      gate.version, " (no gates/specs/",
                                      SpecFileName(gate.id, gate.version), ")"));
      continue;
    }
    if (spec->sha256 != gate.spec_sha256) {
      problems.push_back(absl::StrCat(
          row.Where(), ": pins ", gate.id, " v", gate.version, " at sha256 ", gate.spec_sha256,
          ", but ", spec->path, " now has sha256 ", spec->sha256,
          ": the spec changed under the record. Specs are never edited; restore it and register "
          "the change as a new version, ",
          SpecFileName(gate.id, LatestSpec(specs, gate.id)->spec.version + 1)));
      continue;
    }
    const Judgement judged = JudgeRow(spec->spec, row.record);
    if (judged.verdict != gate.verdict) {
      problems.push_back(absl::StrCat(
          row.Where(), ": stores verdict ", VerdictName(gate.verdict), ", but ", gate.id, " v",
          gate.version, " judges it ", VerdictName(judged.verdict),
          judged.failed.empty() ? ""
                                : absl::StrCat(" (", absl::StrJoin(judged.failed, "; "), ")")));
    }
  }
  return problems;
}

absl::StatusOr<Evidence> LoadEvidence(const std::vector<std::string>& spec_files,
                                      const std::vector<std::string>& record_files) {
  absl::StatusOr<SpecRegistry> specs = LoadSpecFiles(spec_files);
  if (!specs.ok()) return specs.status();
  Evidence evidence;
  evidence.specs = *std::move(specs);
  for (const std::string& file : record_files) {
    absl::StatusOr<std::vector<RecordAt>> rows = ReadRecordsFile(file);
    if (!rows.ok()) {
      evidence.problems.push_back(std::string(rows.status().message()));
      continue;
    }
    for (RecordAt& row : *rows) evidence.rows.push_back(std::move(row));
  }
  for (std::string& problem : CheckRecords(evidence.specs, evidence.rows)) {
    evidence.problems.push_back(std::move(problem));
  }
  return evidence;
}

}  // namespace kvgate::gates
