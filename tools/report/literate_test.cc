#include "tools/report/literate.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::report {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kTemplate[] =
    "# Title\n"
    "\n"
    "Narrative with <!-- other comment --> and | pipes.\n"
    "<!-- report:begin table -->\n"
    "<!-- report:end table -->\n"
    "Between the blocks.\n"
    "<!-- report:begin plot -->\n"
    "<!-- report:end plot -->\n"
    "Last words, no newline";

TEST(LiterateTest, FillsBlocksAndCopiesTheWordsByteForByte) {
  absl::StatusOr<Template> t = ParseTemplate(kTemplate, "t.md");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->BlockNames(), ElementsAre("table", "plot"));
  absl::StatusOr<std::string> out =
      FillTemplate(*t, {{"table", "| a |\n"}, {"plot", ""}}, "<!-- generated -->");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "<!-- generated -->\n"
            "# Title\n"
            "\n"
            "Narrative with <!-- other comment --> and | pipes.\n"
            "<!-- report:begin table -->\n"
            "| a |\n"
            "<!-- report:end table -->\n"
            "Between the blocks.\n"
            "<!-- report:begin plot -->\n"
            "<!-- report:end plot -->\n"
            "Last words, no newline");
}

TEST(LiterateTest, ABlockMustAppearOnceAndEveryOfferedBlockMustBeUsed) {
  absl::StatusOr<Template> t = ParseTemplate(kTemplate, "t.md");
  ASSERT_TRUE(t.ok());
  absl::StatusOr<std::string> missing =
      FillTemplate(*t, {{"table", ""}, {"plot", ""}, {"steps", ""}}, "h");
  EXPECT_THAT(missing.status().message(), HasSubstr("t.md: missing blocks steps"));
  absl::StatusOr<std::string> unknown = FillTemplate(*t, {{"table", ""}}, "h");
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown blocks plot (line 7)"));
}

TEST(LiterateTest, MalformedTemplatesNameFileAndLine) {
  const std::map<std::string, std::string> bad = {
      {"# x\n<!-- report:begin a -->\nwords\n<!-- report:end a -->\n",
       "t.md:3: block a (opened on line 2) must be empty"},
      {"<!-- report:begin a -->\n", "t.md:1: block a is not closed"},
      {"x\n<!-- report:end a -->\n", "t.md:2: \"<!-- report:end a -->\" closes no open block"},
      {"<!-- report:begin a -->\n<!-- report:end a -->\n<!-- report:begin a -->\n"
       "<!-- report:end a -->\n",
       "t.md:3: block a appears twice"},
      {"<!-- report:begin A-b -->\n<!-- report:end A-b -->\n", "t.md:1: block name \"A-b\""},
      {"text <!-- report:begin a -->\n", "t.md:1: a report marker must be alone on its line"},
      {"<!-- report:begin a -->\n<!-- report:end b -->\n", "t.md:2: block a"},
  };
  for (const auto& [text, message] : bad) {
    SCOPED_TRACE(text);
    absl::StatusOr<Template> t = ParseTemplate(text, "t.md");
    ASSERT_FALSE(t.ok());
    EXPECT_THAT(t.status().message(), HasSubstr(message));
  }
}

TEST(LiterateTest, ContentMustEndInANewline) {
  absl::StatusOr<Template> t =
      ParseTemplate("<!-- report:begin a -->\n<!-- report:end a -->\n", "t.md");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(FillTemplate(*t, {{"a", "no newline"}}, "h").ok());
}

TEST(LiterateTest, ANumberInTheWordsMustComeFromABlock) {
  const std::string words =
      "# int4 and K1 keep top-10 names, float32 too\n"
      "\n"
      "The bar is 0.25 on 32 windows.\n"
      "<!-- report:begin table -->\n"
      "<!-- report:end table -->\n"
      "Here MSE is 2.285.\n";
  absl::StatusOr<Template> t = ParseTemplate(words, "t.md");
  ASSERT_TRUE(t.ok()) << t.status();
  // Every number of the words is in the block ("0.2500" is 0.25; "block=32" holds 32).
  EXPECT_TRUE(CheckNumbersInWords(*t, {{"table", "| block=32 | 0.2500 | 2.2850 |\n"}}).ok());
  // A number typed by hand is named with its line, in the words before or after a block.
  absl::Status s = CheckNumbersInWords(*t, {{"table", "| block=32 | 0.2500 | 2.2849 |\n"}});
  EXPECT_THAT(s.message(), HasSubstr("t.md:6: the number 2.285 in the words is in no generated "
                                     "block of this report"));
  s = CheckNumbersInWords(*t, {{"table", "| block=32 | 2.285 |\n"}});
  EXPECT_THAT(s.message(), HasSubstr("t.md:3: the number 0.25 in the words"));
}

}  // namespace
}  // namespace kvgate::report
