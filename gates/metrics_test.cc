#include "gates/metrics.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const float kLn3 = std::log(3.0f);

TEST(DecodeLogitMseTest, ByHand) {
  EXPECT_DOUBLE_EQ(*DecodeLogitMse({1, 2, 3, 4}, {1, 2, 3, 6}), 1.0);  // (0 + 0 + 0 + 4) / 4
  EXPECT_DOUBLE_EQ(*DecodeLogitMse({0, 0}, {0.5f, -0.5f}), 0.25);      // the gate's bar exactly
  EXPECT_DOUBLE_EQ(*DecodeLogitMse({7, -7}, {7, -7}), 0.0);
}

TEST(TopKOverlapTest, ByHandWithDefaultK) {
  // ref ranks indices 11..2 on top, test ranks 0..9: they share 2..9, 8 of 10.
  std::vector<float> ref, test;
  for (int i = 0; i < 12; ++i) {
    ref.push_back(i);
    test.push_back(-i);
  }
  EXPECT_DOUBLE_EQ(*TopKOverlap(ref, test), 0.8);
  EXPECT_DOUBLE_EQ(*TopKOverlap(ref, ref), 1.0);
  EXPECT_DOUBLE_EQ(*TopKOverlap(ref, test, 2), 0.0);   // {11, 10} vs {0, 1}
  EXPECT_DOUBLE_EQ(*TopKOverlap(ref, test, 12), 1.0);  // everything
}

TEST(TopKOverlapTest, TiesRankTheLowerIndexFirst) {
  // ref's top 2 is {0, 1} (three-way tie), test's is {1, 2}: one shared.
  EXPECT_DOUBLE_EQ(*TopKOverlap({1, 1, 1, 0}, {0, 1, 1, 1}, 2), 0.5);
}

TEST(ArgmaxAgreementTest, ByHand) {
  EXPECT_EQ(*ArgmaxAgreement({1, 3, 2}, {0, 5, 1}), 1.0);
  EXPECT_EQ(*ArgmaxAgreement({1, 3, 2}, {3, 1, 2}), 0.0);
  EXPECT_EQ(*ArgmaxAgreement({2, 2}, {2, 1}), 1.0);  // the tie goes to index 0 on both sides
  EXPECT_EQ(*ArgmaxAgreement({2, 2}, {1, 2}), 0.0);
}

TEST(KlDivergenceTest, ByHand) {
  // P = (1/2, 1/2), Q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3).
  EXPECT_NEAR(*KlDivergence({0, 0}, {kLn3, 0}), 0.5 * std::log(4.0 / 3.0), 1e-7);
  // P = (1/4, 3/4), Q = (3/4, 1/4): KL = 1/4 ln(1/3) + 3/4 ln 3 = 1/2 ln 3.
  EXPECT_NEAR(*KlDivergence({0, kLn3}, {kLn3, 0}), 0.5 * std::log(3.0), 1e-7);
  // Softmax ignores a common shift: identical distributions.
  EXPECT_DOUBLE_EQ(*KlDivergence({1, 2, 3}, {11, 12, 13}), 0.0);
  // Large logits do not overflow.
  EXPECT_NEAR(*KlDivergence({1000, 1000}, {1000 + kLn3, 1000}), 0.5 * std::log(4.0 / 3.0), 1e-4);
}

TEST(AbsDeltaPTest, ByHand) {
  EXPECT_NEAR(*AbsDeltaP({0, 0}, {kLn3, 0}, 0), 0.25, 1e-7);  // |3/4 - 1/2|
  EXPECT_NEAR(*AbsDeltaP({0, 0}, {kLn3, 0}, 1), 0.25, 1e-7);  // |1/4 - 1/2|
  EXPECT_THAT(AbsDeltaP({0, 0}, {0, 0}, 2).status().message(), HasSubstr("token 2"));
}

TEST(FidelityOverPositionsTest, LlamaCppMeasuresByHand) {
  const std::vector<float> ref0 = {0, 0}, test0 = {kLn3, 0};  // KL 1/2 ln(4/3), same top, Δp 1/4
  const std::vector<float> ref1 = {0, kLn3}, test1 = {kLn3, 0};  // KL 1/2 ln 3, top flips, Δp 1/2
  absl::StatusOr<Fidelity> f = FidelityOverPositions({ref0, ref1}, {test0, test1});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_NEAR(f->mean_kl_divergence, 0.5 * std::log(2.0), 1e-7);  // (1/2 ln(4/3) + 1/2 ln 3) / 2
  EXPECT_NEAR(f->mean_abs_delta_p, 0.375, 1e-7);
  EXPECT_DOUBLE_EQ(f->same_top_p_rate, 0.5);
}

