// Tests of selector_policy: which inputs a spec list needs, the refusals, the oracle's default
// configurations, and one selector policy on a synthetic decode call (no model).
//
// Run: tools/bazel test //experiments/common:selector_policy_test

#include "experiments/common/selector_policy.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

TEST(SelectorPolicyTest, CheckSelectorSpecsSaysWhatTheSelectorsNeed) {
  absl::StatusOr<SelectorSpecs> none = CheckSelectorSpecs({"recent_sink:sink=4:recent=8"}, 16);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->wants_prompt || none->wants_step_probs || none->wants_window);
  absl::StatusOr<SelectorSpecs> all = CheckSelectorSpecs(
      {"global_block_mass:f=0.376:b=16", "tova:budget=8", "snapkv:budget=128"}, 64);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->wants_prompt && all->wants_step_probs && all->wants_window);
  EXPECT_EQ(all->canonical[0], "global_block_mass:f=0.3760:b=16");

  EXPECT_FALSE(CheckSelectorSpecs({"nonesuch"}).ok());
  EXPECT_THAT(std::string(CheckSelectorSpecs({"snapkv:budget=256:window=65"}).status().message()),
              HasSubstr("window above 64 is not captured"));
  EXPECT_THAT(std::string(CheckSelectorSpecs({"snapkv:budget=128"}, 63).status().message()),
              HasSubstr("shorter than SnapKV's window"));
  EXPECT_TRUE(CheckSelectorSpecs({"snapkv:budget=128"}).ok());  // no prompt length given
}

TEST(SelectorPolicyTest, DefaultSpecsScaleTheBudget) {
  std::string note;
  const std::vector<std::string> specs = DefaultSelectorSpecs(512, &note);
  ASSERT_EQ(specs.size(), 10u);
  EXPECT_EQ(specs[3], "recent_sink:sink=4:recent=192");  // 3072 * 512 / 8192
  EXPECT_EQ(specs[6], "h2o:heavy=96:recent=96");
  EXPECT_THAT(note, HasSubstr("recent=192"));
  EXPECT_EQ(DefaultSelectorSpecs(8192)[3], "recent_sink:sink=4:recent=3072");
  EXPECT_TRUE(CheckSelectorSpecs(specs, 512).ok());
}

TEST(SelectorPolicyTest, RecentSinkAttendsToItsTokensAndCountsTheFraction) {
  torch::manual_seed(3);
  const int64_t s = 20, heads = 4, kv_heads = 2, d = 8;
  runtime::AttentionCall call;
  call.layer = 0;
  call.step = 0;
  call.position = s - 1;
  call.q = torch::randn({1, heads, d});
  call.k = torch::randn({s, kv_heads, d});
  call.v = torch::randn({s, kv_heads, d});
  const std::vector<torch::Tensor> no_probs;
  const PromptCapture no_capture;
  std::shared_ptr<SelectorState> st =
      NewSelectorState("recent_sink:sink=2:recent=3", no_probs, no_capture);
  absl::StatusOr<runtime::AttentionResult> got = SelectorPolicy(st)(call);
  ASSERT_TRUE(got.ok()) << got.status();
  // The same attention over tokens 0, 1 and 17..19 only.
  torch::Tensor keep = torch::zeros({1, s}, torch::kBool);
  for (int64_t t : {0, 1, 17, 18, 19}) keep[0][t] = true;
  const runtime::AttentionResult want = runtime::Attend(call.q, call.k, call.v, keep, false);
  EXPECT_TRUE(torch::equal(got->out, want.out));
  EXPECT_DOUBLE_EQ(st->MeanFraction(0), 5.0 / s);
  EXPECT_TRUE(std::isnan(st->MeanFraction(1)));  // no call at step 1

  call.step = -1;  // a prefill call
  EXPECT_THAT(std::string(SelectorPolicy(st)(call).status().message()),
              HasSubstr("single-token decode steps only"));
}

}  // namespace
}  // namespace kvgate::experiments
