// Reading the files of a zip archive in memory: what Bazel 4.2.3 leaves of a test's undeclared
// outputs (bazel-testlogs/<package>/<test>/test.outputs/outputs.zip, written by `zip -qr`).
// Entries stored (method 0) or deflated (method 8, through zlib) are read and their CRC-32
// checked; zip64, encrypted and other methods are refused with an error naming the entry.
//
// Usage:
//   absl::StatusOr<std::vector<ZipEntry>> entries = ReadZip(bytes, "test.outputs/outputs.zip");

#ifndef KVGATE_TOOLS_REPORT_ZIP_READER_H_
#define KVGATE_TOOLS_REPORT_ZIP_READER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::report {

struct ZipEntry {
  std::string name;      // the path inside the archive, e.g. "sub/records.jsonl"
  std::string contents;  // uncompressed bytes
};

// The file entries (not the folder entries) in the central directory's order. `file` names the
// archive in error messages.
absl::StatusOr<std::vector<ZipEntry>> ReadZip(absl::string_view bytes, const std::string& file);

}  // namespace kvgate::report

#endif  // KVGATE_TOOLS_REPORT_ZIP_READER_H_
