#include "gates/evidence.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gates/file_io.h"
#include "gates/record_io.h"
#include "gates/record_testing.h"
#include "gates/testing_util.h"
#include "gates/verdict.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::CopyOfFolder;
using ::kvgate::gates::testing::ExampleRecord;
using ::kvgate::gates::testing::ListedFiles;
using ::kvgate::gates::testing::NewTestFolder;
using ::kvgate::gates::testing::RunCommand;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kFixtures[] = "gates/testdata/records";

std::vector<std::string> SpecFiles(const std::string& dir = "gates/specs") {
  return ListedFiles(dir, ".json");
}

std::vector<std::string> Fixture(const std::string& set) {
  return ListedFiles(absl::StrCat(kFixtures, "/", set), ".jsonl");
}

Evidence Load(const std::vector<std::string>& records,
              const std::vector<std::string>& specs = SpecFiles()) {
  absl::StatusOr<Evidence> evidence = LoadEvidence(specs, records);
  EXPECT_TRUE(evidence.ok()) << evidence.status();
  return evidence.ok() ? *evidence : Evidence();
}

TEST(CheckRecordsTest, CleanFixturesHaveNoProblems) {
  for (const char* set : {"permitted", "refused", "refused_mixed"}) {
    SCOPED_TRACE(set);
    const Evidence evidence = Load(Fixture(set));
    EXPECT_THAT(evidence.rows, ::testing::Not(IsEmpty()));
    EXPECT_THAT(evidence.problems, IsEmpty());
  }
  EXPECT_THAT(Load({}).problems, IsEmpty());  // no records: nothing to disagree with
}

TEST(CheckRecordsTest, AStoredVerdictThatDisagreesFails) {
  EXPECT_THAT(Load(Fixture("bad_verdict")).problems,
              ElementsAre("gates/testdata/records/bad_verdict/work_reduction_oracle.jsonl:3: "
                          "stores verdict pass, but work_reduction_oracle v1 judges it fail "
                          "(top10_overlap = 0.7 fails >= 0.8)"));
}

TEST(CheckRecordsTest, ARecordWithoutAGateHasNothingToCheck) {
  Record data = ExampleRecord();
  data.gate = GateResult();
  RecordAt row;
  row.record = data;
  row.file = "k0_prep.jsonl";
  row.line = 1;
  absl::StatusOr<SpecRegistry> specs = LoadSpecFiles(SpecFiles());
  ASSERT_TRUE(specs.ok()) << specs.status();
  EXPECT_THAT(CheckRecords(*specs, {row}), IsEmpty());
}

TEST(CheckRecordsTest, AnUnknownSpecFails) {
  const Evidence evidence = Load(Fixture("unknown_spec"));
  ASSERT_THAT(evidence.problems, SizeIs(4));
  EXPECT_EQ(evidence.problems[0],
            "gates/testdata/records/unknown_spec/work_reduction_oracle.jsonl:1: names unknown spec "
            "work_reduction_oracle v7 (no gates/specs/work_reduction_oracle.v7.json)");
}

TEST(CheckRecordsTest, ATornFileFailsWithItsLine) {
  EXPECT_THAT(Load(Fixture("torn")).problems,
              ElementsAre(HasSubstr("torn/work_reduction_oracle.jsonl:4: torn line")));
}

// Pinning's point: a spec edited after records pinned it is detected, even when the
// edit happens to leave every verdict unchanged.
TEST(CheckRecordsTest, ATamperedSpecIsDetected) {
  const std::string dir = CopyOfFolder("gates/specs", ".json");
  const std::string path = dir + "/work_reduction_oracle.json";
  const std::string bytes = *ReadFile(path);
  const std::string edited =
      absl::StrReplaceAll(bytes, {{R"("top10_overlap", "op": ">=", "value": 0.8})",
                                   R"("top10_overlap", "op": ">=", "value": 0.7})"}});
  ASSERT_NE(edited, bytes);
  ASSERT_TRUE(AtomicWriteFile(path, edited).ok());
  const Evidence evidence = Load(Fixture("permitted"), SpecFiles(dir));
  ASSERT_THAT(evidence.problems, SizeIs(8));  // the 8 oracle rows; the speed ceiling rows are fine
  EXPECT_THAT(
      evidence.problems[0],
      AllOf(HasSubstr("permitted/work_reduction_oracle.jsonl:1: pins work_reduction_oracle v1 at "
                      "sha256 1384de09e2b19bae000a9ea719f4206862fd342f1d11fcb7afb210cc76011936, "
                      "but "),
            HasSubstr("/work_reduction_oracle.json now has sha256 "),
            HasSubstr("the spec changed under the record"),
            HasSubstr("as a new version, work_reduction_oracle.v2.json")));
}

