// Records under failure, end to end: the real //experiments/hfkv_int4 binary (the embedded
// SmolLM2-135M-Instruct, 32 prompt tokens, two int4 formats, one decode step) runs as a child
// process and is SIGKILLed while it writes its records, or hits an I/O error; the records file
// must hold only whole rows, keep every earlier row byte for byte, and re-judge cleanly.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "experiments/common/child_process.h"
#include "experiments/common/experiment_io.h"
#include "gates/evidence.h"
#include "gates/file_io.h"
#include "gates/record_io.h"
#include "gates/spec_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kBinary[] = "experiments/hfkv_int4/hfkv_int4";  // in the test's runfiles
constexpr int kRowsPerRun = 2;                                 // one row per format, step 0

std::string NewFolder(const std::string& name) {
  const std::string folder = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  return folder;
}

std::vector<std::string> Args(const std::string& out) {
  return {"--context=32", "--decode_steps=1",
          "--formats=symmetric_int4:block=32,affine_int4:block=32",
          "--seed=3", absl::StrCat("--out=", out)};
}

ChildOptions Quiet() {
  ChildOptions options;
  options.env = {"OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE"};
  return options;
}

// The file reads cleanly (no torn or malformed line) and every row re-judges to its stored
// verdict against the registered spec. Returns the rows.
std::vector<gates::RecordAt> ReadAndRejudge(const std::string& path) {
  absl::StatusOr<std::vector<gates::RecordAt>> rows = gates::ReadRecordsFile(path);
  EXPECT_TRUE(rows.ok()) << rows.status();
  if (!rows.ok()) return {};
  absl::StatusOr<gates::SpecRegistry> specs = gates::LoadSpecDir(SpecsDir());
  EXPECT_TRUE(specs.ok()) << specs.status();
  if (specs.ok()) {
    EXPECT_THAT(gates::CheckRecords(*specs, *rows), IsEmpty());
  }
  return *rows;
}

std::vector<std::string> HiddenTemporaries(const std::string& folder) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (absl::StrContains(name, ".tmp.")) names.push_back(name);
  }
  return names;
}

class RecordsUnderFailureTest : public ::testing::Test {
 protected:
  // A records file holding the rows of one complete run.
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kBinary)) << kBinary << " is not in the runfiles";
    folder_ = NewFolder(::testing::UnitTest::GetInstance()->current_test_info()->name());
    path_ = folder_ + "/hfkv_int4.jsonl";
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<ChildResult> first = RunChild(kBinary, Args(path_), Quiet());
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_EQ(first->exit_code, 0) << first->Describe();
    run_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_THAT(ReadAndRejudge(path_), SizeIs(kRowsPerRun));
  }

  std::string folder_, path_;
  double run_seconds_ = 0;
};

