#include "gates/file_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace kvgate::gates {
namespace {

// "dir/name" -> {"dir", "name"}; "name" -> {".", "name"}.
std::pair<std::string, std::string> SplitPath(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

absl::Status SyncFolder(const std::string& folder) {
  const int fd = open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("opening folder ", folder, " to fsync it"));
  }
  if (fsync(fd) != 0) {
    const int error = errno;
    close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat("fsync of folder ", folder));
  }
  if (close(fd) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("closing folder ", folder));
  return absl::OkStatus();
}

// An exclusive flock on the folder, held by every AtomicWriteFile into it from the temporary file's
// creation to the rename, and released when the writer dies: while it is held, a temporary of
// another writer is one whose writer was killed before its rename.
class FolderLock {
 public:
  static absl::StatusOr<FolderLock> Take(const std::string& folder) {
    const int fd = open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("opening folder ", folder));
    while (flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat("locking folder ", folder));
    }
    return FolderLock(fd);
  }
  FolderLock(FolderLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FolderLock& operator=(FolderLock&&) = delete;
  ~FolderLock() {
    if (fd_ >= 0) close(fd_);  // closing releases the lock
  }

 private:
  explicit FolderLock(int fd) : fd_(fd) {}
  int fd_;
};

// Removes the `.<name>.tmp.XXXXXX` files an interrupted write of `name` left in `folder`. Only with
// the folder's lock held.
absl::Status RemoveStaleTemporaries(const std::string& folder, const std::string& name) {
  const std::string prefix = absl::StrCat(".", name, ".tmp.");
  DIR* dir = opendir(folder.c_str());
  if (dir == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("opening folder ", folder));
  std::vector<std::string> stale;
  while (const dirent* entry = readdir(dir)) {
    const absl::string_view entry_name = entry->d_name;
    if (absl::StartsWith(entry_name, prefix) && entry_name.size() == prefix.size() + 6) {
      stale.push_back(absl::StrCat(folder, "/", entry_name));
    }
  }
  closedir(dir);
  for (const std::string& path : stale) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return absl::ErrnoToStatus(errno, absl::StrCat("removing the stale temporary file ", path));
    }
  }
  return absl::OkStatus();
}

// Writes, syncs and closes the temporary file; closes `fd` whatever happens.
absl::Status FillTemporary(int fd, const std::string& temp, absl::string_view contents,
                           const AtomicWriteOptions& options) {
  absl::Status status =
      options.write ? options.write(fd, contents, temp) : WriteFully(fd, contents, temp);
  if (status.ok() && fchmod(fd, 0644) != 0) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("chmod ", temp));
  }
  if (status.ok() && fsync(fd) != 0) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("fsync of ", temp));
  }
  if (close(fd) != 0 && status.ok()) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("closing ", temp));
  }
  return status;
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("opening ", path));
  std::string bytes;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;  // interrupted before reading anything: not an I/O error
      const int error = errno;
      close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat("reading ", path));
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  if (close(fd) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("closing ", path));
  return bytes;
}

absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir,
                                                   absl::string_view suffix) {
  DIR* folder = opendir(dir.c_str());
  if (folder == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("opening folder ", dir));
  std::vector<std::string> paths;
  errno = 0;
  while (const dirent* entry = readdir(folder)) {
    const absl::string_view name = entry->d_name;
    if (!absl::StartsWith(name, ".") && absl::EndsWith(name, suffix)) {
      paths.push_back(absl::StrCat(dir, "/", name));
    }
  }
  const int error = errno;
  closedir(folder);
  if (error != 0) return absl::ErrnoToStatus(error, absl::StrCat("listing folder ", dir));
  std::sort(paths.begin(), paths.end());
  return paths;
}

absl::Status WriteFully(int fd, absl::string_view data, absl::string_view what) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;  // interrupted before writing anything: not an I/O error
      return absl::ErrnoToStatus(errno, absl::StrCat("writing ", what));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status AtomicWriteFile(const std::string& path, absl::string_view contents,
                             const AtomicWriteOptions& options) {
  const auto [folder, name] = SplitPath(path);
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat("not a file path: ", path));
  absl::StatusOr<FolderLock> lock = FolderLock::Take(folder);
  if (!lock.ok()) {
    return absl::Status(lock.status().code(), absl::StrCat("creating a temporary file in ", folder,
                                                           ": ", lock.status().message()));
  }
  if (absl::Status s = RemoveStaleTemporaries(folder, name); !s.ok()) return s;
  std::string temp = absl::StrCat(folder, "/.", name, ".tmp.XXXXXX");
  const int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("creating a temporary file in ", folder));
  }
  if (absl::Status s = FillTemporary(fd, temp, contents, options); !s.ok()) {
    unlink(temp.c_str());
    return s;
  }
  if (options.before_rename) options.before_rename();
  if (rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    unlink(temp.c_str());
    return absl::ErrnoToStatus(error, absl::StrCat("renaming ", temp, " to ", path));
  }
  return SyncFolder(folder);
}

}  // namespace kvgate::gates