TEST(RelativeL2Test, ByHand) {
  EXPECT_DOUBLE_EQ(*RelativeL2({3, 4}, {3, 5}), 0.2);  // ||(0, 1)|| / ||(3, 4)|| = 1 / 5
  EXPECT_DOUBLE_EQ(*RelativeL2({1, 0}, {0, 0}), 1.0);
  EXPECT_DOUBLE_EQ(*RelativeL2({1, 2}, {1, 2}), 0.0);
  EXPECT_THAT(RelativeL2({0, 0}, {1, 0}).status().message(), HasSubstr("all zeros"));
}

TEST(LayerMedianRelativeL2Test, OddAndEvenLayerCounts) {
  const std::vector<float> a_ref = {3, 4}, a = {3, 5};  // 0.2
  const std::vector<float> b_ref = {1, 0}, b = {1, 0};  // 0.0
  const std::vector<float> c_ref = {1, 0}, c = {0, 0};  // 1.0
  const std::vector<float> d_ref = {2, 0}, d = {2, 1};  // 0.5
  EXPECT_DOUBLE_EQ(*LayerMedianRelativeL2({a_ref, b_ref, c_ref}, {a, b, c}), 0.2);
  EXPECT_DOUBLE_EQ(*LayerMedianRelativeL2({a_ref, b_ref, c_ref, d_ref}, {a, b, c, d}), 0.35);
  EXPECT_THAT(LayerMedianRelativeL2({a_ref, {0, 0}}, {a, b}).status().message(),
              HasSubstr("layer 1"));
}

TEST(ActiveHistoryFractionTest, ByHand) {
  EXPECT_DOUBLE_EQ(*ActiveHistoryFraction({100, 300}, 400), 0.5);
  EXPECT_DOUBLE_EQ(*ActiveHistoryFraction({376}, 1000), 0.376);
  EXPECT_THAT(ActiveHistoryFraction({500}, 400).status().message(), HasSubstr("500"));
  EXPECT_FALSE(ActiveHistoryFraction({}, 400).ok());
  EXPECT_FALSE(ActiveHistoryFraction({1}, 0).ok());
  EXPECT_FALSE(ActiveHistoryFraction({-1}, 4).ok());
}

TEST(MetricsTest, NonFiniteInputsGiveNaN) {
  for (float bad : {kNaN, kInf, -kInf}) {
    SCOPED_TRACE(bad);
    const std::vector<float> ok = {1, 2, 3}, broken = {1, bad, 3};
    EXPECT_TRUE(std::isnan(*DecodeLogitMse(broken, ok)));
    EXPECT_TRUE(std::isnan(*DecodeLogitMse(ok, broken)));
    EXPECT_TRUE(std::isnan(*TopKOverlap(ok, broken, 2)));
    EXPECT_TRUE(std::isnan(*ArgmaxAgreement(broken, ok)));
    EXPECT_TRUE(std::isnan(*KlDivergence(ok, broken)));
    EXPECT_TRUE(std::isnan(*AbsDeltaP(broken, ok, 0)));
    EXPECT_TRUE(std::isnan(*RelativeL2(broken, ok)));
    EXPECT_TRUE(std::isnan(*LayerMedianRelativeL2({ok, broken}, {ok, ok})));
    EXPECT_TRUE(std::isnan(FidelityOverPositions({ok, broken}, {ok, ok})->mean_kl_divergence));
    EXPECT_FALSE(AllFinite(broken));
  }
  EXPECT_TRUE(AllFinite({1, -2, 3e38f}));
}

TEST(MetricsTest, MisuseIsAnError) {
  EXPECT_THAT(DecodeLogitMse({1, 2}, {1}).status().message(), HasSubstr("2 values, test has 1"));
  EXPECT_FALSE(DecodeLogitMse({}, {}).ok());
  EXPECT_THAT(TopKOverlap({1, 2}, {1, 2}, 3).status().message(), HasSubstr("k = 3"));
  EXPECT_FALSE(TopKOverlap({1, 2}, {1, 2}, 0).ok());
  EXPECT_FALSE(KlDivergence({1}, {1, 2}).ok());
  EXPECT_FALSE(FidelityOverPositions({}, {}).ok());
  EXPECT_FALSE(LayerMedianRelativeL2({}, {}).ok());
}

}  // namespace
}  // namespace kvgate::gates
