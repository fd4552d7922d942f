#include "gates/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gates/testing_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::Temporaries;
using ::kvgate::gates::testing::NewTestFolder;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(AtomicWriteFileTest, CreatesAndReplaces) {
  const std::string folder = NewTestFolder();
  const std::string path = folder + "/r.jsonl";
  ASSERT_TRUE(AtomicWriteFile(path, "first\n").ok());
  EXPECT_EQ(*ReadFile(path), "first\n");
  ASSERT_TRUE(AtomicWriteFile(path, "second, longer\n").ok());
  EXPECT_EQ(*ReadFile(path), "second, longer\n");
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644);
  EXPECT_THAT(Temporaries(folder), IsEmpty());
}

TEST(AtomicWriteFileTest, WritesARelativePathInTheWorkingFolder) {
  const std::string folder = NewTestFolder();
  ASSERT_EQ(chdir(folder.c_str()), 0);
  ASSERT_TRUE(AtomicWriteFile("plain.txt", "x").ok());
  EXPECT_EQ(*ReadFile(folder + "/plain.txt"), "x");
}

// The atomic write's point: the writer is killed between write and rename.
TEST(AtomicWriteFileTest, KilledBetweenWriteAndRenameLeavesThePreviousFile) {
  const std::string folder = NewTestFolder();
  const std::string path = folder + "/r.jsonl";
  ASSERT_TRUE(AtomicWriteFile(path, "previous\n").ok());

  // In a child (as in WriteErrorFailsAndKeepsThePreviousFile below): what happens to the writer
  // must not happen to the test.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    AtomicWriteOptions options;
    options.before_rename = [] { raise(SIGKILL); };
    (void)AtomicWriteFile(path, "new contents\n", options);
    _exit(0);  // not reached: the kill comes first
  }
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wait_status));
  EXPECT_EQ(WTERMSIG(wait_status), SIGKILL);

  EXPECT_EQ(*ReadFile(path), "previous\n");
  // The new bytes were fully written: the kill came after the write, before the rename.
  const std::vector<std::string> left = Temporaries(folder);
  ASSERT_THAT(left, SizeIs(1));
  EXPECT_TRUE(absl::StartsWith(left[0], ".r.jsonl.tmp.")) << left[0];
  EXPECT_EQ(*ReadFile(folder + "/" + left[0]), "new contents\n");

  // The next write of that file removes the stale temporary; another file's stays.
  const std::string other_temporary = folder + "/.other.jsonl.tmp.abcdef";
  ASSERT_TRUE(AtomicWriteFile(other_temporary, "").ok());
  ASSERT_TRUE(AtomicWriteFile(path, "next\n").ok());
  EXPECT_EQ(*ReadFile(path), "next\n");
  EXPECT_THAT(Temporaries(folder), ::testing::ElementsAre(".other.jsonl.tmp.abcdef"));
}

TEST(WriteFullyTest, DeviceFullIsAnError) {
  const int fd = open("/dev/full", O_WRONLY);
  ASSERT_GE(fd, 0);
  absl::Status status = WriteFully(fd, "some bytes", "/dev/full");
  close(fd);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);  // ENOSPC
  EXPECT_THAT(status.message(), HasSubstr("writing /dev/full"));
}

// A real I/O error in the middle of AtomicWriteFile (EFBIG from a file-size limit, in a child so
// the limit stays there) is returned, the temporary file is removed, the old file is intact.
TEST(AtomicWriteFileTest, WriteErrorFailsAndKeepsThePreviousFile) {
  const std::string folder = NewTestFolder();
  const std::string path = folder + "/r.jsonl";
  ASSERT_TRUE(AtomicWriteFile(path, "previous\n").ok());

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);  // make write() return EFBIG instead of killing the process
    const rlimit limit = {.rlim_cur = 100, .rlim_max = 100};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(10);
    absl::Status status = AtomicWriteFile(path, std::string(1000, 'x'));
    if (status.ok()) _exit(11);
    if (!absl::StrContains(status.message(), "File too large")) _exit(12);
    _exit(0);
  }
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFEXITED(wait_status));
  EXPECT_EQ(WEXITSTATUS(wait_status), 0) << "10: setrlimit failed, 11: the write succeeded, "
                                            "12: the error did not say EFBIG";
  EXPECT_EQ(*ReadFile(path), "previous\n");
  EXPECT_THAT(Temporaries(folder), IsEmpty());
}

TEST(AtomicWriteFileTest, MissingFolderIsAnError) {
  absl::Status status = AtomicWriteFile(NewTestFolder() + "/no/such/folder/r.jsonl", "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("creating a temporary file"));
}

TEST(AtomicWriteFileTest, RenameErrorFailsAndLeavesNoTemporary) {
  const std::string folder = NewTestFolder();
  const std::string path = folder + "/taken";
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0);  // a folder cannot be replaced by a file
  absl::Status status = AtomicWriteFile(path, "x");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("renaming"));
  EXPECT_THAT(Temporaries(folder), IsEmpty());
}

TEST(ListFilesTest, SortedBySuffixWithoutHiddenFiles) {
  const std::string folder = NewTestFolder();
  for (const char* name : {"b.jsonl", "a.jsonl", "c.json", ".a.jsonl.tmp.x1", ".hidden.jsonl"}) {
    ASSERT_TRUE(AtomicWriteFile(folder + "/" + name, "").ok());
  }
  EXPECT_THAT(*ListFiles(folder, ".jsonl"), ElementsAre(folder + "/a.jsonl", folder + "/b.jsonl"));
  EXPECT_THAT(*ListFiles(folder, ".json"), ElementsAre(folder + "/c.json"));
  EXPECT_EQ(ListFiles(folder + "/absent", ".json").status().code(), absl::StatusCode::kNotFound);
}

TEST(ReadFileTest, MissingFileIsNotFound) {
  absl::StatusOr<std::string> bytes = ReadFile(NewTestFolder() + "/absent");
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kNotFound);
}

TEST(ReadFileTest, ReadsBytesExactly) {
  const std::string path = NewTestFolder() + "/bin";
  const std::string bytes("a\0b\nc", 5);
  ASSERT_TRUE(AtomicWriteFile(path, bytes).ok());
  EXPECT_EQ(*ReadFile(path), bytes);
}

}  // namespace
}  // namespace kvgate::gates
