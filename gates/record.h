// One row of evidence: a measurement of one variant on one target, its metrics, the gate it was
// judged by (pinned by the spec file's sha256) and the verdict, and where it came from. Records
// are JSON Lines, one row per line; RECORDS.md documents the schema.
//
// Floats: a non-finite metric is written as the string "NaN", "Infinity" or "-Infinity", never
// as null; such a row's verdict is `invalid`.
//
// Usage:
//   absl::StatusOr<std::string> line = kvgate::gates::RecordToJsonLine(record);
//   absl::StatusOr<Record> back = kvgate::gates::RecordFromJsonLine(*line);

#ifndef KVGATE_GATES_RECORD_H_
#define KVGATE_GATES_RECORD_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::gates {

enum class Verdict { kPass, kFail, kInvalid };

// "pass", "fail", "invalid".
absl::string_view VerdictName(Verdict verdict);
absl::StatusOr<Verdict> ParseVerdict(absl::string_view name);

// What was measured on. Permission to implement matches model, context, dtype and device.
struct Target {
  std::string model;           // e.g. "Qwen2.5-7B-Instruct"
  std::string weights_sha256;  // of the weights file(s), or "random:seed=<n>" for seeded weights
  int64_t context = 0;         // tokens of history
  std::string dtype;           // e.g. "bfloat16"
  std::string device;          // e.g. "NVIDIA H100 80GB HBM3", "cpu"

  friend bool operator==(const Target& a, const Target& b) {
    return a.model == b.model && a.weights_sha256 == b.weights_sha256 && a.context == b.context &&
           a.dtype == b.dtype && a.device == b.device;
  }
};

// A record's gate. A record without a gate (a measurement no gate judges, e.g. the synthetic
// K0-prep suite) has the default GateResult: id "", version 0, no sha256, verdict kInvalid, no
// failed conditions; it is written as `"gate": null` and never counted as a verdict (JudgeRuns and
// CheckRecords skip it).
struct GateResult {
  std::string id;           // a spec id, e.g. "work_reduction_oracle"; "" for no gate
  int version = 0;          // the spec version
  std::string spec_sha256;  // of the spec file's bytes
  Verdict verdict = Verdict::kInvalid;
  std::vector<std::string> failed;  // the failed conditions in words; empty exactly when pass
};

struct Provenance {
  std::string git_commit;
  bool dirty = false;         // uncommitted changes in the tree that built the binary
  std::string build_config;   // e.g. "opt" or "opt --config=cuda"
  std::string torch_version;  // "" when the run used no LibTorch
  std::string cuda_version;   // "" when the run used no CUDA
  std::string host;
  std::string start_time;  // RFC 3339 UTC, e.g. "2026-11-27T18:20:00Z"
  int64_t seed = 0;
};

struct Record {
  std::string experiment;  // e.g. "qwen_oracle"
  std::string variant;     // e.g. "global_block_mass:f=0.3760:b=16"
  Target target;
  std::optional<int64_t> step;  // decode step, or nullopt for one measurement of a run
  std::map<std::string, double> metrics;
  GateResult gate;  // default (id "") for a record no gate judges
  Provenance provenance;
};

// Whether a gate judges the record (gate.id non-empty); a record without one carries data only.
inline bool HasGate(const Record& record) { return !record.gate.id.empty(); }

// Whether every field holds what the schema allows.
absl::Status ValidateRecord(const Record& record);

// The record as one JSON line (no newline), keys in schema order. Fails on an invalid record.
absl::StatusOr<std::string> RecordToJsonLine(const Record& record);

// Parses and validates one line (without its newline).
absl::StatusOr<Record> RecordFromJsonLine(absl::string_view line);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_RECORD_H_
