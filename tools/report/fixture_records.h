// The fixture records of tools/report's tests: made-up runs of every gate, in the schema of
// gates/RECORDS.md, with verdicts computed by the gates library from the committed specs, so
// they re-judge cleanly. They are not results: host and commit are "fixture".
//
// What they hold (testdata/README.md has the table): speed-ceiling runs at the study's p_attn and
// at a second p_attn, oracle runs that pass, fail on one step, fail on layer-local L2 on every
// step, and an invalid run with its passing re-run; int4 quality runs that fail; eager value path
// and fused codebook latency runs; an eager quality row with a non-finite metric (invalid).
//
// Usage:
//   absl::StatusOr<std::map<std::string, std::vector<Record>>> files = FixtureRecords(specs);

#ifndef KVGATE_TOOLS_REPORT_FIXTURE_RECORDS_H_
#define KVGATE_TOOLS_REPORT_FIXTURE_RECORDS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gates/record.h"
#include "gates/spec_registry.h"

namespace kvgate::report {

// Records file name (e.g. "qwen_oracle.jsonl") -> its rows, in file order.
absl::StatusOr<std::map<std::string, std::vector<gates::Record>>> FixtureRecords(
    const gates::SpecRegistry& specs);

// The folder they are committed in, relative to the repository root.
inline constexpr char kFixtureRecordsDir[] = "tools/report/testdata/records";

}  // namespace kvgate::report

#endif  // KVGATE_TOOLS_REPORT_FIXTURE_RECORDS_H_
