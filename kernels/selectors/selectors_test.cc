// Tests of the selectors (selectors.h) on hand-built attention masses and scores where the right
// selection is known, on random inputs for their invariants (kept fraction >= f, rank order,
// Quest's bound), spec parsing and canonical names, bad input, and a selection used by
// SelectedDecodeAttention.
//
// Run: tools/bazel test //kernels/selectors:selectors_test

#include "kernels/selectors/selectors.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/attention/attention.h"

namespace kvgate::kernels {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// The kept tokens of each row.
std::vector<std::vector<int64_t>> Rows(const Selection& s) {
  absl::StatusOr<std::vector<std::vector<int64_t>>> rows = SelectionRows(s.history, s.tokens);
  EXPECT_TRUE(rows.ok()) << rows.status();
  return rows.ok() ? *rows : std::vector<std::vector<int64_t>>{};
}

// Checks the reported counts against the selection itself.
void ExpectHonestCounts(const Selection& s) {
  int64_t kept = 0;
  const std::vector<std::vector<int64_t>> rows = Rows(s);
  for (const auto& row : rows) kept += static_cast<int64_t>(row.size());
  EXPECT_EQ(s.rows, static_cast<int64_t>(rows.size()));
  EXPECT_EQ(s.kept, kept);
  EXPECT_DOUBLE_EQ(s.active_fraction, static_cast<double>(kept) / (s.rows * s.tokens));
  EXPECT_DOUBLE_EQ(s.active_fraction, *ActiveFraction(s.history, s.tokens));
}

Selection Ok(absl::StatusOr<Selection> s) {
  EXPECT_TRUE(s.ok()) << s.status();
  if (s.ok()) ExpectHonestCounts(*s);
  return s.ok() ? *std::move(s) : Selection{};
}

// step_probs [layers, heads, T] with the given mass per block spread evenly over its tokens.
torch::Tensor BlockMasses(const std::vector<std::vector<std::vector<double>>>& mass, int64_t tokens,
                          int64_t b) {
  const int64_t layers = mass.size(), heads = mass[0].size();
  torch::Tensor p = torch::zeros({layers, heads, tokens}, torch::kFloat64);
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t t = 0; t < tokens; ++t) {
        const int64_t j = t / b;
        const int64_t len = std::min(tokens, (j + 1) * b) - j * b;
        p[l][h][t] = mass[l][h][j] / len;
      }
    }
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Oracles.

TEST(GlobalBlockMassTest, KeepsBlocksInMassOrderUntilTheFractionIsCovered) {
  // T = 10, b = 4: blocks [0..3], [4..7], [8, 9]. Masses summed over 2 layers x 2 heads:
  // block 0: 1.0, block 1: 0.4, block 2: 2.6 -> rank 2, 0, 1.
  const torch::Tensor p = BlockMasses(
      {{{0.2, 0.1, 0.7}, {0.3, 0.1, 0.6}}, {{0.25, 0.1, 0.65}, {0.25, 0.1, 0.65}}}, 10, 4);
  const struct {
    double f;
    std::vector<int64_t> kept;
    const char* name;
  } cases[] = {
      {0.2, {8, 9}, "global_block_mass:f=0.2000:b=4"},               // 2 tokens reach 2
      {0.21, {0, 1, 2, 3, 8, 9}, "global_block_mass:f=0.2100:b=4"},  // need 3: add block 0
      {0.6, {0, 1, 2, 3, 8, 9}, "global_block_mass:f=0.6000:b=4"},   // 6 reach 6
      {0.61, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "global_block_mass:f=0.6100:b=4"},
      {1.0, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "global_block_mass:f=1.0000:b=4"},
      {0.0001, {8, 9}, "global_block_mass:f=0.0001:b=4"},  // at least one block
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Selection s = Ok(SelectGlobalBlockMass(p, c.f, 4));
    EXPECT_EQ(s.variant, c.name);
    EXPECT_EQ(s.rows, 1);
    ASSERT_EQ(Rows(s).size(), 1u);
    EXPECT_EQ(Rows(s)[0], c.kept);
    EXPECT_DOUBLE_EQ(s.active_fraction, c.kept.size() / 10.0);
    EXPECT_EQ(s.history.block_size, 4);
  }
}

