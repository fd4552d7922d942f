#include "gates/speed_ceiling/speed_ceiling.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace kvgate::gates {
namespace {

absl::Status CheckFraction(const char* name, double value) {
  if (!std::isfinite(value) || value < 0.0 || value > 1.0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s must be a finite fraction in [0, 1], got %g", name, value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<double> ProjectedSpeedup(double p_attn, double active_fraction, double overhead) {
  if (absl::Status s = CheckFraction("p_attn", p_attn); !s.ok()) return s;
  if (absl::Status s = CheckFraction("active fraction f", active_fraction); !s.ok()) return s;
  if (!std::isfinite(overhead) || overhead < 0.0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("overhead h must be finite and >= 0, got %g", overhead));
  }
  // The denominator is positive: it is >= (1 - p_attn) + p_attn * f, which is 0 only when
  // p_attn = 1 and f = 0 and h = 0, i.e. attention is everything and is skipped entirely.
  const double step = (1.0 - p_attn) + p_attn * active_fraction + overhead;
  if (step <= 0.0) {
    return absl::InvalidArgumentError(
        "p_attn = 1, f = 0 and h = 0 leave nothing to time: the speedup is unbounded");
  }
  return 1.0 / step;
}

absl::StatusOr<SpeedCeilingVerdict> JudgeSpeedCeiling(double p_attn, double active_fraction,
                                                      const SpeedCeilingGate& gate) {
  absl::StatusOr<double> speedup = ProjectedSpeedup(p_attn, active_fraction, gate.overhead);
  if (!speedup.ok()) return speedup.status();
  SpeedCeilingVerdict verdict;
  verdict.speedup = *speedup;
  verdict.pass = *speedup >= gate.min_speedup;
  verdict.reason =
      absl::StrFormat("%.3fx %s %.3fx required at %.1f%% overhead", *speedup,
                      verdict.pass ? ">=" : "<", gate.min_speedup, 100.0 * gate.overhead);
  return verdict;
}

}  // namespace kvgate::gates
