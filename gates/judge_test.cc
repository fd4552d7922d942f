// //gates:judge end to end: its --help, the speed-ceiling table, the verdict tables of records.
#include <string>

#include "gates/testing_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::CommandResult;
using ::kvgate::gates::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kJudge[] = "gates/judge ";
constexpr char kFixtures[] = "gates/testdata/records/";

TEST(JudgeTest, HelpExplainsEveryFlag) {
  const CommandResult r = RunCommand(std::string(kJudge) + "--help");
  EXPECT_THAT(r.output, HasSubstr("per-configuration verdicts of records files"));
  EXPECT_THAT(r.output, HasSubstr("--specs_dir (Folder of the gate spec files"));
  EXPECT_THAT(r.output, HasSubstr("--p_attn (Speed-ceiling table: comma-separated shares"));
  EXPECT_THAT(r.output, HasSubstr("--f (Speed-ceiling table: comma-separated active history"));
  EXPECT_THAT(r.output, HasSubstr("--h (Speed-ceiling table: comma-separated selector overheads"));
}

// The same table as judge_tables_test's SpeedCeilingTableTest, on purpose: that test checks the
// function, this one that the binary prints exactly it from the registered spec.
TEST(JudgeTest, SpeedCeilingTableFromTheRegisteredSpec) {
  const CommandResult r = RunCommand(std::string(kJudge) + "--p_attn=0.334 --f=0.337,0.350,0.376");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "## speed ceiling: 1 / ((1 - p_attn) + p_attn * f + h); speed_ceiling v2 passes at "
            ">= 1.20x with h = 0.05\n"
            "\n"
            "| p_attn | f | h = 0 | h = 0.05 | h = 0.1 | verdict at h = 0.05 |\n"
            "|---|---|---|---|---|---|\n"
            "| 0.334 | 0.337 | 1.28x | 1.21x | 1.14x | pass (1.207x) |\n"
            "| 0.334 | 0.35 | 1.28x | 1.20x | 1.13x | pass (1.201x) |\n"
            "| 0.334 | 0.376 | 1.26x | 1.19x | 1.12x | fail (1.188x) |\n");
}

TEST(JudgeTest, VerdictTablesOfRecordsAreDeterministic) {
  const std::string command = std::string(kJudge) + kFixtures + "refused_mixed";
  const CommandResult r = RunCommand(command);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("## speed_ceiling v2\n"));
  EXPECT_THAT(r.output,
              HasSubstr("| global_block_mass:f=0.3760:b=16 | 1 | fail | projected_speedup "
                        "at h = 0.05 = 1.18824 fails >= 1.2 |\n"));
  EXPECT_THAT(r.output, HasSubstr("## work_reduction_oracle v1\n"));
  EXPECT_THAT(r.output, HasSubstr("| global_block_mass:f=0.3500:b=16 | 1 | fail | step 2: "
                                  "top10_overlap = 0.7 fails >= 0.8 |\n"));
  EXPECT_THAT(r.output, Not(HasSubstr("problems")));
  EXPECT_EQ(RunCommand(command).output, r.output);
}

TEST(JudgeTest, ProblemsAreListedAndFail) {
  const CommandResult r = RunCommand(std::string(kJudge) + kFixtures + "bad_verdict");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("## problems\n\n- gates/testdata/records/bad_verdict/"
                                  "work_reduction_oracle.jsonl:3: stores verdict pass"));
}

TEST(JudgeTest, UsageErrors) {
  for (const char* args : {"", "--p_attn=0.3", "--p_attn=x --f=0.3", "--p_attn=1.5 --f=0.3",
                           "--specs_dir=gates/none gates/testdata/records/permitted"}) {
    SCOPED_TRACE(args);
    const CommandResult r = RunCommand(std::string(kJudge) + args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_THAT(r.output, HasSubstr("judge: "));
  }
}

}  // namespace
}  // namespace kvgate::gates
