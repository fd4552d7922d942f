// Test support: runs a binary (an experiment, a tool) as a child process and collects its exit
// status, standard output and standard error, for tests of what a command line does end to end:
// bad flags, a kill in the middle of a run, an I/O error.
//
// Usage:
//   ChildOptions options;
//   options.env = {"OMP_NUM_THREADS=1"};
//   absl::StatusOr<ChildResult> r = RunChild("experiments/hfkv_int4/hfkv_int4", {"--bogus"});
//   // r->exit_code, r->signal, r->out, r->err
//
//   absl::StatusOr<Child> child = Child::Start(binary, args, options);
//   ... kill(child->pid(), SIGKILL) ...
//   ChildResult r = child->Wait();

#ifndef KVGATE_EXPERIMENTS_COMMON_CHILD_PROCESS_H_
#define KVGATE_EXPERIMENTS_COMMON_CHILD_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace kvgate::experiments {

struct ChildOptions {
  std::vector<std::string> env;  // "NAME=value", on top of this process's environment
  // RLIMIT_FSIZE of the child in bytes (-1: unchanged); SIGXFSZ is ignored there, so a write
  // past the limit fails with EFBIG ("File too large") instead of killing the child.
  int64_t file_size_limit = -1;
};

struct ChildResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the signal that ended it, 0 when it exited
  std::string out;     // standard output
  std::string err;     // standard error

  std::vector<std::string> ErrLines() const;  // stderr split at '\n', without empty lines
  std::string Describe() const;                // "exit 2" / "signal 9", and stderr, for messages
};

class Child {
 public:
  // Starts `binary` with `args` (argv[1..]). The child's stdin is /dev/null.
  static absl::StatusOr<std::unique_ptr<Child>> Start(const std::string& binary,
                                                      const std::vector<std::string>& args,
                                                      const ChildOptions& options = {});
  ~Child();

  pid_t pid() const { return pid_; }
  // Waits for the child to end and returns what it did. Call once.
  ChildResult Wait();

 private:
  Child() = default;
  pid_t pid_ = -1;
  std::string out_, err_;
  std::thread out_reader_, err_reader_;
  bool waited_ = false;
};

// Start + Wait.
absl::StatusOr<ChildResult> RunChild(const std::string& binary,
                                     const std::vector<std::string>& args,
                                     const ChildOptions& options = {});

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_COMMON_CHILD_PROCESS_H_
