// Hermetic test of the passkey run (a tiny seeded model with head_dim 128, so int4 blocks fit;
// token ids for text): a lossless KV format
// and a selector keeping the whole history answer exactly as dense, the selectors run with their
// captures and per-step dense probabilities, records carry accuracy, intervals, dense accuracy
// and per-depth accuracies computed from hand answers, and the gate judges a small run invalid.
//
// Run: tools/bazel test //experiments/passkey:passkey_test

#include "experiments/passkey/passkey.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cstdio>

#include "experiments/common/experiment_io.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_configs.h"
#include "experiments/runtime/model_test_util.h"
#include "gates/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kContext = 120, kAnswer = 4;

// Tokens as digits: every answer is a number, so the test exercises the scoring.
std::string Digits(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += static_cast<char>('0' + id % 10);
  return s;
}

std::vector<PasskeyTrial> Trials() {
  PasskeyFrame frame;
  frame.head = {1, 2, 3, 4};
  frame.tail = {5, 6, 7};
  std::vector<int64_t> filler;
  for (int64_t i = 0; i < 200; ++i) filler.push_back((i * 37 + 11) % 90);
  std::vector<PasskeyTrial> trials;
  const double depths[] = {0.25, 0.75};
  for (int64_t d = 0; d < 2; ++d) {
    for (int64_t t = 0; t < 2; ++t) {
      const std::vector<int64_t> needle = {91, 92, static_cast<int64_t>(93 + t)};
      std::vector<int64_t> shifted(filler.begin() + 7 * t, filler.end());
      absl::StatusOr<PasskeyTrial> trial =
          BuildTrial(frame, shifted, needle, depths[d], kContext, kAnswer);
      EXPECT_TRUE(trial.ok()) << trial.status();
      trial->key = PassKey(0, kContext, d, t);
      trial->depth_index = d;
      trial->trial = t;
      trials.push_back(*trial);
    }
  }
  return trials;
}

absl::StatusOr<runtime::Model> TinyModel() {
  return runtime::Model::Create(
      runtime::RandomModelWeights(*runtime::ModelConfigNamed("tiny-qwen2-head128"), 7), {});
}

PasskeyOptions Options() {
  PasskeyOptions o;
  o.answer_tokens = kAnswer;
  o.prefill_chunk = 40;  // several chunks, the last partial
  o.detokenize = Digits;
  return o;
}

TEST(PasskeyTest, LosslessConfigurationsAnswerAsDense) {
  absl::StatusOr<runtime::Model> model = TinyModel();
  ASSERT_TRUE(model.ok()) << model.status();
  auto identity = std::make_shared<runtime::IdentityKvFormat>();
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> int4 =
      MakeFormats({"symmetric_int4:block=32"});
  ASSERT_TRUE(int4.ok());
  const std::vector<PasskeyTrial> trials = Trials();
  std::vector<std::string> lines;
  PasskeyOptions options = Options();
  options.progress = [&](const std::string& line) { lines.push_back(line); };
  absl::StatusOr<std::vector<ConfigAnswers>> r = RunPasskey(
      *model, trials, {identity, (*int4)[0]},
      {"global_block_mass:f=1:b=16", "tova:budget=1000", "h2o:heavy=8:recent=8",
       "snapkv:budget=80:window=64:kernel=5:pool=avg", "layer_block_mass:f=0.376:b=16"},
      options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u + 2u + 5u);
  EXPECT_EQ((*r)[0].variant, "dense");
  EXPECT_EQ(lines.size(), trials.size());
  EXPECT_THAT(lines[0], HasSubstr("trial 1/4: context 120, depth 25%"));
  for (const ConfigAnswers& c : *r) {
    ASSERT_EQ(c.answers.size(), trials.size()) << c.variant;
    for (const TrialAnswer& a : c.answers) {
      EXPECT_EQ(a.tokens.size(), static_cast<size_t>(kAnswer)) << c.variant;
      EXPECT_EQ(a.text, Digits(a.tokens));
      EXPECT_EQ(a.number, a.text);
    }
  }
  // Identity format, global_block_mass f=1 and TOVA with a budget above the history keep
  // everything: the same greedy answers as dense.
  for (size_t c : {size_t{1}, size_t{3}, size_t{4}}) {
    for (size_t i = 0; i < trials.size(); ++i) {
      EXPECT_EQ((*r)[c].answers[i].tokens, (*r)[0].answers[i].tokens)
          << (*r)[c].variant << " trial " << i;
    }
  }
  for (size_t i = 0; i < trials.size(); ++i) {
    EXPECT_DOUBLE_EQ((*r)[3].answers[i].active_fraction, 1.0);
    const double h2o = (*r)[5].answers[i].active_fraction;
    EXPECT_GT(h2o, 0.0);
    EXPECT_LT(h2o, 1.0);  // 16 of more than 100 tokens
    const double layer_mass = (*r)[7].answers[i].active_fraction;
    EXPECT_GT(layer_mass, 0.0);
    EXPECT_LT(layer_mass, 1.0);
  }
  EXPECT_GT((*r)[2].kv_ratio.at(kContext), 0.0);
  EXPECT_LT((*r)[2].kv_ratio.at(kContext), 1.0);
}

