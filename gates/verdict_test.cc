#include "gates/verdict.h"

#include <limits>
#include <string>
#include <vector>

#include "gates/record_testing.h"
#include "gates/spec_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::ExampleRecord;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// The committed specs: verdicts are judged against what was registered.
const SpecRegistry& Specs() {
  static const SpecRegistry* specs = [] {
    absl::StatusOr<SpecRegistry> loaded = LoadSpecDir("gates/specs");
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return new SpecRegistry(loaded.ok() ? *loaded : SpecRegistry());
  }();
  return *specs;
}

const GateSpec& Spec(const char* id) { return FindSpec(Specs(), id, 1)->spec; }

Record SpeedCeilingRow(double p_attn, double f) {
  Record r = ExampleRecord();
  r.experiment = "speed_ceiling";
  r.step.reset();
  r.metrics = {{"p_attn", p_attn}, {"active_history_fraction", f}};
  r.gate.id = "speed_ceiling";
  return r;
}

Record LatencyRow(double dense_ms, double compressed_ms) {
  Record r = ExampleRecord();
  r.step.reset();
  r.metrics = {{"dense_decode_step_ms", dense_ms}, {"compressed_decode_step_ms", compressed_ms}};
  r.gate.id = "eager_value_path_latency";
  return r;
}

TEST(JudgeRowTest, OracleStepPassesAtTheBars) {
  Record r = ExampleRecord();
  EXPECT_EQ(JudgeRow(Spec("work_reduction_oracle"), r).verdict, Verdict::kPass);
  r.metrics["decode_logit_mse"] = 0.25;
  r.metrics["top10_overlap"] = 8.0 / 10.0;
  r.metrics["layer_median_o_proj_rel_l2"] = 0.10;
  const Judgement j = JudgeRow(Spec("work_reduction_oracle"), r);
  EXPECT_EQ(j.verdict, Verdict::kPass);
  EXPECT_THAT(j.failed, IsEmpty());
}

TEST(JudgeRowTest, OracleStepFailsEveryBrokenThresholdInWords) {
  Record r = ExampleRecord();
  r.metrics["decode_logit_mse"] = 0.31;
  r.metrics["top10_overlap"] = 0.7;
  r.metrics["argmax_agreement"] = 0;
  r.metrics["layer_median_o_proj_rel_l2"] = 0.1000001;
  const Judgement j = JudgeRow(Spec("work_reduction_oracle"), r);
  EXPECT_EQ(j.verdict, Verdict::kFail);
  EXPECT_THAT(j.failed,
              ElementsAre("decode_logit_mse = 0.31 fails <= 0.25",
                          "top10_overlap = 0.7 fails >= 0.8", "argmax_agreement = 0 fails == 1",
                          "layer_median_o_proj_rel_l2 = 0.1 fails <= 0.1"));
}

TEST(JudgeRowTest, HfkvQualityNeedsTheArgmax) {
  Record r = ExampleRecord();
  r.target.model = "SmolLM2-135M-Instruct";
  r.target.dtype = "float32";
  r.gate.id = "hfkv_real_kv_quality";
  r.metrics = {{"decode_logit_mse", 0.01},
               {"top10_overlap", 1.0},
               {"argmax_agreement", 1},
               {"reference_finite", 1}};
  EXPECT_EQ(JudgeRow(Spec("hfkv_real_kv_quality"), r).verdict, Verdict::kPass);
  r.metrics["argmax_agreement"] = 0;
  EXPECT_THAT(JudgeRow(Spec("hfkv_real_kv_quality"), r).failed,
              ElementsAre("argmax_agreement = 0 fails == 1"));
  r.step = 1;  // the spec judges one decode step, step 0
  EXPECT_EQ(JudgeRow(Spec("hfkv_real_kv_quality"), r).verdict, Verdict::kInvalid);
}

