// Test helper: runs a command line through the shell and returns its exit code and its stdout
// and stderr together. For tests of the gates/ binaries (check_records, permit_check, judge).
#ifndef KVGATE_GATES_SUBPROCESS_TESTING_H_
#define KVGATE_GATES_SUBPROCESS_TESTING_H_

#include <stdio.h>
#include <sys/wait.h>

#include <string>

namespace kvgate::gates::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when the command did not exit normally
  std::string output;
};

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

#endif  // KVGATE_GATES_SUBPROCESS_TESTING_H_
