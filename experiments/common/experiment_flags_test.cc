#include "experiments/common/experiment_flags.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(CheckCommonFlagsTest, NamesTheBadFlag) {
  CommonFlags flags;
  EXPECT_TRUE(CheckCommonFlags(flags).ok());
  flags.context = 0;
  EXPECT_THAT(Message(CheckCommonFlags(flags)), HasSubstr("--context=0 must be at least 1"));
  flags.context = 16;
  flags.decode_steps = -3;
  EXPECT_THAT(Message(CheckCommonFlags(flags)), HasSubstr("--decode_steps=-3 must be at least 1"));
  flags.decode_steps = 1;
  flags.dtype = "fp7";
  EXPECT_THAT(Message(CheckCommonFlags(flags)), HasSubstr("--dtype=fp7 is not one of"));
  flags.dtype = "bfloat16";
  flags.device = "tpu";
  EXPECT_THAT(Message(CheckCommonFlags(flags)), HasSubstr("--device=tpu is not one of"));
}

TEST(CheckContextFitsTest, TheModelsPositionsAndOneCopyOfTheCorpus) {
  CommonFlags flags;
  flags.context = 8188;
  flags.decode_steps = 4;
  EXPECT_TRUE(CheckContextFits(flags, 8192, 60000).ok());
  EXPECT_TRUE(CheckContextFits(flags, 0, 60000).ok());  // no known maximum
  flags.decode_steps = 5;
  EXPECT_THAT(Message(CheckContextFits(flags, 8192, 60000)),
              HasSubstr("--context=8188 plus --decode_steps=5 exceeds the model's "
                        "max_position_embeddings 8192"));
  EXPECT_THAT(Message(CheckContextFits(flags, 32768, 8000)),
              HasSubstr("--context=8188 is longer than the prompt corpus (8000 tokens)"));
  flags.context = 8000;
  EXPECT_TRUE(CheckContextFits(flags, 32768, 8000).ok());
}

}  // namespace
}  // namespace kvgate::experiments
