// The checkpoint of a quality_v2 run, so a run killed mid-way (a device call's time limit) goes on
// from the first window not done instead of starting over: after every window the run writes all
// configurations' per-window values (every field of ConfigPositions) and the run's key to one
// JSON file, atomically (gates/file_io.h: the previous checkpoint or the new one, never a mix).
//
// The key is everything that must be equal for a resumed run to be the same run (model, weights,
// context, positions, dtype, device, seed, the prompt set and the tokenized windows, the
// configurations in order, the code's commit). A checkpoint whose key differs is refused, never
// overwritten: one line naming the file and the first field that differs (the user deletes the
// file). A file that is not a checkpoint of this version is refused too, naming it.
//
// Doubles round-trip exactly: finite values as JSON numbers (shortest round-trip digits, -0.0
// kept), the rest as strings: "inf", "-inf", "nan" (the default quiet NaN) or "nan:0x<bits>"
// (any other NaN, its 64 bits in hex).
//
// Usage (quality_v2_main.cc):
//   const std::string path = CheckpointPath(flag, RecordsPath(out, kQualityV2Experiment));
//   absl::StatusOr<std::vector<ConfigPositions>> done = LoadCheckpoint(path, key);  // {}: none
//   RunOverWindows(..., *std::move(done), [&](size_t w, const auto& c) {
//     return WriteCheckpoint(path, key, c); });
//   ... records written ...
//   RemoveCheckpoint(path);
//
// Test: tools/bazel test //experiments/quality_v2:checkpoint_test

#ifndef KVGATE_EXPERIMENTS_QUALITY_V2_CHECKPOINT_H_
#define KVGATE_EXPERIMENTS_QUALITY_V2_CHECKPOINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experiments/quality_v2/quality_v2.h"

namespace kvgate::experiments {

// "kvgate quality_v2 checkpoint <n>": what a checkpoint file says it is; another value is refused.
inline constexpr int kCheckpointVersion = 2;  // 2: the key has "code"

// What identifies a run; compared field by field in this order.
struct RunKey {
  std::string model;           // gates::Target::model
  std::string weights_sha256;  // of the weight files
  int64_t context = 0;
  int64_t positions = 0;  // --decode_steps
  std::string dtype;
  std::string device;  // DeviceLabel: the card's name, so a run never mixes cards
  int64_t seed = 0;
  std::string prompt_set_sha256;  // PromptWindows::set_sha256
  int64_t windows = 0;
  std::string window_ids_sha256;      // WindowIdsSha256 of the tokenized windows
  std::vector<std::string> variants;  // the configurations, in the run's order
  // The code that measures: the provenance's git commit, "+dirty" for a modified tree ("unknown"
  // where neither the workspace nor $KVGATE_GIT_COMMIT says), so a resume never mixes two
  // versions of the code in one record. A dirty tree's edits are not told apart.
  std::string code;
};

// The sha256 of the windows' token ids (each window's length and ids, as decimal text), so a
// change of tokenizer or text shows even where the prompt set's pins do not.
std::string WindowIdsSha256(const std::vector<std::vector<int64_t>>& windows);

// --checkpoint's value, or, when it is empty, "<records_path>.checkpoint.json".
std::string CheckpointPath(const std::string& flag, const std::string& records_path);

// The checkpoint's JSON text, and back. Decoding fails (InvalidArgument, saying what is wrong)
// for text that is not a well-formed checkpoint of kCheckpointVersion: bad JSON, a missing or
// mistyped field, a configuration list that differs from the key's variants, measures of unequal
// window counts, rows of other than key.positions values, more windows than key.windows.
std::string EncodeCheckpoint(const RunKey& key, const std::vector<ConfigPositions>& configs);
struct Checkpoint {
  RunKey key;
  std::vector<ConfigPositions> configs;
  size_t windows_done = 0;
};
absl::StatusOr<Checkpoint> DecodeCheckpoint(absl::string_view text);

// Writes the checkpoint to `path` atomically (creating its folder). Errors name the path.
absl::Status WriteCheckpoint(const std::string& path, const RunKey& key,
                             const std::vector<ConfigPositions>& configs);

// The configurations of the checkpoint at `path` when its key equals `key`; empty when there is
// no file. FailedPrecondition, one line naming the file, for an unreadable or corrupt file or a
// key that differs (naming the first field that differs, its value there and here).
absl::StatusOr<std::vector<ConfigPositions>> LoadCheckpoint(const std::string& path,
                                                            const RunKey& key);

// Deletes the checkpoint (nothing to do when there is none); errors name the path.
absl::Status RemoveCheckpoint(const std::string& path);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_QUALITY_V2_CHECKPOINT_H_
