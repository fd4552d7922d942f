#include "gates/record.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_replace.h"
#include "gates/record_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::ExampleRecord;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kExampleLine[] =
    R"({"experiment":"qwen_oracle","variant":"global_block_mass:f=0.3760:b=16",)"
    R"("target":{"model":"Qwen2.5-7B-Instruct","weights_sha256":"random:seed=7","context":8192,)"
    R"("dtype":"bfloat16","device":"NVIDIA H100 80GB HBM3"},"step":2,)"
    R"("metrics":{"argmax_agreement":1.0,"decode_logit_mse":0.0312,)"
    R"("layer_median_o_proj_rel_l2":0.041,"reference_finite":1.0,"top10_overlap":0.9},)"
    R"("gate":{"id":"work_reduction_oracle","version":1,)"
    R"("spec_sha256":"1384de09e2b19bae000a9ea719f4206862fd342f1d11fcb7afb210cc76011936",)"
    R"("verdict":"pass","failed":[]},)"
    R"("provenance":{"git_commit":"6f4a41a","dirty":false,"build_config":"opt --config=cuda",)"
    R"("torch_version":"2.11.0","cuda_version":"13.0","host":"gpu-1",)"
    R"("start_time":"2026-11-27T18:20:00Z","seed":7}})";

TEST(RecordToJsonLineTest, WritesTheSchemaInOrder) {
  absl::StatusOr<std::string> line = RecordToJsonLine(ExampleRecord(2));
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, kExampleLine);
}

TEST(RecordFromJsonLineTest, ReadsTheExample) {
  absl::StatusOr<Record> r = RecordFromJsonLine(kExampleLine);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->experiment, "qwen_oracle");
  EXPECT_EQ(r->target, ExampleRecord().target);
  EXPECT_EQ(r->step, 2);
  EXPECT_EQ(r->metrics, ExampleRecord().metrics);
  EXPECT_EQ(r->gate.id, "work_reduction_oracle");
  EXPECT_EQ(r->gate.verdict, Verdict::kPass);
  EXPECT_EQ(r->provenance.seed, 7);
  EXPECT_EQ(r->provenance.build_config, "opt --config=cuda");
}

