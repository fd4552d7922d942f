// Tests of the fused packed-codebook attention (codebook_attention.h), both variants, over every
// TurboQuant kind, bit width, the split and both rotations, with grouped-query heads:
//   - fused logits equal q . Decode(k) (DenseLogitsRef on the decoded K) to 1e-5 of |q| |k_hat_t|;
//   - fused attention equals the eager path (Decode, then DenseAttentionRef) to 1e-5 of the
//     largest |v_hat| entry (the scale of what is averaged);
//   - exact-cleanup attention equals DenseAttentionRef on the original K/V to 1e-5 likewise;
//   - the dense baseline equals the reference; errors name the problem.
// Inputs come from seeded generators.
//
// Run: tools/bazel test //kernels/turboquant:codebook_attention_test

#include "kernels/turboquant/codebook_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::kernels {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

torch::Tensor Gaussian(std::vector<int64_t> shape, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  torch::Tensor x = torch::empty(shape, torch::kFloat32);
  float* p = x.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = scale * normal(rng);
  return x;
}

// K/V-like: Gaussian with a few channels 4x larger (so the split has outliers to find).
torch::Tensor KvLike(int64_t tokens, int64_t heads, int64_t d, uint64_t seed) {
  torch::Tensor x = Gaussian({tokens, heads, d}, seed);
  for (int64_t c = 0; c < d; c += 7) x.select(2, c).mul_(4.0f);
  return x;
}

struct Format {
  TurboQuantKind kind;
  int bits;
  bool split;
  RotationKind rotation;
  int64_t d;
};

std::vector<Format> AllFormats() {
  std::vector<Format> all;
  for (TurboQuantKind kind : {TurboQuantKind::kMse, TurboQuantKind::kProd}) {
    for (int bits = 1; bits <= 4; ++bits)
      all.push_back({kind, bits, false, RotationKind::kHadamard, 128});
    for (int bits = 1; bits <= 3; ++bits)
      all.push_back({kind, bits, true, RotationKind::kHadamard, 64});
    all.push_back({kind, 3, false, RotationKind::kDense, 96});
    all.push_back({kind, 2, true, RotationKind::kDense, 40});
  }
  return all;
}

TurboQuant Make(const Format& f, uint64_t seed) {
  TurboQuantOptions o;
  o.kind = f.kind;
  o.bits = f.bits;
  o.split = f.split;
  o.rotation = f.rotation;
  o.seed = seed;
  absl::StatusOr<TurboQuant> tq = TurboQuant::Make(o, f.d);
  EXPECT_TRUE(tq.ok()) << tq.status();
  return *std::move(tq);
}

std::string Name(const Format& f) { return absl::StrCat(Make(f, 0).name(), " D=", f.d); }

// max over entries of |a - b| / tolerance_scale (broadcast).
double WorstRatio(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& scale) {
  return ((a - b).abs() / scale).max().item<double>();
}

constexpr int64_t kHeads = 8, kKvHeads = 2, kTokens = 97;

TEST(CodebookLogitsTest, EqualQDotDequantizedKeys) {
  double worst = 0;
  for (const Format& f : AllFormats()) {
    SCOPED_TRACE(Name(f));
    const TurboQuant tq = Make(f, 11);
    const torch::Tensor k = KvLike(kTokens, kKvHeads, f.d, 1);
    const torch::Tensor q = Gaussian({kHeads, f.d}, 2);
    absl::StatusOr<TurboQuantTensor> codes = tq.Encode(k);
    ASSERT_TRUE(codes.ok()) << codes.status();
    const torch::Tensor k_hat = *tq.Decode(*codes);
    const torch::Tensor ref = *DenseLogitsRef(q, k_hat);
    // |q_h| |k_hat_t| for each logit: [heads, 1] x [1, T] (kv head h / 4 for query head h).
    const torch::Tensor k_norms = k_hat.norm(2, {2}).t();  // [kv_heads, T]
    const torch::Tensor scale =
        q.norm(2, {1}, true) * k_norms.repeat_interleave(kHeads / kKvHeads, 0);
    for (int variant : {1, 2}) {
      absl::StatusOr<torch::Tensor> fused = CodebookLogits(q, tq, *codes, variant);
      ASSERT_TRUE(fused.ok()) << fused.status();
      ASSERT_EQ(fused->sizes().vec(), (std::vector<int64_t>{kHeads, kTokens}));
      EXPECT_LT(WorstRatio(*fused, ref, scale), 1e-5) << "variant " << variant;
      EXPECT_LT(((*fused - ref).norm() / ref.norm()).item<double>(), 1e-5) << "variant " << variant;
      worst = std::max(worst, WorstRatio(*fused, ref, scale));
    }
  }
  std::printf("fused logits vs q . dequant(k): worst |diff| / (|q| |k_hat|) = %.3g\n", worst);
}

