// Hermetic checks of speed_ceiling on the tiny fixture model: what must hold whatever the timings.
// p_attn is in (0, 1), the table's numbers are gates' ProjectedSpeedup, the records judge. The
// spread of repeated runs on hand-made runs: a noisy set of runs is invalid under speed_ceiling
// v2, a quiet one is judged by its median, and version 1 still judges by the threshold alone.

#include "gates/speed_ceiling/speed_ceiling.h"

#include <torch/types.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/common/experiment_io.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_test_util.h"
#include "experiments/speed_ceiling/speed_ceiling_exp.h"
#include "gates/record_io.h"
#include "gates/spec_registry.h"
#include "gates/verdict.h"
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
    EXPECT_EQ(r.metrics.at("p_attn_run_1"), m->p_attn);
    EXPECT_EQ(r.metrics.at("repeats"), 1);
    EXPECT_EQ(r.metrics.at("p_attn_relative_range"), 0);
    EXPECT_FALSE(r.step.has_value());
    absl::StatusOr<gates::SpeedCeilingVerdict> v =
        gates::JudgeSpeedCeiling(m->p_attn, StudyFractions()[i]);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(r.metrics.at("projected_speedup_h5"), v->speedup);
    // One run is not enough for the latest version: invalid whatever p_attn is.
    EXPECT_EQ(r.gate.version, 2);
    EXPECT_EQ(r.gate.verdict, gates::Verdict::kInvalid);
    EXPECT_THAT(r.gate.failed, testing::Contains(testing::HasSubstr("repeats")));
  }
}