// The whole path of a record: written, re-read and re-judged.
TEST(CheckRecordsTest, ARecordWrittenRereadAndRejudged) {
  const Evidence specs_only = Load({});
  const RegisteredSpec* spec = FindSpec(specs_only.specs, "work_reduction_oracle", 1);
  ASSERT_NE(spec, nullptr);
  // As an experiment writes it: metrics measured, verdict from the spec, the spec's sha pinned.
  std::vector<Record> run;
  for (int step = 0; step < 4; ++step) {
    Record r = ExampleRecord(step, spec->sha256);
    if (step == 3) r.metrics["top10_overlap"] = 0.7;
    const Judgement j = JudgeRow(spec->spec, r);
    r.gate.verdict = j.verdict;
    r.gate.failed = j.failed;
    run.push_back(r);
  }
  const std::string path = NewTestFolder() + "/qwen_oracle.jsonl";
  ASSERT_TRUE(AppendRecords(path, run).ok());

  Evidence evidence = Load({path});
  ASSERT_THAT(evidence.rows, SizeIs(4));
  EXPECT_THAT(evidence.problems, IsEmpty());
  EXPECT_EQ(evidence.rows[3].record.gate.verdict, Verdict::kFail);
  std::vector<RunJudgement> runs = JudgeRuns(evidence.specs, evidence.rows);
  ASSERT_THAT(runs, SizeIs(1));
  EXPECT_EQ(runs[0].judgement.verdict, Verdict::kFail);

  // Someone "fixes" the number in the file: re-judging catches the stored verdict.
  const std::string text = *ReadFile(path);
  const std::string edited =
      absl::StrReplaceAll(text, {{R"("top10_overlap":0.7)", R"("top10_overlap":0.9)"}});
  ASSERT_NE(edited, text);
  ASSERT_TRUE(AtomicWriteFile(path, edited).ok());
  EXPECT_THAT(Load({path}).problems,
              ElementsAre(HasSubstr("qwen_oracle.jsonl:4: stores verdict fail, but "
                                    "work_reduction_oracle v1 judges it pass")));
}

TEST(CheckRecordsBinaryTest, ExitCodesAndMessages) {
  const std::string tool = "gates/check_records --specs_dir=gates/specs --records_dir=";
  testing::CommandResult clean = RunCommand(tool + kFixtures + "/permitted");
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  // The spec count follows gates/specs/, which grows with every registered gate.
  EXPECT_THAT(clean.output, ::testing::ContainsRegex("10 records in 2 files, [0-9]+ specs"));

  testing::CommandResult none = RunCommand(tool + kFixtures + "/no_such_folder");
  EXPECT_EQ(none.exit_code, 0) << none.output;
  EXPECT_THAT(none.output, HasSubstr("0 records in 0 files"));

  testing::CommandResult bad = RunCommand(tool + kFixtures + "/bad_verdict");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("jsonl:3: stores verdict pass, but work_reduction_oracle v1 "
                                    "judges it fail"));

  testing::CommandResult files = RunCommand(
      absl::StrCat("gates/check_records ", kFixtures, "/torn/work_reduction_oracle.jsonl"));
  EXPECT_EQ(files.exit_code, 1) << files.output;
  EXPECT_THAT(files.output, HasSubstr(":4: torn line"));

  testing::CommandResult no_specs = RunCommand("gates/check_records --specs_dir=gates/none");
  EXPECT_EQ(no_specs.exit_code, 2) << no_specs.output;
}

}  // namespace
}  // namespace kvgate::gates
