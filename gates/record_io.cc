#include "gates/record_io.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvgate::gates {
namespace {

absl::StatusOr<std::string> Lines(const std::vector<Record>& records) {
  std::string text;
  for (size_t i = 0; i < records.size(); ++i) {
    absl::StatusOr<std::string> line = RecordToJsonLine(records[i]);
    if (!line.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ", i + 1, " of ", records.size(), ": ", line.status().message()));
    }
    absl::StrAppend(&text, *line, "\n");
  }
  return text;
}

}  // namespace

std::string RecordAt::Where() const { return absl::StrCat(file, ":", line); }

absl::StatusOr<std::vector<RecordAt>> ParseRecords(absl::string_view bytes,
                                                   const std::string& file) {
  std::vector<RecordAt> records;
  int number = 0;
  while (!bytes.empty()) {
    ++number;
    const size_t end = bytes.find('\n');
    if (end == absl::string_view::npos) {
      return absl::DataLossError(
          absl::StrCat(file, ":", number,
                       ": torn line: the file ends without a newline (an interrupted write?)"));
    }
    const absl::string_view line = bytes.substr(0, end);
    bytes.remove_prefix(end + 1);
    if (line.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ":", number, ": empty line"));
    }
    absl::StatusOr<Record> record = RecordFromJsonLine(line);
    if (!record.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ":", number, ": ", record.status().message()));
    }
    records.push_back({file, number, *std::move(record)});
  }
  return records;
}

absl::StatusOr<std::vector<RecordAt>> ReadRecordsFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return ParseRecords(*bytes, path);
}

absl::StatusOr<std::vector<RecordAt>> ReadRecordsFiles(const std::vector<std::string>& paths) {
  std::vector<RecordAt> all;
  for (const std::string& path : paths) {
    absl::StatusOr<std::vector<RecordAt>> records = ReadRecordsFile(path);
    if (!records.ok()) return records.status();
    for (RecordAt& r : *records) all.push_back(std::move(r));
  }
  return all;
}

absl::Status WriteRecordsFile(const std::string& path, const std::vector<Record>& records,
                              const AtomicWriteOptions& options) {
  absl::StatusOr<std::string> text = Lines(records);
  if (!text.ok()) return text.status();
  return AtomicWriteFile(path, *text, options);
}

absl::Status AppendRecords(const std::string& path, const std::vector<Record>& records,
                           const AtomicWriteOptions& options) {
  absl::StatusOr<std::string> added = Lines(records);
  if (!added.ok()) return added.status();
  absl::StatusOr<std::string> existing = ReadFile(path);
  if (absl::IsNotFound(existing.status())) existing = std::string();
  if (!existing.ok()) return existing.status();
  if (absl::Status s = ParseRecords(*existing, path).status(); !s.ok()) return s;
  return AtomicWriteFile(path, *existing + *added, options);
}

}  // namespace kvgate::gates
