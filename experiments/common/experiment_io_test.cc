#include "experiments/common/experiment_io.h"

#include <cstdlib>
#include <filesystem>

#include "gates/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

TEST(ChooseModelTest, FlagThenEnvironmentThenEmbedded) {
  EXPECT_EQ(ChooseModel("/models/qwen", "KVGATE_TEST_MODEL_DIR")->path, "/models/qwen");
  setenv("KVGATE_TEST_MODEL_DIR", "/from/env", 1);
  absl::StatusOr<ModelChoice> from_env = ChooseModel("", "KVGATE_TEST_MODEL_DIR");
  EXPECT_EQ(from_env->path, "/from/env");
  EXPECT_FALSE(from_env->embedded);
  unsetenv("KVGATE_TEST_MODEL_DIR");
  absl::StatusOr<ModelChoice> embedded = ChooseModel("", "KVGATE_TEST_MODEL_DIR");
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  EXPECT_TRUE(embedded->embedded);
  EXPECT_TRUE(std::filesystem::exists(embedded->path)) << embedded->path;
  EXPECT_THAT(embedded->note, HasSubstr("embedded default SmolLM2-135M-Instruct"));
  EXPECT_THAT(embedded->note, HasSubstr("Q4_1-dequantized"));
}

TEST(RecordsPathTest, FlagElseTestOutputs) {
  EXPECT_EQ(RecordsPath("/tmp/x.jsonl", "hfkv_int4"), "/tmp/x.jsonl");
  ASSERT_NE(std::getenv("TEST_UNDECLARED_OUTPUTS_DIR"), nullptr);
  EXPECT_EQ(RecordsPath("", "hfkv_int4"),
            std::string(std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) + "/hfkv_int4.jsonl");
}

gates::Record SpeedCeilingRow(double p_attn, double f) {
  gates::Record r;
  r.experiment = "speed_ceiling";
  r.variant = "active_fraction:f=" + std::to_string(f);
  r.target = {"SmolLM2-135M-Instruct", "random:seed=1", 2048, "float32", "cpu"};
  r.metrics = {{"p_attn", p_attn}, {"active_history_fraction", f}};
  return r;
}

TEST(JudgeAndAppendTest, TheSpecDecidesTheVerdict) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/speed_ceiling.jsonl";
  std::filesystem::remove(path);
  const gates::Provenance provenance = CurrentProvenance(7);
  EXPECT_EQ(provenance.seed, 7);
  EXPECT_FALSE(provenance.start_time.empty());
  ASSERT_TRUE(JudgeAndAppend(path, "speed_ceiling",
                             {SpeedCeilingRow(0.334, 0.350), SpeedCeilingRow(0.334, 0.376)},
                             provenance)
                  .ok());
  absl::StatusOr<std::vector<gates::RecordAt>> rows = gates::ReadRecordsFile(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2);
  EXPECT_EQ((*rows)[0].record.gate.verdict, gates::Verdict::kPass);  // 1.2006x
  EXPECT_EQ((*rows)[1].record.gate.verdict, gates::Verdict::kFail);  // 1.1882x
  EXPECT_EQ((*rows)[1].record.gate.id, "speed_ceiling");
  EXPECT_EQ((*rows)[1].record.gate.spec_sha256.size(), 64);
  EXPECT_FALSE(JudgeAndAppend(path, "no_such_gate", {SpeedCeilingRow(0.3, 0.3)}, provenance).ok());
}

}  // namespace
}  // namespace kvgate::experiments
