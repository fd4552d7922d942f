// make_fixture_records: rewrites tools/report/testdata/records/*.jsonl from fixture_records.cc.
//
//   tools/bazel run //tools/report:make_fixture_records
//
// Then regenerate the golden reports (testdata/README.md). report_test checks the committed
// files equal what this writes.
#include <stdlib.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "gates/record_io.h"
#include "gates/spec_registry.h"
#include "tools/report/fixture_records.h"

int main() {
  if (const char* root = getenv("BUILD_WORKSPACE_DIRECTORY"); root != nullptr) {
    if (chdir(root) != 0) return 2;
  }
  absl::StatusOr<kvgate::gates::SpecRegistry> specs = kvgate::gates::LoadSpecDir("gates/specs");
  if (!specs.ok()) {
    std::cerr << specs.status() << "\n";
    return 2;
  }
  absl::StatusOr<std::map<std::string, std::vector<kvgate::gates::Record>>> files =
      kvgate::report::FixtureRecords(*specs);
  if (!files.ok()) {
    std::cerr << files.status() << "\n";
    return 2;
  }
  for (const auto& [name, rows] : *files) {
    const std::string path = std::string(kvgate::report::kFixtureRecordsDir) + "/" + name;
    if (absl::Status s = kvgate::gates::WriteRecordsFile(path, rows); !s.ok()) {
      std::cerr << s << "\n";
      return 2;
    }
    std::cout << "wrote " << rows.size() << " rows to " << path << "\n";
  }
  return 0;
}
