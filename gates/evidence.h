// Re-judging committed evidence: every record must name a registered spec, pin that spec file's
// current sha256 (a spec changed under a record means a threshold moved after the result), and
// store the verdict its metrics and spec give today. CI runs this over reports/records/
// (//gates:committed_records_test); the permission to implement runs it before trusting any row.
//
// Usage:
//   std::vector<std::string> problems = kvgate::gates::CheckRecords(specs, rows);
//   for (const std::string& p : problems) std::cerr << p << "\n";

#ifndef KVGATE_GATES_EVIDENCE_H_
#define KVGATE_GATES_EVIDENCE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gates/record_io.h"
#include "gates/spec_registry.h"

namespace kvgate::gates {

// One sentence per problem, each starting with the record's file:line. Empty when all is well.
std::vector<std::string> CheckRecords(const SpecRegistry& specs, const std::vector<RecordAt>& rows);

// The specs and records of a run of the checker.
struct Evidence {
  SpecRegistry specs;
  std::vector<RecordAt> rows;
  std::vector<std::string> problems;  // unreadable record files, then CheckRecords
};

// Loads the spec files (an error there is a Status: nothing can be judged) and the records files
// (an unreadable or malformed file is a problem) and checks every record.
absl::StatusOr<Evidence> LoadEvidence(const std::vector<std::string>& spec_files,
                                      const std::vector<std::string>& record_files);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_EVIDENCE_H_
