#include "gates/record_io.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gates/file_io.h"
#include "gates/record_testing.h"
#include "gates/testing_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::ExampleRecord;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
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

// The acceptance test at the level of records: a run killed between write and rename.
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

}  // namespace
}  // namespace kvgate::gates
