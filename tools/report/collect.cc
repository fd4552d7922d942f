#include "tools/report/collect.h"

#include <stdio.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gates/evidence.h"
#include "gates/file_io.h"
#include "tools/report/zip_reader.h"

namespace kvgate::report {
namespace {

namespace fs = std::filesystem;

// The files of `dir` ending in `suffix`; an absent folder has none.
absl::StatusOr<std::vector<std::string>> ListOrEmpty(const std::string& dir,
                                                     absl::string_view suffix) {
  absl::StatusOr<std::vector<std::string>> files = gates::ListFiles(dir, suffix);
  if (absl::IsNotFound(files.status())) return std::vector<std::string>();
  return files;
}

// Folders the tool owns completely: every file in them is generated.
constexpr const char* kOwnedFolders[] = {"summaries", "plots"};

// The text of `line` around `column`: what a reader needs to see the difference.
std::string Around(const std::string& line, size_t column) {
  const size_t from = column > 40 ? column - 40 : 0;
  std::string out = line.substr(from, 100);
  if (from > 0) out = "..." + out;
  if (from + 100 < line.size()) out += "...";
  return out;
}

// "first difference on line 12, column 40: committed \"...\", the records give \"...\"".
std::string FirstDifference(const std::string& committed, const std::string& generated) {
  size_t pos = 0, line_start = 0;
  int line = 1;
  while (pos < committed.size() && pos < generated.size() && committed[pos] == generated[pos]) {
    if (committed[pos] == '\n') {
      ++line;
      line_start = pos + 1;
    }
    ++pos;
  }
  auto line_of = [&](const std::string& text) {
    if (line_start >= text.size()) return std::string("(end of file)");
    const size_t end = text.find('\n', line_start);
    return text.substr(line_start, end == std::string::npos ? std::string::npos : end - line_start);
  };
  const size_t column = pos - line_start;
  return absl::StrCat("first difference on line ", line, ", column ", column + 1, ": committed \"",
                      Around(line_of(committed), column), "\", the records give \"",
                      Around(line_of(generated), column), "\"");
}

}  // namespace

std::string ReportPaths::PublishedFile() const {
  return published.empty() ? absl::StrCat(templates_dir, "/published.json") : published;
}

absl::StatusOr<ReportInputs> LoadInputs(const ReportPaths& paths,
                                        std::vector<std::string>* problems) {
  ReportInputs in;
  in.out_dir = paths.out_dir;
  in.records_dir = paths.records_dir;
  in.templates_dir = paths.templates_dir;
  in.specs_dir = paths.specs_dir;

  absl::StatusOr<std::vector<std::string>> spec_files = gates::ListFiles(paths.specs_dir, ".json");
  if (!spec_files.ok()) return spec_files.status();
  absl::StatusOr<std::vector<std::string>> record_files = ListOrEmpty(paths.records_dir, ".jsonl");
  if (!record_files.ok()) return record_files.status();
  absl::StatusOr<gates::Evidence> evidence = gates::LoadEvidence(*spec_files, *record_files);
  if (!evidence.ok()) return evidence.status();
  in.specs = std::move(evidence->specs);
  in.rows = std::move(evidence->rows);
  for (std::string& p : evidence->problems) problems->push_back(std::move(p));
  absl::StatusOr<gates::PathTable> table = gates::LoadPathTable(paths.paths_file, in.specs);
  if (!table.ok()) return table.status();
  in.paths = *std::move(table);

  absl::StatusOr<std::string> published = gates::ReadFile(paths.PublishedFile());
  if (!published.ok()) return published.status();
  absl::StatusOr<Published> parsed = ParsePublished(*published, paths.PublishedFile());
  if (!parsed.ok()) return parsed.status();
  in.published = *std::move(parsed);

  for (const std::string& name : ReportNames()) {
    const std::string file = absl::StrCat(paths.templates_dir, "/", name, ".md");
    absl::StatusOr<std::string> bytes = gates::ReadFile(file);
    if (!bytes.ok()) return bytes.status();
    absl::StatusOr<Template> tmpl = ParseTemplate(*bytes, file);
    if (!tmpl.ok()) return tmpl.status();
    in.templates[name] = *std::move(tmpl);
  }
  return in;
}

absl::StatusOr<std::vector<FoundRecordsFile>> FindTestOutputRecords(const std::string& testlogs) {
  std::error_code error;
  if (!fs::is_directory(testlogs, error)) {
    return absl::NotFoundError(absl::StrCat(testlogs,
                                            " is not a folder (run `tools/bazel test` "
                                            "first, from the repository root)"));
  }
  std::vector<FoundRecordsFile> found;
  fs::recursive_directory_iterator it(testlogs, fs::directory_options::follow_directory_symlink,
                                      error);
  if (error) return absl::InternalError(absl::StrCat(testlogs, ": ", error.message()));
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) return absl::InternalError(absl::StrCat(testlogs, ": ", error.message()));
    const fs::path path = it->path();
    const std::string name = path.string();
    // Only what a test wrote as an undeclared output: <...>/test.outputs/**.
    if (!absl::StrContains(name, "/test.outputs/") || !it->is_regular_file(error)) continue;
    const std::string base = path.filename().string();
    if (base == "outputs.zip" && path.parent_path().filename() == "test.outputs") {
      absl::StatusOr<std::string> bytes = gates::ReadFile(name);
      if (!bytes.ok()) return bytes.status();
      absl::StatusOr<std::vector<ZipEntry>> entries = ReadZip(*bytes, name);
      if (!entries.ok()) return entries.status();
      for (ZipEntry& e : *entries) {
        if (!absl::EndsWith(e.name, ".jsonl")) continue;
        const size_t slash = e.name.rfind('/');
        found.push_back({absl::StrCat(name, "!", e.name),
                         slash == std::string::npos ? e.name : e.name.substr(slash + 1),
                         std::move(e.contents)});
      }
    } else if (absl::EndsWith(base, ".jsonl") && base[0] != '.') {
      absl::StatusOr<std::string> bytes = gates::ReadFile(name);
      if (!bytes.ok()) return bytes.status();
      found.push_back({name, base, *std::move(bytes)});
    }
  }
  std::sort(found.begin(), found.end(),
            [](const FoundRecordsFile& a, const FoundRecordsFile& b) { return a.name < b.name; });
  return found;
}

