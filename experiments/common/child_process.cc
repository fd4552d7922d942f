#include "experiments/common/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kvgate::experiments {
namespace {

// Reads `fd` to its end into `out`, then closes it.
void Drain(int fd, std::string* out) {
  char buffer[4096];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buffer, static_cast<size_t>(n));
  }
  close(fd);
}

}  // namespace

std::vector<std::string> ChildResult::ErrLines() const {
  return absl::StrSplit(err, '\n', absl::SkipEmpty());
}

std::string ChildResult::Describe() const {
  return absl::StrCat(signal != 0 ? absl::StrCat("signal ", signal) : absl::StrCat("exit ", exit_code),
                      "; stderr:\n", err);
}

absl::StatusOr<std::unique_ptr<Child>> Child::Start(const std::string& binary,
                                                   const std::vector<std::string>& args,
                                                   const ChildOptions& options) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return absl::ErrnoToStatus(errno, "pipe");
  }
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& extra : options.env) {
      if (extra.substr(0, extra.find('=')) == name) replaced = true;
    }
    if (!replaced) env_strings.push_back(entry);
  }
  env_strings.insert(env_strings.end(), options.env.begin(), options.env.end());
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    const int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out_pipe[1], 1) < 0 || dup2(err_pipe[1], 2) < 0) {
      _exit(127);
    }
    if (options.file_size_limit >= 0) {
      signal(SIGXFSZ, SIG_IGN);  // kept across exec: a write past the limit fails with EFBIG
      const rlimit limit = {static_cast<rlim_t>(options.file_size_limit),
                            static_cast<rlim_t>(options.file_size_limit)};
      if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(126);
    }
    execve(binary.c_str(), argv.data(), envp.data());
    const char message[] = "child_process: execve failed\n";
    (void)!write(2, message, sizeof(message) - 1);
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  std::unique_ptr<Child> child(new Child());
  child->pid_ = pid;
  child->out_reader_ = std::thread(Drain, out_pipe[0], &child->out_);
  child->err_reader_ = std::thread(Drain, err_pipe[0], &child->err_);
  return child;
}

ChildResult Child::Wait() {
  ChildResult result;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  waited_ = true;
  out_reader_.join();
  err_reader_.join();
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.out = std::move(out_);
  result.err = std::move(err_);
  return result;
}

Child::~Child() {
  if (!waited_) {
    kill(pid_, SIGKILL);
    Wait();
  }
}

absl::StatusOr<ChildResult> RunChild(const std::string& binary,
                                     const std::vector<std::string>& args,
                                     const ChildOptions& options) {
  absl::StatusOr<std::unique_ptr<Child>> child = Child::Start(binary, args, options);
  if (!child.ok()) return child.status();
  return (*child)->Wait();
}

}  // namespace kvgate::experiments
