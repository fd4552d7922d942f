// The speed ceiling of long-context work reduction, and its gate.
//
// If attention takes a share p_attn of a dense decode step, and a token selector lets attention
// touch only a fraction f of the history at a cost h (as a fraction of the dense step), the step
// can at best become
//
//     speedup = 1 / ((1 - p_attn) + p_attn * f + h)
//
// times faster. That is a ceiling, not a measurement: passing it only permits an oracle quality
// gate to run (gates/permit.h). The gate passes when the ceiling at 5% overhead is at least 1.20x.
//
// Usage:
//   absl::StatusOr<double> s = kvgate::gates::ProjectedSpeedup(0.334, 0.350, 0.05);  // 1.2006
//   absl::StatusOr<SpeedCeilingVerdict> v = kvgate::gates::JudgeSpeedCeiling(0.334, 0.350);

#ifndef KVGATE_GATES_SPEED_CEILING_SPEED_CEILING_H_
#define KVGATE_GATES_SPEED_CEILING_SPEED_CEILING_H_

#include <string>

#include "absl/status/statusor.h"

namespace kvgate::gates {

// The pre-registered speed_ceiling gate of the study: overhead assumed, and the speedup required.
struct SpeedCeilingGate {
  double overhead = 0.05;
  double min_speedup = 1.20;
};

struct SpeedCeilingVerdict {
  double speedup = 0.0;  // projected at the gate's overhead
  bool pass = false;
  std::string reason;  // in words, e.g. "1.188x < 1.200x required at 5.0% overhead"
};

// 1 / ((1 - p_attn) + p_attn * active_fraction + overhead). InvalidArgument unless p_attn and
// active_fraction are finite and in [0, 1] and overhead is finite and >= 0.
absl::StatusOr<double> ProjectedSpeedup(double p_attn, double active_fraction, double overhead);

// The gate's verdict for one (p_attn, active_fraction) pair.
absl::StatusOr<SpeedCeilingVerdict> JudgeSpeedCeiling(double p_attn, double active_fraction,
                                                      const SpeedCeilingGate& gate = {});

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_SPEED_CEILING_SPEED_CEILING_H_
