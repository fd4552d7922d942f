// The file side of the report tool: loading the inputs (gate specs, records, the study's
// published figures, the templates), collecting records from `bazel test` outputs, and writing
// or checking the reports. report.h turns the inputs into reports without touching files.
//
// Paths are relative to the working folder, which report_main.cc sets to the repository root
// (or leaves at the runfiles root in a test), so every message and link names a file as it is
// in the repository.
//
// Usage:
//   std::vector<std::string> problems;
//   absl::StatusOr<ReportInputs> in = LoadInputs(paths, &problems);   // problems: file:line
//   std::vector<std::string> diffs = CompareWithDisk(files, paths.out_dir);

#ifndef KVGATE_TOOLS_REPORT_COLLECT_H_
#define KVGATE_TOOLS_REPORT_COLLECT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gates/record.h"
#include "gates/record_io.h"
#include "gates/spec_registry.h"
#include "tools/report/report.h"

namespace kvgate::report {

struct ReportPaths {
  std::string specs_dir = "gates/specs";
  std::string paths_file = "gates/paths.json";  // the path and role of every gate
  std::string records_dir = "reports/records";  // a missing folder holds no records
  std::string templates_dir = "reports/templates";
  std::string published;  // empty: <templates_dir>/published.json
  std::string out_dir = "reports";

  std::string PublishedFile() const;
};

// Reads every input. A Status for what makes generating impossible (no spec folder, a missing or
// malformed template or published.json); `problems` gets one line per bad record (a torn or
// malformed line, an unknown spec, a spec changed under a record, a stored verdict that
// disagrees), each starting with file:line. The caller must not write reports when either is
// non-empty: no row is ever dropped silently.
absl::StatusOr<ReportInputs> LoadInputs(const ReportPaths& paths,
                                        std::vector<std::string>* problems);

// A records file found in test outputs: its name for messages (a path, or
// "<path>/outputs.zip!<entry>") and its bytes.
struct FoundRecordsFile {
  std::string name;
  std::string basename;  // e.g. "hfkv_int4.jsonl"
  std::string bytes;
};

// Every *.jsonl file of every `test.outputs` folder under `testlogs` (e.g. bazel-testlogs), read
// from the folder or from its outputs.zip (Bazel 4.2.3 keeps only the archive), sorted by name.
absl::StatusOr<std::vector<FoundRecordsFile>> FindTestOutputRecords(const std::string& testlogs);

// What importing test outputs into the committed records would do.
struct ImportPlan {
  std::map<std::string, std::vector<gates::Record>> appends;  // records file -> new rows
  int already_committed = 0;          // rows skipped: the same line is already committed
  std::vector<std::string> problems;  // file:line for every bad row; nothing may be written then
};

// Parses and re-judges the found rows (gates/evidence.h) and plans to append each row not yet
// committed to <records_dir>/<basename>.
ImportPlan PlanImport(const gates::SpecRegistry& specs,
                      const std::vector<gates::RecordAt>& committed,
                      const std::vector<FoundRecordsFile>& found, const std::string& records_dir);

// Appends the planned rows (gates::AppendRecords: atomic, validated).
absl::Status ApplyImport(const ImportPlan& plan);

// One line per file that differs: changed (with the first differing line), missing, or stale
// (a file in <out_dir>/summaries or <out_dir>/plots that the records no longer produce).
// Empty when the files on disk are exactly `files`.
std::vector<std::string> CompareWithDisk(const std::map<std::string, std::string>& files,
                                         const std::string& out_dir);

// Writes every changed file atomically and removes the stale ones. `changes` gets one line per
// file written or removed.
absl::Status WriteReports(const std::map<std::string, std::string>& files,
                          const std::string& out_dir, std::vector<std::string>* changes);

}  // namespace kvgate::report

#endif  // KVGATE_TOOLS_REPORT_COLLECT_H_
