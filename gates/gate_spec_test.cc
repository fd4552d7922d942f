#include "gates/gate_spec.h"

#include <string>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::testing::HasSubstr;

constexpr char kOracle[] = R"json({
  "id": "oracle_like", "version": 2, "created": "2026-11-27", "summary": "words",
  "target": {"model": "M", "context": 8192, "dtype": "bfloat16", "decode_steps": 4},
  "multi_step_rule": "every_step_passes",
  "validity": [{"metric": "reference_finite", "op": "==", "value": 1}],
  "thresholds": [
    {"metric": "decode_logit_mse", "op": "<=", "value": 0.25},
    {"ratio": ["dense_ms", "compressed_ms"], "op": ">", "value": 1.1},
    {"projected_speedup": {"overhead": 0.05}, "op": ">=", "value": 1.2}
  ]})json";

TEST(ParseGateSpecTest, NullModelAndDtypePinNothing) {
  std::string spec_text = kOracle;
  for (const char* field : {"\"model\": \"M\"", "\"dtype\": \"bfloat16\""}) {
    const size_t at = spec_text.find(field);
    ASSERT_NE(at, std::string::npos) << field;
    spec_text.replace(at, std::string(field).size(),
                      std::string(field).substr(0, std::string(field).find(':')) + ": null");
  }
  absl::StatusOr<GateSpec> spec = ParseGateSpec(spec_text);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->target.model.has_value());
  EXPECT_FALSE(spec->target.dtype.has_value());
}

TEST(ParseGateSpecTest, ReadsEveryField) {
  absl::StatusOr<GateSpec> spec = ParseGateSpec(kOracle);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->id, "oracle_like");
  EXPECT_EQ(spec->version, 2);
  EXPECT_EQ(spec->created, "2026-11-27");
  EXPECT_EQ(spec->target.model, std::optional<std::string>("M"));
  EXPECT_EQ(spec->target.context, 8192);
  EXPECT_EQ(spec->target.dtype, std::optional<std::string>("bfloat16"));
  EXPECT_EQ(spec->target.decode_steps, 4);
  EXPECT_EQ(spec->multi_step_rule, MultiStepRule::kEveryStepPasses);
  ASSERT_EQ(spec->validity.size(), 1);
  EXPECT_EQ(DescribeCondition(spec->validity[0]), "reference_finite == 1");
  ASSERT_EQ(spec->thresholds.size(), 3);
  EXPECT_EQ(spec->thresholds[0].kind, Condition::Kind::kMetric);
  EXPECT_EQ(DescribeCondition(spec->thresholds[0]), "decode_logit_mse <= 0.25");
  EXPECT_EQ(spec->thresholds[1].kind, Condition::Kind::kRatio);
  EXPECT_EQ(spec->thresholds[1].numerator, "dense_ms");
  EXPECT_EQ(DescribeCondition(spec->thresholds[1]), "dense_ms / compressed_ms > 1.1");
  EXPECT_EQ(spec->thresholds[2].kind, Condition::Kind::kProjectedSpeedup);
  EXPECT_DOUBLE_EQ(spec->thresholds[2].overhead, 0.05);
  EXPECT_EQ(DescribeCondition(spec->thresholds[2]), "projected_speedup at h = 0.05 >= 1.2");
}

TEST(ParseGateSpecTest, NullContextAndSingleMeasurement) {
  std::string text =
      absl::StrReplaceAll(kOracle, {{"\"context\": 8192", "\"context\": null"},
                                    {"\"decode_steps\": 4", "\"decode_steps\": null"},
                                    {"every_step_passes", "single_measurement"}});
  absl::StatusOr<GateSpec> spec = ParseGateSpec(text);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->target.context.has_value());
  EXPECT_FALSE(spec->target.decode_steps.has_value());
  EXPECT_EQ(spec->multi_step_rule, MultiStepRule::kSingleMeasurement);
}

