#include "gates/speed_ceiling/speed_ceiling_spec.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvgate::gates {

absl::StatusOr<SpeedCeilingGate> SpeedCeilingGateFromSpec(const GateSpec& spec) {
  if (spec.id != kSpeedCeilingGateId) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec ", spec.id, " is not a ", kSpeedCeilingGateId, " spec"));
  }
  if (spec.thresholds.size() != 1 ||
      spec.thresholds[0].kind != Condition::Kind::kProjectedSpeedup ||
      spec.thresholds[0].op != Op::kGreaterEqual) {
    return absl::InvalidArgumentError(absl::StrCat(
        kSpeedCeilingGateId, " v", spec.version,
        ": expected exactly one threshold, {\"projected_speedup\": {\"overhead\": h}, \"op\": "
        "\">=\", \"value\": min_speedup}"));
  }
  return SpeedCeilingGate{.overhead = spec.thresholds[0].overhead,
                          .min_speedup = spec.thresholds[0].value};
}

}  // namespace kvgate::gates
