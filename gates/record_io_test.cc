#include "gates/record_io.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gates/evidence.h"
#include "gates/file_io.h"
#include "gates/record_testing.h"
#include "gates/spec_registry.h"
#include "gates/testing_util.h"
#include "gates/verdict.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::Temporaries;
using ::kvgate::gates::testing::ExampleRecord;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

std::string NewPath(const std::string& name = "r.jsonl") {
  return kvgate::gates::testing::NewTestFolder() + "/" + name;
}

std::vector<Record> FourSteps() {
  std::vector<Record> rows;
  for (int step = 0; step < 4; ++step) rows.push_back(ExampleRecord(step));
  return rows;
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(RecordIoTest, WrittenRowsReadBackWithLineNumbers) {
  const std::string path = NewPath();
  ASSERT_TRUE(WriteRecordsFile(path, FourSteps()).ok());
  absl::StatusOr<std::vector<RecordAt>> rows = ReadRecordsFile(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(4));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ((*rows)[i].line, i + 1);
    EXPECT_EQ((*rows)[i].record.step, i);
    EXPECT_EQ(*RecordToJsonLine((*rows)[i].record), *RecordToJsonLine(FourSteps()[i]));
  }
  EXPECT_EQ((*rows)[2].Where(), path + ":3");
  // One row a line, each ending in a newline.
  EXPECT_EQ(*ReadFile(path), *RecordToJsonLine(FourSteps()[0]) + "\n" +
                                 *RecordToJsonLine(FourSteps()[1]) + "\n" +
                                 *RecordToJsonLine(FourSteps()[2]) + "\n" +
                                 *RecordToJsonLine(FourSteps()[3]) + "\n");
}

TEST(RecordIoTest, AnEmptyFileHasNoRows) {
  const std::string path = NewPath();
  ASSERT_TRUE(WriteRecordsFile(path, {}).ok());
  EXPECT_THAT(*ReadRecordsFile(path), IsEmpty());
}

TEST(ParseRecordsTest, RejectsATornLastLine) {
  const std::string line = *RecordToJsonLine(ExampleRecord());
  absl::StatusOr<std::vector<RecordAt>> rows =
      ParseRecords(line + "\n" + line + "\n" + line.substr(0, 40), "x.jsonl");
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(rows.status()), HasSubstr("x.jsonl:3: torn line"));
  // A whole row without its newline is torn too: the writer always ends a row with one.
  EXPECT_THAT(Message(ParseRecords(line, "x.jsonl").status()), HasSubstr("x.jsonl:1: torn line"));
}

TEST(ParseRecordsTest, RejectsMalformedAndEmptyLinesWithTheirNumber) {
  const std::string line = *RecordToJsonLine(ExampleRecord());
  EXPECT_THAT(Message(ParseRecords(line + "\n{\"experiment\": 1}\n", "x.jsonl").status()),
              HasSubstr("x.jsonl:2: top level: missing"));
  EXPECT_THAT(Message(ParseRecords(line + "\n" + line.substr(0, 40) + "\n", "x.jsonl").status()),
              HasSubstr("x.jsonl:2: not JSON"));
  EXPECT_THAT(Message(ParseRecords(line + "\n\n" + line + "\n", "x.jsonl").status()),
              HasSubstr("x.jsonl:2: empty line"));
}

TEST(RecordIoTest, AppendCreatesThenAdds) {
  const std::string path = NewPath();
  ASSERT_TRUE(AppendRecords(path, {ExampleRecord(0), ExampleRecord(1)}).ok());
  ASSERT_TRUE(AppendRecords(path, {ExampleRecord(2)}).ok());
  absl::StatusOr<std::vector<RecordAt>> rows = ReadRecordsFile(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(3));
  EXPECT_EQ((*rows)[2].record.step, 2);
}

