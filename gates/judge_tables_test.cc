#include "gates/judge_tables.h"

#include <string>
#include <vector>

#include "gates/record_testing.h"
#include "gates/spec_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::ExampleRecord;
using ::testing::HasSubstr;

// The study's table for p_attn = 0.334 (speed_ceiling_test.cc), with the verdicts at 5%.
TEST(SpeedCeilingTableTest, ReproducesThePublishedTable) {
  absl::StatusOr<std::string> table = SpeedCeilingTable(
      {0.334}, {0.337, 0.350, 0.376}, {0.0, 0.05, 0.10}, SpeedCeilingGate(), "speed_ceiling v1");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(*table,
            "## speed ceiling: 1 / ((1 - p_attn) + p_attn * f + h); speed_ceiling v1 passes at "
            ">= 1.20x with h = 0.05\n"
            "\n"
            "| p_attn | f | h = 0 | h = 0.05 | h = 0.1 | verdict at h = 0.05 |\n"
            "|---|---|---|---|---|---|\n"
            "| 0.334 | 0.337 | 1.28x | 1.21x | 1.14x | pass (1.207x) |\n"
            "| 0.334 | 0.35 | 1.28x | 1.20x | 1.13x | pass (1.201x) |\n"
            "| 0.334 | 0.376 | 1.26x | 1.19x | 1.12x | fail (1.188x) |\n");
}

TEST(SpeedCeilingTableTest, RowsForEveryPAttnAndTheGatesOwnOverhead) {
  absl::StatusOr<std::string> table =
      SpeedCeilingTable({0.2, 0.5}, {0.5}, {0.0}, {.overhead = 0.10, .min_speedup = 1.1}, "g v2");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_THAT(*table,
              HasSubstr("| 0.2 | 0.5 | 1.11x | fail (1.000x) |\n"));  // 1 / (0.8 + 0.1 + 0.1)
  EXPECT_THAT(*table,
              HasSubstr("| 0.5 | 0.5 | 1.33x | pass (1.176x) |\n"));  // 1 / (0.5 + 0.25 + 0.1)
}

TEST(SpeedCeilingTableTest, RejectsBadInputs) {
  EXPECT_FALSE(SpeedCeilingTable({}, {0.5}, {0.0}, SpeedCeilingGate(), "g").ok());
  EXPECT_FALSE(SpeedCeilingTable({1.5}, {0.5}, {0.0}, SpeedCeilingGate(), "g").ok());
  EXPECT_FALSE(SpeedCeilingTable({0.5}, {0.5}, {-0.1}, SpeedCeilingGate(), "g").ok());
}

TEST(ConfigurationTablesTest, OneTablePerGateVersion) {
  std::vector<ConfigurationJudgement> configs(3);
  configs[0].gate_id = configs[1].gate_id = "speed_ceiling";
  configs[2].gate_id = "work_reduction_oracle";
  for (ConfigurationJudgement& c : configs) {
    c.gate_version = 1;
    c.target = ExampleRecord().target;
    c.runs = c.valid_runs = 1;
    c.judgement.verdict = Verdict::kPass;
  }
  configs[0].variant = "a|b";
  configs[1].variant = "c";
  configs[1].judgement = {Verdict::kFail, {"x = 1 fails >= 2", "y = 3 fails <= 2"}};
  configs[2].variant = "d";
  configs[2].runs = 2;
  EXPECT_EQ(
      ConfigurationTables(configs),
      "## speed_ceiling v1\n\n"
      "| model | context | dtype | device | weights | variant | runs | verdict | failed |\n"
      "|---|---|---|---|---|---|---|---|---|\n"
      "| Qwen2.5-7B-Instruct | 8192 | bfloat16 | NVIDIA H100 80GB HBM3 | random:seed=7 | a\\|b "
      "| 1 | pass |  |\n"
      "| Qwen2.5-7B-Instruct | 8192 | bfloat16 | NVIDIA H100 80GB HBM3 | random:seed=7 | c | 1 "
      "| fail | x = 1 fails >= 2; y = 3 fails <= 2 |\n"
      "\n## work_reduction_oracle v1\n\n"
      "| model | context | dtype | device | weights | variant | runs | verdict | failed |\n"
      "|---|---|---|---|---|---|---|---|---|\n"
      "| Qwen2.5-7B-Instruct | 8192 | bfloat16 | NVIDIA H100 80GB HBM3 | random:seed=7 | d | 2 "
      "(1 valid) | pass |  |\n");
  EXPECT_EQ(ConfigurationTables({}), "no records\n");
}

}  // namespace
}  // namespace kvgate::gates
