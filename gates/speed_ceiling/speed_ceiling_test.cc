#include "gates/speed_ceiling/speed_ceiling.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::testing::HasSubstr;

// The study's published table for p_attn = 0.334, printed to two decimals.
struct PublishedRow {
  double active_fraction;
  double speedup_at_0, speedup_at_5, speedup_at_10;
  bool pass;
};

constexpr PublishedRow kPublished[] = {
    {0.337, 1.28, 1.21, 1.14, true},
    {0.350, 1.28, 1.20, 1.13, true},
    {0.376, 1.26, 1.19, 1.12, false},  // the near miss
};

double Rounded(double x) { return std::round(x * 100.0) / 100.0; }

TEST(ProjectedSpeedupTest, ReproducesPublishedTable) {
  for (const PublishedRow& row : kPublished) {
    SCOPED_TRACE(row.active_fraction);
    EXPECT_DOUBLE_EQ(Rounded(*ProjectedSpeedup(0.334, row.active_fraction, 0.00)),
                     row.speedup_at_0);
    EXPECT_DOUBLE_EQ(Rounded(*ProjectedSpeedup(0.334, row.active_fraction, 0.05)),
                     row.speedup_at_5);
    EXPECT_DOUBLE_EQ(Rounded(*ProjectedSpeedup(0.334, row.active_fraction, 0.10)),
                     row.speedup_at_10);
  }
}

TEST(ProjectedSpeedupTest, MatchesFormulaByHand) {
  // 1 / (0.5 + 0.5 * 0.25 + 0.125) = 1 / 0.75
  EXPECT_DOUBLE_EQ(*ProjectedSpeedup(0.5, 0.25, 0.125), 4.0 / 3.0);
  EXPECT_DOUBLE_EQ(*ProjectedSpeedup(0.0, 0.1, 0.0), 1.0);  // no attention, nothing to gain
  EXPECT_DOUBLE_EQ(*ProjectedSpeedup(1.0, 1.0, 0.0), 1.0);  // keeping all history gains nothing
  EXPECT_DOUBLE_EQ(*ProjectedSpeedup(1.0, 0.5, 0.0), 2.0);
}

TEST(JudgeSpeedCeilingTest, PublishedVerdictsAtFivePercent) {
  for (const PublishedRow& row : kPublished) {
    SCOPED_TRACE(row.active_fraction);
    absl::StatusOr<SpeedCeilingVerdict> verdict = JudgeSpeedCeiling(0.334, row.active_fraction);
    ASSERT_TRUE(verdict.ok()) << verdict.status();
    EXPECT_EQ(verdict->pass, row.pass) << verdict->reason;
  }
}

TEST(JudgeSpeedCeilingTest, ReasonStatesTheNumbers) {
  absl::StatusOr<SpeedCeilingVerdict> verdict = JudgeSpeedCeiling(0.334, 0.376);
  ASSERT_TRUE(verdict.ok());
  EXPECT_THAT(verdict->reason, HasSubstr("1.188x < 1.200x required at 5.0% overhead"));
}

TEST(JudgeSpeedCeilingTest, UsesTheGateGiven) {
  SpeedCeilingGate strict{.overhead = 0.10, .min_speedup = 1.5};
  absl::StatusOr<SpeedCeilingVerdict> verdict = JudgeSpeedCeiling(0.334, 0.337, strict);
  ASSERT_TRUE(verdict.ok());
  EXPECT_FALSE(verdict->pass);
  EXPECT_NEAR(verdict->speedup, 1.1382, 1e-4);
}

TEST(ProjectedSpeedupTest, RejectsInvalidInputs) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    double p, f, h;
    const char* names;
  } cases[] = {
      {-0.01, 0.5, 0.0, "p_attn"},        {1.01, 0.5, 0.0, "p_attn"},
      {nan, 0.5, 0.0, "p_attn"},          {0.3, -0.1, 0.0, "active fraction"},
      {0.3, 1.5, 0.0, "active fraction"}, {0.3, inf, 0.0, "active fraction"},
      {0.3, 0.5, -0.05, "overhead"},      {0.3, 0.5, nan, "overhead"},
      {1.0, 0.0, 0.0, "unbounded"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<double> s = ProjectedSpeedup(c.p, c.f, c.h);
    ASSERT_FALSE(s.ok()) << c.p << " " << c.f << " " << c.h;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.status().message(), HasSubstr(c.names));
    EXPECT_FALSE(JudgeSpeedCeiling(c.p, c.f, {.overhead = c.h}).ok());
  }
}

}  // namespace
}  // namespace kvgate::gates
