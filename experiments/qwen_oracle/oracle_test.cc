// Hermetic checks of the oracle on a tiny seeded model; they hold whatever the numbers are.

#include "experiments/qwen_oracle/oracle.h"

#include <gtest/gtest.h>
#include <torch/types.h>

#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "experiments/common/experiment_io.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_configs.h"
#include "gates/record.h"
#include "gates/record_io.h"

namespace kvgate::experiments {
namespace {

runtime::ModelConfig TinyConfig() { return *runtime::ModelConfigNamed("tiny-qwen2"); }

std::vector<int64_t> Prompt(int64_t n) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back((i * 37 + 11) % 96);
  return ids;
}

gates::Target TinyTarget() {
  return {"tiny-qwen2", "random:seed=7", 96, "float32", "cpu"};
}

absl::StatusOr<OracleResult> RunTiny(const runtime::ModelWeights& weights,
                                 std::vector<std::string> selectors,
                                 bool allow_non_finite_weights = false) {
  runtime::ModelOptions model_options;
  model_options.allow_non_finite_weights = allow_non_finite_weights;  // poisoned on purpose
  absl::StatusOr<runtime::Model> model = runtime::Model::Create(weights, model_options);
  if (!model.ok()) return model.status();
  OracleOptions options;
  options.decode_steps = 4;
  options.selectors = std::move(selectors);
  options.prefill_chunk = 40;  // several chunks, the last partial
  return RunOracle(*model, Prompt(96), TinyTarget(), options);
}

// Judges and writes the rows to the test's outputs, then reads them back.
std::vector<gates::Record> JudgeAndRead(const OracleResult& result, const std::string& name) {
  const std::string path = RecordsPath("", name);
  std::remove(path.c_str());
  absl::Status s = JudgeAndAppend(path, kOracleGate, result.rows, CurrentProvenance(7)).status();
  EXPECT_TRUE(s.ok()) << s;
  absl::StatusOr<std::vector<gates::RecordAt>> read = gates::ReadRecordsFile(path);
  EXPECT_TRUE(read.ok()) << read.status();
  std::vector<gates::Record> rows;
  if (read.ok()) {
    for (const gates::RecordAt& r : *read) rows.push_back(r.record);
  }
  return rows;
}

TEST(OracleTest, EveryDefaultSelectorGivesFourRowsPerConfiguration) {
  const std::vector<std::string> specs = DefaultSelectorSpecs(96);
  absl::StatusOr<OracleResult> result = RunTiny(runtime::RandomModelWeights(TinyConfig(), 7), specs);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->reference_finite);
  ASSERT_EQ(result->variants.size(), specs.size());
  std::vector<gates::Record> rows = JudgeAndRead(*result, "oracle_default");
  ASSERT_EQ(rows.size(), 4 * specs.size());
  std::map<std::string, std::vector<int64_t>> steps;
  for (const gates::Record& row : rows) {
    EXPECT_EQ(row.experiment, "qwen_oracle");
    EXPECT_EQ(row.gate.id, "work_reduction_oracle");
    EXPECT_NE(row.gate.verdict, gates::Verdict::kInvalid) << row.variant;
    EXPECT_EQ(row.metrics.at("reference_finite"), 1.0);
    const double f = row.metrics.at("active_history_fraction");
    EXPECT_GT(f, 0.0) << row.variant;
    EXPECT_LE(f, 1.0) << row.variant;
    for (const char* m : {"decode_logit_mse", "top10_overlap", "argmax_agreement",
                          "kl_divergence", "layer_median_o_proj_rel_l2"}) {
      EXPECT_TRUE(row.metrics.count(m)) << m;
    }
    steps[row.variant].push_back(*row.step);
  }
  ASSERT_EQ(steps.size(), specs.size());
  for (const auto& [variant, s] : steps) EXPECT_EQ(s, (std::vector<int64_t>{0, 1, 2, 3})) << variant;
}

TEST(OracleTest, KeepingAllHistoryIsExactAndPasses) {
  absl::StatusOr<OracleResult> result =
      RunTiny(runtime::RandomModelWeights(TinyConfig(), 7),
          {"global_block_mass:f=1:b=16", "recent_sink:sink=4:recent=1000", "tova:budget=1000"});
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<gates::Record> rows = JudgeAndRead(*result, "oracle_keep_all");
  ASSERT_EQ(rows.size(), 12u);
  for (const gates::Record& row : rows) {
    EXPECT_EQ(row.metrics.at("decode_logit_mse"), 0.0) << row.variant << " step " << *row.step;
    EXPECT_EQ(row.metrics.at("layer_median_o_proj_rel_l2"), 0.0) << row.variant;
    EXPECT_EQ(row.metrics.at("top10_overlap"), 1.0);
    EXPECT_EQ(row.metrics.at("argmax_agreement"), 1.0);
    EXPECT_EQ(row.metrics.at("active_history_fraction"), 1.0);
    EXPECT_EQ(row.gate.verdict, gates::Verdict::kPass) << row.variant;
  }
}

