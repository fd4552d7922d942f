// What every experiment target shares: which model to run, where records go, the provenance of
// the run, and judging rows by their pre-registered gate before they are written.
//
// Usage (inside an experiment's main, after absl::ParseCommandLine):
//   absl::StatusOr<ModelChoice> model = ChooseModel(absl::GetFlag(FLAGS_model), "KVGATE_QWEN_DIR");
//   std::printf("%s\n", model->note.c_str());          // says when the embedded default runs
//   gates::Provenance provenance = CurrentProvenance(seed);
//   std::vector<gates::Record> rows = ...;             // experiment, variant, target, step,
//                                                      // metrics
//   absl::StatusOr<std::vector<gates::Record>> judged = JudgeAndAppend(
//       RecordsPath(flag_out, "qwen_oracle"), "work_reduction_oracle", rows, provenance);
//   // judged: the rows with their verdicts, as written; an error fails the run

#ifndef KVGATE_EXPERIMENTS_COMMON_EXPERIMENT_IO_H_
#define KVGATE_EXPERIMENTS_COMMON_EXPERIMENT_IO_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gates/file_io.h"
#include "gates/record.h"
#include "gates/spec_registry.h"

namespace kvgate::experiments {

// The embedded default model: SmolLM2-135M-Instruct, Q4_1 GGUF from the pinned PyPI package.
inline constexpr char kEmbeddedModelName[] = "SmolLM2-135M-Instruct";
inline constexpr char kEmbeddedModelFile[] = "SmolLM2-135M-Instruct.Q4_1.gguf";

struct ModelChoice {
  std::string path;
  bool embedded = false;
  std::string note;  // one line for the run's first line and for records' readers
};

// The model path: `flag` (--model) if set, else $env_var if set (pass nullptr for none), else the
// embedded GGUF found in the runfiles. NotFound naming the flag or variable when its path does not
// exist, or what was tried when nothing exists.
absl::StatusOr<ModelChoice> ChooseModel(const std::string& flag, const char* env_var);

// Where records go: `flag` if set; else reports/records/<experiment>.jsonl of the workspace under
// `bazel run`; else $TEST_UNDECLARED_OUTPUTS_DIR/<experiment>.jsonl under `bazel test`; else
// ./<experiment>.jsonl.
std::string RecordsPath(const std::string& flag, const std::string& experiment);

// This process's provenance: git commit and dirty flag of the workspace (under `bazel run`;
// $KVGATE_GIT_COMMIT elsewhere, e.g. a GPU bundle, else "unknown"), the build configuration,
// LibTorch's and CUDA's versions, the host, the process's start time (UTC, the same however late
// it is called) and the seed.
gates::Provenance CurrentProvenance(int64_t seed);

// The folder of the registered gate specs in the runfiles (gates/specs), or $KVGATE_SPECS_DIR.
std::string SpecsDir();

// The latest registered version of gate `gate_id` in SpecsDir(), for printing what it judges
// (thresholds, decode steps) from the spec itself. NotFound naming the folder when it has none.
absl::StatusOr<gates::RegisteredSpec> LatestGateSpec(const std::string& gate_id);

// A spec's pass conditions in words, as the spec states them: "decode_logit_mse <= 0.25,
// top10_overlap >= 0.8, argmax_agreement == 1".
std::string DescribeThresholds(const gates::GateSpec& spec);

// Fills each row's gate from the latest version of `gate_id` and its verdict from the spec (the
// caller never chooses a verdict), sets the provenance, and appends the rows atomically to
// `path` (gates/file_io.h: a run killed at any moment leaves the previous file or the previous
// file plus all of these rows). Any error fails the run: nothing is retried or ignored.
// Returns the rows as judged and written, in order. `write_options` injects I/O errors in tests.
//
// Test hook: when $KVGATE_TEST_PAUSE_BEFORE_RENAME names a path, the append creates that file
// after the new records file is fully written and synced, just before the rename that publishes
// it, and waits there (up to 60 s) so a test can SIGKILL the experiment at the worst moment.
absl::StatusOr<std::vector<gates::Record>> JudgeAndAppend(
    const std::string& path, const std::string& gate_id, std::vector<gates::Record> rows,
    const gates::Provenance& provenance, const gates::AtomicWriteOptions& write_options = {});

// JudgeAndAppend in two halves, for a run whose rows go to several gates but must land in one
// append (quality_v2: formats and selectors; two appends could be cut between them): JudgeRows
// judges and sets the provenance without writing; AppendJudged appends rows so judged, atomically.
absl::StatusOr<std::vector<gates::Record>> JudgeRows(const std::string& gate_id,
                                                     std::vector<gates::Record> rows,
                                                     const gates::Provenance& provenance);
absl::StatusOr<std::vector<gates::Record>> AppendJudged(
    const std::string& path, std::vector<gates::Record> rows,
    const gates::AtomicWriteOptions& write_options = {});

// A judged row's verdict in words, as the experiments' tables print it: "pass", or
// "fail: <failed condition>; <failed condition>".
std::string VerdictInWords(const gates::Record& row);

// For measurements no gate judges (the synthetic K0-prep suite): sets each row's provenance and
// no gate (`"gate": null`, never counted as a verdict, RECORDS.md), and appends the rows as
// JudgeAndAppend does. Returns the rows as written.
absl::StatusOr<std::vector<gates::Record>> AppendWithoutGate(const std::string& path,
                                                             std::vector<gates::Record> rows,
                                                             const gates::Provenance& provenance);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_COMMON_EXPERIMENT_IO_H_