TEST(RecordIoTest, AppendRefusesABrokenFileAndLeavesIt) {
  const std::string path = NewPath();
  const std::string torn = *RecordToJsonLine(ExampleRecord()) + "\n{\"exper";
  ASSERT_TRUE(AtomicWriteFile(path, torn).ok());
  EXPECT_THAT(Message(AppendRecords(path, {ExampleRecord()})), HasSubstr(":2: torn line"));
  EXPECT_EQ(*ReadFile(path), torn);
}

TEST(RecordIoTest, AnInvalidRecordWritesNothing) {
  const std::string path = NewPath();
  ASSERT_TRUE(WriteRecordsFile(path, FourSteps()).ok());
  const std::string before = *ReadFile(path);
  std::vector<Record> rows = FourSteps();
  rows[1].gate.spec_sha256 = "short";
  EXPECT_THAT(Message(WriteRecordsFile(path, rows)), HasSubstr("record 2 of 4"));
  EXPECT_THAT(Message(AppendRecords(path, rows)), HasSubstr("record 2 of 4"));
  EXPECT_EQ(*ReadFile(path), before);
}

TEST(RecordIoTest, AnIoErrorFailsTheWrite) {
  const std::string path = NewPath("missing/folder/r.jsonl");
  EXPECT_EQ(WriteRecordsFile(path, FourSteps()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(AppendRecords(path, FourSteps()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadRecordsFile(path).status().code(), absl::StatusCode::kNotFound);
}

// The atomic write at the level of records: a run killed between write and rename.
TEST(RecordIoTest, AnInterruptedAppendLeavesThePreviousRows) {
  const std::string path = NewPath();
  ASSERT_TRUE(WriteRecordsFile(path, {ExampleRecord(0), ExampleRecord(1)}).ok());
  const std::string before = *ReadFile(path);

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    AtomicWriteOptions options;
    options.before_rename = [] { raise(SIGKILL); };
    (void)AppendRecords(path, {ExampleRecord(2), ExampleRecord(3)}, options);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  EXPECT_EQ(*ReadFile(path), before);
  absl::StatusOr<std::vector<RecordAt>> rows = ReadRecordsFile(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT(*rows, SizeIs(2));
}

// A full disk, injected through the writer's interface: the first write of the temporary file
// fails with ENOSPC after writing part of the bytes. The append fails with the error, the
// previous file is byte-identical and no temporary is left.
TEST(RecordIoTest, AFullDiskFailsTheAppendAndKeepsThePreviousFileByteIdentical) {
  const std::string path = NewPath();
  ASSERT_TRUE(WriteRecordsFile(path, {ExampleRecord(0), ExampleRecord(1)}).ok());
  const std::string before = *ReadFile(path);

  int calls = 0;
  AtomicWriteOptions options;
  options.write = [&calls](int fd, absl::string_view data, absl::string_view what) {
    ++calls;
    // Half the bytes reach the temporary file, then the disk is full.
    absl::Status partial = WriteFully(fd, data.substr(0, data.size() / 2), what);
    if (!partial.ok()) return partial;
    return absl::ErrnoToStatus(ENOSPC, absl::StrCat("writing ", what));
  };
  const absl::Status status = AppendRecords(path, {ExampleRecord(2), ExampleRecord(3)}, options);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(Message(status), HasSubstr("No space left on device"));
  EXPECT_THAT(Message(status), HasSubstr(".r.jsonl.tmp."));  // names the file it was writing
  EXPECT_EQ(*ReadFile(path), before);
  EXPECT_THAT(Temporaries(path.substr(0, path.rfind('/'))), IsEmpty());
  // The same for a whole-file write.
  EXPECT_EQ(WriteRecordsFile(path, FourSteps(), options).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*ReadFile(path), before);
}

// An I/O error (EIO) on a device is reported the same way.
TEST(RecordIoTest, AnInjectedDeviceErrorFailsTheAppend) {
  const std::string path = NewPath();
  ASSERT_TRUE(WriteRecordsFile(path, {ExampleRecord(0)}).ok());
  const std::string before = *ReadFile(path);
  AtomicWriteOptions options;
  options.write = [](int, absl::string_view, absl::string_view what) {
    return absl::ErrnoToStatus(EIO, absl::StrCat("writing ", what));
  };
  const absl::Status status = AppendRecords(path, {ExampleRecord(1)}, options);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(Message(status), HasSubstr("Input/output error"));
  EXPECT_EQ(*ReadFile(path), before);
}

// Non-finite metrics through a file: stored as the strings "NaN", "Infinity", "-Infinity" (never
// null), read back as the same values, and judged invalid by the committed spec.
TEST(RecordIoTest, NonFiniteMetricsAreStoredAsStringsAndJudgedInvalid) {
  absl::StatusOr<SpecRegistry> specs = LoadSpecDir("gates/specs");
  ASSERT_TRUE(specs.ok()) << specs.status();
  const RegisteredSpec* spec = FindSpec(*specs, "work_reduction_oracle", 1);
  ASSERT_NE(spec, nullptr);

  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Record> rows = {ExampleRecord(0, spec->sha256), ExampleRecord(1, spec->sha256),
                              ExampleRecord(2, spec->sha256), ExampleRecord(3, spec->sha256)};
  rows[1].metrics["decode_logit_mse"] = nan;
  rows[2].metrics["layer_median_o_proj_rel_l2"] = inf;
  rows[3].metrics["kl_divergence"] = -inf;  // a metric the gate does not read: still invalid
  for (Record& row : rows) {
    const Judgement j = JudgeRow(spec->spec, row);
    row.gate.verdict = j.verdict;
    row.gate.failed = j.failed;
  }
  EXPECT_EQ(rows[0].gate.verdict, Verdict::kPass);
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(rows[i].gate.verdict, Verdict::kInvalid) << i;
    EXPECT_THAT(rows[i].gate.failed, Not(IsEmpty())) << i;
  }

  const std::string path = NewPath();
  ASSERT_TRUE(WriteRecordsFile(path, rows).ok());
  const std::string bytes = *ReadFile(path);
  EXPECT_THAT(bytes, HasSubstr(R"("decode_logit_mse":"NaN")"));
  EXPECT_THAT(bytes, HasSubstr(R"("layer_median_o_proj_rel_l2":"Infinity")"));
  EXPECT_THAT(bytes, HasSubstr(R"("kl_divergence":"-Infinity")"));
  EXPECT_THAT(bytes, Not(HasSubstr("null")));  // every row has a step: no null anywhere

  absl::StatusOr<std::vector<RecordAt>> read = ReadRecordsFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_THAT(*read, SizeIs(4));
  EXPECT_TRUE(std::isnan((*read)[1].record.metrics.at("decode_logit_mse")));
  EXPECT_EQ((*read)[2].record.metrics.at("layer_median_o_proj_rel_l2"), inf);
  EXPECT_EQ((*read)[3].record.metrics.at("kl_divergence"), -inf);
  // Re-judged from the file (what CI does): the stored verdicts agree, the run is invalid.
  EXPECT_THAT(CheckRecords(*specs, *read), IsEmpty());
  const std::vector<RunJudgement> runs = JudgeRuns(*specs, *read);
  ASSERT_THAT(runs, SizeIs(1));
  EXPECT_EQ(runs[0].judgement.verdict, Verdict::kInvalid);

  // A null metric is malformed, not a missing value.
  std::string with_null = bytes;
  const size_t at = with_null.find(R"("NaN")");
  with_null.replace(at, 5, "null");
  const std::string error = Message(ParseRecords(with_null, "x.jsonl").status());
  EXPECT_THAT(error, HasSubstr("x.jsonl:2: "));
  EXPECT_THAT(error, HasSubstr("metrics.decode_logit_mse: expected a number or \"NaN\""));
}

}  // namespace
}  // namespace kvgate::gates
