// Hermetic test of quality_v2 (tiny seeded model, two windows): a lossless format has zero error
// at every position, int4 measures match a direct recomputation, records carry the distributions,
// and the gate judges a two-window run invalid (it needs >= 32 windows).
//
// Run: tools/bazel test //experiments/quality_v2:quality_v2_test

#include "experiments/quality_v2/quality_v2.h"

#include <torch/torch.h>

#include "absl/strings/str_join.h"

#include "experiments/common/experiment_io.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/model_test_util.h"
#include "gates/position_quality.h"
#include "gates/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kContext = 24, kPositions = 6;

std::vector<std::vector<int64_t>> TwoWindows() {
  std::vector<int64_t> a = runtime::FixturePrompt(2 * (kContext + kPositions + 1));
  return {std::vector<int64_t>(a.begin(), a.begin() + kContext + kPositions + 1),
          std::vector<int64_t>(a.begin() + kContext + kPositions + 1, a.end())};
}

TEST(QualityV2Test, LosslessIsExactAndInt4MatchesADirectRun) {
  absl::StatusOr<runtime::Model> model = runtime::LoadFixtureModel("tiny_llama");
  ASSERT_TRUE(model.ok()) << model.status();
  auto identity = std::make_shared<runtime::IdentityKvFormat>();
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> int4 =
      MakeFormats({"symmetric_int4:block=32"});
  ASSERT_TRUE(int4.ok());
  const std::vector<std::vector<int64_t>> windows = TwoWindows();
  absl::StatusOr<std::vector<ConfigPositions>> r = RunFormatsOverWindows(
      *model, windows, kContext, kPositions, {identity, (*int4)[0]});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  const ConfigPositions& id = (*r)[0];
  ASSERT_EQ(id.decode_logit_mse.size(), 2u);
  for (size_t w = 0; w < 2; ++w) {
    ASSERT_EQ(id.decode_logit_mse[w].size(), static_cast<size_t>(kPositions));
    for (int64_t i = 0; i < kPositions; ++i) {
      EXPECT_EQ(id.decode_logit_mse[w][i], 0.0);
      EXPECT_EQ(id.argmax_agreement[w][i], 1.0);
      EXPECT_EQ(id.delta_p[w][i], 0.0);
      EXPECT_EQ(id.layer_median_o_proj_rel_l2[w][i], 0.0);
    }
  }
  EXPECT_TRUE(id.reference_finite);

  // Window 1, position 2 of int4, recomputed: prefill, teacher-force, compare with dense.
  torch::NoGradGuard no_grad;
  const std::vector<int64_t>& w1 = windows[1];
  const std::vector<int64_t> prompt(w1.begin(), w1.begin() + kContext);
  const std::vector<int64_t> forced(w1.begin() + kContext, w1.begin() + kContext + kPositions);
  runtime::KvCache dense_cache = model->NewCache(kContext + kPositions);
  ASSERT_TRUE(runtime::Prefill(*model, dense_cache, prompt).ok());
  absl::StatusOr<runtime::DecodeResult> dense = runtime::DecodeForced(*model, dense_cache, forced);
  runtime::KvCache cache = model->NewCache(kContext + kPositions);
  ASSERT_TRUE(runtime::Prefill(*model, cache, prompt).ok());
  runtime::DecodeOptions opts;
  opts.policy = runtime::KvRoundTripAttention((*int4)[0]);
  absl::StatusOr<runtime::DecodeResult> test = runtime::DecodeForced(*model, cache, forced, opts);
  ASSERT_TRUE(dense.ok() && test.ok());
  const torch::Tensor ref = dense->steps[2].logits.contiguous();
  const torch::Tensor got = test->steps[2].logits.contiguous();
  absl::StatusOr<gates::PositionQuality> q = gates::MeasurePosition(
      gates::Values(ref.data_ptr<float>(), ref.numel()),
      gates::Values(got.data_ptr<float>(), got.numel()), w1[kContext + 3]);
  ASSERT_TRUE(q.ok());
  const ConfigPositions& c = (*r)[1];
  EXPECT_DOUBLE_EQ(c.decode_logit_mse[1][2], q->decode_logit_mse);
  EXPECT_DOUBLE_EQ(c.delta_p[1][2], q->delta_p);
  EXPECT_DOUBLE_EQ(c.kl_divergence[1][2], q->kl_divergence);
  EXPECT_GT(c.decode_logit_mse[1][2], 0.0);

  // Records: one a format, distributions and sizes; judged invalid (2 < 32 windows).
  gates::Target target{"tiny_llama", "random:seed=1234", kContext, "float32", "cpu"};
  absl::StatusOr<std::vector<gates::Record>> rows = FormatRecords(*r, target, 5);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const gates::Record& row = (*rows)[1];
  EXPECT_FALSE(row.step.has_value());
  EXPECT_EQ(row.metrics.at(kWindows), 2.0);
  EXPECT_EQ(row.metrics.at(kPositionsPerWindow), kPositions);
  for (const char* m : {"decode_logit_mse_mean_ci_high", "top10_overlap_mean_ci_low",
                        "argmax_agreement_mean", "delta_p_p99", "kl_divergence_median",
                        "layer_median_o_proj_rel_l2_p95"}) {
    EXPECT_TRUE(row.metrics.count(m)) << m;
  }
  EXPECT_LE(row.metrics.at("decode_logit_mse_mean_ci_low"),
            row.metrics.at("decode_logit_mse_mean"));
  const std::string path = ::testing::TempDir() + "/quality_v2.jsonl";
  ASSERT_TRUE(JudgeAndAppend(path, kFormatWindowsGate, *rows, CurrentProvenance(5)).ok());
  absl::StatusOr<std::vector<gates::RecordAt>> back = gates::ReadRecordsFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].record.gate.verdict, gates::Verdict::kInvalid);
  EXPECT_THAT(absl::StrJoin((*back)[0].record.gate.failed, "; "), HasSubstr("windows"));
  EXPECT_THAT(QualityTable(*rows), HasSubstr("symmetric_int4"));
}

TEST(QualityV2Test, BadWindowsAreRefused) {
  absl::StatusOr<runtime::Model> model = runtime::LoadFixtureModel("tiny_llama");
  ASSERT_TRUE(model.ok());
  absl::Status s = RunFormatsOverWindows(*model, {{1, 2, 3}}, kContext, kPositions, {}).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("window 0 has 3 tokens"));
  EXPECT_FALSE(RunFormatsOverWindows(*model, {}, 0, kPositions, {}).ok());
}

}  // namespace
}  // namespace kvgate::experiments
