// report: regenerates kvgate's reports from the committed records.
//
//   tools/bazel run //tools/report
//       re-judges every record of reports/records/ against gates/specs/, fills the templates of
//       reports/templates/ and rewrites reports/results-ledger.md, reports/summaries/*.md and
//       reports/plots/*.svg in place (stale files in summaries/ and plots/ are removed)
//   tools/bazel run //tools/report -- --check
//       writes nothing; exits 1 when the committed reports differ from what the records give
//       (//tools/report:reports_check_test runs this in CI, so a hand-edited number fails)
//   tools/bazel run //tools/report -- --testlogs=bazel-testlogs
//       first appends the records that tests wrote as undeclared outputs (every *.jsonl under a
//       test.outputs/ folder or in its outputs.zip) to reports/records/<same name>, skipping rows
//       already committed, then regenerates; commit the records with the reports
//
// A malformed or unjudgeable record (torn line, bad JSON, unknown spec, a spec changed under the
// record, a stored verdict the spec no longer gives) is printed with its file:line and nothing is
// written. Exit status: 0 done (or --check found no difference), 1 bad records or --check found
// differences, 2 wrong flags or unreadable inputs (specs, templates, published.json).
//
// Paths are relative to the repository root: under `bazel run` the tool works in
// BUILD_WORKSPACE_DIRECTORY, elsewhere in the folder it starts in (the runfiles root in a test).
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "tools/report/collect.h"
#include "tools/report/report.h"

ABSL_FLAG(bool, check, false,
          "Write nothing; exit 1 when the reports in --out_dir differ from what the records "
          "produce (changed, missing or stale files).");
ABSL_FLAG(std::string, testlogs, "",
          "Before generating, import the records that tests wrote as undeclared outputs under "
          "this folder (e.g. bazel-testlogs) into --records_dir. Not with --check.");
ABSL_FLAG(std::string, specs_dir, "gates/specs", "Folder of the gate spec files (*.json).");
ABSL_FLAG(std::string, paths, "gates/paths.json",
          "The path table: the path and role of every gate spec (gates/path_table.h).");
ABSL_FLAG(std::string, records_dir, "reports/records",
          "Folder of the committed records (*.jsonl); a missing folder holds none.");
ABSL_FLAG(std::string, templates_dir, "reports/templates",
          "Folder of the report templates (<report>.md).");
ABSL_FLAG(std::string, published, "",
          "The study's published figures. Default: <templates_dir>/published.json.");
ABSL_FLAG(std::string, out_dir, "reports",
          "Where the reports go: results-ledger.md, summaries/, plots/.");

namespace {

constexpr char kUsage[] =
    "Regenerates kvgate's reports (ledger, summaries, plots) from the committed records.\n"
    "  report                 rewrite reports/ in place\n"
    "  report --check         exit 1 when the committed reports differ from the records'\n"
    "  report --testlogs=bazel-testlogs   import test-output records first, then rewrite\n"
    "Exit status: 0 done, 1 bad records or differences, 2 wrong flags or unreadable inputs.";

int Fail(const std::string& why) {
  std::cerr << "report: " << why << "\n";
  return 2;
}

int Problems(const std::string& what, const std::vector<std::string>& problems) {
  std::cerr << "report: " << what << "; nothing written:\n";
  for (const std::string& p : problems) std::cerr << "  " << p << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) return Fail(absl::StrCat("unexpected argument ", args[1], "; see --help"));
  const bool check = absl::GetFlag(FLAGS_check);
  const std::string testlogs = absl::GetFlag(FLAGS_testlogs);
  if (check && !testlogs.empty()) return Fail("--check and --testlogs do not go together");
  if (const char* root = getenv("BUILD_WORKSPACE_DIRECTORY"); root != nullptr) {
    if (chdir(root) != 0) return Fail(absl::StrCat("cannot enter ", root));
  }

  kvgate::report::ReportPaths paths;
  paths.specs_dir = absl::GetFlag(FLAGS_specs_dir);
  paths.paths_file = absl::GetFlag(FLAGS_paths);
  paths.records_dir = absl::GetFlag(FLAGS_records_dir);
  paths.templates_dir = absl::GetFlag(FLAGS_templates_dir);
  paths.published = absl::GetFlag(FLAGS_published);
  paths.out_dir = absl::GetFlag(FLAGS_out_dir);

  std::vector<std::string> problems;
  absl::StatusOr<kvgate::report::ReportInputs> inputs =
      kvgate::report::LoadInputs(paths, &problems);
  if (!inputs.ok()) return Fail(std::string(inputs.status().message()));
  // A mistyped folder must not regenerate every report from zero records.
  if (std::error_code error; !std::filesystem::is_directory(paths.records_dir, error)) {
    return Fail(absl::StrCat("--records_dir: no such folder ", paths.records_dir));
  }
  if (!problems.empty()) return Problems("bad records", problems);

  if (!testlogs.empty()) {
    absl::StatusOr<std::vector<kvgate::report::FoundRecordsFile>> found =
        kvgate::report::FindTestOutputRecords(testlogs);
    if (!found.ok()) return Fail(std::string(found.status().message()));
    const kvgate::report::ImportPlan plan =
        kvgate::report::PlanImport(inputs->specs, inputs->rows, *found, paths.records_dir);
    if (!plan.problems.empty()) return Problems("bad records in the test outputs", plan.problems);
    if (absl::Status s = kvgate::report::ApplyImport(plan); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    int appended = 0;
    for (const auto& [file, rows] : plan.appends) {
      std::cout << "report: appended " << rows.size() << " rows to " << file << "\n";
      appended += static_cast<int>(rows.size());
    }
    std::cout << "report: " << found->size() << " records files in " << testlogs << ", " << appended
              << " new rows, " << plan.already_committed << " already committed\n";
    inputs = kvgate::report::LoadInputs(paths, &problems);
    if (!inputs.ok()) return Fail(std::string(inputs.status().message()));
    if (!problems.empty()) return Problems("bad records", problems);
  }

  absl::StatusOr<std::map<std::string, std::string>> files =
      kvgate::report::GenerateReports(*inputs);
  if (!files.ok()) return Fail(std::string(files.status().message()));

  if (check) {
    const std::vector<std::string> diffs = kvgate::report::CompareWithDisk(*files, paths.out_dir);
    if (!diffs.empty()) {
      std::cerr << "report: the committed reports differ from what the records produce; run "
                   "`tools/bazel run //tools/report` and commit the result (an experiment run "
                   "with `tools/bazel run` appends its rows to reports/records/, so this follows "
                   "every such run; edit the words in "
                << paths.templates_dir << "/, never a generated file):\n";
      for (const std::string& d : diffs) std::cerr << "  " << d << "\n";
      return 1;
    }
    std::cout << "report: " << files->size() << " reports in " << paths.out_dir << "/ match the "
              << inputs->rows.size() << " records\n";
    return 0;
  }
  std::vector<std::string> changes;
  if (absl::Status s = kvgate::report::WriteReports(*files, paths.out_dir, &changes); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  for (const std::string& c : changes) std::cout << "report: " << c << "\n";
  std::cout << "report: " << files->size() << " reports in " << paths.out_dir << "/ from "
            << inputs->rows.size() << " records (" << changes.size() << " changed)\n";
  return 0;
}
