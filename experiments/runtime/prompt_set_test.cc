// Tests of prompt sets (prompt_set.h): the committed debian_texts set verifies on this machine,
// every one of its texts (a missing file fails the test, naming it: nothing is skipped), windows
// have exactly the asked token count, and bad input is refused with one line naming the file: a
// malformed manifest, an empty text, a sha256 mismatch, a text shorter than the window.
// Tokenizer: the embedded SmolLM2's.
//
// Run: tools/bazel test //experiments/runtime:prompt_set_test

#include "experiments/runtime/prompt_set.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "experiments/runtime/loader_test_util.h"
#include "gates/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;

// The embedded model's tokenizer; the same helper as prompt_corpus_test.cc's, kept local so that
// loader_test_util (every loader test's helper) does not build the tokenizer.
Tokenizer SmolLM2() {
  absl::StatusOr<Tokenizer> tok = LoadTokenizer(testing::SmolLM2GgufPath());
  EXPECT_TRUE(tok.ok()) << tok.status();
  return *std::move(tok);
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(PromptSetTest, DebianTextsVerifyEveryText) {
  absl::StatusOr<std::vector<PromptSetEntry>> set = LoadPromptSetManifest(kDebianTextsManifest);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->size(), 40u);
  std::set<std::string> digests;
  for (const PromptSetEntry& e : *set) digests.insert(e.sha256);
  EXPECT_EQ(digests.size(), set->size()) << "the texts must be distinct";
  // Every text, at the longest window the runner's default context supports (1024 + 64 + 1).
  absl::StatusOr<PromptWindows> w = LoadPromptWindows(SmolLM2(), *set, 40, 1024 + 64 + 1);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->windows.size(), 40u);
  for (const PromptWindow& window : w->windows) {
    EXPECT_EQ(window.ids.size(), 1089u) << window.source;
    EXPECT_GE(window.text_tokens, 1089) << window.source;
  }
  EXPECT_EQ(w->windows[0].source, "/usr/share/common-licenses/GPL-3");
  EXPECT_THAT(w->note, HasSubstr("40 of 40 texts"));
  EXPECT_THAT(w->note, HasSubstr("first 1089 tokens"));
}

TEST(PromptSetTest, WindowIsTheTextsFirstTokens) {
  const std::string dir = testing::MakeTempDir("prompt_set");
  const std::string text = "The quick brown fox jumps over the lazy dog. It was not amused.";
  testing::WriteFile(dir + "/a.txt", text);
  const Tokenizer tok = SmolLM2();
  const std::vector<PromptSetEntry> set = {{gates::Sha256Hex(text), dir + "/a.txt"}};
  absl::StatusOr<PromptWindows> w = LoadPromptWindows(tok, set, 1, 5);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::vector<int32_t> all = tok.Encode(text, false);
  EXPECT_EQ(w->windows[0].ids, std::vector<int32_t>(all.begin(), all.begin() + 5));
  EXPECT_EQ(w->windows[0].text_tokens, static_cast<int64_t>(all.size()));
  // The set's sha256 is of the chosen lines.
  EXPECT_EQ(w->set_sha256, gates::Sha256Hex(gates::Sha256Hex(text) + "  " + dir + "/a.txt\n"));
}

TEST(PromptSetTest, BadInputIsRefusedNamingTheFile) {
  const std::string dir = testing::MakeTempDir("prompt_set_bad");
  const Tokenizer tok = SmolLM2();
  testing::WriteFile(dir + "/empty.txt", "");
  testing::WriteFile(dir + "/short.txt", "Too short.");
  const std::string zeros(64, '0');

  absl::Status empty = LoadPromptWindows(tok, {{gates::Sha256Hex(""), dir + "/empty.txt"}}, 1, 4).status();
  EXPECT_EQ(Message(empty), "prompt set: " + dir + "/empty.txt is empty");

  absl::Status mismatch = LoadPromptWindows(tok, {{zeros, dir + "/short.txt"}}, 1, 2).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(mismatch));
  EXPECT_THAT(Message(mismatch), HasSubstr(dir + "/short.txt has sha256 " +
                                           gates::Sha256Hex(std::string("Too short."))));
  EXPECT_THAT(Message(mismatch), HasSubstr("the set pins " + zeros));

  absl::Status shorter =
      LoadPromptWindows(tok, {{gates::Sha256Hex(std::string("Too short.")), dir + "/short.txt"}}, 1, 512)
          .status();
  EXPECT_THAT(Message(shorter), HasSubstr(dir + "/short.txt has "));
  EXPECT_THAT(Message(shorter), HasSubstr("shorter than the window of 512 tokens"));

  absl::Status missing = LoadPromptWindows(tok, {{zeros, dir + "/nothing.txt"}}, 1, 2).status();
  EXPECT_THAT(Message(missing), HasSubstr(dir + "/nothing.txt"));

  EXPECT_THAT(Message(LoadPromptWindows(tok, {{zeros, dir + "/short.txt"}}, 2, 2).status()),
              HasSubstr("asked for 2 windows, the set has 1 texts"));
  for (const absl::Status& s : {empty, mismatch, shorter, missing}) {
    EXPECT_EQ(Message(s).find('\n'), std::string::npos) << "one line: " << s;
  }
}

TEST(PromptSetTest, MalformedManifestsAreRefused) {
  const std::string hex(64, 'a');
  EXPECT_THAT(Message(ParsePromptSetManifest("# only a comment\n\n", "m.sha256").status()),
              HasSubstr("prompt set m.sha256 lists no texts"));
  EXPECT_THAT(Message(ParsePromptSetManifest("abc  /x\n", "m.sha256").status()),
              HasSubstr("prompt set m.sha256 line 1: expected"));
  EXPECT_THAT(Message(ParsePromptSetManifest(hex + "\n", "m.sha256").status()),
              HasSubstr("line 1: expected"));
  EXPECT_THAT(
      Message(ParsePromptSetManifest(hex + "  /x\n# c\n" + hex + "  /x\n", "m.sha256").status()),
      HasSubstr("line 3: /x is listed twice"));
  absl::StatusOr<std::vector<PromptSetEntry>> ok =
      ParsePromptSetManifest("# c\n" + hex + "  /x\n" + hex + " */y\n", "m.sha256");
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[1].path, "/y");
  EXPECT_THAT(Message(LoadPromptSetManifest("/nonexistent.sha256").status()),
              HasSubstr("/nonexistent.sha256"));
}

}  // namespace
}  // namespace kvgate::runtime