TEST(CodebookAttentionTest, EqualsTheEagerDequantizeThenAttendPath) {
  double worst = 0;
  const std::vector<Format> formats = AllFormats();
  for (size_t i = 0; i < formats.size(); ++i) {
    // K in one format, V in the next of the same head_dim or itself: mixed kinds are allowed.
    const Format& fk = formats[i];
    const Format& fv = (i + 1 < formats.size() && formats[i + 1].d == fk.d) ? formats[i + 1] : fk;
    SCOPED_TRACE(absl::StrCat("K ", Name(fk), ", V ", Name(fv)));
    const TurboQuant kq = Make(fk, 5), vq = Make(fv, 6);
    const torch::Tensor k = KvLike(kTokens, kKvHeads, fk.d, 3);
    const torch::Tensor v = KvLike(kTokens, kKvHeads, fk.d, 4);
    const torch::Tensor q = Gaussian({kHeads, fk.d}, 5, 2.0f);  // peakier than 1/sqrt(D) alone
    const TurboQuantTensor kc = *kq.Encode(k), vc = *vq.Encode(v);
    const float scale = 1.0f / std::sqrt(static_cast<float>(fk.d));
    absl::StatusOr<torch::Tensor> eager = EagerAttentionRef(q, kq, kc, vq, vc, scale);
    ASSERT_TRUE(eager.ok()) << eager.status();
    const torch::Tensor value_scale = vq.Decode(vc)->abs().max();
    for (int variant : {1, 2}) {
      absl::StatusOr<torch::Tensor> fused = CodebookAttention(q, kq, kc, vq, vc, scale, variant);
      ASSERT_TRUE(fused.ok()) << fused.status();
      ASSERT_EQ(fused->sizes().vec(), (std::vector<int64_t>{kHeads, fk.d}));
      EXPECT_LT(WorstRatio(*fused, *eager, value_scale), 1e-5) << "variant " << variant;
      worst = std::max(worst, WorstRatio(*fused, *eager, value_scale));
    }
  }
  std::printf("fused attention vs eager: worst |diff| / max|v_hat| = %.3g\n", worst);
}

TEST(CodebookAttentionTest, ExactCleanupEqualsDenseAttentionOnTheOriginals) {
  double worst = 0;
  for (const Format& f : AllFormats()) {
    SCOPED_TRACE(Name(f));
    const TurboQuant tq = Make(f, 9);
    const torch::Tensor k = KvLike(kTokens, kKvHeads, f.d, 7);
    const torch::Tensor v = KvLike(kTokens, kKvHeads, f.d, 8);
    const torch::Tensor q = Gaussian({kHeads, f.d}, 9, 2.0f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(f.d));
    const TurboQuantTensor ke = *tq.EncodeExactCleanup(k), ve = *tq.EncodeExactCleanup(v);
    const torch::Tensor dense = *DenseAttentionRef(q, k, v, scale);
    const torch::Tensor value_scale = v.abs().max();
    for (int variant : {1, 2}) {
      absl::StatusOr<torch::Tensor> exact = CodebookAttention(q, tq, ke, tq, ve, scale, variant);
      ASSERT_TRUE(exact.ok()) << exact.status();
      EXPECT_LT(WorstRatio(*exact, dense, value_scale), 1e-5) << "variant " << variant;
      worst = std::max(worst, WorstRatio(*exact, dense, value_scale));
      const torch::Tensor logits = *CodebookLogits(q, tq, ke, variant);
      const torch::Tensor ref = *DenseLogitsRef(q, k);
      EXPECT_LT(((logits - ref).norm() / ref.norm()).item<double>(), 1e-5);
    }
    // The codes are an approximation: the same attention from codes is measurably off.
    const TurboQuantTensor kc = *tq.Encode(k), vc = *tq.Encode(v);
    const torch::Tensor approx = *CodebookAttention(q, tq, kc, tq, vc, scale);
    EXPECT_GT(WorstRatio(approx, dense, value_scale), 1e-3);
  }
  std::printf("exact-cleanup attention vs dense: worst |diff| / max|v| = %.3g\n", worst);
}