TEST(GlobalBlockMassTest, SumsOverLayersAndHeadsAndBreaksTiesTowardEarlierBlocks) {
  // Layer 0 puts its mass on block 0, layer 1 (more) on block 1: globally block 1 wins, while
  // each layer alone picks its own.
  const torch::Tensor p =
      BlockMasses({{{0.9, 0.1, 0.0}}, {{0.0, 1.0, 0.0}}}, 12, 4);  // 1 head, T = 12, 3 blocks
  EXPECT_EQ(Rows(Ok(SelectGlobalBlockMass(p, 0.3333, 4)))[0], (std::vector<int64_t>{4, 5, 6, 7}));
  absl::StatusOr<std::vector<Selection>> per_layer = SelectLayerBlockMass(p, 0.3333, 4);
  ASSERT_TRUE(per_layer.ok()) << per_layer.status();
  ASSERT_EQ(per_layer->size(), 2u);
  EXPECT_EQ((*per_layer)[0].variant, "layer_block_mass:f=0.3333:b=4");
  EXPECT_EQ(Rows((*per_layer)[0])[0], (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(Rows((*per_layer)[1])[0], (std::vector<int64_t>{4, 5, 6, 7}));
  // Uniform attention: every block ties; the earliest are kept.
  const torch::Tensor uniform = torch::full({2, 3, 12}, 1.0 / 12, torch::kFloat64);
  EXPECT_EQ(Rows(Ok(SelectGlobalBlockMass(uniform, 0.5, 4)))[0],
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(GlobalBlockMassTest, RandomMassesKeepAtLeastFAndRespectRankOrder) {
  torch::manual_seed(3);
  for (int64_t tokens : {1, 17, 1000, 4099}) {
    for (int64_t b : {1, 16, 64}) {
      for (double f : {0.01, 0.376, 0.5, 0.9999}) {
        SCOPED_TRACE(absl::StrFormat("T %d, b %d, f %g", tokens, b, f));
        const torch::Tensor p = torch::softmax(torch::randn({3, 4, tokens}) * 3, -1);
        const Selection s = Ok(SelectGlobalBlockMass(p, f, b));
        EXPECT_GE(s.kept, static_cast<int64_t>(std::ceil(f * tokens - 1e-9)));
        EXPECT_LT(s.active_fraction, f + static_cast<double>(b) / tokens + 1e-12);
        // Every kept block has at least the mass of every dropped block.
        const int64_t blocks = (tokens + b - 1) / b;
        const torch::Tensor padded =
            torch::constant_pad_nd(p.sum(std::vector<int64_t>{0, 1}), {0, blocks * b - tokens});
        const torch::Tensor masses = padded.view({blocks, b}).sum(1);
        const torch::Tensor mask = s.history.block_mask;
        if (mask.all().item<bool>()) continue;
        EXPECT_GE(masses.masked_select(mask).min().item<double>(),
                  masses.masked_select(~mask).max().item<double>());
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Recency.

TEST(RecentSinkTest, SinkAndWindow) {
  const Selection s = Ok(SelectRecentSink(100, 4, 10));
  EXPECT_EQ(s.variant, "recent_sink:sink=4:recent=10");
  EXPECT_THAT(Rows(s)[0], ElementsAre(0, 1, 2, 3, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99));
  EXPECT_DOUBLE_EQ(s.active_fraction, 0.14);
  // Overlapping: everything, once.
  EXPECT_EQ(Ok(SelectRecentSink(10, 4, 8)).kept, 10);
  EXPECT_EQ(Ok(SelectRecentSink(3, 4, 0)).kept, 3);
  // StreamingLLM keeps the same tokens under its own name.
  const Selection streaming = Ok(SelectStreamingLlm(100, 4, 10));
  EXPECT_EQ(streaming.variant, "streaming_llm:sink=4:window=10");
  EXPECT_EQ(Rows(streaming), Rows(s));
  EXPECT_THAT(Message(SelectRecentSink(10, 0, 0).status()), HasSubstr("keeps no token"));
}

// ---------------------------------------------------------------------------------------------
// H2O, TOVA, SnapKV.

TEST(H2oTest, RecentPlusHeavyHittersPerRow) {
  // T = 10, scores for the first 8 tokens; recent 3 -> 7, 8, 9 (8, 9 unscored anyway);
  // heavy 2 among 0..6.
  const torch::Tensor acc = torch::tensor(
      {{0.1, 5.0, 0.2, 3.0, 0.0, 0.0, 0.3, 9.0}, {2.0, 0.0, 2.0, 2.0, 1.0, 0.0, 0.0, 0.0}},
      torch::kFloat64);
  const Selection s = Ok(SelectH2o(acc, 10, 2, 3));
  EXPECT_EQ(s.variant, "h2o:heavy=2:recent=3");
  EXPECT_EQ(s.rows, 2);
  EXPECT_THAT(Rows(s)[0], ElementsAre(1, 3, 7, 8, 9));  // 9.0 at 7 is recent, not heavy
  EXPECT_THAT(Rows(s)[1], ElementsAre(0, 2, 7, 8, 9));  // a three-way tie at 2.0: 0 and 2
  EXPECT_DOUBLE_EQ(s.active_fraction, 0.5);
  // Unscored tokens beyond the recent window are kept too.
  EXPECT_THAT(Rows(Ok(SelectH2o(acc.slice(1, 0, 5), 10, 1, 2)))[0], ElementsAre(1, 5, 6, 7, 8, 9));
  EXPECT_THAT(Message(SelectH2o(acc, 7, 2, 3).status()), HasSubstr("scores 8 tokens, more than"));
}

TEST(TovaTest, NewestPlusTopOfTheHeadAveragedLastAttention) {
  // Previous step saw 9 tokens; now T = 10. Mean over the 2 rows: token 2 (0.35), 5 (0.3), 0
  // (0.15), ... ; budget 4: token 9 (unscored) + 2, 5, 0.
  const torch::Tensor last = torch::tensor({{0.1, 0.0, 0.6, 0.0, 0.0, 0.2, 0.0, 0.05, 0.05},
                                            {0.2, 0.1, 0.1, 0.1, 0.0, 0.4, 0.0, 0.05, 0.05}},
                                           torch::kFloat64);
  const Selection s = Ok(SelectTova(last, 10, 4));
  EXPECT_EQ(s.variant, "tova:budget=4");
  EXPECT_EQ(s.rows, 1);
  EXPECT_THAT(Rows(s)[0], ElementsAre(0, 2, 5, 9));
  EXPECT_EQ(Ok(SelectTova(last, 10, 100)).kept, 10);  // budget beyond history: all
  EXPECT_THAT(Rows(Ok(SelectTova(last.slice(1, 0, 2), 10, 3)))[0], ElementsAre(7, 8, 9));
}

TEST(SnapKvTest, ObservationWindowPooledTopK) {
  // Prompt P = 8, window W = 2 (queries at 6, 7), T = 10 (2 decode tokens). Window attention
  // summed over the 2 queries for prefix tokens 0..5: {0.125, 0, 0, 0.5, 0, 0.25} (exact in
  // binary).
  torch::Tensor w = torch::zeros({1, 2, 8}, torch::kFloat64);
  w[0][0] = torch::tensor({0.125, 0.0, 0.0, 0.25, 0.0, 0.125, 0.25, 0.25}, torch::kFloat64);
  w[0][1] = torch::tensor({0.0, 0.0, 0.0, 0.25, 0.0, 0.125, 0.375, 0.25}, torch::kFloat64);
  // No pooling (kernel 1), budget 4 -> top 2 of prefix (3, 5) + window 6, 7 + decode 8, 9.
  const Selection plain = Ok(SelectSnapKv(w, 10, 4, 1, SnapKvPool::kAvg));
  EXPECT_EQ(plain.variant, "snapkv:budget=4:window=2:kernel=1:pool=avg");
  EXPECT_THAT(Rows(plain)[0], ElementsAre(3, 5, 6, 7, 8, 9));
  // Avg pooling, kernel 3, zero padded: {0.125, 0.125, 0.5, 0.5, 0.75, 0.25} / 3 -> 4, then the
  // tie of 2 and 3 goes to 2.
  EXPECT_THAT(Rows(Ok(SelectSnapKv(w, 10, 4, 3, SnapKvPool::kAvg)))[0],
              ElementsAre(2, 4, 6, 7, 8, 9));
  // Max pooling, kernel 3: {0.125, 0.125, 0.5, 0.5, 0.5, 0.25} -> ties at 0.5: 2 and 3.
  EXPECT_THAT(Rows(Ok(SelectSnapKv(w, 10, 4, 3, SnapKvPool::kMax)))[0],
              ElementsAre(2, 3, 6, 7, 8, 9));
  EXPECT_THAT(Message(SelectSnapKv(w, 10, 2, 1, SnapKvPool::kAvg).status()),
              HasSubstr("budget 2 must exceed the window 2"));
  EXPECT_THAT(Message(SelectSnapKv(w, 10, 4, 2, SnapKvPool::kAvg).status()),
              HasSubstr("kernel must be odd"));
}

// ---------------------------------------------------------------------------------------------
// Quest.

TEST(QuestTest, BoundIsAnUpperBoundAndPicksTheRightBlocks) {
  // One kv head, D = 2, b = 2, T = 6: blocks {0,1}, {2,3}, {4,5}.
  const torch::Tensor k = torch::tensor({{1.0f, 0.0f},
                                         {0.0f, 1.0f},  // block 0
                                         {-1.0f, -1.0f},
                                         {-2.0f, 0.0f},  // block 1
                                         {3.0f, -3.0f},
                                         {0.0f, 0.0f}})  // block 2
                              .view({6, 1, 2});
  absl::StatusOr<QuestMetadata> m = BuildQuestMetadata(k, 2);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(torch::equal(m->min[2][0], torch::tensor({0.0f, -3.0f})));
  EXPECT_TRUE(torch::equal(m->max[2][0], torch::tensor({3.0f, 0.0f})));
  // q = (1, 0): bounds 1, -1, 3 -> block 2; q = (-1, 0): bounds 0, 2, 0 -> block 1. Two heads.
  const torch::Tensor q = torch::tensor({{1.0f, 0.0f}, {-1.0f, 0.0f}});
  const Selection s = Ok(SelectQuest(q, *m, 2));
  EXPECT_EQ(s.variant, "quest:budget=2:b=2");
  EXPECT_EQ(s.rows, 2);
  EXPECT_THAT(Rows(s)[0], ElementsAre(4, 5));
  EXPECT_THAT(Rows(s)[1], ElementsAre(2, 3));
  // budget 3 -> ceil(3/2) = 2 blocks; head 1 ties blocks 0 and 2 at 0: block 0.
  EXPECT_THAT(Rows(Ok(SelectQuest(q, *m, 3)))[1], ElementsAre(0, 1, 2, 3));

  // Random: every block's bound is >= q . k for each of its keys (per query head, GQA).
  torch::manual_seed(4);
  const torch::Tensor kr = torch::randn({1000, 2, 16});
  const torch::Tensor qr = torch::randn({6, 16});
  absl::StatusOr<QuestMetadata> mr = BuildQuestMetadata(kr, 16);
  ASSERT_TRUE(mr.ok());
  for (int64_t h = 0; h < 6; ++h) {
    const torch::Tensor qh = qr[h];
    const torch::Tensor dots = (kr.select(1, h / 3) * qh).sum(-1);  // [1000]
    const torch::Tensor bound =
        torch::maximum(mr->min.select(1, h / 3) * qh, mr->max.select(1, h / 3) * qh)
            .sum(-1);  // [63]
    for (int64_t t = 0; t < 1000; ++t) {
      ASSERT_LE(dots[t].item<float>(), bound[t / 16].item<float>() + 1e-5f) << h << " " << t;
    }
  }
  EXPECT_EQ(Ok(SelectQuest(qr, *mr, 160)).kept, 6 * 160);
}

// ---------------------------------------------------------------------------------------------
// Specs and the dispatcher.

TEST(SelectorSpecTest, CanonicalNames) {
  const struct {
    const char* spec;
    const char* name;
  } cases[] = {
      {"global_block_mass:f=0.376:b=16", "global_block_mass:f=0.3760:b=16"},
      {"global_block_mass:f=.5", "global_block_mass:f=0.5000:b=16"},
      {"layer_block_mass:b=32:f=1", "layer_block_mass:f=1.0000:b=32"},
      {"recent_sink:recent=1020", "recent_sink:sink=4:recent=1020"},
      {"streaming_llm:window=64:sink=1", "streaming_llm:sink=1:window=64"},
      {"h2o:recent=8:heavy=16", "h2o:heavy=16:recent=8"},
      {"tova:budget=512", "tova:budget=512"},
      {"snapkv:budget=320", "snapkv:budget=320:window=64:kernel=5:pool=avg"},
      {"quest:budget=1024", "quest:budget=1024:b=16"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::string> name = CanonicalSelectorName(c.spec);
    ASSERT_TRUE(name.ok()) << name.status();
    EXPECT_EQ(*name, c.name);
    EXPECT_EQ(*CanonicalSelectorName(*name), *name);  // a fixed point
  }
  const struct {
    const char* spec;
    const char* says;
  } bad[] = {
      {"oracle:f=0.3", "unknown selector 'oracle'"},
      {"global_block_mass:b=16", "lacks required parameter 'f'"},
      {"global_block_mass:f=0.37605", "at most 4 decimals"},
      {"global_block_mass:f=0", "in (0, 1]"},
      {"global_block_mass:f=1.5", "in (0, 1]"},
      {"global_block_mass:f=x", "f=x is not a number"},
      {"global_block_mass:f=0.3:k=2", "has no parameter 'k'"},
      {"global_block_mass:f=0.3:f=0.4", "repeats 'f'"},
      {"tova:budget=1.5", "budget=1.5 is not an integer"},
      {"snapkv:budget=9:pool=median", "pool=median is not avg or max"},
      {"h2o:heavy", "is not key=value"},
  };
  for (const auto& c : bad) {
    SCOPED_TRACE(c.spec);
    absl::StatusOr<std::string> name = CanonicalSelectorName(c.spec);
    ASSERT_FALSE(name.ok());
    EXPECT_EQ(name.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(name.status()), HasSubstr(c.says));
  }
}

TEST(SelectorSpecTest, DispatchMatchesTheFunctionsAndNamesMissingInputs) {
  torch::manual_seed(5);
  SelectorInputs in;
  in.tokens = 300;
  in.step_probs = torch::softmax(torch::randn({2, 4, 300}), -1);
  in.layer = 1;
  in.accumulated = torch::rand({4, 299});
  in.last_probs = torch::softmax(torch::randn({4, 299}), -1);
  in.window_probs = torch::rand({4, 16, 280});
  in.q = torch::randn({8, 32});
  const torch::Tensor k = torch::randn({300, 4, 32});
  const QuestMetadata meta = *BuildQuestMetadata(k, 16);
  in.quest = &meta;
  const struct {
    const char* spec;
    absl::StatusOr<Selection> direct;
  } cases[] = {
      {"global_block_mass:f=0.25:b=16", SelectGlobalBlockMass(in.step_probs, 0.25, 16)},
      {"layer_block_mass:f=0.25:b=16", (*SelectLayerBlockMass(in.step_probs, 0.25, 16))[1]},
      {"recent_sink:sink=4:recent=60", SelectRecentSink(300, 4, 60)},
      {"streaming_llm:sink=4:window=60", SelectStreamingLlm(300, 4, 60)},
      {"h2o:heavy=30:recent=30", SelectH2o(in.accumulated, 300, 30, 30)},
      {"tova:budget=60", SelectTova(in.last_probs, 300, 60)},
      {"snapkv:budget=60:window=16:kernel=5:pool=max",
       SelectSnapKv(in.window_probs, 300, 60, 5, SnapKvPool::kMax)},
      {"quest:budget=64:b=16", SelectQuest(in.q, meta, 64)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.spec);
    const Selection via_spec = Ok(Select(c.spec, in));
    ASSERT_TRUE(c.direct.ok()) << c.direct.status();
    EXPECT_EQ(via_spec.variant, *CanonicalSelectorName(c.spec));
    EXPECT_EQ(via_spec.variant, c.direct->variant);
    EXPECT_EQ(Rows(via_spec), Rows(*c.direct));
    // Every selection drives attention (GQA: 8 heads over 4 kv heads).
    const torch::Tensor q = torch::randn({8, 32});
    absl::StatusOr<AttentionOutput> got = SelectedDecodeAttention(q, k, k, via_spec.history, {});
    ASSERT_TRUE(got.ok()) << got.status();
    absl::StatusOr<AttentionOutput> ref = DecodeAttentionReference(q, k, k, {}, &via_spec.history);
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_LE((got->out.to(torch::kFloat64) - ref->out).abs().max().item<double>(), 1e-5);
  }
  SelectorInputs empty;
  empty.tokens = 10;
  EXPECT_THAT(Message(Select("global_block_mass:f=0.3", empty).status()),
              HasSubstr("needs inputs.step_probs"));
  EXPECT_THAT(Message(Select("h2o:heavy=1:recent=1", empty).status()),
              HasSubstr("needs inputs.accumulated"));
  EXPECT_THAT(Message(Select("quest:budget=4", empty).status()), HasSubstr("needs inputs.q"));
  SelectorInputs wrong = in;
  wrong.layer = 2;
  EXPECT_THAT(Message(Select("layer_block_mass:f=0.5", wrong).status()),
              HasSubstr("inputs.layer 2 is not a layer"));
  wrong = in;
  wrong.tokens = 301;
  EXPECT_THAT(Message(Select("global_block_mass:f=0.5", wrong).status()),
              HasSubstr("step_probs covers 300 tokens, inputs.tokens is 301"));
  EXPECT_THAT(Message(Select("snapkv:budget=60:window=8", in).status()),
              HasSubstr("holds 16 window queries, the spec says window=8"));
  wrong = in;
  wrong.step_probs = in.step_probs.clone();
  wrong.step_probs[0][0][7] = -0.5;
  EXPECT_THAT(Message(Select("global_block_mass:f=0.5", wrong).status()),
              HasSubstr("holds -0.5 at flat index 7"));
  wrong.step_probs[0][0][7] = std::nan("");
  EXPECT_THAT(Message(Select("global_block_mass:f=0.5", wrong).status()),
              HasSubstr("finite and >= 0"));
}

}  // namespace
}  // namespace kvgate::kernels
