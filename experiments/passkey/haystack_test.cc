// The passkey task without a model: needle placement at the requested depth, haystacks from
// joined texts, pass keys, the answer's digits and the Wilson interval on hand cases.
//
// Run: tools/bazel test //experiments/passkey:haystack_test

#include "experiments/passkey/haystack.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

PasskeyFrame HandFrame() {
  PasskeyFrame f;
  f.head = {1, 2, 3};
  f.tail = {4, 5};
  return f;
}

std::vector<int64_t> Range(int64_t first, int64_t n) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(first + i);
  return ids;
}

TEST(HaystackTest, NeedleStartsAtTheDepthOfTheHaystack) {
  const std::vector<int64_t> needle = {900, 901, 902};
  const std::vector<int64_t> filler = Range(100, 200);
  // context 60, answer 5: haystack H = 60 - 5 - 3 - 3 - 2 = 47 tokens.
  EXPECT_EQ(HaystackTokens(HandFrame(), 3, 60, 5), 47);
  for (double depth : {0.1, 0.5, 0.9}) {
    absl::StatusOr<PasskeyTrial> t = BuildTrial(HandFrame(), filler, needle, depth, 60, 5);
    ASSERT_TRUE(t.ok()) << t.status();
    const int64_t at = std::llround(depth * 47);
    EXPECT_EQ(t->needle_at, 3 + at) << depth;
    EXPECT_EQ(t->prompt.size(), 3u + 47u + 3u);
    EXPECT_EQ(std::vector<int64_t>(t->prompt.begin(), t->prompt.begin() + 3),
              (std::vector<int64_t>{1, 2, 3}));
    EXPECT_EQ(std::vector<int64_t>(t->prompt.begin() + t->needle_at,
                                   t->prompt.begin() + t->needle_at + 3),
              needle);
    // The haystack's tokens keep their order around the needle: the first 47 of the filler.
    std::vector<int64_t> hay(t->prompt.begin() + 3, t->prompt.begin() + t->needle_at);
    hay.insert(hay.end(), t->prompt.begin() + t->needle_at + 3, t->prompt.end());
    EXPECT_EQ(hay, Range(100, 47));
    EXPECT_EQ(t->tail, (std::vector<int64_t>{4, 5}));
    EXPECT_EQ(static_cast<int64_t>(t->prompt.size() + t->tail.size()) + 5, 60);
  }
}

TEST(HaystackTest, BadTrialsAreRefused) {
  const std::vector<int64_t> needle = {900};
  EXPECT_THAT(BuildTrial(HandFrame(), Range(0, 100), needle, 0.0, 60, 5).status().message(),
              HasSubstr("depth 0 is not in (0, 1)"));
  EXPECT_THAT(BuildTrial(HandFrame(), Range(0, 100), needle, 1.0, 60, 5).status().message(),
              HasSubstr("depth"));
  EXPECT_THAT(BuildTrial(HandFrame(), Range(0, 100), needle, 0.5, 11, 5).status().message(),
              HasSubstr("leaves no room for a haystack"));
  EXPECT_THAT(BuildTrial(HandFrame(), Range(0, 10), needle, 0.5, 60, 5).status().message(),
              HasSubstr("a filler of 10 tokens"));
}

TEST(HaystackTest, FillerJoinsTextsFromTheTrialsTextAndWraps) {
  const std::vector<std::vector<int64_t>> texts = {Range(0, 5), Range(10, 5), Range(20, 5)};
  TextIds text = [&](int64_t i) -> absl::StatusOr<std::vector<int64_t>> { return texts[i]; };
  absl::StatusOr<Filler> f = BuildFiller(text, 3, 2, 9, {-1});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->ids, (std::vector<int64_t>{20, 21, 22, 23, 24, -1, 0, 1, 2}));
  EXPECT_EQ(f->texts, (std::vector<int64_t>{2, 0}));
  absl::StatusOr<Filler> one = BuildFiller(text, 3, 1, 4, {-1});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->ids, (std::vector<int64_t>{10, 11, 12, 13}));
  EXPECT_EQ(one->texts, (std::vector<int64_t>{1}));
  // All three texts and two separators hold 17 tokens: 18 is refused, naming the counts.
  EXPECT_TRUE(BuildFiller(text, 3, 0, 17, {-1}).ok());
  absl::StatusOr<Filler> too_long = BuildFiller(text, 3, 0, 18, {-1});
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(too_long.status().message(), HasSubstr("3 texts hold 15 tokens"));
}

TEST(HaystackTest, PassKeysAreSeededFiveDigitNumbers) {
  std::set<int64_t> keys;
  for (int64_t d = 0; d < 9; ++d) {
    for (int64_t t = 0; t < 5; ++t) {
      const int64_t k = PassKey(0, 2048, d, t);
      EXPECT_GE(k, 10000);
      EXPECT_LE(k, 99999);
      EXPECT_EQ(k, PassKey(0, 2048, d, t));
      keys.insert(k);
    }
  }
  EXPECT_GT(keys.size(), 40u);  // 45 draws from 90000 values: collisions are rare
  EXPECT_NE(PassKey(0, 2048, 0, 0), PassKey(1, 2048, 0, 0));
  EXPECT_NE(PassKey(0, 2048, 0, 0), PassKey(0, 4096, 0, 0));
  EXPECT_EQ(NeedleText(48213), " The pass key is 48213. Remember it. 48213 is the pass key. ");
}

TEST(HaystackTest, TheAnswersFirstNumber) {
  EXPECT_EQ(FirstDigitRun(" 48213."), "48213");
  EXPECT_EQ(FirstDigitRun("is 4821"), "4821");
  EXPECT_EQ(FirstDigitRun("12 and 48213"), "12");
  EXPECT_EQ(FirstDigitRun("no digits"), std::nullopt);
  EXPECT_EQ(FirstDigitRun(""), std::nullopt);
  EXPECT_FALSE(AnswerComplete(" 482"));  // the number may go on
  EXPECT_TRUE(AnswerComplete(" 48213."));
  EXPECT_TRUE(AnswerComplete(" 48213<|im_end|>"));
  EXPECT_FALSE(AnswerComplete(" the key"));
}

TEST(HaystackTest, WilsonIntervalOnHandCases) {
  // Wilson 95% intervals (z = 1.959964), from the closed form evaluated independently (Python),
  // the first three as in published tables: 0/10, 5/10, 10/10, 27/27, 20/27.
  struct Case {
    int64_t k, n;
    double low, high;
  } cases[] = {{0, 10, 0.0, 0.277533}, {5, 10, 0.236593, 0.763407},
               {10, 10, 0.722467, 1.0}, {27, 27, 0.875445, 1.0},
               {20, 27, 0.553214, 0.868296}};
  for (const Case& c : cases) {
    absl::StatusOr<gates::Interval> ci = WilsonInterval(c.k, c.n);
    ASSERT_TRUE(ci.ok());
    EXPECT_NEAR(ci->low, c.low, 1e-5) << c.k << "/" << c.n;
    EXPECT_NEAR(ci->high, c.high, 1e-5) << c.k << "/" << c.n;
  }
  EXPECT_FALSE(WilsonInterval(0, 0).ok());
  EXPECT_FALSE(WilsonInterval(3, 2).ok());
}

}  // namespace
}  // namespace kvgate::experiments