ImportPlan PlanImport(const gates::SpecRegistry& specs,
                      const std::vector<gates::RecordAt>& committed,
                      const std::vector<FoundRecordsFile>& found, const std::string& records_dir) {
  ImportPlan plan;
  std::set<std::string> lines;
  for (const gates::RecordAt& row : committed) {
    absl::StatusOr<std::string> line = gates::RecordToJsonLine(row.record);
    if (line.ok()) lines.insert(*line);
  }
  std::vector<gates::RecordAt> rows;
  std::vector<std::string> destinations;
  for (const FoundRecordsFile& file : found) {
    absl::StatusOr<std::vector<gates::RecordAt>> parsed =
        gates::ParseRecords(file.bytes, file.name);
    if (!parsed.ok()) {
      plan.problems.push_back(std::string(parsed.status().message()));
      continue;
    }
    for (gates::RecordAt& row : *parsed) {
      rows.push_back(std::move(row));
      destinations.push_back(absl::StrCat(records_dir, "/", file.basename));
    }
  }
  for (std::string& p : gates::CheckRecords(specs, rows)) plan.problems.push_back(std::move(p));
  if (!plan.problems.empty()) return plan;
  for (size_t i = 0; i < rows.size(); ++i) {
    absl::StatusOr<std::string> line = gates::RecordToJsonLine(rows[i].record);
    if (!line.ok()) {
      plan.problems.push_back(absl::StrCat(rows[i].Where(), ": ", line.status().message()));
      continue;
    }
    if (!lines.insert(*line).second) {
      ++plan.already_committed;
      continue;
    }
    plan.appends[destinations[i]].push_back(rows[i].record);
  }
  return plan;
}

absl::Status ApplyImport(const ImportPlan& plan) {
  if (!plan.problems.empty()) {
    return absl::FailedPreconditionError("the test outputs hold bad records; nothing imported");
  }
  for (const auto& [file, rows] : plan.appends) {
    if (absl::Status s = gates::AppendRecords(file, rows); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::vector<std::string> CompareWithDisk(const std::map<std::string, std::string>& files,
                                         const std::string& out_dir) {
  std::vector<std::string> diffs;
  for (const auto& [name, generated] : files) {
    const std::string path = absl::StrCat(out_dir, "/", name);
    absl::StatusOr<std::string> committed = gates::ReadFile(path);
    if (!committed.ok()) {
      diffs.push_back(absl::StrCat(path, ": missing; the records produce it"));
    } else if (*committed != generated) {
      diffs.push_back(absl::StrCat(path, ": differs from what the records produce, ",
                                   FirstDifference(*committed, generated)));
    }
  }
  for (const char* folder : kOwnedFolders) {
    absl::StatusOr<std::vector<std::string>> present =
        ListOrEmpty(absl::StrCat(out_dir, "/", folder), "");
    if (!present.ok()) {
      diffs.push_back(std::string(present.status().message()));
      continue;
    }
    for (const std::string& path : *present) {
      const std::string name = path.substr(out_dir.size() + 1);
      if (files.count(name) == 0) {
        diffs.push_back(absl::StrCat(path, ": stale; the records no longer produce it"));
      }
    }
  }
  return diffs;
}

absl::Status WriteReports(const std::map<std::string, std::string>& files,
                          const std::string& out_dir, std::vector<std::string>* changes) {
  for (const auto& [name, contents] : files) {
    const std::string path = absl::StrCat(out_dir, "/", name);
    absl::StatusOr<std::string> old = gates::ReadFile(path);
    if (old.ok() && *old == contents) continue;
    std::error_code error;
    fs::create_directories(fs::path(path).parent_path(), error);
    if (error) return absl::InternalError(absl::StrCat(path, ": ", error.message()));
    if (absl::Status s = gates::AtomicWriteFile(path, contents); !s.ok()) return s;
    changes->push_back(absl::StrCat(old.ok() ? "updated " : "wrote ", path));
  }
  for (const char* folder : kOwnedFolders) {
    absl::StatusOr<std::vector<std::string>> present =
        ListOrEmpty(absl::StrCat(out_dir, "/", folder), "");
    if (!present.ok()) return present.status();
    for (const std::string& path : *present) {
      if (files.count(path.substr(out_dir.size() + 1)) > 0) continue;
      if (::remove(path.c_str()) != 0) {
        return absl::InternalError(absl::StrCat("cannot remove stale ", path));
      }
      changes->push_back(absl::StrCat("removed stale ", path));
    }
  }
  return absl::OkStatus();
}

}  // namespace kvgate::report