TEST(RecordTest, RoundTripsExactlyWithNullStepAndFailedConditions) {
  Record r = ExampleRecord();
  r.step.reset();
  r.metrics["kl_divergence"] = 0.1 + 0.2;  // 0.30000000000000004 must survive
  r.metrics["tiny"] = 5e-324;
  r.gate.verdict = Verdict::kFail;
  r.gate.failed = {"top10_overlap = 0.7 fails >= 0.8", "ünïcödé"};
  r.provenance.dirty = true;
  r.provenance.torch_version = "";
  absl::StatusOr<Record> back = RecordFromJsonLine(*RecordToJsonLine(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->step.has_value());
  EXPECT_EQ(back->metrics, r.metrics);
  EXPECT_EQ(back->gate.failed, r.gate.failed);
  EXPECT_EQ(back->gate.verdict, Verdict::kFail);
  EXPECT_TRUE(back->provenance.dirty);
  EXPECT_EQ(*RecordToJsonLine(*back), *RecordToJsonLine(r));
}

TEST(RecordTest, ARecordWithoutAGateRoundTripsAsGateNull) {
  Record r = ExampleRecord();
  r.experiment = "k0_prep";
  r.gate = GateResult();  // no gate judges it
  ASSERT_FALSE(HasGate(r));
  absl::StatusOr<std::string> line = RecordToJsonLine(r);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_THAT(*line, HasSubstr(R"("gate":null,"provenance")"));
  absl::StatusOr<Record> back = RecordFromJsonLine(*line);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(HasGate(*back));
  EXPECT_EQ(back->gate.version, 0);
  EXPECT_EQ(back->metrics, r.metrics);
  EXPECT_EQ(*RecordToJsonLine(*back), *line);

  // Half a gate is refused: an empty id with a verdict, or a gate object with an empty id.
  r.gate.verdict = Verdict::kPass;
  EXPECT_THAT(std::string(RecordToJsonLine(r).status().message()),
              HasSubstr("gate.id is empty but the gate has other fields set"));
  const std::string empty_id =
      absl::StrReplaceAll(kExampleLine, {{R"("id":"work_reduction_oracle")", R"("id":"")"}});
  EXPECT_THAT(std::string(RecordFromJsonLine(empty_id).status().message()),
              HasSubstr("gate.id: expected a non-empty string"));
}

TEST(RecordTest, NonFiniteMetricsAreStringsNeverNull) {
  Record r = ExampleRecord();
  r.metrics["decode_logit_mse"] = std::numeric_limits<double>::quiet_NaN();
  r.metrics["kl_divergence"] = std::numeric_limits<double>::infinity();
  r.metrics["relative_l2"] = -std::numeric_limits<double>::infinity();
  r.gate.verdict = Verdict::kInvalid;
  r.gate.failed = {"decode_logit_mse is NaN"};
  const std::string line = *RecordToJsonLine(r);
  EXPECT_THAT(line, HasSubstr(R"("decode_logit_mse":"NaN")"));
  EXPECT_THAT(line, HasSubstr(R"("kl_divergence":"Infinity")"));
  EXPECT_THAT(line, HasSubstr(R"("relative_l2":"-Infinity")"));
  EXPECT_THAT(line, Not(HasSubstr("null")));
  absl::StatusOr<Record> back = RecordFromJsonLine(line);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(std::isnan(back->metrics["decode_logit_mse"]));
  EXPECT_EQ(back->metrics["kl_divergence"], std::numeric_limits<double>::infinity());
  EXPECT_EQ(back->metrics["relative_l2"], -std::numeric_limits<double>::infinity());
}

TEST(RecordFromJsonLineTest, RejectsMalformedRows) {
  struct Case {
    const char* from;
    const char* to;
    const char* message;
  } cases[] = {
      {R"("decode_logit_mse":0.0312)", R"("decode_logit_mse":null)",
       "metrics.decode_logit_mse: expected a number or \"NaN\""},
      {R"("decode_logit_mse":0.0312)", R"("decode_logit_mse":"nan")", "metrics.decode_logit_mse"},
      {R"("decode_logit_mse":0.0312)", R"("decode_logit_mse":0.0312,"top10_overlap":0.1)",
       "duplicate key \"top10_overlap\""},
      {R"("step":2)", R"("step":-1)", "step must be >= 0"},
      {R"("step":2)", R"("step":2.5)", "step: expected an integer or null"},
      {R"("context":8192)", R"("context":"8192")", "target.context: expected an integer"},
      {R"("context":8192)", R"("context":0)", "target.context must be > 0"},
      {R"("verdict":"pass")", R"("verdict":"PASS")", "expected pass, fail or invalid"},
      {R"("verdict":"pass","failed":[])", R"("verdict":"pass","failed":["x"])",
       "empty exactly when the verdict is pass"},
      {R"("verdict":"pass","failed":[])", R"("verdict":"fail","failed":[])",
       "empty exactly when the verdict is pass"},
      {R"("failed":[])", R"("failed":[1])", "gate.failed: expected a list of strings"},
      {R"("spec_sha256":"138)", R"("spec_sha256":"13B)", "not 64 lowercase hex digits"},
      {R"("version":1)", R"("version":0)", "gate.version must be >= 1"},
      {R"("dirty":false)", R"("dirty":"no")", "provenance.dirty: expected true or false"},
      {R"("host":"gpu-1")", R"("host":"")", "provenance.host: expected a non-empty string"},
      {R"("seed":7)", R"("seed":7,"nonce":1)", "provenance: unknown field \"nonce\""},
      {R"("variant":"global_block_mass:f=0.3760:b=16",)", "", "top level: missing \"variant\""},
      {R"("metrics":{"argmax_agreement":1.0,"decode_logit_mse":0.0312,)"
       R"("layer_median_o_proj_rel_l2":0.041,"reference_finite":1.0,"top10_overlap":0.9})",
       R"("metrics":{})", "metrics is empty"},
      {R"("top10_overlap":0.9})", R"("Top10":0.9})", "metric name \"Top10\""},
      {R"(,"seed":7}})", R"(,"seed":7})", "not JSON"},  // torn
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    const std::string line = absl::StrReplaceAll(kExampleLine, {{c.from, c.to}});
    ASSERT_NE(line, kExampleLine) << "the case changes nothing: " << c.from;
    absl::StatusOr<Record> r = RecordFromJsonLine(line);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  }
}

TEST(RecordToJsonLineTest, RefusesToWriteAnInvalidRecord) {
  Record r = ExampleRecord();
  r.gate.failed = {"a reason on a pass"};
  EXPECT_FALSE(RecordToJsonLine(r).ok());
  r = ExampleRecord();
  r.target.device = "";
  EXPECT_THAT(std::string(RecordToJsonLine(r).status().message()), HasSubstr("target.device"));
  r = ExampleRecord();
  r.variant = "\xff\xfe";  // not UTF-8
  EXPECT_THAT(std::string(RecordToJsonLine(r).status().message()), HasSubstr("cannot write"));
}

TEST(VerdictNameTest, RoundTrips) {
  for (Verdict v : {Verdict::kPass, Verdict::kFail, Verdict::kInvalid}) {
    EXPECT_EQ(*ParseVerdict(VerdictName(v)), v);
  }
  EXPECT_FALSE(ParseVerdict("maybe").ok());
}

}  // namespace
}  // namespace kvgate::gates
