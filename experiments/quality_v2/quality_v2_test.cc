// Hermetic test of quality_v2 (tiny seeded model, two windows): a lossless format and a selector
// keeping everything have zero error at every position and the dense perplexity, int4 and a real
// selector's measures and NLLs match a direct recomputation, records carry the distributions and
// perplexities, and both gates judge a two-window run invalid (they need >= 32 windows).
//
// Run: tools/bazel test //experiments/quality_v2:quality_v2_test

#include "experiments/quality_v2/quality_v2.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_join.h"
#include "experiments/common/experiment_io.h"
#include "experiments/common/selector_policy.h"
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

// The position measures of one step's logits (float32, contiguous) against the dense ones.
absl::StatusOr<gates::PositionQuality> MeasureLogits(const torch::Tensor& ref,
                                                     const torch::Tensor& got, int64_t token) {
  return gates::MeasurePosition(gates::Values(ref.data_ptr<float>(), ref.numel()),
                                gates::Values(got.data_ptr<float>(), got.numel()), token);
}

// One step's logits of window `w`, recomputed directly: a fresh prefill of its context, then its
// positions teacher-forced, dense and under `policy`; {dense, policy} at `position`, float32.
absl::StatusOr<std::pair<torch::Tensor, torch::Tensor>> StepLogits(
    const runtime::Model& model, const std::vector<int64_t>& w, runtime::AttentionPolicy policy,
    int64_t position) {
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> prompt(w.begin(), w.begin() + kContext);
  const std::vector<int64_t> forced(w.begin() + kContext, w.begin() + kContext + kPositions);
  torch::Tensor logits[2];
  for (int i = 0; i < 2; ++i) {
    runtime::KvCache cache = model.NewCache(kContext + kPositions);
    if (absl::Status s = runtime::Prefill(model, cache, prompt).status(); !s.ok()) return s;
    runtime::DecodeOptions opts;
    if (i == 1) opts.policy = policy;
    absl::StatusOr<runtime::DecodeResult> run = runtime::DecodeForced(model, cache, forced, opts);
    if (!run.ok()) return run.status();
    logits[i] = run->steps[position].logits.contiguous();
  }
  return std::make_pair(logits[0], logits[1]);
}

TEST(QualityV2Test, LosslessIsExactAndInt4MatchesADirectRun) {
  absl::StatusOr<runtime::Model> model = runtime::LoadFixtureModel("tiny_llama");
  ASSERT_TRUE(model.ok()) << model.status();
  auto identity = std::make_shared<runtime::IdentityKvFormat>();
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> int4 =
      MakeFormats({"symmetric_int4:block=32"});
  ASSERT_TRUE(int4.ok());
  const std::vector<std::vector<int64_t>> windows = TwoWindows();
  absl::StatusOr<std::vector<ConfigPositions>> r =
      RunOverWindows(*model, windows, kContext, kPositions, {identity, (*int4)[0]}, {});
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
      EXPECT_EQ(id.nll[w][i], id.dense_nll[w][i]);
    }
  }
  EXPECT_TRUE(id.reference_finite);

  // Window 1, position 2 of int4, recomputed: prefill, teacher-force, compare with dense.
  const std::vector<int64_t>& w1 = windows[1];
  absl::StatusOr<std::pair<torch::Tensor, torch::Tensor>> logits =
      StepLogits(*model, w1, runtime::KvRoundTripAttention((*int4)[0]), 2);
  ASSERT_TRUE(logits.ok()) << logits.status();
  const torch::Tensor& ref = logits->first;
  const torch::Tensor& got = logits->second;
  absl::StatusOr<gates::PositionQuality> q = MeasureLogits(ref, got, w1[kContext + 3]);
  ASSERT_TRUE(q.ok());
  const ConfigPositions& c = (*r)[1];
  EXPECT_DOUBLE_EQ(c.decode_logit_mse[1][2], q->decode_logit_mse);
  EXPECT_DOUBLE_EQ(c.delta_p[1][2], q->delta_p);
  EXPECT_DOUBLE_EQ(c.kl_divergence[1][2], q->kl_divergence);
  EXPECT_GT(c.decode_logit_mse[1][2], 0.0);

  // Records: one a format, distributions and sizes; judged invalid (2 < 32 windows).
  gates::Target target{"tiny_llama", "random:seed=1234", kContext, "float32", "cpu"};
  absl::StatusOr<std::vector<gates::Record>> rows = QualityRecords(*r, target, 5);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const gates::Record& row = (*rows)[1];
  EXPECT_FALSE(row.step.has_value());
  EXPECT_EQ(row.metrics.at(kWindows), 2.0);
  EXPECT_EQ(row.metrics.at(kPositionsPerWindow), kPositions);
  for (const char* m :
       {"decode_logit_mse_mean_ci_high", "top10_overlap_mean_ci_low", "argmax_agreement_mean",
        "delta_p_p99", "kl_divergence_median", "layer_median_o_proj_rel_l2_p95"}) {
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
  EXPECT_EQ((*rows)[0].metrics.at("perplexity_ratio_mean"), 1.0);
  EXPECT_EQ((*rows)[0].metrics.at("log_perplexity_ratio_mean"), 0.0);
  EXPECT_FALSE(row.metrics.count("active_history_fraction_mean"));
}

