// gated_cc_library, the permitted way: this test links //gates/testdata:permitted_impl, which
// builds only because its fixture records permit it, and reads the evidence its permit header
// carries. (The refused way: //gates:permit_check_test.)
#include <string>

#include "gates/testdata/permitted_impl.h"
#include "gates/testdata/permitted_impl_permit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::testing::HasSubstr;

TEST(GatedCcLibraryTest, APermittedLibraryBuildsAndCarriesItsEvidence) {
  EXPECT_DOUBLE_EQ(testdata::PermittedActiveFraction(), 0.35);
  const std::string evidence = kvgate::permits::gates_testdata_permitted_impl::kEvidence;
  EXPECT_THAT(evidence, HasSubstr("permission to implement //gates/testdata:permitted_impl on "
                                  "model Qwen2.5-7B-Instruct, context 8192"));
  EXPECT_THAT(evidence, HasSubstr("PERMITTED: global_block_mass:f=0.3500:b=16 passes "
                                  "speed_ceiling v2 and work_reduction_oracle v1"));
}

}  // namespace
}  // namespace kvgate::gates
