// Hermetic checks of speed_ceiling on the tiny fixture model: what must hold whatever the timings.
// p_attn is in (0, 1), the table's numbers are gates' ProjectedSpeedup, the records judge.

#include "gates/speed_ceiling/speed_ceiling.h"

#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/common/experiment_io.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_test_util.h"
#include "experiments/speed_ceiling/speed_ceiling_exp.h"
#include "gates/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

runtime::Model TinyModel() {
  absl::StatusOr<runtime::Model> model = runtime::LoadFixtureModel("tiny_llama");
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(*model);
}

TEST(SpeedCeilingExpTest, MedianOfOddAndEven) {
  EXPECT_EQ(Median({3, 1, 2}), 2);
  EXPECT_EQ(Median({4, 1, 2, 3}), 2.5);
}

TEST(SpeedCeilingExpTest, MeasuresPAttnInsideTheStepAndRecordsJudge) {
  runtime::Model model = TinyModel();
  absl::StatusOr<SpeedMeasurement> m = MeasureDenseDecode(model, runtime::FixturePrompt(64), 5, 1);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->history, 65);
  ASSERT_EQ(m->step_ms.size(), 5u);
  ASSERT_EQ(m->attention_ms.size(), 5u);
  EXPECT_GT(m->p_attn, 0.0);
  EXPECT_LT(m->p_attn, 1.0);
  EXPECT_GT(m->dense_attention_ms, 0.0);
  EXPECT_LT(m->dense_attention_ms, m->dense_decode_step_ms);
  for (size_t i = 0; i < m->step_ms.size(); ++i) EXPECT_LT(m->attention_ms[i], m->step_ms[i]);
  EXPECT_GT(m->p_attn_bytes, 0.0);
  EXPECT_LT(m->p_attn_bytes, 1.0);

  absl::StatusOr<std::vector<ProjectionRow>> table =
      ProjectionTable(m->p_attn, StudyFractions(), TableOverheads());
  ASSERT_TRUE(table.ok());
  ASSERT_EQ(table->size(), 9u);
  for (const ProjectionRow& r : *table) {
    EXPECT_EQ(r.speedup, *gates::ProjectedSpeedup(m->p_attn, r.active_fraction, r.overhead));
  }
  EXPECT_THAT(ProjectionMarkdown(*table), testing::HasSubstr("| 0.337 |"));

  const gates::Target target{"tiny_llama", "random:seed=1234", 64, "float32", "cpu"};
  absl::StatusOr<std::vector<gates::Record>> records =
      SpeedCeilingRecords(*m, StudyFractions(), target);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 3u);
  const std::string path =
      std::string(std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) + "/speed_ceiling.jsonl";
  std::filesystem::remove(path);
  ASSERT_TRUE(JudgeAndAppend(path, kSpeedCeilingGate, *records, CurrentProvenance(0)).ok());
  absl::StatusOr<std::vector<gates::RecordAt>> back = gates::ReadRecordsFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 3u);
  for (size_t i = 0; i < back->size(); ++i) {
    const gates::Record& r = (*back)[i].record;
    EXPECT_EQ(r.metrics.at("active_history_fraction"), StudyFractions()[i]);
    EXPECT_EQ(r.metrics.at("p_attn"), m->p_attn);
    EXPECT_FALSE(r.step.has_value());
    absl::StatusOr<gates::SpeedCeilingVerdict> v =
        gates::JudgeSpeedCeiling(m->p_attn, StudyFractions()[i]);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(r.gate.verdict, v->pass ? gates::Verdict::kPass : gates::Verdict::kFail);
    EXPECT_EQ(r.metrics.at("projected_speedup_h5"), v->speedup);
  }
}

TEST(SpeedCeilingExpTest, RejectsBadInput) {
  runtime::Model model = TinyModel();
  EXPECT_FALSE(MeasureDenseDecode(model, {}, 3, 1).ok());
  EXPECT_FALSE(MeasureDenseDecode(model, runtime::FixturePrompt(4), 0, 1).ok());
  EXPECT_FALSE(ProjectionTable(1.5, {0.3}, {0.05}).ok());
}

}  // namespace
}  // namespace kvgate::experiments
