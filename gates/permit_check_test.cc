// The permission both ways, through the permit_check binary that gated_cc_library runs as a build
// action: exit 0 and a header for the `permitted` records, exit 1 and the failed gate with its
// numbers for the `refused` ones (a build failure cannot be a passing test, so the refusal is
// checked here; `tools/bazel build //gates/testdata:refused_impl` shows it as a build error).
#include <string>

#include "absl/strings/str_cat.h"
#include "gates/file_io.h"
#include "gates/testing_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::CommandResult;
using ::kvgate::gates::testing::RunCommand;
using ::testing::HasSubstr;

std::string PermitCheck(const std::string& flags, const std::string& records_set) {
  return absl::StrCat(
      "gates/permit_check --label=//gates/testdata:impl --model=Qwen2.5-7B-Instruct "
      "--context=8192 --dtype=bfloat16 --device='NVIDIA H100 80GB HBM3' --specs_dir=gates/specs ",
      flags, " gates/testdata/records/", records_set, "/*.jsonl");
}

TEST(PermitCheckTest, PermittedWritesTheHeader) {
  const std::string out = std::string(getenv("TEST_TMPDIR")) + "/impl_permit.h";
  const CommandResult r = RunCommand(PermitCheck("--out=" + out, "permitted"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("PERMITTED: global_block_mass:f=0.3500:b=16"));
  absl::StatusOr<std::string> header = ReadFile(out);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_THAT(*header, HasSubstr("namespace kvgate::permits::gates_testdata_impl {"));
}

TEST(PermitCheckTest, RefusedSaysWhichGateFailedWithTheNumbers) {
  const std::string out = std::string(getenv("TEST_TMPDIR")) + "/refused_permit.h";
  const CommandResult r = RunCommand(PermitCheck("--out=" + out, "refused"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("permission to implement //gates/testdata:impl on model "
                                  "Qwen2.5-7B-Instruct, context 8192, dtype bfloat16, device "
                                  "NVIDIA H100 80GB HBM3\n"));
  EXPECT_THAT(r.output, HasSubstr("speed_ceiling v2 FAIL (projected_speedup at h = 0.05 = 1.18824 "
                                  "fails >= 1.2)"));
  EXPECT_THAT(r.output, HasSubstr("REFUSED: no passing speed_ceiling v2 on this target"));
  EXPECT_FALSE(ReadFile(out).ok()) << "a refusal writes no header";
}

TEST(PermitCheckTest, SameVariantCanBeRelaxed) {
  EXPECT_EQ(RunCommand(PermitCheck("", "refused_mixed")).exit_code, 1);
  EXPECT_EQ(RunCommand(PermitCheck("--nosame_variant", "refused_mixed")).exit_code, 0);
}

TEST(PermitCheckTest, BrokenEvidenceIsRefused) {
  const CommandResult r = RunCommand(PermitCheck("", "torn"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(":4: torn line"));
}

TEST(PermitCheckTest, WrongFlagsAreUsageErrors) {
  CommandResult r = RunCommand("gates/permit_check --specs_dir=gates/specs");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("all are required"));
  r = RunCommand(PermitCheck("--specs=gates/specs/speed_ceiling.json", "permitted"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("give one of --specs or --specs_dir"));
}

}  // namespace
}  // namespace kvgate::gates