TEST(JudgeRowTest, NonFiniteReferenceOrMetricIsInvalidNeverFail) {
  Record r = ExampleRecord();
  r.metrics["reference_finite"] = 0;
  r.metrics["top10_overlap"] = 0.1;  // would fail, but the run cannot be judged
  Judgement j = JudgeRow(Spec("work_reduction_oracle"), r);
  EXPECT_EQ(j.verdict, Verdict::kInvalid);
  EXPECT_THAT(j.failed, ElementsAre("validity: reference_finite = 0 fails == 1"));

  r = ExampleRecord();
  r.metrics["decode_logit_mse"] = std::numeric_limits<double>::quiet_NaN();
  j = JudgeRow(Spec("work_reduction_oracle"), r);
  EXPECT_EQ(j.verdict, Verdict::kInvalid);
  EXPECT_THAT(j.failed, ElementsAre("metric decode_logit_mse is nan"));

  r.metrics["kl_divergence"] =
      -std::numeric_limits<double>::infinity();  // not judged, still invalid
  EXPECT_THAT(JudgeRow(Spec("work_reduction_oracle"), r).failed,
              ElementsAre("metric decode_logit_mse is nan", "metric kl_divergence is -inf"));
}

TEST(JudgeRowTest, TargetAndStepMustFitTheSpec) {
  Record r = ExampleRecord();
  r.target.model = "Llama-3-8B";
  r.target.dtype = "float16";
  r.step = 4;
  // The registered specs pin no model or dtype: only the step is wrong here.
  EXPECT_THAT(JudgeRow(Spec("work_reduction_oracle"), r).failed,
              ElementsAre("step is 4, the spec judges decode steps 0..3"));
  GateSpec pinned = Spec("work_reduction_oracle");
  pinned.target.model = "Qwen2.5-7B-Instruct";
  pinned.target.dtype = "bfloat16";
  EXPECT_THAT(JudgeRow(pinned, r).failed,
              ElementsAre("target.model is Llama-3-8B, the spec registers Qwen2.5-7B-Instruct",
                          "target.dtype is float16, the spec registers bfloat16",
                          "step is 4, the spec judges decode steps 0..3"));
  r = ExampleRecord();
  r.step.reset();
  EXPECT_EQ(JudgeRow(Spec("work_reduction_oracle"), r).verdict, Verdict::kInvalid);
  Record s = SpeedCeilingRow(0.334, 0.35);
  s.step = 0;
  EXPECT_THAT(JudgeRow(Spec("speed_ceiling"), s).failed,
              ElementsAre("step is 0, the spec judges one measurement (null)"));
}

TEST(JudgeRowTest, AMissingMetricIsInvalid) {
  Record r = ExampleRecord();
  r.metrics.erase("top10_overlap");
  const Judgement j = JudgeRow(Spec("work_reduction_oracle"), r);
  EXPECT_EQ(j.verdict, Verdict::kInvalid);
  EXPECT_THAT(j.failed, ElementsAre("metric top10_overlap is missing"));
}

TEST(JudgeRowTest, SpeedCeilingFromPAttnAndF) {
  EXPECT_EQ(JudgeRow(Spec("speed_ceiling"), SpeedCeilingRow(0.334, 0.350)).verdict, Verdict::kPass);
  const Judgement near_miss = JudgeRow(Spec("speed_ceiling"), SpeedCeilingRow(0.334, 0.376));
  EXPECT_EQ(near_miss.verdict, Verdict::kFail);
  EXPECT_THAT(near_miss.failed,
              // 1 / (0.666 + 0.334 * 0.376 + 0.05) = 1 / 0.841584
              ElementsAre("projected_speedup at h = 0.05 = 1.18824 fails >= 1.2"));
  const Judgement out_of_range = JudgeRow(Spec("speed_ceiling"), SpeedCeilingRow(1.2, 0.3));
  EXPECT_EQ(out_of_range.verdict, Verdict::kInvalid);
  EXPECT_THAT(out_of_range.failed[0], ::testing::HasSubstr("p_attn must be a finite fraction"));
  Record no_f = SpeedCeilingRow(0.334, 0.35);
  no_f.metrics.erase("active_history_fraction");
  EXPECT_THAT(JudgeRow(Spec("speed_ceiling"), no_f).failed,
              ElementsAre("metric active_history_fraction is missing"));
}

