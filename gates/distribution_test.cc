#include "gates/distribution.h"

#include <cmath>
#include <map>
#include <string>

#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

TEST(QuantileTest, NumpyLinearByHand) {
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(Quantile(v, 0.5), 2.5);   // rank 1.5 of {1, 2, 3, 4}
  EXPECT_DOUBLE_EQ(Quantile(v, 0.95), 3.85);  // rank 2.85
  EXPECT_DOUBLE_EQ(Quantile(v, 0.99), 3.97);  // rank 2.97
  EXPECT_DOUBLE_EQ(Quantile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(Quantile(v, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(Quantile({5.0}, 0.99), 5.0);
  EXPECT_TRUE(std::isnan(Quantile({}, 0.5)));
  EXPECT_TRUE(std::isnan(Quantile({1.0, NAN}, 0.5)));
  EXPECT_DOUBLE_EQ(Mean(v), 2.5);
}

TEST(SummarizeTest, PoolsEveryPosition) {
  absl::StatusOr<Summary> s = Summarize({{1, 2}, {3, 4}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->windows, 2);
  EXPECT_EQ(s->values, 4);
  EXPECT_DOUBLE_EQ(s->mean, 2.5);
  EXPECT_DOUBLE_EQ(s->median, 2.5);
  EXPECT_DOUBLE_EQ(s->p95, 3.85);
  EXPECT_DOUBLE_EQ(s->p99, 3.97);
  EXPECT_FALSE(Summarize({{}, {}}).ok());
}

TEST(BootstrapIntervalTest, ByHand) {
  // Identical windows: every resample has mean 1.
  absl::StatusOr<Interval> same = BootstrapInterval({{1, 1}, {1, 1}}, Mean, 7, 100, 0.95);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_DOUBLE_EQ(same->low, 1.0);
  EXPECT_DOUBLE_EQ(same->high, 1.0);
  // Windows {0} and {1}: a resample's mean is 0, 1/2 or 1 with probability 1/4, 1/2, 1/4, so the
  // 2.5% and 97.5% quantiles of 2000 resamples are 0 and 1 (about 500 at each end).
  absl::StatusOr<Interval> two = BootstrapInterval({{0}, {1}}, Mean, 1, 2000, 0.95);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_DOUBLE_EQ(two->low, 0.0);
  EXPECT_DOUBLE_EQ(two->high, 1.0);
  // The window is the unit: {0, 0, 0} and {1} resample as wholes, so a resample's pooled mean is
  // 0 (both draws the first), 1/4, or 1 (both the second).
  const Statistic median = [](absl::Span<const double> v) { return Quantile(v, 0.5); };
  absl::StatusOr<Interval> unit = BootstrapInterval({{0, 0, 0}, {1}}, Mean, 3, 2000, 0.4);
  ASSERT_TRUE(unit.ok());
  EXPECT_DOUBLE_EQ(unit->low, 0.25);   // 30% quantile: P(0) = 1/4, P(1/4) = 1/2, P(1) = 1/4
  EXPECT_DOUBLE_EQ(unit->high, 0.25);  // 70% quantile
  EXPECT_TRUE(BootstrapInterval({{0, 0, 0}, {1}}, median, 3, 10, 0.95).ok());
}

TEST(BootstrapIntervalTest, SeededAndChecked) {
  const Windows w = {{0.1, 0.4}, {0.2}, {0.9, 0.3, 0.5}, {0.7}};
  absl::StatusOr<Interval> a = BootstrapInterval(w, Mean, 42, 500, 0.95);
  absl::StatusOr<Interval> b = BootstrapInterval(w, Mean, 42, 500, 0.95);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->low, b->low);
  EXPECT_EQ(a->high, b->high);
  EXPECT_LE(a->low, a->high);
  EXPECT_FALSE(BootstrapInterval({}, Mean, 1, 10, 0.95).ok());
  EXPECT_FALSE(BootstrapInterval({{1}, {}}, Mean, 1, 10, 0.95).ok());
  EXPECT_FALSE(BootstrapInterval(w, Mean, 1, 0, 0.95).ok());
  EXPECT_FALSE(BootstrapInterval(w, Mean, 1, 10, 1.0).ok());
}

TEST(AddDistributionMetricsTest, Names) {
  std::map<std::string, double> m;
  ASSERT_TRUE(AddDistributionMetrics("decode_logit_mse", {{1, 2}, {3, 4}}, 1, &m).ok());
  EXPECT_EQ(m.size(), 6u);
  EXPECT_DOUBLE_EQ(m["decode_logit_mse_mean"], 2.5);
  EXPECT_DOUBLE_EQ(m["decode_logit_mse_median"], 2.5);
  EXPECT_DOUBLE_EQ(m["decode_logit_mse_p95"], 3.85);
  EXPECT_DOUBLE_EQ(m["decode_logit_mse_p99"], 3.97);
  // Resample means of two windows of means 1.5 and 3.5: 1.5, 2.5 or 3.5.
  EXPECT_DOUBLE_EQ(m["decode_logit_mse_mean_ci_low"], 1.5);
  EXPECT_DOUBLE_EQ(m["decode_logit_mse_mean_ci_high"], 3.5);
  EXPECT_FALSE(AddDistributionMetrics("x", {}, 1, &m).ok());
}

}  // namespace
}  // namespace kvgate::gates
