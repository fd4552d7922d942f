// Tests of attention and its policies (attention_policy.h) on random tensors, against a naive
// per-head reference: causal GQA at decode and prefill (fused and explicit paths), keep masks per
// head group, token-index and block-mask selections, the KV round trip and the policies' errors.
//
// Run: tools/bazel test //experiments/runtime:attention_policy_test

#include "experiments/runtime/attention_policy.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "experiments/runtime/model_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;

// Naive causal attention, one head at a time, float64. keep: undefined or bool [heads, S].
// Returns {out [T, heads, D], probs [T, heads, S]}.
std::pair<torch::Tensor, torch::Tensor> Reference(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v,
                                                  const torch::Tensor& keep) {
  const int64_t t = q.size(0), heads = q.size(1), d = q.size(2), s = k.size(0);
  const int64_t group = heads / k.size(1);
  torch::Tensor out = torch::zeros({t, heads, d}, torch::kFloat64);
  torch::Tensor probs = torch::zeros({t, heads, s}, torch::kFloat64);
  for (int64_t h = 0; h < heads; ++h) {
    const torch::Tensor kh = k.select(1, h / group).to(torch::kFloat64);  // [S, D]
    const torch::Tensor vh = v.select(1, h / group).to(torch::kFloat64);
    for (int64_t i = 0; i < t; ++i) {
      torch::Tensor scores = kh.matmul(q[i][h].to(torch::kFloat64)) / std::sqrt(double(d));  // [S]
      for (int64_t j = 0; j < s; ++j) {
        const bool causal = j <= s - t + i;
        const bool kept = !keep.defined() || keep[h][j].item<bool>();
        if (!causal || !kept) scores[j] = -std::numeric_limits<double>::infinity();
      }
      const torch::Tensor p = torch::softmax(scores, 0);
      probs[i][h] = p;
      out[i][h] = p.matmul(vh);
    }
  }
  return {out, probs};
}

struct Qkv {
  torch::Tensor q, k, v;
};

Qkv Random(int64_t t, int64_t s, int64_t heads, int64_t kv_heads, int64_t d, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({t, heads, d}), torch::randn({s, kv_heads, d}),
          torch::randn({s, kv_heads, d})};
}

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

TEST(AttendTest, MatchesNaiveReferenceAtDecodeAndPrefill) {
  // (T, S): a decode step, a prefill from position 0, a chunk at position 5.
  for (auto [t, s] : {std::make_pair(1, 9), std::make_pair(7, 7), std::make_pair(4, 9)}) {
    SCOPED_TRACE(testing::Message() << "T " << t << " S " << s);
    const Qkv x = Random(t, s, /*heads=*/6, /*kv_heads=*/2, /*d=*/16, 11);
    auto [out_ref, probs_ref] = Reference(x.q, x.k, x.v, {});
    const AttentionResult explicit_path = Attend(x.q, x.k, x.v, {}, /*want_probs=*/true);
    EXPECT_LT(MaxDiff(explicit_path.out, out_ref), 1e-5);
    EXPECT_LT(MaxDiff(explicit_path.probs, probs_ref), 1e-6);
    const AttentionResult any_path = Attend(x.q, x.k, x.v, {}, /*want_probs=*/false);
    EXPECT_LT(MaxDiff(any_path.out, out_ref), 1e-5);  // the fused kernel when T == S
    EXPECT_FALSE(any_path.probs.defined());
  }
}