TEST(JudgeRowTest, LatencyBarIsARatioMeasuredInOneRun) {
  EXPECT_EQ(JudgeRow(Spec("eager_value_path_latency"), LatencyRow(11.0, 10.0)).verdict,
            Verdict::kPass);  // 1.1x, the bar
  EXPECT_THAT(JudgeRow(Spec("eager_value_path_latency"), LatencyRow(10.0, 10.0)).failed,
              ElementsAre("dense_decode_step_ms / compressed_decode_step_ms = 1 fails >= 1.1"));
  const Judgement zero = JudgeRow(Spec("eager_value_path_latency"), LatencyRow(10.0, 0.0));
  EXPECT_EQ(zero.verdict, Verdict::kInvalid);
  EXPECT_THAT(zero.failed,
              ElementsAre("validity: compressed_decode_step_ms = 0 fails > 0",
                          "dense_decode_step_ms / compressed_decode_step_ms is undefined: "
                          "compressed_decode_step_ms = 0"));
  EXPECT_EQ(JudgeRow(Spec("eager_value_path_latency"), LatencyRow(1e300, 1e-300)).verdict,
            Verdict::kInvalid);  // the ratio overflows
}

std::vector<RecordAt> Rows(const std::vector<Record>& records) {
  std::vector<RecordAt> rows;
  for (size_t i = 0; i < records.size(); ++i) {
    rows.push_back({"x.jsonl", static_cast<int>(i + 1), records[i]});
  }
  return rows;
}

std::vector<Record> OracleRun(const std::string& start_time = "2026-11-27T18:20:00Z") {
  std::vector<Record> run;
  for (int step = 0; step < 4; ++step) {
    run.push_back(ExampleRecord(step));
    run.back().provenance.start_time = start_time;
  }
  return run;
}

TEST(JudgeRunsTest, EveryStepMustPass) {
  std::vector<Record> records = OracleRun();
  std::vector<RecordAt> rows = Rows(records);
  std::vector<RunJudgement> runs = JudgeRuns(Specs(), rows);
  ASSERT_THAT(runs, SizeIs(1));
  EXPECT_EQ(runs[0].judgement.verdict, Verdict::kPass);
  EXPECT_THAT(runs[0].rows, SizeIs(4));

  records[2].metrics["top10_overlap"] = 0.7;
  rows = Rows(records);
  runs = JudgeRuns(Specs(), rows);
  ASSERT_THAT(runs, SizeIs(1));
  EXPECT_EQ(runs[0].judgement.verdict, Verdict::kFail);
  EXPECT_THAT(runs[0].judgement.failed, ElementsAre("step 2: top10_overlap = 0.7 fails >= 0.8"));
}

TEST(JudgeRunsTest, ANonFiniteReferenceOnAnyStepInvalidatesTheRun) {
  std::vector<Record> records = OracleRun();
  records[1].metrics["top10_overlap"] = 0.1;   // a fail on step 1 ...
  records[3].metrics["reference_finite"] = 0;  // ... but step 3's reference is not finite
  std::vector<RecordAt> rows = Rows(records);
  std::vector<RunJudgement> runs = JudgeRuns(Specs(), rows);
  ASSERT_THAT(runs, SizeIs(1));
  EXPECT_EQ(runs[0].judgement.verdict, Verdict::kInvalid);
  EXPECT_THAT(runs[0].judgement.failed,
              ElementsAre("step 3: validity: reference_finite = 0 fails == 1"));
}

TEST(JudgeRunsTest, MissingOrRepeatedStepsAreInvalid) {
  std::vector<Record> records = OracleRun();
  records.pop_back();
  std::vector<RecordAt> rows = Rows(records);
  EXPECT_THAT(JudgeRuns(Specs(), rows)[0].judgement.failed,
              ElementsAre("step 3 missing: the spec judges 4 decode steps"));
  records = OracleRun();
  records[3].step = 1;
  rows = Rows(records);
  EXPECT_THAT(
      JudgeRuns(Specs(), rows)[0].judgement.failed,
      ElementsAre("step 1 appears 2 times", "step 3 missing: the spec judges 4 decode steps"));
}