// A per-token format: encoding the prompt once and the tail per call equals re-encoding the
// whole history (KvRoundTripAttention), bitwise; a call inside the prompt is refused.
TEST(PasskeyTest, PromptRoundTripEqualsFullRoundTripForPerTokenFormats) {
  torch::manual_seed(3);
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> formats =
      MakeFormats({"symmetric_int4:block=32", "affine_int4:block=32", "int8:scale=token"});
  ASSERT_TRUE(formats.ok());
  const int64_t prompt = 40, heads = 4, kv_heads = 2, d = 128;
  for (const std::shared_ptr<const kernels::KvFormat>& format : *formats) {
    runtime::AttentionPolicy once = PromptRoundTripAttention(format, prompt);
    runtime::AttentionPolicy every = runtime::KvRoundTripAttention(format);
    const torch::Tensor k = torch::randn({prompt + 5, kv_heads, d});
    const torch::Tensor v = torch::randn({prompt + 5, kv_heads, d});
    for (int64_t s = prompt + 1; s <= prompt + 5; ++s) {  // successive decode steps
      runtime::AttentionCall call;
      call.layer = 1;
      call.step = s - prompt - 1;
      call.position = s - 1;
      call.q = torch::randn({1, heads, d});
      call.k = k.narrow(0, 0, s);
      call.v = v.narrow(0, 0, s);
      absl::StatusOr<runtime::AttentionResult> a = once(call);
      absl::StatusOr<runtime::AttentionResult> b = every(call);
      ASSERT_TRUE(a.ok() && b.ok()) << format->name();
      EXPECT_TRUE(torch::equal(a->out, b->out)) << format->name() << " at " << s;
    }
    runtime::AttentionCall inside;
    inside.position = prompt - 1;
    inside.q = torch::randn({1, heads, d});
    inside.k = k.narrow(0, 0, prompt);
    inside.v = v.narrow(0, 0, prompt);
    EXPECT_THAT(once(inside).status().message(), HasSubstr("does not come after the prompt"));
  }
}

TEST(PasskeyTest, BadInputIsRefused) {
  absl::StatusOr<runtime::Model> model = TinyModel();
  ASSERT_TRUE(model.ok());
  EXPECT_THAT(RunPasskey(*model, {}, {}, {}, Options()).status().message(), HasSubstr("no trials"));
  EXPECT_FALSE(RunPasskey(*model, Trials(), {}, {"no_such_selector"}, Options()).ok());
  PasskeyOptions no_detok = Options();
  no_detok.detokenize = nullptr;
  EXPECT_FALSE(RunPasskey(*model, Trials(), {}, {}, no_detok).ok());
}

