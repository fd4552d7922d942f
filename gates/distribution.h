// Distributions of a per-position measure over windows and positions, for gates that judge
// aggregates instead of single steps: mean, median, p95, p99, and seeded bootstrap intervals
// over windows (the window is the unit resampled: positions of one text are not independent).
//
// Quantile is numpy's default ("linear", Hyndman-Fan type 7): the value at rank q * (n - 1) of
// the sorted values, interpolated between neighbours.
// BootstrapInterval: `resamples` times, draw as many windows as there are, with replacement
// (index = mt19937_64() % windows, so a seed gives the same draws on every standard library),
// pool their positions, apply the statistic; the interval is the (1 - level) / 2 and
// (1 + level) / 2 quantiles of those statistics (the percentile bootstrap).
//
// Usage:
//   std::vector<std::vector<double>> mse = ...;   // [window][position]
//   absl::StatusOr<Summary> s = Summarize(mse);
//   absl::StatusOr<Interval> ci = BootstrapInterval(mse, Mean, /*seed=*/1, 2000, 0.95);
//   std::map<std::string, double> metrics;
//   AddDistributionMetrics("decode_logit_mse", mse, /*seed=*/1, &metrics);
//   // metrics: decode_logit_mse_mean, _median, _p95, _p99, _mean_ci_low, _mean_ci_high

#ifndef KVGATE_GATES_DISTRIBUTION_H_
#define KVGATE_GATES_DISTRIBUTION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kvgate::gates {

using Windows = std::vector<std::vector<double>>;  // [window][position]

// Arithmetic mean; NaN for no values.
double Mean(absl::Span<const double> values);
// Type-7 quantile, 0 <= q <= 1; NaN for no values. A NaN value makes the result NaN.
double Quantile(absl::Span<const double> values, double q);

struct Summary {
  int64_t windows = 0, values = 0;
  double mean = 0, median = 0, p95 = 0, p99 = 0;
};

// Over every position of every window. InvalidArgument when there is no value.
absl::StatusOr<Summary> Summarize(const Windows& windows);

struct Interval {
  double low = 0, high = 0;
};

using Statistic = std::function<double(absl::Span<const double>)>;

// Percentile bootstrap over windows (see above). InvalidArgument for no windows, an empty
// window, resamples < 1 or a level outside (0, 1).
absl::StatusOr<Interval> BootstrapInterval(const Windows& windows, const Statistic& statistic,
                                           uint64_t seed, int64_t resamples, double level);

inline constexpr int64_t kBootstrapResamples = 2000;
inline constexpr double kIntervalLevel = 0.95;

// Adds <name>_mean, <name>_median, <name>_p95, <name>_p99 and the 95% bootstrap interval of the
// mean, <name>_mean_ci_low and <name>_mean_ci_high (kBootstrapResamples, `seed`), to `metrics`.
absl::Status AddDistributionMetrics(const std::string& name, const Windows& windows,
                                    uint64_t seed, std::map<std::string, double>* metrics);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_DISTRIBUTION_H_