TEST(ParseGateSpecTest, RejectsMalformedSpecs) {
  struct Case {
    const char* from;
    const char* to;
    const char* message;
  } cases[] = {
      {"\"oracle_like\"", "\"Oracle-Like\"", "must be [a-z0-9_]+"},
      {"\"version\": 2", "\"version\": 0", "version must be >= 1"},
      {"\"version\": 2", "\"version\": 2.5", "version: expected an integer"},
      {"2026-11-27", "27/11/2026", "is not YYYY-MM-DD"},
      {"\"summary\": \"words\",", "", "missing \"summary\""},
      {"\"summary\"", "\"sumary\"", "unknown field \"sumary\""},
      {"\"context\": 8192", "\"context\": \"8k\"", "target.context: expected an integer or null"},
      {"\"context\": 8192", "\"context\": 0", "context must be > 0"},
      {"\"decode_steps\": 4", "\"decode_steps\": null", "every_step_passes needs"},
      {"every_step_passes", "single_measurement", "needs target.decode_steps = null"},
      {"every_step_passes", "best_of_n", "\"best_of_n\" is not"},
      {"\"op\": \"<=\"", "\"op\": \"=<\"", "thresholds[0].op: expected one of"},
      {"\"value\": 0.25", "\"value\": \"0.25\"", "thresholds[0].value: expected a finite number"},
      {"\"value\": 0.25", "\"value\": 1e400", "not JSON"},
      {"\"metric\": \"decode_logit_mse\"", "\"metrik\": \"decode_logit_mse\"",
       "thresholds[0]: a condition names one of"},
      {"[\"dense_ms\", \"compressed_ms\"]", "[\"dense_ms\"]", "thresholds[1].ratio: expected"},
      {"\"overhead\": 0.05", "\"overhead\": 1.5", "overhead must be in [0, 1)"},
      {"\"op\": \"==\", \"value\": 1}", "\"op\": \"==\", \"value\": 1, \"note\": 2}",
       "validity[0]: unknown field \"note\""},
      {"\n  ]}", "", "not JSON"},  // torn at the end
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    const std::string text = absl::StrReplaceAll(kOracle, {{c.from, c.to}});
    ASSERT_NE(text, kOracle) << "the case changes nothing: " << c.from;
    absl::StatusOr<GateSpec> spec = ParseGateSpec(text);
    ASSERT_FALSE(spec.ok());
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(spec.status().message(), HasSubstr(c.message));
  }
}

TEST(ParseGateSpecTest, NeedsAThreshold) {
  const std::string text = R"json({"id": "x", "version": 1, "created": "2026-01-01",
      "summary": "s", "target": {"model": "m", "context": null, "dtype": "f32",
      "decode_steps": null}, "multi_step_rule": "single_measurement", "validity": [],
      "thresholds": []})json";
  EXPECT_THAT(ParseGateSpec(text).status().message(), HasSubstr("at least one"));
}

TEST(SpecFileNameTest, VersionOneHasNoSuffix) {
  EXPECT_EQ(SpecFileName("speed_ceiling", 1), "speed_ceiling.json");
  EXPECT_EQ(SpecFileName("speed_ceiling", 2), "speed_ceiling.v2.json");
  EXPECT_EQ(SpecFileName("speed_ceiling", 12), "speed_ceiling.v12.json");
}

TEST(SatisfiesTest, BoundariesOfEachOp) {
  Condition c;
  c.value = 0.8;
  const std::pair<Op, bool> at_bound[] = {{Op::kLessEqual, true},
                                          {Op::kGreaterEqual, true},
                                          {Op::kLess, false},
                                          {Op::kGreater, false},
                                          {Op::kEqual, true}};
  for (const auto& [op, expected] : at_bound) {
    c.op = op;
    SCOPED_TRACE(OpSymbol(op));
    EXPECT_EQ(Satisfies(c, 8.0 / 10.0), expected);  // 8 of 10 is exactly the bar
  }
  c.op = Op::kGreaterEqual;
  EXPECT_FALSE(Satisfies(c, 0.7999999));
  EXPECT_TRUE(Satisfies(c, 0.9));
}

}  // namespace
}  // namespace kvgate::gates
