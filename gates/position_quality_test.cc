#include "gates/position_quality.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

const float kLn3 = std::log(3.0f);

TEST(DeltaPTest, ByHand) {
  // ref softmax {1/2, 1/2}; test softmax {3/4, 1/4}.
  EXPECT_NEAR(*DeltaP({0, 0}, {kLn3, 0}, 0), 0.25, 1e-7);
  EXPECT_NEAR(*DeltaP({0, 0}, {kLn3, 0}, 1), -0.25, 1e-7);
  EXPECT_DOUBLE_EQ(*DeltaP({1, 2, 3}, {1, 2, 3}, 2), 0.0);
  EXPECT_FALSE(DeltaP({0, 0}, {0, 0}, 2).ok());
  EXPECT_FALSE(DeltaP({0, 0}, {0, 0}, -1).ok());
  EXPECT_FALSE(DeltaP({0, 0}, {0}, 0).ok());
  EXPECT_TRUE(std::isnan(*DeltaP({0, std::numeric_limits<float>::quiet_NaN()}, {0, 0}, 0)));
}

TEST(MeasurePositionTest, ByHand) {
  // Vocabulary 12, logits 0 but ref[1] = ln 3 and test[0] = ln 3: Z = 14 for both, so
  // p_ref = 3/14 at 1, q = 3/14 at 0, 1/14 elsewhere. The true token is 1.
  std::vector<float> ref(12, 0.0f), test(12, 0.0f);
  ref[1] = kLn3;
  test[0] = kLn3;
  absl::StatusOr<PositionQuality> q = MeasurePosition(ref, test, 1);
  ASSERT_TRUE(q.ok()) << q.status();
  // KL = (1/14) ln(1/3) + (3/14) ln 3 = ln 3 / 7; MSE = 2 (ln 3)^2 / 12.
  EXPECT_NEAR(q->kl_divergence, std::log(3.0) / 7, 1e-6);
  EXPECT_NEAR(q->decode_logit_mse, kLn3 * kLn3 / 6, 1e-6);
  EXPECT_EQ(q->argmax_agreement, 0.0);  // 1 against 0
  EXPECT_EQ(q->top10_overlap, 1.0);     // both top-10s are {0..9} (ties: lower index first)
  EXPECT_NEAR(q->delta_p, 1.0 / 14 - 3.0 / 14, 1e-7);
  EXPECT_NEAR(q->abs_delta_p, 1.0 / 7, 1e-7);
  EXPECT_FALSE(MeasurePosition(ref, test, 12).ok());
  EXPECT_FALSE(MeasurePosition({0, 0}, {0, 0}, 0).ok());  // fewer than 10 logits: no top-10
}

}  // namespace
}  // namespace kvgate::gates
