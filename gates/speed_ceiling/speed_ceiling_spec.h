// The speed_ceiling gate's thresholds, read from its pre-registered spec
// (gates/specs/speed_ceiling.json): the overhead h assumed and the speedup required. The spec file
// is the source; SpeedCeilingGate's defaults mirror version 1 and a test keeps them equal.
//
// Usage:
//   absl::StatusOr<RegisteredSpec> spec = LoadSpecFile("gates/specs/speed_ceiling.json");
//   absl::StatusOr<SpeedCeilingGate> gate = SpeedCeilingGateFromSpec(spec->spec);
//   absl::StatusOr<SpeedCeilingVerdict> v = JudgeSpeedCeiling(0.334, 0.350, *gate);

#ifndef KVGATE_GATES_SPEED_CEILING_SPEED_CEILING_SPEC_H_
#define KVGATE_GATES_SPEED_CEILING_SPEED_CEILING_SPEC_H_

#include "absl/status/statusor.h"
#include "gates/gate_spec.h"
#include "gates/speed_ceiling/speed_ceiling.h"

namespace kvgate::gates {

inline constexpr char kSpeedCeilingGateId[] = "speed_ceiling";

// The gate of a speed_ceiling spec: its one threshold must be `projected_speedup >= value`.
absl::StatusOr<SpeedCeilingGate> SpeedCeilingGateFromSpec(const GateSpec& spec);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_SPEED_CEILING_SPEED_CEILING_SPEC_H_