// -log softmax(logits)[token] by hand, in double: the log-sum-exp over the vocabulary.
double DirectNll(const torch::Tensor& logits, int64_t token) {
  const torch::Tensor l = logits.to(torch::kCPU, torch::kFloat32).contiguous();
  const float* x = l.data_ptr<float>();
  double max = x[0];
  for (int64_t i = 1; i < l.numel(); ++i) max = std::max<double>(max, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < l.numel(); ++i) sum += std::exp(static_cast<double>(x[i]) - max);
  return max + std::log(sum) - static_cast<double>(x[token]);
}

TEST(QualityV2Test, SelectorsOverWindows) {
  absl::StatusOr<runtime::Model> model = runtime::LoadFixtureModel("tiny_llama");
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<std::vector<int64_t>> windows = TwoWindows();
  // Everything kept (the recent window covers the whole history); a recent window of 8 tokens;
  // H2O (captured prompt, stateful); the block-mass oracle (the dense run's probabilities).
  const std::vector<std::string> selectors = {"recent_sink:sink=4:recent=1000",
                                              "recent_sink:sink=2:recent=6", "h2o:heavy=4:recent=4",
                                              "global_block_mass:f=0.3:b=4"};
  absl::StatusOr<std::vector<ConfigPositions>> r =
      RunOverWindows(*model, windows, kContext, kPositions, {}, selectors);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 4u);
  const ConfigPositions& all = (*r)[0];
  EXPECT_TRUE(all.selector);
  EXPECT_EQ(all.gate, kSelectorWindowsGate);
  for (size_t w = 0; w < 2; ++w) {
    for (int64_t i = 0; i < kPositions; ++i) {
      EXPECT_EQ(all.decode_logit_mse[w][i], 0.0);
      EXPECT_EQ(all.kl_divergence[w][i], 0.0);
      EXPECT_EQ(all.argmax_agreement[w][i], 1.0);
      EXPECT_EQ(all.layer_median_o_proj_rel_l2[w][i], 0.0);
      EXPECT_EQ(all.nll[w][i], all.dense_nll[w][i]);
      EXPECT_EQ(all.active_history_fraction[w][i], 1.0);
    }
  }
  // The real selectors change something and keep less than the history.
  for (size_t k = 1; k < r->size(); ++k) {
    const ConfigPositions& c = (*r)[k];
    double mse = 0, nll_change = 0, fraction = 0;
    for (size_t w = 0; w < 2; ++w) {
      for (int64_t i = 0; i < kPositions; ++i) {
        mse += c.decode_logit_mse[w][i];
        nll_change += std::abs(c.nll[w][i] - c.dense_nll[w][i]);
        fraction += c.active_history_fraction[w][i];
      }
    }
    EXPECT_GT(mse, 0.0) << c.variant;
    EXPECT_GT(nll_change, 0.0) << c.variant;
    EXPECT_LT(fraction / (2 * kPositions), 1.0) << c.variant;
    EXPECT_GT(fraction, 0.0) << c.variant;
  }

  // Window 1, position 2 of the 8-token recent window, recomputed: prefill, teacher-force under
  // the same selector; the NLLs by a hand-written log-sum-exp.
  const std::vector<int64_t>& w1 = windows[1];
  const std::vector<torch::Tensor> no_probs;
  const PromptCapture no_capture;
  std::shared_ptr<SelectorState> st = NewSelectorState((*r)[1].variant, no_probs, no_capture);
  absl::StatusOr<std::pair<torch::Tensor, torch::Tensor>> logits =
      StepLogits(*model, w1, SelectorPolicy(st), 2);
  ASSERT_TRUE(logits.ok()) << logits.status();
  const torch::Tensor& ref = logits->first;
  const torch::Tensor& got = logits->second;
  absl::StatusOr<gates::PositionQuality> q = MeasureLogits(ref, got, w1[kContext + 3]);
  ASSERT_TRUE(q.ok());
  const ConfigPositions& recent = (*r)[1];
  EXPECT_DOUBLE_EQ(recent.decode_logit_mse[1][2], q->decode_logit_mse);
  EXPECT_NEAR(recent.nll[1][2], DirectNll(got, w1[kContext + 3]), 1e-9);
  EXPECT_NEAR(recent.dense_nll[1][2], DirectNll(ref, w1[kContext + 3]), 1e-9);
  // Position 2 history: context + 3 tokens, 2 sink + 6 recent kept.
  EXPECT_DOUBLE_EQ(recent.active_history_fraction[1][2], 8.0 / (kContext + 3));

  // Records: perplexity per window exp(mean NLL), its mean over windows; the ratio per window.
  gates::Target target{"tiny_llama", "random:seed=1234", kContext, "float32", "cpu"};
  absl::StatusOr<std::vector<gates::Record>> rows = QualityRecords(*r, target, 5);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 4u);
  double ppl = 0, dense_ppl = 0, ratio = 0;
  for (size_t w = 0; w < 2; ++w) {
    double nll = 0, dense_nll = 0;
    for (int64_t i = 0; i < kPositions; ++i) {
      nll += recent.nll[w][i];
      dense_nll += recent.dense_nll[w][i];
    }
    ppl += std::exp(nll / kPositions) / 2;
    dense_ppl += std::exp(dense_nll / kPositions) / 2;
    ratio += std::exp((nll - dense_nll) / kPositions) / 2;
  }
  const std::map<std::string, double>& m = (*rows)[1].metrics;
  EXPECT_NEAR(m.at("perplexity_mean"), ppl, 1e-9 * ppl);
  EXPECT_NEAR(m.at("dense_perplexity_mean"), dense_ppl, 1e-9 * dense_ppl);
  EXPECT_NEAR(m.at("perplexity_ratio_mean"), ratio, 1e-9 * ratio);
  for (const char* name :
       {"perplexity_mean_ci_low", "perplexity_mean_ci_high", "dense_perplexity_mean_ci_high",
        "perplexity_ratio_mean_ci_low", "log_perplexity_ratio_mean_ci_high",
        "active_history_fraction_mean", "layer_median_o_proj_rel_l2_mean_ci_high"}) {
    EXPECT_TRUE(m.count(name)) << name;
  }
  EXPECT_FALSE(m.count("kv_ratio"));
  EXPECT_EQ((*rows)[0].metrics.at("perplexity_ratio_mean"), 1.0);
  EXPECT_EQ((*rows)[0].metrics.at("active_history_fraction_mean"), 1.0);
  const std::string path = ::testing::TempDir() + "/quality_v2_selectors.jsonl";
  ASSERT_TRUE(JudgeAndAppend(path, kSelectorWindowsGate, *rows, CurrentProvenance(5)).ok());
  absl::StatusOr<std::vector<gates::RecordAt>> back = gates::ReadRecordsFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 4u);
  for (const gates::RecordAt& at : *back) {
    EXPECT_EQ(at.record.gate.id, kSelectorWindowsGate);
    EXPECT_EQ(at.record.gate.verdict, gates::Verdict::kInvalid);
    EXPECT_THAT(absl::StrJoin(at.record.gate.failed, "; "), HasSubstr("windows"));
  }
  const std::string table = QualityTable(*rows);
  EXPECT_THAT(table, HasSubstr("h2o:heavy=4:recent=4"));
  EXPECT_THAT(table, HasSubstr("kept 1.0000"));
}

TEST(QualityV2Test, BadWindowsAreRefused) {
  absl::StatusOr<runtime::Model> model = runtime::LoadFixtureModel("tiny_llama");
  ASSERT_TRUE(model.ok());
  absl::Status s = RunOverWindows(*model, {{1, 2, 3}}, kContext, kPositions, {}, {}).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("window 0 has 3 tokens"));
  EXPECT_FALSE(RunOverWindows(*model, {}, 0, kPositions, {}, {}).ok());
  s = RunOverWindows(*model, TwoWindows(), kContext, kPositions, {}, {"nonesuch:x=1"}).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  // SnapKV needs a prompt of at least its captured window (64 tokens).
  s = RunOverWindows(*model, TwoWindows(), kContext, kPositions, {}, {"snapkv:budget=128"})
          .status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("shorter than SnapKV's window"));
}

}  // namespace
}  // namespace kvgate::experiments
