// Tests of the decode attention primitives (attention.h): each against the float64 reference on
// dense-equivalent input (to 1e-5), the eager path over every registered KV format, int4-direct
// against eager int4, selections (token lists and block masks; shared, per kv head, per query
// head) against the reference restricted to the same tokens, probabilities, and bad input.
//
// Run: tools/bazel test //kernels/attention:attention_test

#include "kernels/attention/attention.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/int4/int4.h"
#include "kernels/kv_format/kv_format_registry.h"

namespace kvgate::kernels {
namespace {

using ::testing::HasSubstr;

constexpr double kTolerance = 1e-5;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

struct Case {
  int64_t heads, kv_heads, tokens, head_dim;
  std::string Name() const {
    return absl::StrFormat("heads %d, kv_heads %d, tokens %d, head_dim %d", heads, kv_heads, tokens,
                           head_dim);
  }
};

// Seeded q [heads, D], k and v [T, kv_heads, D]; q scaled by `sharpness` (larger: peakier
// attention).
struct Inputs {
  torch::Tensor q, k, v;
};
Inputs RandomInputs(const Case& c, uint64_t seed, double sharpness = 1.0) {
  torch::manual_seed(seed);
  return {torch::randn({c.heads, c.head_dim}) * sharpness,
          torch::randn({c.tokens, c.kv_heads, c.head_dim}),
          torch::randn({c.tokens, c.kv_heads, c.head_dim})};
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

AttentionOutput Ok(absl::StatusOr<AttentionOutput> result) {
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *std::move(result) : AttentionOutput{};
}

AttentionOptions WithProbs(DenseKernel kernel = DenseKernel::kBatchedMatmul) {
  AttentionOptions options;
  options.return_probs = true;
  options.dense_kernel = kernel;
  return options;
}

const Case kCases[] = {
    {8, 2, 1000, 64}, {16, 4, 3000, 128}, {4, 4, 1, 32},
    {6, 3, 777, 40},  {1, 1, 5, 1},       {12, 2, 20000, 64},  // many spans to merge
};

// ---------------------------------------------------------------------------------------------
// Dense.

TEST(DenseDecodeAttentionTest, BothVariantsMatchTheFloat64Reference) {
  for (const Case& c : kCases) {
    for (double sharpness : {1.0, 4.0}) {
      SCOPED_TRACE(absl::StrFormat("%s, sharpness %g", c.Name(), sharpness));
      const Inputs in = RandomInputs(c, c.tokens + c.head_dim, sharpness);
      const AttentionOutput ref = Ok(DecodeAttentionReference(in.q, in.k, in.v, WithProbs()));
      ASSERT_TRUE(ref.out.defined());
      EXPECT_EQ(ref.out.scalar_type(), torch::kFloat64);
      for (DenseKernel kernel : {DenseKernel::kBatchedMatmul, DenseKernel::kBlockedLoop}) {
        SCOPED_TRACE(static_cast<int>(kernel));
        const AttentionOutput got = Ok(DenseDecodeAttention(in.q, in.k, in.v, WithProbs(kernel)));
        ASSERT_TRUE(got.out.defined());
        EXPECT_EQ(got.out.scalar_type(), torch::kFloat32);
        EXPECT_EQ(got.out.sizes(), (std::vector<int64_t>{c.heads, c.head_dim}));
        EXPECT_EQ(got.probs.sizes(), (std::vector<int64_t>{c.heads, c.tokens}));
        EXPECT_LE(MaxAbsDiff(got.out, ref.out), kTolerance);
        EXPECT_LE(MaxAbsDiff(got.probs, ref.probs), kTolerance);
        // Without probs, the same output and no probs.
        AttentionOptions plain;
        plain.dense_kernel = kernel;
        const AttentionOutput lean = Ok(DenseDecodeAttention(in.q, in.k, in.v, plain));
        EXPECT_FALSE(lean.probs.defined());
        EXPECT_LE(MaxAbsDiff(lean.out, ref.out), kTolerance);
      }
    }
  }
}

TEST(DenseDecodeAttentionTest, ScaleOptionAndLowPrecisionInputs) {
  const Case c{8, 2, 500, 64};
  const Inputs in = RandomInputs(c, 3);
  AttentionOptions options;
  options.scale = 0.3;
  const AttentionOutput ref = Ok(DecodeAttentionReference(in.q, in.k, in.v, options));
  for (DenseKernel kernel : {DenseKernel::kBatchedMatmul, DenseKernel::kBlockedLoop}) {
    options.dense_kernel = kernel;
    EXPECT_LE(MaxAbsDiff(Ok(DenseDecodeAttention(in.q, in.k, in.v, options)).out, ref.out),
              kTolerance);
    // bfloat16 K/V: compared with the reference on the same bfloat16 values.
    const torch::Tensor kb = in.k.to(torch::kBFloat16), vb = in.v.to(torch::kBFloat16);
    const AttentionOutput ref_b = Ok(DecodeAttentionReference(in.q, kb, vb, options));
    EXPECT_LE(MaxAbsDiff(Ok(DenseDecodeAttention(in.q, kb, vb, options)).out, ref_b.out),
              kTolerance);
  }
  // A one-token history returns that token's value for every head of its group.
  const Inputs one = RandomInputs({4, 2, 1, 16}, 4);
  const AttentionOutput o = Ok(DenseDecodeAttention(one.q, one.k, one.v));
  EXPECT_TRUE(torch::allclose(o.out[3], one.v[0][1]));
}

TEST(DenseDecodeAttentionTest, HandComputedTwoTokens) {
  // One head, D = 1, scale 1: logits q*k = 0 and ln 3, so p = 1/4, 3/4.
  const torch::Tensor q = torch::ones({1, 1});
  const torch::Tensor k = torch::tensor({0.0f, std::log(3.0f)}).view({2, 1, 1});
  const torch::Tensor v = torch::tensor({4.0f, 8.0f}).view({2, 1, 1});
  AttentionOptions options = WithProbs();
  options.scale = 1.0;
  for (DenseKernel kernel : {DenseKernel::kBatchedMatmul, DenseKernel::kBlockedLoop}) {
    options.dense_kernel = kernel;
    const AttentionOutput o = Ok(DenseDecodeAttention(q, k, v, options));
    EXPECT_NEAR(o.out.item<float>(), 7.0f, 1e-6);
    EXPECT_NEAR(o.probs[0][0].item<float>(), 0.25f, 1e-7);
  }
  EXPECT_NEAR(Ok(DecodeAttentionReference(q, k, v, options)).out.item<double>(), 7.0,
              1e-7);  // ln 3 in float
}

// ---------------------------------------------------------------------------------------------
// Eager and int4-direct.

TEST(EagerDecodeAttentionTest, EveryKnownFormatMatchesTheReferenceOnItsDecodedKv) {
  const Case c{8, 2, 700, 128};
  const Inputs in = RandomInputs(c, 5);
  const AttentionOutput exact = Ok(DecodeAttentionReference(in.q, in.k, in.v));
  ASSERT_FALSE(KnownKvFormats().empty());
  for (const std::string& spec : KnownKvFormats()) {
    SCOPED_TRACE(spec);
    absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKvFormat(spec);
    ASSERT_TRUE(format.ok()) << format.status();
    absl::StatusOr<EncodedKv> k = (*format)->Encode(in.k, KvRole::kKey);
    absl::StatusOr<EncodedKv> v = (*format)->Encode(in.v, KvRole::kValue);
    ASSERT_TRUE(k.ok() && v.ok()) << k.status() << v.status();
    const AttentionOutput eager = Ok(EagerDecodeAttention(in.q, **format, *k, *v, WithProbs()));
    const AttentionOutput ref = Ok(DecodeAttentionReference(in.q, *(*format)->Decode(*k),
                                                            *(*format)->Decode(*v), WithProbs()));
    EXPECT_LE(MaxAbsDiff(eager.out, ref.out), kTolerance);
    EXPECT_LE(MaxAbsDiff(eager.probs, ref.probs), kTolerance);
    // Lossy, but not unrecognizably so.
    EXPECT_LT(MaxAbsDiff(eager.out, exact.out), 0.5);
    // Roles must be right.
    EXPECT_THAT(Message(EagerDecodeAttention(in.q, **format, *v, *k).status()),
                HasSubstr("k must be encoded as keys"));
  }
}

TEST(Int4DecodeAttentionTest, MatchesEagerInt4AndTheReference) {
  for (const Case& c : {Case{8, 2, 1000, 64}, Case{16, 4, 5000, 128}, Case{2, 1, 3, 32}}) {
    for (Int4Scheme scheme : {Int4Scheme::kSymmetric, Int4Scheme::kAffine}) {
      SCOPED_TRACE(absl::StrFormat("%s, %s", c.Name(), Int4SchemeName(scheme)));
      const Inputs in = RandomInputs(c, 6 + c.tokens, 2.0);
      absl::StatusOr<Int4Tensor> k = QuantizeInt4(in.k, scheme);
      absl::StatusOr<Int4Tensor> v = QuantizeInt4(in.v, scheme);
      ASSERT_TRUE(k.ok() && v.ok());
      const AttentionOutput direct = Ok(Int4DecodeAttention(in.q, *k, *v, WithProbs()));
      ASSERT_TRUE(direct.out.defined());
      absl::StatusOr<std::unique_ptr<KvFormat>> format =
          MakeKvFormat(std::string(Int4SchemeName(scheme)));
      ASSERT_TRUE(format.ok());
      const AttentionOutput eager =
          Ok(EagerDecodeAttention(in.q, **format, *(*format)->Encode(in.k, KvRole::kKey),
                                  *(*format)->Encode(in.v, KvRole::kValue), WithProbs()));
      EXPECT_LE(MaxAbsDiff(direct.out, eager.out), kTolerance);
      EXPECT_LE(MaxAbsDiff(direct.probs, eager.probs), kTolerance);
      const AttentionOutput ref =
          Ok(DecodeAttentionReference(in.q, *DequantizeInt4(*k), *DequantizeInt4(*v), WithProbs()));
      EXPECT_LE(MaxAbsDiff(direct.out, ref.out), kTolerance);
      // Its error against exact attention is eager int4's error.
      const AttentionOutput exact = Ok(DecodeAttentionReference(in.q, in.k, in.v));
      EXPECT_NEAR(MaxAbsDiff(direct.out, exact.out), MaxAbsDiff(eager.out, exact.out), kTolerance);
    }
  }
}

TEST(Int4DecodeAttentionTest, RejectsMismatchedTensors) {
  const Inputs in = RandomInputs({8, 2, 10, 64}, 7);
  const Int4Tensor k = *QuantizeInt4(in.k, Int4Scheme::kSymmetric);
  const Int4Tensor v = *QuantizeInt4(in.v, Int4Scheme::kAffine);
  EXPECT_THAT(Message(Int4DecodeAttention(in.q, k, v).status()), HasSubstr("one shape and scheme"));
  const Int4Tensor short_v = *QuantizeInt4(in.v.slice(0, 0, 9), Int4Scheme::kSymmetric);
  EXPECT_THAT(Message(Int4DecodeAttention(in.q, k, short_v).status()),
              HasSubstr("one shape and scheme"));
  Int4Tensor bad_scales = k;
  bad_scales.scales = bad_scales.scales.to(torch::kFloat32);
  EXPECT_THAT(Message(Int4DecodeAttention(in.q, bad_scales, k).status()),
              HasSubstr("not the int4 layout"));
  EXPECT_THAT(Message(Int4DecodeAttention(in.q.slice(1, 0, 32), k, k).status()),
              HasSubstr("head_dim 32 differs from K/V's 64"));
}

// ---------------------------------------------------------------------------------------------
// Selected.

// Selections over T tokens for heads/kv_heads, of every kind.
std::vector<std::pair<std::string, HistorySelection>> Selections(const Case& c) {
  torch::manual_seed(11);
  std::vector<std::pair<std::string, HistorySelection>> s;
  const int64_t n = c.tokens / 3 + 1;
  s.emplace_back("shared list", HistorySelection::Tokens(torch::randperm(c.tokens).slice(0, 0, n)));
  s.emplace_back(
      "per kv head lists",
      HistorySelection::Tokens(torch::stack(
          {torch::randperm(c.tokens).slice(0, 0, n), torch::randperm(c.tokens).slice(0, 0, n)})));
  std::vector<torch::Tensor> per_head;
  for (int64_t h = 0; h < c.heads; ++h)
    per_head.push_back(torch::randperm(c.tokens).slice(0, 0, n));
  s.emplace_back("per head lists", HistorySelection::Tokens(torch::stack(per_head)));
  s.emplace_back("all tokens", HistorySelection::Tokens(torch::arange(c.tokens)));
  const int64_t b = 16, blocks = (c.tokens + b - 1) / b;
  torch::Tensor mask = torch::rand({blocks}) < 0.3;
  mask[blocks - 1] = true;  // the partial last block
  s.emplace_back("shared block mask", HistorySelection::Blocks(mask, b));
  torch::Tensor head_masks = torch::rand({c.heads, blocks}) < 0.5;
  head_masks.select(1, 0).fill_(true);
  s.emplace_back("per head block masks", HistorySelection::Blocks(head_masks, b));
  return s;
}

TEST(SelectedDecodeAttentionTest, MatchesTheReferenceOverTheSameTokens) {
  for (const Case& c : {Case{8, 2, 1000, 64}, Case{4, 2, 4099, 128}}) {
    const Inputs in = RandomInputs(c, 12, 2.0);
    const AttentionOutput dense = Ok(DecodeAttentionReference(in.q, in.k, in.v));
    for (const auto& [name, selection] : Selections(c)) {
      SCOPED_TRACE(absl::StrFormat("%s: %s", c.Name(), name));
      const AttentionOutput got =
          Ok(SelectedDecodeAttention(in.q, in.k, in.v, selection, WithProbs()));
      const AttentionOutput ref =
          Ok(DecodeAttentionReference(in.q, in.k, in.v, WithProbs(), &selection));
      ASSERT_TRUE(got.out.defined() && ref.out.defined());
      EXPECT_LE(MaxAbsDiff(got.out, ref.out), kTolerance);
      EXPECT_LE(MaxAbsDiff(got.probs, ref.probs), kTolerance);
      // Probabilities sum to 1 over the kept tokens, 0 elsewhere.
      EXPECT_LE(MaxAbsDiff(got.probs.sum(1), torch::ones({c.heads})), 1e-5);
      absl::StatusOr<std::vector<std::vector<int64_t>>> rows = SelectionRows(selection, c.tokens);
      ASSERT_TRUE(rows.ok());
      for (int64_t h = 0; h < c.heads; ++h) {
        const std::vector<int64_t>& row = (*rows)[h * rows->size() / c.heads];
        EXPECT_EQ((got.probs[h] > 0).sum().item<int64_t>(), static_cast<int64_t>(row.size()));
      }
      if (name == "all tokens") {
        EXPECT_LE(MaxAbsDiff(got.out, dense.out), kTolerance);
      }
    }
  }
}

TEST(SelectionTest, RowsAndActiveFraction) {
  // T = 10, blocks of 4: [0..3], [4..7], [8, 9].
  const HistorySelection blocks = HistorySelection::Blocks(torch::tensor({true, false, true}), 4);
  absl::StatusOr<std::vector<std::vector<int64_t>>> rows = SelectionRows(blocks, 10);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, (std::vector<std::vector<int64_t>>{{0, 1, 2, 3, 8, 9}}));
  EXPECT_DOUBLE_EQ(*ActiveFraction(blocks, 10), 0.6);
  // Two rows: 3 and 1 of 10 tokens -> 0.2; lists come back sorted.
  const HistorySelection lists =
      HistorySelection::Tokens(torch::tensor({9, 0, 4, 7, 7, 7}, torch::kInt64).view({2, 3}));
  EXPECT_FALSE(SelectionRows(lists, 10).ok());  // row 1 repeats 7
  const HistorySelection ok_lists =
      HistorySelection::Tokens(torch::tensor({9, 0, 4, 7, 5, 6}, torch::kInt64).view({2, 3}));
  EXPECT_EQ(*SelectionRows(ok_lists, 10),
            (std::vector<std::vector<int64_t>>{{0, 4, 9}, {5, 6, 7}}));
  EXPECT_DOUBLE_EQ(*ActiveFraction(ok_lists, 10), 0.3);
}

TEST(SelectionTest, BadSelectionsAreRejected) {
  const Inputs in = RandomInputs({8, 2, 10, 16}, 13);
  const struct {
    HistorySelection selection;
    const char* says;
  } cases[] = {
      {HistorySelection::Tokens(torch::tensor({0, 10}, torch::kInt64)),
       "row 0 has token 10, outside the history [0, 10)"},
      {HistorySelection::Tokens(torch::tensor({-1}, torch::kInt64)), "token -1, outside"},
      {HistorySelection::Tokens(torch::tensor({3, 3}, torch::kInt64)), "row 0 repeats token 3"},
      {HistorySelection::Tokens(torch::tensor({3, 4}, torch::kInt32)), "must be int64"},
      {HistorySelection::Tokens(torch::zeros({3, 1}, torch::kInt64)),
       "3 rows; it must have 1 (shared), kv_heads = 2 or heads = 8"},
      {HistorySelection::Tokens(torch::empty({0}, torch::kInt64)), "row 0 keeps no token"},
      {HistorySelection::Blocks(torch::tensor({true, false}), 4),
       "block_mask must be bool [3] or [rows, 3]"},
      {HistorySelection::Blocks(torch::tensor({false, false, false}), 4), "keeps no token"},
      {HistorySelection::Blocks(torch::tensor({true}), 0), "block_size 0 must be >= 1"},
      {HistorySelection{}, "exactly one of"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    absl::StatusOr<AttentionOutput> got = SelectedDecodeAttention(in.q, in.k, in.v, c.selection);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(got.status()), HasSubstr(c.says));
  }
}

// ---------------------------------------------------------------------------------------------
// Bad dense input.

TEST(DecodeAttentionErrorTest, ShapesAreChecked) {
  const Inputs in = RandomInputs({8, 2, 10, 16}, 14);
  const struct {
    torch::Tensor q, k, v;
    const char* says;
  } cases[] = {
      {in.q[0], in.k, in.v, "q must be float32/bfloat16/float16 [heads, head_dim]"},
      {in.q, in.k[0], in.v, "k must be"},
      {in.q, in.k, in.v.slice(0, 0, 9), "k and v differ"},
      {in.q.slice(0, 0, 7), in.k, in.v, "heads 7 must be a positive multiple of kv_heads 2"},
      {in.q.slice(1, 0, 8), in.k, in.v, "q's head_dim 8 differs from K/V's 16"},
      {in.q, in.k.slice(0, 0, 0), in.v.slice(0, 0, 0), "no history"},
      {in.q.to(torch::kFloat64), in.k, in.v, "q must be"},
      {in.q, in.k.to(torch::kInt32), in.v, "k must be"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    for (DenseKernel kernel : {DenseKernel::kBatchedMatmul, DenseKernel::kBlockedLoop}) {
      AttentionOptions options;
      options.dense_kernel = kernel;
      absl::StatusOr<AttentionOutput> got = DenseDecodeAttention(c.q, c.k, c.v, options);
      ASSERT_FALSE(got.ok());
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(Message(got.status()), HasSubstr(c.says));
    }
    EXPECT_THAT(Message(DecodeAttentionReference(c.q, c.k, c.v).status()), HasSubstr(c.says));
  }
  AttentionOptions nan_scale;
  nan_scale.scale = std::nan("");
  EXPECT_THAT(Message(DenseDecodeAttention(in.q, in.k, in.v, nan_scale).status()),
              HasSubstr("is not finite"));
}

}  // namespace
}  // namespace kvgate::kernels