TEST(OracleTest, KeepingLittleHistoryChangesTheLogits) {
  absl::StatusOr<OracleResult> result =
      RunTiny(runtime::RandomModelWeights(TinyConfig(), 7), {"recent_sink:sink=1:recent=2"});
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->rows.size(), 4u);
  for (const gates::Record& row : result->rows) {
    EXPECT_GT(row.metrics.at("decode_logit_mse"), 0.0);
    EXPECT_LT(row.metrics.at("active_history_fraction"), 0.05);
  }
}

TEST(OracleTest, NonFiniteDenseReferenceMakesEveryRowInvalid) {
  runtime::ModelWeights weights = runtime::RandomModelWeights(TinyConfig(), 7);
  weights.tensors.at("model.norm.weight")[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(runtime::Model::Create(weights).ok());  // refused at load unless allowed
  absl::StatusOr<OracleResult> result =
      RunTiny(weights, {"global_block_mass:f=0.376:b=16", "recent_sink:sink=4:recent=36"},
              /*allow_non_finite_weights=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->reference_finite);
  // Only the final norm's output is non-finite, from the prefill on.
  EXPECT_EQ(result->reference_nonfinite, "the prefill, the final norm (model.norm)");
  std::vector<gates::Record> rows = JudgeAndRead(*result, "oracle_nonfinite");
  ASSERT_EQ(rows.size(), 8u);
  for (const gates::Record& row : rows) {
    EXPECT_EQ(row.metrics.at("reference_finite"), 0.0);
    EXPECT_EQ(row.metrics.at("reference_nonfinite_step"), -1.0);
    EXPECT_EQ(row.metrics.at("reference_nonfinite_layer"), 3.0);
    EXPECT_EQ(row.gate.verdict, gates::Verdict::kInvalid) << row.variant;
  }
}

// An infinity in layer 1's MLP makes the residual stream leaving layer 1 non-finite: named.
TEST(OracleTest, NonFiniteReferenceNamesTheLayer) {
  runtime::ModelWeights weights = runtime::RandomModelWeights(TinyConfig(), 7);
  weights.tensors.at("model.layers.1.mlp.down_proj.weight")[4][2] =
      std::numeric_limits<float>::infinity();
  absl::StatusOr<OracleResult> result =
      RunTiny(weights, {"recent_sink:sink=4:recent=36"}, /*allow_non_finite_weights=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->reference_finite);
  EXPECT_EQ(result->reference_nonfinite, "the prefill, layer 1 (the output of model.layers.1)");
  std::vector<gates::Record> rows = JudgeAndRead(*result, "oracle_nonfinite_layer");
  ASSERT_EQ(rows.size(), 4u);
  for (const gates::Record& row : rows) {
    EXPECT_EQ(row.metrics.at("reference_nonfinite_layer"), 1.0);
    EXPECT_EQ(row.gate.verdict, gates::Verdict::kInvalid);
  }
}

TEST(OracleTest, RejectsUnknownSelectorsAndBadSteps) {
  const runtime::ModelWeights weights = runtime::RandomModelWeights(TinyConfig(), 7);
  EXPECT_FALSE(RunTiny(weights, {"no_such_selector:x=1"}).ok());
  absl::StatusOr<runtime::Model> model = runtime::Model::Create(weights);
  ASSERT_TRUE(model.ok());
  OracleOptions options;
  options.decode_steps = 0;
  options.selectors = {"recent_sink:sink=4:recent=8"};
  EXPECT_FALSE(RunOracle(*model, Prompt(96), TinyTarget(), options).ok());
}

TEST(OracleTest, DefaultBudgetsScaleWithTheContext) {
  std::string note;
  const std::vector<std::string> at8k = DefaultSelectorSpecs(8192, &note);
  EXPECT_EQ(at8k[0], "global_block_mass:f=0.376:b=16");
  EXPECT_EQ(at8k[3], "recent_sink:sink=4:recent=3072");
  const std::vector<std::string> at2k = DefaultSelectorSpecs(2048, &note);
  EXPECT_EQ(at2k[3], "recent_sink:sink=4:recent=768");
  EXPECT_NE(note.find("scaled"), std::string::npos);
}

}  // namespace
}  // namespace kvgate::experiments
