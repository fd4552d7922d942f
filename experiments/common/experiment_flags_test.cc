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

TEST(FitContextToModelTest, TheTargetContextIsCappedAnExplicitOneRefused) {
  CommonFlags target;
  target.context = 8192;
  target.decode_steps = 4;
  target.context_is_target = true;
  absl::StatusOr<std::string> note = FitContextToModel(&target, 8192);
  ASSERT_TRUE(note.ok()) << note.status();
  EXPECT_EQ(target.context, 8188);
  EXPECT_EQ(*note, "context 8188 tokens: the target's 8192 capped to the model's "
                   "max_position_embeddings 8192 minus 4 decode steps");

  CommonFlags fits = target;
  fits.context = 8192;
  EXPECT_EQ(*FitContextToModel(&fits, 32768), "context 8192 tokens (the target's)");
  EXPECT_EQ(fits.context, 8192);
  EXPECT_EQ(*FitContextToModel(&fits, 0), "context 8192 tokens (the target's)");  // unknown max

  CommonFlags explicit_context = fits;
  explicit_context.context_is_target = false;
  EXPECT_THAT(Message(FitContextToModel(&explicit_context, 8192).status()),
              HasSubstr("--context=8192 plus --decode_steps=4 exceeds the model's "
                        "max_position_embeddings 8192"));
  EXPECT_EQ(explicit_context.context, 8192);
  EXPECT_EQ(*FitContextToModel(&explicit_context, 32768), "context 8192 tokens (--context)");

  CommonFlags no_room = target;
  no_room.context = 8192;
  no_room.decode_steps = 9000;
  EXPECT_THAT(Message(FitContextToModel(&no_room, 8192).status()),
              HasSubstr("--decode_steps=9000 leaves no context"));
}

}  // namespace
}  // namespace kvgate::experiments
