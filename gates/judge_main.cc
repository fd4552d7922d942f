// judge: prints gate verdicts as Markdown tables.
//
//   bazel run //gates:judge -- reports/records
//       per-configuration verdicts, re-judged from the records (files or folders of *.jsonl)
//       against the gate specs; stored verdicts that disagree, specs changed under a record and
//       unknown specs are listed after the tables
//   bazel run //gates:judge -- --p_attn=0.334 --f=0.337,0.350,0.376 --h=0,0.05,0.10
//       the speed-ceiling table, with the verdicts of the latest speed_ceiling spec
//
// Exit status: 0 done, 1 the records hold a problem, 2 wrong flags or unreadable files. The output
// depends only on the inputs. Paths are taken from the folder `bazel run` was called in.
#include <stdlib.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "gates/evidence.h"
#include "gates/file_io.h"
#include "gates/judge_tables.h"
#include "gates/speed_ceiling/speed_ceiling_spec.h"
#include "gates/verdict.h"

ABSL_FLAG(std::string, specs_dir, "",
          "Folder of the gate spec files (*.json). Default: gates/specs of this build (the "
          "runfiles under `bazel run`, else the working folder).");
ABSL_FLAG(std::vector<std::string>, p_attn, {},
          "Speed-ceiling table: comma-separated shares of the dense decode step spent in "
          "attention, each in [0, 1]. Needs --f.");
ABSL_FLAG(std::vector<std::string>, f, {},
          "Speed-ceiling table: comma-separated active history fractions (the share of the "
          "history a selector keeps), each in [0, 1].");
ABSL_FLAG(std::vector<std::string>, h, std::vector<std::string>({"0", "0.05", "0.10"}),
          "Speed-ceiling table: comma-separated selector overheads, as fractions of the dense "
          "step, one column each. The verdict column always uses the spec's own overhead.");

namespace {

constexpr char kUsage[] =
    "Prints gate verdicts as Markdown tables.\n"
    "  judge [--specs_dir=DIR] RECORDS...      per-configuration verdicts of records files or\n"
    "                                          folders of *.jsonl, re-judged against the specs\n"
    "  judge --p_attn=P,... --f=F,... [--h=H,...]   the speed-ceiling table\n"
    "Exit status: 0 done, 1 the records hold a problem, 2 wrong flags or unreadable files.";

int Fail(const std::string& why) {
  std::cerr << "judge: " << why << "\n";
  return 2;
}

// A path the user typed: relative to the folder `bazel run` was called in.
std::string UserPath(const std::string& path) {
  const char* cwd = getenv("BUILD_WORKING_DIRECTORY");
  if (cwd == nullptr || path.empty() || path[0] == '/') return path;
  return std::string(cwd) + "/" + path;
}

// The numbers of flag `name`; "" when every value parses (and, with `fraction`, lies in
// [0, 1]), else one line naming the flag and the value.
std::string ParseNumbers(const char* name, const std::vector<std::string>& texts, bool fraction,
                         std::vector<double>* out) {
  for (const std::string& t : texts) {
    double value;
    if (!absl::SimpleAtod(t, &value)) {
      return std::string("--") + name + ": '" + t + "' is not a number";
    }
    if (fraction && !(value >= 0.0 && value <= 1.0)) {
      return std::string("--") + name + ": " + t + " is not a fraction in [0, 1]";
    }
    out->push_back(value);
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  std::vector<double> p_attns, fractions, overheads;
  for (const std::string& bad :
       {ParseNumbers("p_attn", absl::GetFlag(FLAGS_p_attn), /*fraction=*/true, &p_attns),
        ParseNumbers("f", absl::GetFlag(FLAGS_f), /*fraction=*/true, &fractions),
        ParseNumbers("h", absl::GetFlag(FLAGS_h), /*fraction=*/false, &overheads)}) {
    if (!bad.empty()) return Fail(bad);
  }
  if (p_attns.empty() != fractions.empty()) return Fail("--p_attn and --f go together");
  if (p_attns.empty() && args.size() < 2) {
    return Fail("name records, or give --p_attn and --f; see --help");
  }

  const std::string specs_dir = absl::GetFlag(FLAGS_specs_dir).empty()
                                    ? "gates/specs"
                                    : UserPath(absl::GetFlag(FLAGS_specs_dir));
  absl::StatusOr<std::vector<std::string>> spec_files =
      kvgate::gates::ListFiles(specs_dir, ".json");
  if (!spec_files.ok()) return Fail(std::string(spec_files.status().message()));

  std::vector<std::string> records;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string path = UserPath(args[i]);
    absl::StatusOr<std::vector<std::string>> listed = kvgate::gates::ListFiles(path, ".jsonl");
    if (listed.ok()) {
      records.insert(records.end(), listed->begin(), listed->end());
    } else if (access(path.c_str(), R_OK) == 0) {
      records.push_back(path);  // not a folder: a records file
    } else {
      return Fail(path + ": no such records file or folder (or not readable)");
    }
  }
  absl::StatusOr<kvgate::gates::Evidence> evidence =
      kvgate::gates::LoadEvidence(*spec_files, records);
  if (!evidence.ok()) return Fail(std::string(evidence.status().message()));

  bool printed = false;
  if (!p_attns.empty()) {
    const kvgate::gates::RegisteredSpec* spec =
        kvgate::gates::LatestSpec(evidence->specs, kvgate::gates::kSpeedCeilingGateId);
    if (spec == nullptr) return Fail("no speed_ceiling spec in " + specs_dir);
    absl::StatusOr<kvgate::gates::SpeedCeilingGate> gate =
        kvgate::gates::SpeedCeilingGateFromSpec(spec->spec);
    if (!gate.ok()) return Fail(std::string(gate.status().message()));
    absl::StatusOr<std::string> table =
        kvgate::gates::SpeedCeilingTable(p_attns, fractions, overheads, *gate,
                                         "speed_ceiling v" + std::to_string(spec->spec.version));
    if (!table.ok()) return Fail(std::string(table.status().message()));
    std::cout << *table;
    printed = true;
  }
  if (args.size() > 1) {  // records were named, even if the folders hold none
    if (printed) std::cout << "\n";
    std::cout << kvgate::gates::ConfigurationTables(kvgate::gates::JudgeConfigurations(
        kvgate::gates::JudgeRuns(evidence->specs, evidence->rows)));
  }
  if (!evidence->problems.empty()) {
    std::cout << "\n## problems\n\n";
    for (const std::string& p : evidence->problems) std::cout << "- " << p << "\n";
    return 1;
  }
  return 0;
}
