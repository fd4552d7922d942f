// Records files (JSON Lines, one record a line, each line ending in "\n"): a reader that rejects a
// torn or malformed line with its line number, and writers that replace the whole file atomically
// (file_io.h), so a file on disk only ever holds whole rows that were all written together.
//
// Usage:
//   absl::Status s = kvgate::gates::AppendRecords("reports/records/qwen_oracle.jsonl", rows);
//   absl::StatusOr<std::vector<RecordAt>> rows = ReadRecordsFile("reports/records/x.jsonl");

#ifndef KVGATE_GATES_RECORD_IO_H_
#define KVGATE_GATES_RECORD_IO_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gates/file_io.h"
#include "gates/record.h"

namespace kvgate::gates {

// A record and where it was read.
struct RecordAt {
  std::string file;
  int line = 0;  // 1-based
  Record record;

  std::string Where() const;  // "file:line"
};

// The records of `bytes`, the contents of `file`. Errors name file:line.
absl::StatusOr<std::vector<RecordAt>> ParseRecords(absl::string_view bytes,
                                                   const std::string& file);

// The records of one file; of several files, in the order given.
absl::StatusOr<std::vector<RecordAt>> ReadRecordsFile(const std::string& path);
absl::StatusOr<std::vector<RecordAt>> ReadRecordsFiles(const std::vector<std::string>& paths);

// Replaces `path` with exactly `records`. Every record is validated before anything is written.
absl::Status WriteRecordsFile(const std::string& path, const std::vector<Record>& records,
                              const AtomicWriteOptions& options = {});

// Adds `records` after the rows already in `path` (created if absent), rewriting the file
// atomically. Fails, writing nothing, if the existing file does not read cleanly.
absl::Status AppendRecords(const std::string& path, const std::vector<Record>& records,
                           const AtomicWriteOptions& options = {});

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_RECORD_IO_H_