TEST(AttendTest, KeepMasksPerHeadGroupAndHead) {
  const int64_t heads = 6, kv_heads = 2, s = 10;
  const Qkv x = Random(2, s, heads, kv_heads, 8, 12);
  torch::manual_seed(13);
  for (int64_t rows : {int64_t{1}, kv_heads, heads}) {
    SCOPED_TRACE(rows);
    torch::Tensor keep = torch::rand({rows, s}) < 0.5;
    keep.select(1, 0).fill_(true);  // something for every head
    // Expand to [heads, S] for the reference: rows of kv heads cover heads / kv_heads heads each.
    const torch::Tensor per_head = rows == 1          ? keep.expand({heads, s})
                                   : rows == kv_heads ? keep.repeat_interleave(heads / kv_heads, 0)
                                                      : keep;
    auto [out_ref, probs_ref] = Reference(x.q, x.k, x.v, per_head);
    const AttentionResult r = Attend(x.q, x.k, x.v, keep, true);
    EXPECT_LT(MaxDiff(r.out, out_ref), 1e-5);
    EXPECT_LT(MaxDiff(r.probs, probs_ref), 1e-6);
    // Not kept: exactly zero.
    EXPECT_EQ(r.probs.masked_fill(per_head.unsqueeze(0), 0).abs().max().item<float>(), 0.0f);
  }
  EXPECT_THROW(Attend(x.q, x.k, x.v, torch::ones({3, s}, torch::kBool), false), c10::Error);
  EXPECT_THROW(Attend(x.q, x.k, x.v, torch::ones({1, s - 1}, torch::kBool), false), c10::Error);
}

