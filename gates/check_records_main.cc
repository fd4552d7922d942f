// check_records: re-judges records files against the committed gate specs. Every row must name a
// registered spec, pin the current sha256 of its file, and store the verdict its metrics and
// spec give today (gates/evidence.h). Prints each problem with its file:line.
//
// Usage:
//   bazel-bin/gates/check_records --specs_dir=gates/specs --records_dir=reports/records
//   bazel-bin/gates/check_records --specs_dir=gates/specs a.jsonl b.jsonl
// Exit status: 0 all records re-judge cleanly (or there are none), 1 a problem was found,
// 2 the specs could not be loaded or the flags are wrong.
//
// Built twice: as //gates:check_records, and as //gates:committed_records_test, which CI runs
// over reports/records/ (a folder Bazel leaves out of the runfiles when it holds no records).
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "gates/evidence.h"
#include "gates/file_io.h"

ABSL_FLAG(std::string, specs_dir, "gates/specs", "Folder of the gate spec files (*.json).");
ABSL_FLAG(std::string, records_dir, "",
          "Folder whose *.jsonl records files are checked, besides any named as arguments. A "
          "folder that does not exist holds no records.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Re-judges records files against the gate specs.\n"
      "Usage: check_records [--specs_dir=DIR] [--records_dir=DIR] [RECORDS.jsonl ...]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> files(args.begin() + 1, args.end());
  const std::string records_dir = absl::GetFlag(FLAGS_records_dir);
  if (!records_dir.empty()) {
    absl::StatusOr<std::vector<std::string>> listed =
        kvgate::gates::ListFiles(records_dir, ".jsonl");
    if (listed.ok()) {
      files.insert(files.end(), listed->begin(), listed->end());
    } else if (!absl::IsNotFound(listed.status())) {
      std::cerr << "check_records: " << listed.status().message() << "\n";
      return 2;
    }
  }
  absl::StatusOr<std::vector<std::string>> spec_files =
      kvgate::gates::ListFiles(absl::GetFlag(FLAGS_specs_dir), ".json");
  if (!spec_files.ok()) {
    std::cerr << "check_records: " << spec_files.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<kvgate::gates::Evidence> evidence =
      kvgate::gates::LoadEvidence(*spec_files, files);
  if (!evidence.ok()) {
    std::cerr << "check_records: " << evidence.status().message() << "\n";
    return 2;
  }
  std::cout << "check_records: " << evidence->rows.size() << " records in " << files.size()
            << " files, " << evidence->specs.size() << " specs\n";
  for (const std::string& problem : evidence->problems) std::cout << problem << "\n";
  if (!evidence->problems.empty()) {
    std::cout << "check_records: " << evidence->problems.size() << " problems\n";
    return 1;
  }
  return 0;
}
