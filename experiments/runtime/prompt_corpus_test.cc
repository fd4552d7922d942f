// Tests of the license prompt corpus (prompt_corpus.h): the pinned files verify on this machine, a
// changed file is an error naming it, and prompts have exactly the asked token count, repeating the
// corpus (and saying so) when it is too short. Tokenizer: the embedded SmolLM2's.
//
// Run: tools/bazel test //experiments/runtime:prompt_corpus_test

#include "experiments/runtime/prompt_corpus.h"

#include <string>

#include "absl/strings/match.h"
#include "experiments/runtime/loader_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;

// The embedded model's tokenizer; the same helper as prompt_set_test.cc's, kept local so that
// loader_test_util (every loader test's helper) does not build the tokenizer.
Tokenizer SmolLM2() {
  absl::StatusOr<Tokenizer> tok = LoadTokenizer(testing::SmolLM2GgufPath());
  EXPECT_TRUE(tok.ok()) << tok.status();
  return *std::move(tok);
}

TEST(PromptCorpusTest, PinnedFilesVerify) {
  absl::StatusOr<std::string> corpus = LoadLicenseCorpus();
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  uint64_t bytes = 0;
  for (const CorpusFile& f : LicenseCorpusFiles()) bytes += f.bytes + 2;
  EXPECT_EQ(corpus->size(), bytes - 2);
  EXPECT_TRUE(absl::StartsWith(
      *corpus, "                    GNU GENERAL PUBLIC LICENSE\n                       Version 3"));
}

TEST(PromptCorpusTest, AChangedFileIsNamed) {
  const std::string dir = testing::MakeTempDir("licenses");
  for (const CorpusFile& f : LicenseCorpusFiles()) {
    std::string text = testing::ReadTestFile(std::string(kCommonLicensesDir) + "/" + f.name);
    if (std::string(f.name) == "MPL-2.0") text[100] ^= 1;
    testing::WriteFile(dir + "/" + f.name, text);
  }
  absl::StatusOr<std::string> corpus = LoadLicenseCorpus(dir);
  EXPECT_TRUE(absl::IsFailedPrecondition(corpus.status()));
  EXPECT_THAT(std::string(corpus.status().message()), HasSubstr(dir + "/MPL-2.0 has sha256 "));
  EXPECT_THAT(std::string(LoadLicenseCorpus("/nonexistent").status().message()),
              HasSubstr("/nonexistent/GPL-3"));
}

TEST(PromptCorpusTest, ExactTokenCountsAndRepetition) {
  const Tokenizer tok = SmolLM2();
  absl::StatusOr<CorpusPrompt> small = LicenseCorpusPrompt(tok, 1000);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->ids.size(), 1000u);
  EXPECT_EQ(small->copies, 1);
  EXPECT_THAT(small->note, HasSubstr("cut to 1000 tokens"));
  EXPECT_THAT(small->note, ::testing::Not(HasSubstr("repeated")));
  EXPECT_TRUE(absl::StartsWith(*LoadLicenseCorpus(), tok.Decode(small->ids)));
  EXPECT_GT(small->corpus_tokens, 40000);

  const int64_t n = small->corpus_tokens * 2 + 123;
  absl::StatusOr<CorpusPrompt> big = LicenseCorpusPrompt(tok, n);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(static_cast<int64_t>(big->ids.size()), n);
  EXPECT_EQ(big->copies, 3);
  EXPECT_THAT(big->note, HasSubstr("repeated 3 times"));
  EXPECT_EQ(std::vector<int32_t>(big->ids.begin(), big->ids.begin() + 1000), small->ids);
  EXPECT_FALSE(LicenseCorpusPrompt(tok, 0).ok());
}

}  // namespace
}  // namespace kvgate::runtime