TEST(AttendTest, LowPrecisionIsClose) {
  const Qkv x = Random(1, 33, 4, 2, 32, 14);
  const AttentionResult f32 = Attend(x.q, x.k, x.v, {}, true);
  const AttentionResult bf16 = Attend(x.q.to(torch::kBFloat16), x.k.to(torch::kBFloat16),
                                      x.v.to(torch::kBFloat16), {}, true);
  EXPECT_EQ(bf16.out.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(bf16.probs.scalar_type(), torch::kFloat32);
  EXPECT_LT(MaxDiff(bf16.out, f32.out), 0.1);
}

TEST(KeepTest, TokensAndBlocks) {
  EXPECT_TRUE(torch::equal(KeepTokens(torch::tensor({0, 3, 3}), 5),
                           torch::tensor({{true, false, false, true, false}})));
  EXPECT_TRUE(torch::equal(
      KeepTokens(torch::tensor({{1}, {4}}), 5),
      torch::tensor({{false, true, false, false, false}, {false, false, false, false, true}})));
  EXPECT_THROW(KeepTokens(torch::tensor({5}), 5), c10::Error);
  EXPECT_TRUE(torch::equal(KeepBlocks(torch::tensor({true, false, true}), 2, 5),
                           torch::tensor({{true, true, false, false, true}})));
  EXPECT_THROW(KeepBlocks(torch::tensor({true, false}), 2, 5), c10::Error);
}

AttentionCall Call(const Qkv& x) {
  AttentionCall call;
  call.layer = 1;
  call.step = 2;
  call.position = x.k.size(0) - x.q.size(0);
  call.q = x.q;
  call.k = x.k;
  call.v = x.v;
  call.want_probs = true;
  return call;
}

TEST(PolicyTest, SelectionKeepingAllEqualsDenseExactly) {
  const Qkv x = Random(1, 20, 4, 2, 16, 15);
  const AttentionCall call = Call(x);
  absl::StatusOr<AttentionResult> dense = DenseAttention()(call);
  ASSERT_TRUE(dense.ok());
  for (const HistorySelector& selector : std::vector<HistorySelector>{
           [](const AttentionCall& c) -> absl::StatusOr<torch::Tensor> {
             return KeepTokens(torch::arange(c.k.size(0)), c.k.size(0));
           },
           [](const AttentionCall& c) -> absl::StatusOr<torch::Tensor> {
             return KeepBlocks(torch::ones({2, 3}, torch::kBool), 8, c.k.size(0));
           },
           [](const AttentionCall&) -> absl::StatusOr<torch::Tensor> { return torch::Tensor(); },
       }) {
    absl::StatusOr<AttentionResult> selected = SelectedHistoryAttention(selector)(call);
    ASSERT_TRUE(selected.ok()) << selected.status();
    EXPECT_TRUE(torch::equal(selected->out, dense->out));
    EXPECT_TRUE(torch::equal(selected->probs, dense->probs));
  }
}

TEST(PolicyTest, SelectionErrors) {
  const AttentionCall call = Call(Random(1, 8, 4, 2, 16, 16));
  auto run = [&](torch::Tensor keep) {
    return SelectedHistoryAttention(
               [keep](const AttentionCall&) -> absl::StatusOr<torch::Tensor> { return keep; })(call)
        .status();
  };
  EXPECT_THAT(run(torch::zeros({1, 8}, torch::kBool)).message(), HasSubstr("nothing to attend"));
  EXPECT_THAT(run(torch::ones({3, 8}, torch::kBool)).message(), HasSubstr("a selection must be"));
  EXPECT_THAT(run(torch::ones({1, 8})).message(), HasSubstr("a selection must be"));
  absl::Status failing =
      SelectedHistoryAttention([](const AttentionCall&) -> absl::StatusOr<torch::Tensor> {
        return absl::FailedPreconditionError("selector says no");
      })(call)
          .status();
  EXPECT_EQ(failing.code(), absl::StatusCode::kFailedPrecondition);
}

// Rounds to a grid of 1/4: lossy.
class CoarseFormat : public IdentityKvFormat {
 public:
  absl::StatusOr<torch::Tensor> Decode(const kernels::EncodedKv& e) const override {
    return (e.parts.at("x") * 4).round() / 4;
  }
};

TEST(PolicyTest, KvRoundTrip) {
  const AttentionCall call = Call(Random(1, 12, 4, 2, 16, 17));
  absl::StatusOr<AttentionResult> dense = DenseAttention()(call);
  absl::StatusOr<AttentionResult> identity =
      KvRoundTripAttention(std::make_shared<IdentityKvFormat>())(call);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_TRUE(torch::equal(identity->out, dense->out));
  absl::StatusOr<AttentionResult> coarse =
      KvRoundTripAttention(std::make_shared<CoarseFormat>())(call);
  ASSERT_TRUE(coarse.ok()) << coarse.status();
  const double diff = MaxDiff(coarse->out, dense->out);
  EXPECT_GT(diff, 0);
  EXPECT_LT(diff, 0.5);
}

// CoarseFormat that promises per-token encoding and counts the tokens it encodes.
class CountingTokenFormat : public CoarseFormat {
 public:
  explicit CountingTokenFormat(std::shared_ptr<int64_t> tokens) : tokens_(std::move(tokens)) {}
  bool EncodesTokensIndependently() const override { return true; }
  absl::StatusOr<kernels::EncodedKv> Encode(const torch::Tensor& x,
                                            kernels::KvRole role) const override {
    *tokens_ += x.size(0);
    return CoarseFormat::Encode(x, role);
  }

 private:
  std::shared_ptr<int64_t> tokens_;
};

// One policy over a growing history encodes each new row once (K and V), and gives what a fresh
// round trip of the whole history gives; a history whose kept rows changed is encoded anew.
TEST(PolicyTest, KvRoundTripEncodesNewRowsOnlyWhileTheHistoryHolds) {
  const Qkv x = Random(1, 20, 4, 2, 16, 18);
  auto tokens = std::make_shared<int64_t>(0);
  AttentionPolicy incremental = KvRoundTripAttention(std::make_shared<CountingTokenFormat>(tokens));
  auto check = [&](const Qkv& now, int64_t expected_tokens) {
    absl::StatusOr<AttentionResult> got = incremental(Call(now));
    ASSERT_TRUE(got.ok()) << got.status();
    absl::StatusOr<AttentionResult> fresh =
        KvRoundTripAttention(std::make_shared<CoarseFormat>())(Call(now));
    ASSERT_TRUE(fresh.ok()) << fresh.status();
    EXPECT_TRUE(torch::equal(got->out, fresh->out));
    EXPECT_TRUE(torch::equal(got->probs, fresh->probs));
    EXPECT_EQ(*tokens, expected_tokens);
    *tokens = 0;
  };
  auto first = [&](int64_t s) { return Qkv{x.q, x.k.narrow(0, 0, s), x.v.narrow(0, 0, s)}; };
  check(first(17), 2 * 17);
  check(first(18), 2 * 1);
  check(first(20), 2 * 2);
  Qkv changed = first(20);
  changed.v = changed.v.clone();
  changed.v[3] += 1;  // a different history of the same length
  check(changed, 2 * 20);
  check(first(19), 2 * 19);  // shorter than what was kept: start over
}

}  // namespace
}  // namespace kvgate::runtime
