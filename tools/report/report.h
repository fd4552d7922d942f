// The reports of kvgate, generated from records: the results ledger, one summary per hypothesis
// and the SVG plots the summaries link. Everything here is a pure function of its inputs (the
// gate specs, the records, the study's published figures and the templates): the same inputs
// give byte-identical reports. report_main.cc reads the inputs and writes or checks the files.
//
// Reports (paths relative to the output folder, normally reports/):
//   results-ledger.md                            from templates/results-ledger.md: the first
//                                                page (verdict, the study's questions, the
//                                                verdicts that changed under the gates judged
//                                                over windows, the study's tables beside ours)
//   ledger-appendix.md                           every configuration's verdict, the inputs
//   summaries/<name>.md                          from templates/<name>.md, for each name of
//                                                ReportNames() but the ledger
//   plots/speed-ceiling.svg                      projected speedup of each record by context
//   plots/work-reduction-oracle.svg              per-step decode-logit MSE and layer-local L2,
//                                                a row of panels a context
//   plots/kv-quality-vs-bytes.svg                decode-logit MSE against KV bytes (kv_ratio),
//                                                one prompt and over windows (95% bars)
//
// A number in a template's words must also be in one of its generated blocks, else generating
// fails (literate.h CheckNumbersInWords). Every verdict is recomputed (gates/verdict.h); rows are
// listed in JudgeRuns' order (gate, version, target, variant, start time); numbers are printed with
// fixed precision.
//
// Usage:
//   absl::StatusOr<std::map<std::string, std::string>> files = GenerateReports(inputs);

#ifndef KVGATE_TOOLS_REPORT_REPORT_H_
#define KVGATE_TOOLS_REPORT_REPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gates/path_table.h"
#include "gates/record_io.h"
#include "gates/spec_registry.h"
#include "tools/report/literate.h"
#include "tools/report/published.h"

namespace kvgate::report {

// The templates the tool fills, without ".md": the ledger, its appendix and the five summaries.
std::vector<std::string> ReportNames();

struct ReportInputs {
  gates::SpecRegistry specs;
  gates::PathTable paths;  // the path and role of every gate (gates/paths.json)
  std::vector<gates::RecordAt> rows;  // every record; RecordAt::file relative to the repository
  Published published;
  std::map<std::string, Template> templates;  // by ReportNames() entry
  // Folders relative to the repository root, for links and for the generated-file header.
  std::string out_dir = "reports";
  std::string records_dir = "reports/records";
  std::string templates_dir = "reports/templates";
  std::string specs_dir = "gates/specs";
};

// Every report, keyed by its path relative to out_dir.
absl::StatusOr<std::map<std::string, std::string>> GenerateReports(const ReportInputs& inputs);

// The path of `to` as seen from the folder `from_dir` (both relative to one root, '/'-separated),
// e.g. RelativePath("reports/summaries", "reports/records/a.jsonl") == "../records/a.jsonl".
std::string RelativePath(const std::string& from_dir, const std::string& to);

}  // namespace kvgate::report

#endif  // KVGATE_TOOLS_REPORT_REPORT_H_