// Deterministic: the experiment pauses after its new records file is written and synced, just
// before the rename (KVGATE_TEST_PAUSE_BEFORE_RENAME), and is SIGKILLed there.
TEST_F(RecordsUnderFailureTest, KilledJustBeforePublishingLeavesThePreviousFile) {
  const std::string before = *gates::ReadFile(path_);
  const std::string marker = folder_ + "/paused";
  ChildOptions options = Quiet();
  options.env.push_back("KVGATE_TEST_PAUSE_BEFORE_RENAME=" + marker);
  absl::StatusOr<std::unique_ptr<Child>> child = Child::Start(kBinary, Args(path_), options);
  ASSERT_TRUE(child.ok()) << child.status();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (!std::filesystem::exists(marker) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(std::filesystem::exists(marker)) << "the experiment never reached the rename";
  ASSERT_EQ(kill((*child)->pid(), SIGKILL), 0);
  const ChildResult killed = (*child)->Wait();
  EXPECT_EQ(killed.signal, SIGKILL) << killed.Describe();

  EXPECT_EQ(*gates::ReadFile(path_), before);  // byte-identical: every earlier row kept
  EXPECT_THAT(ReadAndRejudge(path_), SizeIs(kRowsPerRun));
  // The new rows were complete in the hidden temporary, which no reader looks at.
  const std::vector<std::string> temporaries = HiddenTemporaries(folder_);
  ASSERT_THAT(temporaries, SizeIs(1));
  absl::StatusOr<std::vector<gates::RecordAt>> unpublished =
      gates::ReadRecordsFile(folder_ + "/" + temporaries[0]);
  ASSERT_TRUE(unpublished.ok()) << unpublished.status();
  EXPECT_THAT(*unpublished, SizeIs(2 * kRowsPerRun));
  EXPECT_THAT(*gates::ListFiles(folder_, ".jsonl"), testing::ElementsAre(path_));
}

// Kills at many points of the run (model load, prefill, decode, judging, writing): whatever the
// moment, the file is the previous one, or the previous one plus all of the new rows.
TEST_F(RecordsUnderFailureTest, KilledAtManyPointsKeepsWholeRowsOnly) {
  constexpr int kKills = 8;
  int landed_before_end = 0;
  for (int i = 1; i <= kKills; ++i) {
    const std::string before = *gates::ReadFile(path_);
    const size_t rows_before = ReadAndRejudge(path_).size();
    absl::StatusOr<std::unique_ptr<Child>> child = Child::Start(kBinary, Args(path_), Quiet());
    ASSERT_TRUE(child.ok()) << child.status();
    // Spread over the measured run time (0.1 T .. 0.7 T), the last one past its end.
    const double at = i < kKills ? 0.1 * i : 1.5;
    std::this_thread::sleep_for(std::chrono::duration<double>(run_seconds_ * at));
    kill((*child)->pid(), SIGKILL);
    const ChildResult r = (*child)->Wait();
    if (r.signal == SIGKILL) ++landed_before_end;

    const std::string after = *gates::ReadFile(path_);
    ASSERT_TRUE(absl::StartsWith(after, before)) << "kill " << i << ": an earlier row changed";
    ASSERT_TRUE(after.empty() || after.back() == '\n') << "kill " << i << ": torn last line";
    const size_t rows_after = ReadAndRejudge(path_).size();
    EXPECT_TRUE(rows_after == rows_before || rows_after == rows_before + kRowsPerRun)
        << "kill " << i << ": " << rows_before << " -> " << rows_after << " rows";
    if (r.signal == SIGKILL && rows_after != rows_before) {
      // Killed after the rename, before exit: the rows are whole, which is all that matters.
      std::printf("kill %d landed after the rows were published\n", i);
    }
  }
  std::printf("%d of %d kills ended the experiment before it exited (run time %.2f s)\n",
              landed_before_end, kKills, run_seconds_);
  EXPECT_GE(landed_before_end, 3) << "the kills did not land inside the run";
}

// An I/O error while writing the records (a file-size limit: write() fails with EFBIG, as on a
// full disk): the run fails with the error in one stderr line, the previous file is
// byte-identical and no temporary is left.
TEST_F(RecordsUnderFailureTest, AnIoErrorFailsTheRunAndKeepsThePreviousFile) {
  const std::string before = *gates::ReadFile(path_);
  ChildOptions options = Quiet();
  options.file_size_limit = static_cast<int64_t>(before.size()) + 64;  // less than one more row
  absl::StatusOr<ChildResult> r = RunChild(kBinary, Args(path_), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1) << r->Describe();
  ASSERT_THAT(r->ErrLines(), SizeIs(1)) << r->err;
  EXPECT_THAT(r->ErrLines()[0], HasSubstr("File too large"));
  EXPECT_THAT(r->ErrLines()[0], HasSubstr("hfkv_int4.jsonl"));
  EXPECT_EQ(*gates::ReadFile(path_), before);
  EXPECT_THAT(HiddenTemporaries(folder_), IsEmpty());
}

}  // namespace
}  // namespace kvgate::experiments