TEST(SpeedCeilingExpTest, RepeatedRunsOnTheTinyModel) {
  runtime::Model model = TinyModel();
  std::vector<std::string> lines;
  absl::StatusOr<RepeatedSpeed> r =
      MeasureDenseDecodeRepeated(model, runtime::FixturePrompt(32), 3, 1, 3,
                                 [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->runs.size(), 3u);
  std::vector<double> p;
  for (const SpeedMeasurement& m : r->runs) {
    EXPECT_EQ(m.history, 33);
    EXPECT_EQ(m.step_ms.size(), 3u);
    p.push_back(m.p_attn);
  }
  EXPECT_EQ(r->median.p_attn, Median(p));
  EXPECT_EQ(r->p_attn_relative_range, *RelativeRange(p));
  EXPECT_THAT(lines, testing::Contains(testing::HasSubstr("run 3/3: p_attn")));
  EXPECT_FALSE(MeasureDenseDecodeRepeated(model, runtime::FixturePrompt(8), 2, 0, 0).ok());
}

TEST(SpeedCeilingExpTest, RelativeRangeOnHandCases) {
  // (0.34 - 0.30) / 0.32
  EXPECT_DOUBLE_EQ(*RelativeRange({0.32, 0.30, 0.34, 0.31, 0.33}), 0.125);
  // (2 - 1) / 1.5
  EXPECT_DOUBLE_EQ(*RelativeRange({1.0, 2.0}), 1.0 / 1.5);
  EXPECT_EQ(*RelativeRange({0.4}), 0.0);
  // The two runs of the loaded machine, with three quiet ones: median 0.33, range 0.40.
  EXPECT_DOUBLE_EQ(*RelativeRange({0.29, 0.69, 0.33, 0.32, 0.34}), 0.40 / 0.33);
  EXPECT_FALSE(RelativeRange({}).ok());
  EXPECT_FALSE(RelativeRange({0.3, NAN, 0.3}).ok());
  EXPECT_FALSE(RelativeRange({0.0, 0.0, 0.1}).ok());  // median 0
}

SpeedMeasurement MakeRun(double p_attn) {
  SpeedMeasurement m;
  m.history = 2049;
  m.steps = 20;
  m.dense_decode_step_ms = 100;
  m.dense_attention_ms = 100 * p_attn;
  m.ablated_step_ms_median = 100 * (1 - p_attn);
  m.p_attn = p_attn;
  m.p_attn_ablation = p_attn;
  m.p_attn_bytes = 0.15;
  return m;
}

std::vector<gates::Record> RowsOf(const std::vector<double>& p_attns) {
  std::vector<SpeedMeasurement> runs;
  for (double p : p_attns) runs.push_back(MakeRun(p));
  absl::StatusOr<RepeatedSpeed> r = CombineRuns(runs);
  EXPECT_TRUE(r.ok()) << r.status();
  const gates::Target target{"tiny_llama", "random:seed=1234", 2048, "float32", "cpu"};
  absl::StatusOr<std::vector<gates::Record>> rows = SpeedCeilingRecords(*r, {0.35}, target);
  EXPECT_TRUE(rows.ok()) << rows.status();
  return *rows;
}

const gates::SpecRegistry& Specs() {
  static const auto* specs = new gates::SpecRegistry(*gates::LoadSpecDir(SpecsDir()));
  return *specs;
}

gates::Judgement Judge(int version, const gates::Record& row) {
  const gates::RegisteredSpec* spec = gates::FindSpec(Specs(), kSpeedCeilingGate, version);
  EXPECT_NE(spec, nullptr) << "speed_ceiling v" << version;
  return gates::JudgeRow(spec->spec, row);
}

TEST(SpeedCeilingExpTest, CombineRunsRecordsMedianEveryRunAndSpread) {
  const std::vector<gates::Record> rows = RowsOf({0.41, 0.40, 0.42, 0.39, 0.405});
  ASSERT_EQ(rows.size(), 1u);
  const std::map<std::string, double>& m = rows[0].metrics;
  EXPECT_EQ(m.at("p_attn"), 0.405);
  EXPECT_EQ(m.at("repeats"), 5);
  EXPECT_EQ(m.at("p_attn_run_1"), 0.41);
  EXPECT_EQ(m.at("p_attn_run_5"), 0.405);
  EXPECT_EQ(m.at("p_attn_min"), 0.39);
  EXPECT_EQ(m.at("p_attn_max"), 0.42);
  EXPECT_NEAR(m.at("p_attn_relative_range"), 0.03 / 0.405, 1e-12);
  EXPECT_EQ(m.at("projected_speedup_h5"), *gates::ProjectedSpeedup(0.405, 0.35, 0.05));
  EXPECT_EQ(m.at("dense_attention_ms"), 40.5);
  // Runs at different histories are not one configuration.
  SpeedMeasurement other = MakeRun(0.4);
  other.history = 4097;
  EXPECT_FALSE(CombineRuns({MakeRun(0.4), other}).ok());
  EXPECT_FALSE(CombineRuns({}).ok());
}

TEST(SpeedCeilingExpTest, NoisyRunsAreInvalidNeverPass) {
  // Median 0.33 (a v1 fail at f = 0.35), but one run at 0.69: relative range 1.21 > 0.06.
  const gates::Record noisy = RowsOf({0.29, 0.69, 0.33, 0.32, 0.34})[0];
  const gates::Judgement j = Judge(2, noisy);
  EXPECT_EQ(j.verdict, gates::Verdict::kInvalid);
  EXPECT_THAT(j.failed, testing::Contains(testing::HasSubstr("p_attn_relative_range")));
  // Noisy with a passing median: still invalid, not pass.
  const gates::Record noisy_pass = RowsOf({0.40, 0.41, 0.45, 0.39, 0.405})[0];
  EXPECT_GT(noisy_pass.metrics.at("p_attn_relative_range"), 0.06);
  EXPECT_EQ(Judge(2, noisy_pass).verdict, gates::Verdict::kInvalid);
  // Quiet but too few runs.
  EXPECT_EQ(Judge(2, RowsOf({0.40, 0.41, 0.405, 0.402})[0]).verdict, gates::Verdict::kInvalid);
}

TEST(SpeedCeilingExpTest, QuietRunsAreJudgedByTheirMedian) {
  // Range 0.012 / 0.402 = 0.03 <= 0.06: judged; 1 / (0.598 + 0.402 * 0.35 + 0.05) = 1.27 >= 1.2.
  EXPECT_EQ(Judge(2, RowsOf({0.40, 0.41, 0.405, 0.402, 0.398})[0]).verdict,
            gates::Verdict::kPass);
  // Range 0.009 / 0.30 = 0.03: judged; 1 / (0.70 + 0.105 + 0.05) = 1.17 < 1.2: fail.
  const gates::Judgement fail = Judge(2, RowsOf({0.30, 0.305, 0.296, 0.301, 0.299})[0]);
  EXPECT_EQ(fail.verdict, gates::Verdict::kFail);
  EXPECT_THAT(fail.failed, testing::ElementsAre(testing::HasSubstr("projected_speedup")));
}

TEST(SpeedCeilingExpTest, VersionOneStillJudgesByTheThresholdAlone) {
  // The same noisy rows under v1 (what the committed v1 records are judged by): no validity rule.
  EXPECT_EQ(Judge(1, RowsOf({0.40, 0.41, 0.45, 0.39, 0.405})[0]).verdict, gates::Verdict::kPass);
  EXPECT_EQ(Judge(1, RowsOf({0.29, 0.69, 0.33, 0.32, 0.34})[0]).verdict, gates::Verdict::kFail);
  EXPECT_EQ(Judge(1, RowsOf({0.45})[0]).verdict, gates::Verdict::kPass);
}

TEST(SpeedCeilingExpTest, RejectsBadInput) {
  runtime::Model model = TinyModel();
  EXPECT_FALSE(MeasureDenseDecode(model, {}, 3, 1).ok());
  EXPECT_FALSE(MeasureDenseDecode(model, runtime::FixturePrompt(4), 0, 1).ok());
  EXPECT_FALSE(ProjectionTable(1.5, {0.3}, {0.05}).ok());
}

}  // namespace
}  // namespace kvgate::experiments
