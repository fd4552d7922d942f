// //tools/report:report end to end, as a shell runs it: writing, --check catching a hand-edited
// number, bad records named by file:line with nothing written, importing test outputs.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gates/file_io.h"
#include "gates/testing_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::report {
namespace {

using ::kvgate::gates::testing::CommandResult;
using ::kvgate::gates::testing::CopyOfFolder;
using ::kvgate::gates::testing::ListedFiles;
using ::kvgate::gates::testing::NewTestFolder;
using ::kvgate::gates::testing::RunCommand;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The fixture records, their templates and the real published figures; `extra` adds flags.
std::string Report(const std::string& records, const std::string& out, const std::string& extra) {
  return absl::StrCat("tools/report/report --records_dir=", records,
                      " --templates_dir=tools/report/testdata/templates"
                      " --published=reports/templates/published.json --out_dir=",
                      out, " ", extra);
}

constexpr char kRecords[] = "tools/report/testdata/records";

TEST(ReportMainTest, HelpExplainsEveryFlag) {
  const CommandResult r = RunCommand("tools/report/report --help");
  for (const char* flag : {"--check", "--testlogs", "--specs_dir", "--records_dir",
                           "--templates_dir", "--published", "--out_dir"}) {
    EXPECT_THAT(r.output, HasSubstr(absl::StrCat(flag, " ("))) << flag;
  }
}

TEST(ReportMainTest, WritesThenChecksThenCatchesAHandEditedNumber) {
  const std::string out = NewTestFolder();
  CommandResult r = RunCommand(Report(kRecords, out, ""));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("10 reports in " + out + "/ from 43 records (10 changed)"));
  r = RunCommand(Report(kRecords, out, ""));
  EXPECT_THAT(r.output, HasSubstr("(0 changed)"));
  r = RunCommand(Report(kRecords, out, "--check"));
  EXPECT_EQ(r.exit_code, 0) << r.output;

  const std::string summary = out + "/summaries/hfkv-quality-k0-prep-summary.md";
  std::string bytes = gates::ReadFile(summary).value();
  bytes = absl::StrReplaceAll(bytes, {{"| 1.7400 |", "| 0.1740 |"}});
  ASSERT_TRUE(gates::AtomicWriteFile(summary, bytes).ok());
  r = RunCommand(Report(kRecords, out, "--check"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("the committed reports differ from what the records "
                                        "produce; run `tools/bazel run //tools/report`"),
                              HasSubstr(summary + ": differs from what the records produce, "
                                                  "first difference on line")));
}

TEST(ReportMainTest, CheckFailsOnAHandEditInTheWordsOfAGeneratedReport) {
  const std::string out = NewTestFolder();
  ASSERT_EQ(RunCommand(Report(kRecords, out, "")).exit_code, 0);
  const std::string ledger = out + "/results-ledger.md";
  std::string bytes = gates::ReadFile(ledger).value();
  const std::string words = "Words of the fixture template, copied byte for byte.";
  ASSERT_NE(bytes.find(words), std::string::npos);
  bytes = absl::StrReplaceAll(bytes, {{words, "Symmetric int4 passes at MSE 0.158."}});
  ASSERT_TRUE(gates::AtomicWriteFile(ledger, bytes).ok());
  const CommandResult r = RunCommand(Report(kRecords, out, "--check"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(ledger + ": differs from what the records produce"));
}

TEST(ReportMainTest, ANumberTypedIntoTheTemplateWordsFailsTheCheck) {
  const std::string templates = CopyOfFolder("tools/report/testdata/templates", ".md");
  const std::string file = templates + "/results-ledger.md";
  std::string bytes = gates::ReadFile(file).value();
  bytes = absl::StrReplaceAll(
      bytes, {{"copied byte for byte.", "copied byte for byte. Symmetric int4 passes at 0.158."}});
  ASSERT_TRUE(gates::AtomicWriteFile(file, bytes).ok());
  const std::string out = NewTestFolder();
  // Generated in place of the fixture templates: the same words with the typed number.
  const std::string flags = absl::StrCat(" --templates_dir=", templates);
  for (const char* mode : {"", "--check"}) {
    SCOPED_TRACE(mode);
    const CommandResult r = RunCommand(absl::StrCat(Report(kRecords, out, mode), flags));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr(file + ":3: the number 0.158 in the words is in no generated "
                                           "block of this report"));
  }
  EXPECT_THAT(ListedFiles(out, ""), IsEmpty());
}

TEST(ReportMainTest, ABadRecordIsNamedAndNothingIsWritten) {
  const std::string records = CopyOfFolder(kRecords, ".jsonl");
  const std::string file = records + "/qwen_oracle.jsonl";
  std::string bytes = gates::ReadFile(file).value();
  bytes.pop_back();  // a torn last line
  ASSERT_TRUE(gates::AtomicWriteFile(file, bytes).ok());
  const std::string out = NewTestFolder();
  const CommandResult r = RunCommand(Report(records, out, ""));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output,
              AllOf(HasSubstr("report: bad records; nothing written:"), HasSubstr(file + ":20: ")));
  EXPECT_THAT(ListedFiles(out, ""), IsEmpty());
}

TEST(ReportMainTest, ImportsTestOutputsOnceThenRegenerates) {
  const std::string records = CopyOfFolder(kRecords, ".jsonl");
  const std::string out = NewTestFolder();
  const std::string import = "--testlogs=tools/report/testdata/testlogs";
  CommandResult r = RunCommand(Report(records, out, import));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("appended 1 rows to " + records + "/hfkv_int4.jsonl"),
                              HasSubstr("appended 1 rows to " + records + "/speed_ceiling.jsonl"),
                              HasSubstr("2 records files in tools/report/testdata/testlogs, 2 "
                                        "new rows, 1 already committed"),
                              HasSubstr("from 45 records")));
  r = RunCommand(Report(records, out, import));
  EXPECT_THAT(r.output, HasSubstr("0 new rows, 3 already committed"));
  EXPECT_THAT(gates::ReadFile(out + "/summaries/hfkv-quality-k0-prep-summary.md").value(),
              HasSubstr("`affine_int4:block=64`"));
}

TEST(ReportMainTest, AMistypedRecordsFolderIsAnErrorAndNothingIsWritten) {
  const std::string out = NewTestFolder();
  const CommandResult r = RunCommand(Report("tools/report/testdata/no_such_folder", out, ""));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(
      r.output,
      HasSubstr("report: --records_dir: no such folder tools/report/testdata/no_such_folder"));
  EXPECT_THAT(ListedFiles(out, ""), IsEmpty());
}

TEST(ReportMainTest, UsageErrors) {
  for (const char* args : {"--check --testlogs=x", "extra_argument", "--specs_dir=gates/none",
                           "--templates_dir=tools/report/testdata/no_such_folder"}) {
    SCOPED_TRACE(args);
    const CommandResult r = RunCommand(Report(kRecords, NewTestFolder(), args));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_THAT(r.output, HasSubstr("report: "));
  }
}

}  // namespace
}  // namespace kvgate::report
