#include "gates/permit.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gates/file_io.h"
#include "gates/testing_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::CopyOfFolder;
using ::kvgate::gates::testing::ListedFiles;
using ::testing::HasSubstr;
using ::testing::Not;

Evidence Load(const std::string& set, const std::string& spec_dir = "gates/specs") {
  absl::StatusOr<Evidence> evidence = LoadEvidence(
      ListedFiles(spec_dir, ".json"), ListedFiles("gates/testdata/records/" + set, ".jsonl"));
  EXPECT_TRUE(evidence.ok()) << evidence.status();
  return evidence.ok() ? *evidence : Evidence();
}

PermitRequest Request() {
  PermitRequest r;
  r.label = "//x:impl";
  r.model = "Qwen2.5-7B-Instruct";
  r.context = 8192;
  r.dtype = "bfloat16";
  r.device = "NVIDIA H100 80GB HBM3";
  return r;
}

TEST(DecidePermitTest, PermittedWhenOneVariantPassesBothGates) {
  const PermitDecision d = DecidePermit(Load("permitted"), Request());
  EXPECT_TRUE(d.permitted) << d.message;
  EXPECT_EQ(d.message,
            "permission to implement //x:impl on model Qwen2.5-7B-Instruct, context 8192, dtype "
            "bfloat16, device NVIDIA H100 80GB HBM3\n"
            "  global_block_mass:f=0.3500:b=16: speed_ceiling v2 pass; work_reduction_oracle v1 "
            "pass\n"
            "  global_block_mass:f=0.3760:b=16: speed_ceiling v2 FAIL (projected_speedup at h = "
            "0.05 = 1.18824 fails >= 1.2); work_reduction_oracle v1 pass\n"
            "PERMITTED: global_block_mass:f=0.3500:b=16 passes speed_ceiling v2 and "
            "work_reduction_oracle v1\n");
}

TEST(DecidePermitTest, RefusedWhenTheSpeedCeilingFailsWithTheNumbers) {
  const PermitDecision d = DecidePermit(Load("refused"), Request());
  EXPECT_FALSE(d.permitted);
  EXPECT_THAT(d.message, HasSubstr("global_block_mass:f=0.3760:b=16: speed_ceiling v2 FAIL "
                                   "(projected_speedup at h = 0.05 = 1.18824 fails >= 1.2); "
                                   "work_reduction_oracle v1 pass\n"));
  EXPECT_THAT(d.message, HasSubstr("REFUSED: no passing speed_ceiling v2 on this target\n"));
}

TEST(DecidePermitTest, EachGatePassingForAnotherVariantIsNotEnough) {
  const Evidence evidence = Load("refused_mixed");
  PermitDecision d = DecidePermit(evidence, Request());
  EXPECT_FALSE(d.permitted);
  EXPECT_THAT(d.message, HasSubstr("global_block_mass:f=0.3500:b=16: speed_ceiling v2 pass; "
                                   "work_reduction_oracle v1 FAIL (step 2: top10_overlap = 0.7 "
                                   "fails >= 0.8)"));
  EXPECT_THAT(d.message, HasSubstr("REFUSED: no single variant passes speed_ceiling v2 and "
                                   "work_reduction_oracle v1 on this target"));
  PermitRequest any_variant = Request();
  any_variant.same_variant = false;
  d = DecidePermit(evidence, any_variant);
  EXPECT_TRUE(d.permitted) << d.message;
  EXPECT_THAT(d.message, HasSubstr("PERMITTED: each of speed_ceiling v2 and work_reduction_oracle "
                                   "v1 has a passing variant"));
}

TEST(DecidePermitTest, OnlyTheSameTargetCounts) {
  const Evidence evidence = Load("permitted");
  for (auto change : std::vector<void (*)(PermitRequest&)>{
           [](PermitRequest& r) { r.device = "NVIDIA A100-SXM4-80GB"; },
           [](PermitRequest& r) { r.context = 32768; },
           [](PermitRequest& r) { r.dtype = "float16"; },
           [](PermitRequest& r) { r.model = "Qwen2.5-14B-Instruct"; }}) {
    PermitRequest request = Request();
    change(request);
    const PermitDecision d = DecidePermit(evidence, request);
    EXPECT_FALSE(d.permitted) << d.message;
    EXPECT_THAT(d.message, HasSubstr("no record of speed_ceiling v2 or work_reduction_oracle v1 on "
                                     "this target"));
  }
}

TEST(DecidePermitTest, NoRecordsNoPermission) {
  absl::StatusOr<Evidence> none = LoadEvidence(ListedFiles("gates/specs", ".json"), {});
  ASSERT_TRUE(none.ok()) << none.status();
  const PermitDecision d = DecidePermit(*none, Request());
  EXPECT_FALSE(d.permitted);
  EXPECT_THAT(d.message, HasSubstr("REFUSED: no passing speed_ceiling v2, no passing "
                                   "work_reduction_oracle v1 on this target"));
}

TEST(DecidePermitTest, BrokenEvidenceRefuses) {
  const PermitDecision d = DecidePermit(Load("bad_verdict"), Request());
  EXPECT_FALSE(d.permitted);
  EXPECT_THAT(d.message, HasSubstr("REFUSED: the committed evidence does not re-judge cleanly:\n"
                                   "  gates/testdata/records/bad_verdict/"
                                   "work_reduction_oracle.jsonl:3: stores verdict pass"));
}

TEST(DecidePermitTest, AnUnregisteredGateRefuses) {
  PermitRequest request = Request();
  request.gates = {"speed_ceiling", "no_such_gate"};
  EXPECT_THAT(DecidePermit(Load("permitted"), request).message,
              HasSubstr("REFUSED: no spec is registered for gate no_such_gate"));
}

// A new version of a gate supersedes the old one: records judged by v1 no longer permit.
TEST(DecidePermitTest, TheLatestSpecVersionGoverns) {
  const std::string dir = CopyOfFolder("gates/specs", ".json");
  const std::string v1 = *ReadFile(dir + "/work_reduction_oracle.json");
  const std::string v2 = absl::StrReplaceAll(
      v1, {{"\"version\": 1", "\"version\": 2"}, {"\"value\": 0.25}", "\"value\": 0.20}"}});
  ASSERT_NE(v2, v1);
  ASSERT_TRUE(AtomicWriteFile(dir + "/work_reduction_oracle.v2.json", v2).ok());
  const PermitDecision d = DecidePermit(Load("permitted", dir), Request());
  EXPECT_FALSE(d.permitted) << d.message;
  EXPECT_THAT(d.message, HasSubstr("work_reduction_oracle v2 no record"));
  EXPECT_THAT(d.message, Not(HasSubstr("work_reduction_oracle v1")));
}

TEST(PermitHeaderTest, NamesTheEvidenceAfterTheLabel) {
  const std::string header = PermitHeader("//kernels/select:block-select", "PERMITTED: x\n");
  EXPECT_THAT(header, HasSubstr("#ifndef KVGATE_PERMITS_KERNELS_SELECT_BLOCK_SELECT_H_\n"));
  EXPECT_THAT(header, HasSubstr("namespace kvgate::permits::kernels_select_block_select {"));
  EXPECT_THAT(header, HasSubstr("kEvidence[] = R\"kvgate_permit(PERMITTED: x\n)kvgate_permit\";"));
}

}  // namespace
}  // namespace kvgate::gates
