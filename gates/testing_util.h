// Test helpers of gates/: temporary folders, listing and copying fixture files, and running the
// gates/ binaries (check_records, permit_check, judge) as a shell would.
#ifndef KVGATE_GATES_TESTING_UTIL_H_
#define KVGATE_GATES_TESTING_UTIL_H_

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "gates/file_io.h"
#include "gtest/gtest.h"

namespace kvgate::gates::testing {

// A fresh folder under the test's temporary directory.
inline std::string NewTestFolder() {
  std::string folder = std::string(getenv("TEST_TMPDIR")) + "/gates.XXXXXX";
  EXPECT_NE(mkdtemp(folder.data()), nullptr);
  return folder;
}

// The hidden temporaries (".<name>.tmp.XXXXXX") an atomic write left in `folder`.
inline std::vector<std::string> Temporaries(const std::string& folder) {
  std::vector<std::string> names;
  DIR* dir = opendir(folder.c_str());
  EXPECT_NE(dir, nullptr);
  while (dirent* entry = readdir(dir)) {
    if (std::string(entry->d_name).find(".tmp.") != std::string::npos) names.push_back(entry->d_name);
  }
  closedir(dir);
  return names;
}

// ListFiles(dir, suffix), failing the test (and returning nothing) when it fails.
inline std::vector<std::string> ListedFiles(const std::string& dir, const std::string& suffix) {
  absl::StatusOr<std::vector<std::string>> files = ListFiles(dir, suffix);
  EXPECT_TRUE(files.ok()) << files.status();
  return files.ok() ? *files : std::vector<std::string>();
}

// Copies the files of `dir` whose names end in `suffix` into a new folder, which is returned.
inline std::string CopyOfFolder(const std::string& dir, const std::string& suffix) {
  const std::string copy = NewTestFolder();
  for (const std::string& file : ListedFiles(dir, suffix)) {
    absl::StatusOr<std::string> bytes = ReadFile(file);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_TRUE(AtomicWriteFile(copy + file.substr(file.rfind('/')), bytes.value_or("")).ok());
  }
  return copy;
}

struct CommandResult {
  int exit_code = -1;  // -1 when the command did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs a command line through the shell.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

}  // namespace kvgate::gates::testing

#endif  // KVGATE_GATES_TESTING_UTIL_H_
