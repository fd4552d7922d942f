#include "gates/speed_ceiling/speed_ceiling_spec.h"

#include "gates/spec_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::testing::HasSubstr;

GateSpec RegisteredSpeedCeiling() {
  absl::StatusOr<RegisteredSpec> spec = LoadSpecFile("gates/specs/speed_ceiling.json");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? spec->spec : GateSpec();
}

TEST(SpeedCeilingGateFromSpecTest, TheRegisteredSpecIsTheStudysGate) {
  absl::StatusOr<SpeedCeilingGate> gate = SpeedCeilingGateFromSpec(RegisteredSpeedCeiling());
  ASSERT_TRUE(gate.ok()) << gate.status();
  EXPECT_DOUBLE_EQ(gate->overhead, 0.05);
  EXPECT_DOUBLE_EQ(gate->min_speedup, 1.20);
  // SpeedCeilingGate's defaults mirror the spec; keep them equal.
  EXPECT_EQ(gate->overhead, SpeedCeilingGate().overhead);
  EXPECT_EQ(gate->min_speedup, SpeedCeilingGate().min_speedup);
}

TEST(SpeedCeilingGateFromSpecTest, PublishedVerdictsFromTheSpec) {
  const SpeedCeilingGate gate = *SpeedCeilingGateFromSpec(RegisteredSpeedCeiling());
  EXPECT_TRUE(JudgeSpeedCeiling(0.334, 0.337, gate)->pass);
  EXPECT_TRUE(JudgeSpeedCeiling(0.334, 0.350, gate)->pass);
  EXPECT_FALSE(JudgeSpeedCeiling(0.334, 0.376, gate)->pass);  // 1.188x: the near miss
}

TEST(SpeedCeilingGateFromSpecTest, UsesTheSpecsNumbers) {
  GateSpec spec = RegisteredSpeedCeiling();
  spec.thresholds[0].overhead = 0.10;
  spec.thresholds[0].value = 1.10;
  const SpeedCeilingGate gate = *SpeedCeilingGateFromSpec(spec);
  EXPECT_DOUBLE_EQ(gate.overhead, 0.10);
  EXPECT_DOUBLE_EQ(gate.min_speedup, 1.10);
  EXPECT_TRUE(JudgeSpeedCeiling(0.334, 0.376, gate)->pass);  // 1.12x >= 1.10x at 10%
}

TEST(SpeedCeilingGateFromSpecTest, RejectsOtherSpecs) {
  GateSpec spec = RegisteredSpeedCeiling();
  spec.id = "work_reduction_oracle";
  EXPECT_THAT(SpeedCeilingGateFromSpec(spec).status().message(),
              HasSubstr("is not a speed_ceiling"));
  spec = RegisteredSpeedCeiling();
  spec.thresholds[0].kind = Condition::Kind::kMetric;
  EXPECT_THAT(SpeedCeilingGateFromSpec(spec).status().message(),
              HasSubstr("exactly one threshold"));
  spec = RegisteredSpeedCeiling();
  spec.thresholds[0].op = Op::kLessEqual;
  EXPECT_FALSE(SpeedCeilingGateFromSpec(spec).ok());
  spec = RegisteredSpeedCeiling();
  spec.thresholds.push_back(spec.thresholds[0]);
  EXPECT_FALSE(SpeedCeilingGateFromSpec(spec).ok());
}

}  // namespace
}  // namespace kvgate::gates
