// See distribution.h.

#include "gates/distribution.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"

namespace kvgate::gates {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> Pooled(const Windows& windows) {
  std::vector<double> all;
  for (const std::vector<double>& w : windows) all.insert(all.end(), w.begin(), w.end());
  return all;
}

}  // namespace

double Mean(absl::Span<const double> values) {
  if (values.empty()) return kNaN;
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double Quantile(absl::Span<const double> values, double q) {
  if (values.empty() || !(q >= 0 && q <= 1)) return kNaN;
  for (double v : values) {
    if (std::isnan(v)) return kNaN;
  }
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const double rank = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double frac = rank - static_cast<double>(below);
  return sorted[below] + frac * (sorted[above] - sorted[below]);
}

absl::StatusOr<Summary> Summarize(const Windows& windows) {
  const std::vector<double> all = Pooled(windows);
  if (all.empty()) return absl::InvalidArgumentError("distribution: no values");
  Summary s;
  s.windows = static_cast<int64_t>(windows.size());
  s.values = static_cast<int64_t>(all.size());
  s.mean = Mean(all);
  s.median = Quantile(all, 0.5);
  s.p95 = Quantile(all, 0.95);
  s.p99 = Quantile(all, 0.99);
  return s;
}

absl::StatusOr<Interval> BootstrapInterval(const Windows& windows, const Statistic& statistic,
                                           uint64_t seed, int64_t resamples, double level) {
  if (windows.empty()) return absl::InvalidArgumentError("bootstrap: no windows");
  for (size_t i = 0; i < windows.size(); ++i) {
    if (windows[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("bootstrap: window ", i, " has no values"));
    }
  }
  if (resamples < 1) {
    return absl::InvalidArgumentError(absl::StrCat("bootstrap: ", resamples, " resamples"));
  }
  if (!(level > 0 && level < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("bootstrap: level ", level));
  }
  std::mt19937_64 rng(seed);
  const uint64_t n = windows.size();
  std::vector<double> stats;
  stats.reserve(resamples);
  std::vector<double> pooled;
  for (int64_t r = 0; r < resamples; ++r) {
    pooled.clear();
    for (uint64_t i = 0; i < n; ++i) {
      const std::vector<double>& w = windows[rng() % n];
      pooled.insert(pooled.end(), w.begin(), w.end());
    }
    stats.push_back(statistic(pooled));
  }
  return Interval{Quantile(stats, (1 - level) / 2), Quantile(stats, (1 + level) / 2)};
}

absl::Status AddDistributionMetrics(const std::string& name, const Windows& windows,
                                    uint64_t seed, std::map<std::string, double>* metrics) {
  absl::StatusOr<Summary> s = Summarize(windows);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", s.status().message()));
  absl::StatusOr<Interval> ci =
      BootstrapInterval(windows, Mean, seed, kBootstrapResamples, kIntervalLevel);
  if (!ci.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", ci.status().message()));
  (*metrics)[name + "_mean"] = s->mean;
  (*metrics)[name + "_median"] = s->median;
  (*metrics)[name + "_p95"] = s->p95;
  (*metrics)[name + "_p99"] = s->p99;
  (*metrics)[name + "_mean_ci_low"] = ci->low;
  (*metrics)[name + "_mean_ci_high"] = ci->high;
  return absl::OkStatus();
}

}  // namespace kvgate::gates
