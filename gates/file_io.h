// The file I/O of gates/: reading a whole file, listing a folder, and replacing a file atomically,
// so the evidence files (records, spec files) are either the old bytes or the new bytes, never a
// mix, whatever happens to the writer.
//
// AtomicWriteFile writes a temporary file in the same folder, fsyncs it, renames it over the
// target and fsyncs the folder. A process killed before the rename leaves the previous file
// intact and a hidden `.<name>.tmp.XXXXXX` beside it (git ignores the pattern), which the next
// write of that file removes: writers into one folder take turns through a flock on it, so a
// temporary found while holding it belongs to a dead writer. Every I/O error is returned as a
// Status: nothing is retried, nothing is ignored.
//
// Usage:
//   absl::Status s = kvgate::gates::AtomicWriteFile("reports/records/x.jsonl", bytes);
//   absl::StatusOr<std::string> bytes = kvgate::gates::ReadFile("gates/specs/speed_ceiling.json");
//   absl::StatusOr<std::vector<std::string>> specs = ListFiles("gates/specs", ".json");

#ifndef KVGATE_GATES_FILE_IO_H_
#define KVGATE_GATES_FILE_IO_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::gates {

struct AtomicWriteOptions {
  // Called after the temporary file is written, synced and closed, just before the rename. For
  // tests that kill the writer at the worst moment; leave empty otherwise.
  std::function<void()> before_rename;
  // Writes the temporary file's bytes; empty: WriteFully. For tests that inject an I/O error
  // (a full disk, a failing device) through the writer; leave empty otherwise.
  std::function<absl::Status(int fd, absl::string_view data, absl::string_view what)> write;
};

// The bytes of the file at `path`.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// The paths ("dir/name") of the files in `dir` whose names end in `suffix`, sorted; hidden files
// (names starting with '.', like AtomicWriteFile's temporaries) are left out.
absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir,
                                                   absl::string_view suffix);

// Replaces (or creates) `path` with `contents`, atomically and durably, with mode 0644.
absl::Status AtomicWriteFile(const std::string& path, absl::string_view contents,
                             const AtomicWriteOptions& options = {});

// Writes all of `data` to `fd` (continuing after short writes); the first error is returned,
// naming `what`. Exposed for tests that write into /dev/full.
absl::Status WriteFully(int fd, absl::string_view data, absl::string_view what);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_FILE_IO_H_