TEST(CodebookAttentionTest, ApproximationErrorFallsWithBits) {
  // The relative error of the attention output against dense attention on the originals at
  // D = 128 (printed for the report): it falls with every added bit, for both kinds.
  const int64_t d = 128, tokens = 512;
  const torch::Tensor k = KvLike(tokens, kKvHeads, d, 21), v = KvLike(tokens, kKvHeads, d, 22);
  const torch::Tensor q = Gaussian({kHeads, d}, 23, 2.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const torch::Tensor dense = *DenseAttentionRef(q, k, v, scale);
  for (TurboQuantKind kind : {TurboQuantKind::kMse, TurboQuantKind::kProd}) {
    double previous = std::numeric_limits<double>::infinity();
    for (int bits = 1; bits <= 4; ++bits) {
      const TurboQuant tq = Make({kind, bits, false, RotationKind::kHadamard, d}, 3);
      const torch::Tensor out = *CodebookAttention(q, tq, *tq.Encode(k), tq, *tq.Encode(v), scale);
      const double rel = ((out - dense).norm() / dense.norm()).item<double>();
      std::printf("%s: attention output relative error vs dense %.4f (T=%lld, GQA 8/2)\n",
                  tq.name().c_str(), rel, static_cast<long long>(tokens));
      EXPECT_LT(rel, previous) << tq.name();
      previous = rel;
    }
  }
}

TEST(DenseAttentionTest, BaselineEqualsTheReference) {
  for (int64_t d : {64, 96, 128}) {
    const torch::Tensor k = KvLike(kTokens, kKvHeads, d, 31), v = KvLike(kTokens, kKvHeads, d, 32);
    const torch::Tensor q = Gaussian({kHeads, d}, 33, 2.0f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const torch::Tensor ref = *DenseAttentionRef(q, k, v, scale);
    absl::StatusOr<torch::Tensor> out = DenseAttention(q, k, v, scale);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_LT(WorstRatio(*out, ref, v.abs().max()), 1e-5);
    const torch::Tensor logits = *DenseLogits(q, k), logits_ref = *DenseLogitsRef(q, k);
    EXPECT_LT(((logits - logits_ref).norm() / logits_ref.norm()).item<double>(), 1e-6);
    // And the reference is softmax(scale q k^T) v, by torch, per kv head group.
    const torch::Tensor kr = k.repeat_interleave(kHeads / kKvHeads, 1);  // [T, heads, D]
    const torch::Tensor vr = v.repeat_interleave(kHeads / kKvHeads, 1);
    const torch::Tensor p = torch::softmax(scale * (q.unsqueeze(0) * kr).sum(-1), 0);  // [T, heads]
    const torch::Tensor by_torch = (p.unsqueeze(-1) * vr).sum(0);
    EXPECT_LT(WorstRatio(ref, by_torch, v.abs().max()), 1e-5);
  }
}

TEST(CodebookAttentionErrorTest, NamesTheProblem) {
  const Format f{TurboQuantKind::kProd, 3, false, RotationKind::kHadamard, 64};
  const TurboQuant tq = Make(f, 1), other = Make(f, 2);
  const TurboQuantTensor k = *tq.Encode(KvLike(10, 2, 64, 1));
  const TurboQuantTensor v = *tq.Encode(KvLike(10, 2, 64, 2));
  const TurboQuantTensor v_short = *tq.Encode(KvLike(9, 2, 64, 2));
  const TurboQuantTensor empty = *tq.Encode(KvLike(0, 2, 64, 2));
  const torch::Tensor q = Gaussian({4, 64}, 3);
  torch::Tensor q_nan = q.clone();
  q_nan[1][7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(CodebookAttention(q, tq, k, tq, v, 0.125f).ok());
  const struct {
    absl::Status status;
    const char* says;
  } cases[] = {
      {CodebookAttention(Gaussian({3, 64}, 1), tq, k, tq, v, 0.1f).status(),
       "heads (3) must be a positive multiple of kv_heads (2)"},
      {CodebookAttention(Gaussian({4, 32}, 1), tq, k, tq, v, 0.1f).status(),
       "q must be [heads, 64], got [4, 32]"},
      {CodebookAttention(q_nan, tq, k, tq, v, 0.1f).status(), "q[1, 7] is not finite"},
      {CodebookAttention(q, tq, k, tq, v_short, 0.1f).status(),
       "K is [10, 2, 64] but V is [9, 2, 64]"},
      {CodebookAttention(q, tq, k, other, v, 0.1f).status(), "V: "},
      {CodebookAttention(q, other, k, tq, v, 0.1f).status(), "K: "},
      {CodebookAttention(q, tq, empty, tq, empty, 0.1f).status(), "attention over 0 tokens"},
      {CodebookAttention(q, tq, k, tq, v, 0.1f, 3).status(), "variant 3 does not exist"},
      {CodebookLogits(q.to(torch::kInt32), tq, k).status(), "dtype must be float32"},
      {DenseAttention(q, Gaussian({10, 2, 64}, 1), Gaussian({10, 2, 32}, 1), 0.1f).status(),
       "must be of one non-empty shape"},
      {DenseLogits(q, Gaussian({10, 2, 64}, 1).to(torch::kFloat64)).status(), "k must be float32"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    EXPECT_EQ(c.status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(c.status), HasSubstr(c.says));
  }
  // Logits over no tokens are fine: [heads, 0].
  absl::StatusOr<torch::Tensor> none = CodebookLogits(q, tq, empty);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->sizes().vec(), (std::vector<int64_t>{4, 0}));
}

TEST(CodebookAttentionTest, HalfPrecisionQueriesAreConverted) {
  const Format f{TurboQuantKind::kMse, 4, false, RotationKind::kHadamard, 64};
  const TurboQuant tq = Make(f, 1);
  const TurboQuantTensor k = *tq.Encode(KvLike(20, 1, 64, 1)), v = *tq.Encode(KvLike(20, 1, 64, 2));
  const torch::Tensor q = Gaussian({2, 64}, 3).to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(*CodebookAttention(q, tq, k, tq, v, 0.125f),
                           *CodebookAttention(q.to(torch::kFloat32), tq, k, tq, v, 0.125f)));
}

}  // namespace
}  // namespace kvgate::kernels