// Hand answers: dense right on 3 of 4 trials, the configuration on 2 (wrong where dense was
// right at depth 75%, trial 1), on two contexts' worth of trials.
TEST(PasskeyTest, RecordsFromHandAnswers) {
  std::vector<PasskeyTrial> trials = Trials();
  for (PasskeyTrial t : Trials()) {  // a second context, everything right
    t.context = 2 * kContext;
    trials.push_back(t);
  }
  ConfigAnswers dense{"dense", false, {}, {}, 0};
  ConfigAnswers int4{"symmetric_int4:block=32", false, {{kContext, 0.28}, {2 * kContext, 0.28}},
                     {}, 0};
  const bool dense_right[] = {true, true, false, true, true, true, true, true};
  const bool int4_right[] = {true, true, false, false, true, true, true, true};
  for (size_t i = 0; i < trials.size(); ++i) {
    TrialAnswer d, c;
    d.correct = dense_right[i];
    d.number = dense_right[i] ? std::optional<std::string>("1") : std::nullopt;
    c.correct = int4_right[i];
    c.number = int4_right[i] ? std::optional<std::string>("1") : std::optional<std::string>("2");
    dense.answers.push_back(d);
    int4.answers.push_back(c);
  }
  gates::Target target{"tiny-qwen2-head128", "random:seed=7", 0, "float32", "cpu"};
  absl::StatusOr<std::vector<gates::Record>> rows =
      PasskeyRecords({dense, int4}, trials, target, 3);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const gates::Record& r = (*rows)[0];
  EXPECT_EQ(r.experiment, "passkey");
  EXPECT_EQ(r.variant, "symmetric_int4:block=32");
  EXPECT_EQ(r.target.context, kContext);
  EXPECT_FALSE(r.step.has_value());
  const std::map<std::string, double>& m = r.metrics;
  EXPECT_EQ(m.at("trials"), 4);
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("dense_accuracy"), 0.75);
  EXPECT_DOUBLE_EQ(m.at("accuracy_drop"), 0.25);
  EXPECT_DOUBLE_EQ(m.at("answer_agreement"), 0.5);  // trials 2 and 3 differ
  EXPECT_NEAR(m.at("accuracy_ci_low"), 0.150039, 1e-5);  // Wilson 2/4
  EXPECT_NEAR(m.at("accuracy_ci_high"), 0.849961, 1e-5);
  EXPECT_DOUBLE_EQ(m.at("accuracy_depth_25"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("accuracy_depth_75"), 0.0);
  EXPECT_NEAR(m.at("accuracy_depth_75_ci_high"), 0.657620, 1e-5);  // Wilson 0/2
  EXPECT_NEAR(m.at("accuracy_depth_75_ci_low"), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(m.at("accuracy_depth_25_ci_high"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("dense_accuracy_depth_25"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("dense_accuracy_depth_75"), 0.5);
  // The paired drops are {0, 0, 0, 1}: every bootstrap mean is a multiple of 1/4 in [0, 1].
  EXPECT_GE(m.at("accuracy_drop_ci_low"), 0.0);
  EXPECT_LE(m.at("accuracy_drop_ci_low"), 0.25);
  EXPECT_GE(m.at("accuracy_drop_ci_high"), 0.25);
  EXPECT_LE(m.at("accuracy_drop_ci_high"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("kv_ratio"), 0.28);
  const gates::Record& second = (*rows)[1];
  EXPECT_EQ(second.target.context, 2 * kContext);
  EXPECT_DOUBLE_EQ(second.metrics.at("accuracy"), 1.0);
  EXPECT_DOUBLE_EQ(second.metrics.at("accuracy_drop_ci_high"), 0.0);

  // Judged and written: 4 trials a context is below the gate's 27, so invalid.
  const std::string path = RecordsPath("", "passkey_hand");
  std::remove(path.c_str());
  absl::StatusOr<std::vector<gates::Record>> judged =
      JudgeAndAppend(path, kPasskeyGate, *rows, CurrentProvenance(3));
  ASSERT_TRUE(judged.ok()) << judged.status();
  absl::StatusOr<std::vector<gates::RecordAt>> read = gates::ReadRecordsFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  for (const gates::RecordAt& at : *read) {
    EXPECT_EQ(at.record.gate.id, "passkey_retrieval");
    EXPECT_EQ(at.record.gate.verdict, gates::Verdict::kInvalid);
  }
  EXPECT_THAT(PasskeyTable(*judged).c_str(), HasSubstr("| symmetric_int4:block=32 | 120 | 4 |"));
  EXPECT_FALSE(PasskeyRecords({int4}, trials, target, 3).ok());  // dense must come first
}

}  // namespace
}  // namespace kvgate::experiments