TEST(JudgeRunsTest, RowsGroupIntoRunsByVariantTargetAndProvenance) {
  std::vector<Record> records = OracleRun("2026-11-27T18:20:00Z");
  for (Record& r : OracleRun("2026-11-28T09:00:00Z")) records.push_back(r);
  for (Record r : OracleRun()) {
    r.variant = "global_block_mass:f=0.3370:b=16";
    records.push_back(r);
  }
  for (Record r : OracleRun()) {
    r.target.context = 32768;
    records.push_back(r);
  }
  records.push_back(SpeedCeilingRow(0.334, 0.376));
  std::vector<RecordAt> rows = Rows(records);
  std::vector<RunJudgement> runs = JudgeRuns(Specs(), rows);
  ASSERT_THAT(runs, SizeIs(5));
  for (const RunJudgement& run : runs) {
    SCOPED_TRACE(run.variant + " " + run.provenance.start_time);
    EXPECT_EQ(run.judgement.verdict,
              run.gate_id == "speed_ceiling" ? Verdict::kFail : Verdict::kPass);
  }
  EXPECT_EQ(runs[0].gate_id, "speed_ceiling");  // sorted by gate id first
}

TEST(JudgeRunsTest, AnUnknownSpecIsInvalid) {
  Record r = SpeedCeilingRow(0.334, 0.35);
  r.gate.version = 9;
  std::vector<RecordAt> rows = Rows({r});
  EXPECT_THAT(JudgeRuns(Specs(), rows)[0].judgement.failed,
              ElementsAre("unknown spec speed_ceiling v9"));
  r.gate.version = 1;
  rows = Rows({r, r});  // one process, one measurement, written twice
  EXPECT_THAT(JudgeRuns(Specs(), rows)[0].judgement.failed,
              ElementsAre("2 rows for one measurement"));
}

TEST(JudgeRunsTest, ARecordWithoutAGateIsNeverAVerdict) {
  Record data = ExampleRecord();
  data.experiment = "k0_prep";
  data.gate = GateResult();
  std::vector<Record> records = OracleRun();
  records.push_back(data);
  std::vector<RecordAt> rows = Rows(records);
  std::vector<RunJudgement> runs = JudgeRuns(Specs(), rows);
  ASSERT_THAT(runs, SizeIs(1));
  EXPECT_EQ(runs[0].experiment, "qwen_oracle");
  EXPECT_THAT(JudgeConfigurations(runs), SizeIs(1));
  rows = Rows({data});
  EXPECT_THAT(JudgeRuns(Specs(), rows), IsEmpty());
}

TEST(JudgeConfigurationsTest, AFailingRunIsNotErasedByAPassingRerun) {
  std::vector<Record> records = OracleRun("2026-11-27T18:20:00Z");
  std::vector<Record> rerun = OracleRun("2026-11-28T09:00:00Z");
  rerun[0].metrics["decode_logit_mse"] = 0.5;
  records.insert(records.end(), rerun.begin(), rerun.end());
  std::vector<RecordAt> rows = Rows(records);
  std::vector<ConfigurationJudgement> configs = JudgeConfigurations(JudgeRuns(Specs(), rows));
  ASSERT_THAT(configs, SizeIs(1));
  EXPECT_EQ(configs[0].runs, 2);
  EXPECT_EQ(configs[0].valid_runs, 2);
  EXPECT_EQ(configs[0].judgement.verdict, Verdict::kFail);
  EXPECT_THAT(
      configs[0].judgement.failed,
      ElementsAre("run 2026-11-28T09:00:00Z: step 0: decode_logit_mse = 0.5 fails <= 0.25"));
}

TEST(JudgeConfigurationsTest, InvalidRunsAreSetAsideButNeverPass) {
  std::vector<Record> records = OracleRun("2026-11-27T18:20:00Z");
  std::vector<Record> broken = OracleRun("2026-11-28T09:00:00Z");
  broken[2].metrics["reference_finite"] = 0;
  std::vector<RecordAt> rows = Rows(broken);
  std::vector<ConfigurationJudgement> configs = JudgeConfigurations(JudgeRuns(Specs(), rows));
  ASSERT_THAT(configs, SizeIs(1));
  EXPECT_EQ(configs[0].judgement.verdict, Verdict::kInvalid);
  EXPECT_EQ(configs[0].valid_runs, 0);

  records.insert(records.end(), broken.begin(), broken.end());
  rows = Rows(records);
  configs = JudgeConfigurations(JudgeRuns(Specs(), rows));
  ASSERT_THAT(configs, SizeIs(1));
  EXPECT_EQ(configs[0].judgement.verdict, Verdict::kPass);
  EXPECT_EQ(configs[0].runs, 2);
  EXPECT_EQ(configs[0].valid_runs, 1);
}

}  // namespace
}  // namespace kvgate::gates
