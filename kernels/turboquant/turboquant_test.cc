// Tests of TurboQuant (turboquant.h, turboquant_kv_format.h): measured distortion of unit vectors
// against the codebooks' (and the paper's) values, unbiasedness of TurboQuant_prod's inner products
// over seeds against the measurable bias of the codebook part alone, the fast path against the
// reference, the packed layout, the outlier split, exact byte accounting, determinism by seed,
// and errors. Inputs come from seeded generators.
//
// Run: tools/bazel test //kernels/turboquant:turboquant_test --test_output=all  (prints the
// numbers)

#include "kernels/turboquant/turboquant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/kv_format/kv_format.h"
#include "kernels/kv_format/kv_format_registry.h"
#include "kernels/turboquant/lloyd_max.h"
#include "kernels/turboquant/turboquant_kv_format.h"

namespace kvgate::kernels {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// Gaussian float32 [tokens, heads, d] from a seeded generator, times `scale`.
torch::Tensor Gaussian(int64_t tokens, int64_t heads, int64_t d, uint64_t seed,
                       float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  torch::Tensor x = torch::empty({tokens, heads, d}, torch::kFloat32);
  float* p = x.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = scale * normal(rng);
  return x;
}

// Uniform unit vectors [n, 1, d].
torch::Tensor UnitVectors(int64_t n, int64_t d, uint64_t seed) {
  torch::Tensor x = Gaussian(n, 1, d, seed);
  return x / x.norm(2, {2}, true);
}

TurboQuant MakeOk(TurboQuantKind kind, int bits, int64_t d, uint64_t seed,
                  RotationKind rotation = RotationKind::kHadamard, bool split = false) {
  TurboQuantOptions o;
  o.kind = kind;
  o.bits = bits;
  o.seed = seed;
  o.rotation = rotation;
  o.split = split;
  absl::StatusOr<TurboQuant> tq = TurboQuant::Make(o, d);
  EXPECT_TRUE(tq.ok()) << tq.status();
  return *std::move(tq);
}

torch::Tensor RoundTrip(const TurboQuant& tq, const torch::Tensor& x) {
  absl::StatusOr<TurboQuantTensor> t = tq.Encode(x);
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return torch::Tensor();
  absl::StatusOr<torch::Tensor> x_hat = tq.Decode(*t);
  EXPECT_TRUE(x_hat.ok()) << x_hat.status();
  return x_hat.ok() ? *x_hat : torch::Tensor();
}

// Mean and standard error of the rows' squared errors.
struct MeanSe {
  double mean, se;
};
MeanSe SquaredErrors(const torch::Tensor& x, const torch::Tensor& x_hat) {
  const torch::Tensor e = (x - x_hat).pow(2).sum(-1).flatten().to(torch::kFloat64);
  const double n = static_cast<double>(e.numel());
  return {e.mean().item<double>(), e.std().item<double>() / std::sqrt(n)};
}

// ---------------------------------------------------------------------------------------------
// Distortion.

// The paper's quoted unit-vector MSE for b = 1..4 (rounded) and the Gaussian Lloyd-Max values.
constexpr double kPaper[5] = {0, 0.36, 0.117, 0.03, 0.009};
constexpr double kGaussian[5] = {0, 0.3634, 0.1175, 0.03454, 0.009497};

TEST(TurboQuantMseTest, MeasuredDistortionOfUnitVectorsIsTheCodebooks) {
  const int64_t d = 128, n = 4000;
  const torch::Tensor u = UnitVectors(n, d, 2024);
  for (RotationKind rotation : {RotationKind::kHadamard, RotationKind::kDense}) {
    for (int bits = 1; bits <= 4; ++bits) {
      SCOPED_TRACE(absl::StrCat(std::string(RotationKindName(rotation)), " bits=", bits));
      const TurboQuant tq = MakeOk(TurboQuantKind::kMse, bits, d, 7, rotation);
      const torch::Tensor u_hat = RoundTrip(tq, u);
      ASSERT_TRUE(u_hat.defined());
      const MeanSe mse = SquaredErrors(u, u_hat);
      const double expected = CachedSphereCodebook(d, bits).unit_vector_distortion();
      std::printf(
          "turboquant_mse d=128 b=%d rotation=%s: measured MSE %.5f +- %.5f (codebook "
          "%.5f, Gaussian %.5f, paper ~%g)\n",
          bits, std::string(RotationKindName(rotation)).c_str(), mse.mean, mse.se, expected,
          kGaussian[bits], kPaper[bits]);
      // A uniform unit vector stays uniform under any rotation: the codebook's distortion, up to
      // sampling error and the fp16 norm (relative 2^-11 of the vector).
      EXPECT_NEAR(mse.mean, expected, 4 * mse.se + 1e-3 * expected);
      EXPECT_NEAR(mse.mean, kPaper[bits], 0.16 * kPaper[bits]);
    }
  }
}

TEST(TurboQuantMseTest, StructuredInputsAreSpreadByTheRotation) {
  // Basis vectors and sparse spikes are the worst case for a per-coordinate codebook without a
  // rotation; after the two-round Hadamard rotation their distortion is near the codebook's.
  const int64_t d = 128;
  torch::Tensor x = torch::zeros({2 * d, 1, d});
  for (int64_t i = 0; i < d; ++i) {
    x[i][0][i] = 1.0f;                     // e_i
    x[d + i][0][i] = 3.0f;                 // a spike plus ...
    x[d + i][0][(i * 7 + 3) % d] = -2.0f;  // ... a second one
  }
  for (int bits = 2; bits <= 4; ++bits) {
    const TurboQuant tq = MakeOk(TurboQuantKind::kMse, bits, d, 5);
    const torch::Tensor x_hat = RoundTrip(tq, x);
    ASSERT_TRUE(x_hat.defined());
    const torch::Tensor rel = (x - x_hat).pow(2).sum(-1) / x.pow(2).sum(-1);
    const double expected = CachedSphereCodebook(d, bits).unit_vector_distortion();
    EXPECT_LT(rel.mean().item<double>(), 1.3 * expected) << bits;
    EXPECT_GT(rel.mean().item<double>(), 0.7 * expected) << bits;
  }
}

TEST(TurboQuantMseTest, ScaledVectorsKeepTheirNorms) {
  // Non-unit vectors: the norm is stored (fp16), the direction quantized; relative MSE as a unit's.
  const int64_t d = 64;
  const torch::Tensor x = Gaussian(500, 2, d, 9, 37.0f);
  const TurboQuant tq = MakeOk(TurboQuantKind::kMse, 3, d, 1);
  const torch::Tensor x_hat = RoundTrip(tq, x);
  ASSERT_TRUE(x_hat.defined());
  const double rel = ((x - x_hat).pow(2).sum(-1) / x.pow(2).sum(-1)).mean().item<double>();
  EXPECT_NEAR(rel, CachedSphereCodebook(d, 3).unit_vector_distortion(), 0.1 * 0.034);
}

// ---------------------------------------------------------------------------------------------
// TurboQuant_prod: unbiased inner products.

TEST(TurboQuantProdTest, InnerProductsAreUnbiasedWhileTheCodebookPartIsBiased) {
  // For each seed (a new rotation and sketch S), 8 pairs (q, k): k a unit vector, q = 2k + a unit
  // Gaussian, so <q, k> ~ 2 and the codebook part's shrinkage (<q, k_mse> ~ (1 - D) <q, k>) is
  // large. The per-seed mean errors are i.i.d. across seeds: mean / standard error is a z-score.
  const int64_t d = 128, seeds = 400, pairs = 8;
  for (int bits = 1; bits <= 4; ++bits) {
    double sum = 0, sum2 = 0, mse_sum = 0, mse_sum2 = 0;
    for (int64_t s = 0; s < seeds; ++s) {
      const TurboQuant tq = MakeOk(TurboQuantKind::kProd, bits, d, 1000 + s);
      const torch::Tensor k = UnitVectors(pairs, d, 50000 + s);
      const torch::Tensor q = 2 * k + Gaussian(pairs, 1, d, 90000 + s, 1.0f / std::sqrt(128.0f));
      absl::StatusOr<TurboQuantTensor> t = tq.Encode(k);
      ASSERT_TRUE(t.ok()) << t.status();
      absl::StatusOr<torch::Tensor> k_hat = tq.Decode(*t);
      ASSERT_TRUE(k_hat.ok()) << k_hat.status();
      const torch::Tensor exact = (q * k).sum(-1).to(torch::kFloat64);
      const double err = ((q * *k_hat).sum(-1).to(torch::kFloat64) - exact).mean().item<double>();
      sum += err;
      sum2 += err * err;
      // The codebook part alone (the same b - 1 bit codes; zero when b = 1).
      TurboQuantTensor mse_only = *t;
      mse_only.groups[0].residual_norms = torch::zeros_like(t->groups[0].residual_norms);
      const torch::Tensor k_mse = *tq.Decode(mse_only);
      const double mse_err =
          ((q * k_mse).sum(-1).to(torch::kFloat64) - exact).mean().item<double>();
      mse_sum += mse_err;
      mse_sum2 += mse_err * mse_err;
    }
    const double n = static_cast<double>(seeds);
    const double mean = sum / n, se = std::sqrt((sum2 / n - mean * mean) / (n - 1));
    const double mse_mean = mse_sum / n;
    const double mse_se = std::sqrt(std::max(mse_sum2 / n - mse_mean * mse_mean, 0.0) / (n - 1));
    std::printf(
        "turboquant_prod d=128 b=%d, %lld seeds x %lld pairs, <q,k> ~ 2: mean error "
        "%+.5f +- %.5f (z = %+.2f); codebook part alone (%d bits): %+.5f +- %.5f "
        "(z = %+.1f)\n",
        bits, static_cast<long long>(seeds), static_cast<long long>(pairs), mean, se, mean / se,
        bits - 1, mse_mean, mse_se, mse_se > 0 ? mse_mean / mse_se : -1e9);
    EXPECT_LT(std::fabs(mean), 4 * se) << "TurboQuant_prod is biased at bits=" << bits;
    EXPECT_GT(-mse_mean, 10 * mse_se) << "the codebook part should shrink <q, k>";
    // The shrinkage is about the codebook's distortion (1 for b = 1: no codebook part at all).
    const double shrink =
        bits == 1 ? 1.0 : CachedSphereCodebook(d, bits - 1).unit_vector_distortion();
    EXPECT_NEAR(-mse_mean / 2.0, shrink, 0.2 * shrink);
  }
}

TEST(TurboQuantProdTest, DecodeIsTheEstimatorAndItsVarianceIsAsPredicted) {
  // <q, x_hat> = <q, x_mse> + rho sqrt(pi/2)/m <S q, s>, and over S its variance is about
  // pi/(2m) rho^2 ||q||^2 (less the projection on r): check the order of magnitude.
  const int64_t d = 128;
  const TurboQuant tq = MakeOk(TurboQuantKind::kProd, 3, d, 77);
  const TurboQuantCodec& c = tq.codec(0);
  const torch::Tensor x = Gaussian(16, 1, d, 3);
  const torch::Tensor q = Gaussian(1, 1, d, 4).flatten();
  absl::StatusOr<TurboQuantTensor> t = tq.Encode(x);
  ASSERT_TRUE(t.ok());
  const torch::Tensor x_hat = *tq.Decode(*t);
  TurboQuantTensor mse_only = *t;
  mse_only.groups[0].residual_norms = torch::zeros_like(t->groups[0].residual_norms);
  const torch::Tensor x_mse = *tq.Decode(mse_only);
  const torch::Tensor s =
      torch::from_blob(const_cast<float*>(c.sketch().data()), {d, d}, torch::kFloat32);
  const torch::Tensor sq = s.matmul(q);
  std::vector<uint8_t> signs(d);
  for (int64_t v = 0; v < 16; ++v) {
    UnpackCodes(t->groups[0].qjl[v][0].data_ptr<uint8_t>(), d, 1, signs.data());
    double dot = 0;
    for (int64_t i = 0; i < d; ++i) dot += (signs[i] ? 1.0 : -1.0) * sq[i].item<float>();
    const double rho = static_cast<float>(t->groups[0].residual_norms[v][0].item<c10::Half>());
    const double estimate = (q * x_mse[v][0]).sum().item<double>() + rho * c.qjl_scale() * dot;
    EXPECT_NEAR((q * x_hat[v][0]).sum().item<double>(), estimate, 1e-4 * (1 + std::fabs(estimate)));
  }
}

// ---------------------------------------------------------------------------------------------
// Fast path against the reference.

struct Variant {
  TurboQuantKind kind;
  int bits;
  bool split;
  RotationKind rotation;
  int64_t d;
};

std::string VariantName(const Variant& v) {
  TurboQuantOptions o;
  o.kind = v.kind;
  o.bits = v.bits;
  o.split = v.split;
  o.rotation = v.rotation;
  return absl::StrCat(TurboQuantName(o), " d=", v.d);
}

std::vector<Variant> AllVariants() {
  std::vector<Variant> all;
  for (TurboQuantKind kind : {TurboQuantKind::kMse, TurboQuantKind::kProd}) {
    for (int bits = 1; bits <= 4; ++bits) {
      all.push_back({kind, bits, false, RotationKind::kHadamard, 64});
    }
    for (int bits = 1; bits <= 3; ++bits) {
      all.push_back({kind, bits, true, RotationKind::kHadamard, 128});
    }
    all.push_back({kind, 3, false, RotationKind::kDense, 96});
    all.push_back({kind, 2, true, RotationKind::kDense, 40});
  }
  return all;
}

TEST(TurboQuantRefTest, FastPathMatchesTheReference) {
  for (const Variant& v : AllVariants()) {
    SCOPED_TRACE(VariantName(v));
    const TurboQuant tq = MakeOk(v.kind, v.bits, v.d, 31, v.rotation, v.split);
    const torch::Tensor x = Gaussian(20, 3, v.d, 8);
    absl::StatusOr<TurboQuantTensor> fast = tq.Encode(x);
    absl::StatusOr<TurboQuantTensor> ref = tq.EncodeRef(x);
    ASSERT_TRUE(fast.ok()) << fast.status();
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_EQ(fast->bytes(), ref->bytes());
    if (v.split) {
      EXPECT_TRUE(torch::equal(fast->outlier_mask, ref->outlier_mask));
    }
    // Codes may differ only for a coordinate within float rounding of a boundary: a few at most.
    int64_t differing = 0, total = 0;
    for (int g = 0; g < tq.num_groups(); ++g) {
      const TurboQuantCodec& c = tq.codec(g);
      std::vector<uint8_t> a(c.dim()), b(c.dim());
      for (int64_t r = 0; r < 60 && c.mse_bits() > 0; ++r) {
        UnpackCodes(fast->groups[g].codes.view({60, -1})[r].data_ptr<uint8_t>(), c.dim(),
                    c.mse_bits(), a.data());
        UnpackCodes(ref->groups[g].codes.view({60, -1})[r].data_ptr<uint8_t>(), c.dim(),
                    c.mse_bits(), b.data());
        for (int64_t i = 0; i < c.dim(); ++i) {
          differing += a[i] != b[i];
          EXPECT_LE(std::abs(a[i] - b[i]), 1);
        }
        total += c.dim();
      }
      if (c.mse_bits() > 0) {
        EXPECT_TRUE(torch::equal(fast->groups[g].norms, ref->groups[g].norms));
      }
    }
    EXPECT_LE(differing, 2 + total / 1000);
    // Decoding: fast and reference paths on the same codes agree to float rounding.
    const torch::Tensor a = *tq.Decode(*ref);
    const torch::Tensor b = *tq.DecodeRef(*ref);
    EXPECT_LT((a - b).abs().max().item<float>(), 1e-5f * x.abs().max().item<float>());
    // And the two encodings decode to the same vectors, but for the few a flipped code changed.
    const torch::Tensor c = *tq.Decode(*fast);
    const torch::Tensor rel = (c - a).norm(2, {2}) / x.norm(2, {2});
    EXPECT_LE((rel > 1e-4).sum().item<int64_t>(), 2 + total / 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// The packed layout.

TEST(TurboQuantPackingTest, RoundTripsEveryWidthAndCount) {
  std::mt19937 rng(5);
  for (int bits = 1; bits <= 8; ++bits) {
    for (int64_t count : {1, 7, 8, 13, 64, 128}) {
      std::vector<uint8_t> codes(count), back(count);
      for (auto& c : codes) c = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
      std::vector<uint8_t> packed(PackedBytes(count, bits) + 1, 0xAB);  // a sentinel after
      PackCodes(codes.data(), count, bits, packed.data());
      EXPECT_EQ(packed.back(), 0xAB) << "wrote past PackedBytes";
      UnpackCodes(packed.data(), count, bits, back.data());
      EXPECT_EQ(codes, back) << bits << " " << count;
      // The little-endian bit stream, checked against an integer.
      if (count * bits <= 64) {
        uint64_t stream = 0;
        for (int64_t j = 0; j < count; ++j) stream |= static_cast<uint64_t>(codes[j]) << (j * bits);
        for (int64_t byte = 0; byte < PackedBytes(count, bits); ++byte) {
          EXPECT_EQ(packed[byte], static_cast<uint8_t>(stream >> (8 * byte)))
              << bits << " " << byte;
        }
      }
    }
  }
  // 3 bits: codes 1..7, 0 -> the 24-bit stream 0o07654321 read little-endian.
  const uint8_t codes[8] = {1, 2, 3, 4, 5, 6, 7, 0};
  uint8_t packed[3];
  PackCodes(codes, 8, 3, packed);
  EXPECT_EQ(packed[0], 0xD1);
  EXPECT_EQ(packed[1], 0x58);
  EXPECT_EQ(packed[2], 0x1F);
}

TEST(TurboQuantPackingTest, HandBuiltCodesDecodeToTheRotatedCentroids) {
  // One vector of d = 16 at 2 bits: code j = j % 4, norm 2.5. Decode = 2.5 * R^T c[code].
  const int64_t d = 16;
  const TurboQuant tq = MakeOk(TurboQuantKind::kMse, 2, d, 3);
  const TurboQuantCodec& c = tq.codec(0);
  TurboQuantTensor t;
  t.format = tq.name();
  t.shape = {1, 1, d};
  t.groups.resize(1);
  std::vector<uint8_t> code(d);
  for (int64_t j = 0; j < d; ++j) code[j] = j % 4;
  t.groups[0].codes = torch::empty({1, 1, 4}, torch::kUInt8);
  PackCodes(code.data(), d, 2, t.groups[0].codes.data_ptr<uint8_t>());
  EXPECT_EQ(t.groups[0].codes[0][0][0].item<int>(), 0b11100100);
  t.groups[0].norms = torch::full({1, 1}, 2.5, torch::kFloat16);
  absl::StatusOr<torch::Tensor> x = tq.Decode(t);
  ASSERT_TRUE(x.ok()) << x.status();
  for (int64_t j = 0; j < d; ++j) {
    double expected = 0;
    for (int64_t i = 0; i < d; ++i) {
      expected += c.rotation().matrix()[i * d + j] * static_cast<double>(c.centroids()[code[i]]);
    }
    EXPECT_NEAR((*x)[0][0][j].item<float>(), 2.5 * expected, 1e-6) << j;
  }
}

// ---------------------------------------------------------------------------------------------
// The outlier split.

TEST(TurboQuantSplitTest, PicksTheLargestChannelsPerHeadAndGivesThemTheExtraBit) {
  const int64_t d = 64, heads = 2;
  torch::Tensor x = Gaussian(300, heads, d, 12);
  // Head 0: channels 3, 10, ..., every 2nd from 33 get x10; head 1: the first 32 channels x5.
  std::vector<int64_t> big0 = {3, 10};
  for (int64_t c = 33; c < d; c += 2) big0.push_back(c);  // 16 more: 18 in all
  for (int64_t c : big0) x.select(1, 0).select(1, c).mul_(10.0f);
  x.select(1, 1).slice(1, 0, 32).mul_(5.0f);
  for (TurboQuantKind kind : {TurboQuantKind::kMse, TurboQuantKind::kProd}) {
    const TurboQuant tq = MakeOk(kind, 2, d, 4, RotationKind::kHadamard, /*split=*/true);
    absl::StatusOr<TurboQuantTensor> t = tq.Encode(x);
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_EQ(t->outlier_mask.sizes().vec(), (std::vector<int64_t>{heads, 8}));
    const std::vector<int64_t> out0 = tq.GroupChannels(*t, 0, 0);
    ASSERT_EQ(out0.size(), 32u);
    for (int64_t c : big0) EXPECT_NE(std::find(out0.begin(), out0.end(), c), out0.end()) << c;
    std::vector<int64_t> first32(32);
    std::iota(first32.begin(), first32.end(), 0);
    EXPECT_EQ(tq.GroupChannels(*t, 0, 1), first32);
    std::vector<int64_t> last32(32);
    std::iota(last32.begin(), last32.end(), 32);
    EXPECT_EQ(tq.GroupChannels(*t, 1, 1), last32);
    EXPECT_EQ(tq.codec(0).bits(), 3);
    EXPECT_EQ(tq.codec(1).bits(), 2);
    EXPECT_EQ(tq.codec(0).dim(), 32);
    // A given set is used as given.
    torch::Tensor mask = torch::zeros({heads, 8}, torch::kUInt8);
    mask.select(1, 0).fill_(0xFF);  // channels 0..7, 16..23, 32..39, 48..55
    mask.select(1, 2).fill_(0xFF);
    mask.select(1, 4).fill_(0xFF);
    mask.select(1, 6).fill_(0xFF);
    absl::StatusOr<TurboQuantTensor> given = tq.EncodeWithOutliers(x, mask);
    ASSERT_TRUE(given.ok()) << given.status();
    EXPECT_TRUE(torch::equal(given->outlier_mask, mask));
    EXPECT_EQ(tq.GroupChannels(*given, 0, 1)[8], 16);
    EXPECT_TRUE(tq.Decode(*given).ok());
  }
  // The outliers' extra bit pays: lower relative error on those channels than the 2-bit rest.
  const TurboQuant tq = MakeOk(TurboQuantKind::kMse, 2, d, 4, RotationKind::kHadamard, true);
  const torch::Tensor x_hat = RoundTrip(tq, x);
  const torch::Tensor plain_hat = RoundTrip(MakeOk(TurboQuantKind::kMse, 2, d, 4), x);
  const double split_err = ((x - x_hat).pow(2).sum() / x.pow(2).sum()).item<double>();
  const double plain_err = ((x - plain_hat).pow(2).sum() / x.pow(2).sum()).item<double>();
  EXPECT_LT(split_err, plain_err);
}

TEST(TurboQuantSplitTest, RejectsBadOutlierSets) {
  const TurboQuant tq = MakeOk(TurboQuantKind::kMse, 2, 16, 4, RotationKind::kHadamard, true);
  const torch::Tensor x = Gaussian(4, 2, 16, 1);
  torch::Tensor seven = torch::zeros({2, 2}, torch::kUInt8);
  seven.select(1, 0).fill_(0x7F);
  EXPECT_THAT(Message(tq.EncodeWithOutliers(x, seven).status()),
              HasSubstr("outlier_mask head 0 has 7 outlier channels, expected 8"));
  EXPECT_THAT(Message(tq.EncodeWithOutliers(x, torch::zeros({2, 3}, torch::kUInt8)).status()),
              HasSubstr("outlier_mask must be uint8 [2, 2]"));
  EXPECT_THAT(Message(MakeOk(TurboQuantKind::kMse, 2, 16, 4).EncodeWithOutliers(x, seven).status()),
              HasSubstr("has no split"));
}

// ---------------------------------------------------------------------------------------------
// Bytes.

TEST(TurboQuantBytesTest, ExactCountsByHand) {
  const int64_t mse[5] = {0, 18, 34, 50, 66}, prod[5] = {0, 18, 36, 52, 68};
  for (int bits = 1; bits <= 4; ++bits) {
    EXPECT_EQ(MakeOk(TurboQuantKind::kMse, bits, 128, 0).BytesPerVector(), mse[bits]);
    EXPECT_EQ(MakeOk(TurboQuantKind::kProd, bits, 128, 0).BytesPerVector(), prod[bits]);
  }
  // Split 2.5 at D = 128: outliers 64 x 3 bits = 24 + 2, rest 64 x 2 bits = 16 + 2; a 16-byte
  // mask a head. prod 2.5: outliers 64 x 2 + QJL 8 + 2 + 2 = 28, rest 8 + 2 + 8 + 2 = 20.
  const TurboQuant split = MakeOk(TurboQuantKind::kMse, 2, 128, 0, RotationKind::kHadamard, true);
  EXPECT_EQ(split.BytesPerVector(), 44);
  EXPECT_EQ(split.Bytes(1000, 4), 1000 * 4 * 44 + 4 * 16);
  const TurboQuant psplit = MakeOk(TurboQuantKind::kProd, 2, 128, 0, RotationKind::kHadamard, true);
  EXPECT_EQ(psplit.BytesPerVector(), 48);
}

TEST(TurboQuantBytesTest, BytesOfEveryTensorMatchBytes) {
  for (const Variant& v : AllVariants()) {
    SCOPED_TRACE(VariantName(v));
    const TurboQuant tq = MakeOk(v.kind, v.bits, v.d, 2, v.rotation, v.split);
    for (int64_t tokens : {0, 1, 9}) {
      absl::StatusOr<TurboQuantTensor> t = tq.Encode(Gaussian(tokens, 3, v.d, 6));
      ASSERT_TRUE(t.ok()) << t.status();
      EXPECT_EQ(t->bytes(), tq.Bytes(tokens, 3));
      absl::StatusOr<EncodedKv> e = TurboQuantTensorToEncodedKv(*t, KvRole::kKey);
      ASSERT_TRUE(e.ok());
      EXPECT_EQ(e->bytes(), tq.Bytes(tokens, 3));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Determinism, dtypes, special values.

TEST(TurboQuantSeedTest, SameSeedSameCodesOtherSeedOtherCodes) {
  const torch::Tensor x = Gaussian(32, 2, 128, 17);
  for (TurboQuantKind kind : {TurboQuantKind::kMse, TurboQuantKind::kProd}) {
    const TurboQuant a = MakeOk(kind, 3, 128, 7), b = MakeOk(kind, 3, 128, 7);
    const TurboQuant c = MakeOk(kind, 3, 128, 8);
    const TurboQuantTensor ta = *a.Encode(x), tb = *b.Encode(x), tc = *c.Encode(x);
    EXPECT_TRUE(torch::equal(ta.groups[0].codes, tb.groups[0].codes));
    EXPECT_TRUE(torch::equal(*a.Decode(ta), *b.Decode(tb)));
    EXPECT_FALSE(torch::equal(ta.groups[0].codes, tc.groups[0].codes));
    EXPECT_FALSE(torch::equal(*a.Decode(ta), *c.Decode(tc)));
    if (kind == TurboQuantKind::kProd) {
      EXPECT_TRUE(torch::equal(ta.groups[0].qjl, tb.groups[0].qjl));
      EXPECT_FALSE(torch::equal(ta.groups[0].qjl, tc.groups[0].qjl));
    }
    // A tensor of seed 7 is not another seed's to decode.
    EXPECT_THAT(Message(c.Decode(ta).status()), HasSubstr("cannot take a tensor encoded as"));
  }
}

TEST(TurboQuantDtypeTest, HalfInputsEncodeLikeTheirFloatValues) {
  const TurboQuant tq = MakeOk(TurboQuantKind::kProd, 3, 64, 1);
  const torch::Tensor x = Gaussian(10, 2, 64, 3);
  for (torch::ScalarType dtype : {torch::kBFloat16, torch::kFloat16}) {
    const torch::Tensor h = x.to(dtype);
    const TurboQuantTensor a = *tq.Encode(h), b = *tq.Encode(h.to(torch::kFloat32));
    EXPECT_TRUE(torch::equal(a.groups[0].codes, b.groups[0].codes));
    EXPECT_TRUE(torch::equal(a.groups[0].qjl, b.groups[0].qjl));
  }
  // Non-contiguous input encodes like its contiguous copy.
  const torch::Tensor t = Gaussian(2, 10, 64, 4).transpose(0, 1);
  EXPECT_TRUE(
      torch::equal(tq.Encode(t)->groups[0].codes, tq.Encode(t.contiguous())->groups[0].codes));
}

TEST(TurboQuantSpecialTest, ZeroVectorsAndExactCleanup) {
  for (const Variant& v : AllVariants()) {
    SCOPED_TRACE(VariantName(v));
    const TurboQuant tq = MakeOk(v.kind, v.bits, v.d, 2, v.rotation, v.split);
    const torch::Tensor zero = torch::zeros({3, 2, v.d});
    EXPECT_TRUE(torch::equal(RoundTrip(tq, zero), zero));
    const torch::Tensor x = Gaussian(5, 2, v.d, 6);
    absl::StatusOr<TurboQuantTensor> exact = tq.EncodeExactCleanup(x);
    ASSERT_TRUE(exact.ok()) << exact.status();
    EXPECT_TRUE(exact->exact_cleanup);
    EXPECT_FALSE(exact->groups[0].codes.defined());
    EXPECT_LT((*tq.Decode(*exact) - x).abs().max().item<float>(), 1e-5f);
    EXPECT_FALSE(TurboQuantTensorToEncodedKv(*exact, KvRole::kKey).ok());
  }
}

// ---------------------------------------------------------------------------------------------
// Errors.

TEST(TurboQuantErrorTest, BadInputsNameTheProblem) {
  const TurboQuant tq = MakeOk(TurboQuantKind::kMse, 3, 64, 1);
  torch::Tensor nan = Gaussian(4, 2, 64, 1);
  nan[2][1][5] = std::numeric_limits<float>::quiet_NaN();
  torch::Tensor inf = Gaussian(4, 2, 64, 1);
  inf[3][0][63] = -std::numeric_limits<float>::infinity();
  const struct {
    torch::Tensor x;
    const char* says;
  } cases[] = {
      {nan, "x[2, 1, 5] is NaN"},
      {inf, "x[3, 0, 63] is -Inf"},
      {Gaussian(4, 2, 32, 1), "head_dim is 32, this format was made for 64"},
      {torch::randn({4, 64}), "rank 3"},
      {torch::randn({4, 2, 64}).to(torch::kFloat64), "dtype must be float32, bfloat16 or float16"},
      {torch::ones({4, 2, 64}, torch::kInt32), "dtype must be"},
      {torch::Tensor(), "x is undefined"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    absl::StatusOr<TurboQuantTensor> t = tq.Encode(c.x);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(t.status()), HasSubstr(c.says));
  }
  torch::Tensor big = Gaussian(3, 2, 64, 1);
  big[1][1] = 20000.0f;  // norm 160000 > 65504
  absl::StatusOr<TurboQuantTensor> t = tq.Encode(big);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(Message(t.status()), HasSubstr("vector 3 of 6: norm ||x|| = 160000"));
  EXPECT_THAT(Message(t.status()), HasSubstr("token v / 2, head v % 2"));
}

TEST(TurboQuantErrorTest, BadOptionsNameTheProblem) {
  TurboQuantOptions o;
  o.bits = 5;
  EXPECT_THAT(Message(TurboQuant::Make(o, 128).status()), HasSubstr("bits=5 is not supported"));
  o.bits = 0;
  EXPECT_THAT(Message(TurboQuant::Make(o, 128).status()), HasSubstr("bits=0 is not supported"));
  o.bits = 3;
  EXPECT_THAT(Message(TurboQuant::Make(o, 96).status()),
              HasSubstr("rotation=hadamard needs a power-of-two dimension >= 2, got 96"));
  o.rotation = RotationKind::kDense;
  EXPECT_TRUE(TurboQuant::Make(o, 96).ok());
  o.split = true;
  o.bits = 4;
  EXPECT_THAT(Message(TurboQuant::Make(o, 128).status()), HasSubstr("bits=4.5 is not supported"));
  o.bits = 2;
  EXPECT_THAT(Message(TurboQuant::Make(o, 33).status()), HasSubstr("even head_dim"));
  o.rotation = RotationKind::kHadamard;
  EXPECT_THAT(Message(TurboQuant::Make(o, 96).status()),
              HasSubstr("(outlier channels: 48): rotation=hadamard needs a power-of-two"));
}

TEST(TurboQuantErrorTest, DecodeChecksTheParts) {
  const TurboQuant tq = MakeOk(TurboQuantKind::kProd, 3, 64, 1);
  const TurboQuantTensor good = *tq.Encode(Gaussian(4, 2, 64, 1));
  ASSERT_TRUE(tq.Decode(good).ok());
  struct Case {
    const char* says;
    TurboQuantTensor t;
  };
  std::vector<Case> cases;
  auto add = [&](const char* says, auto edit) {
    TurboQuantTensor t = good;
    edit(t);
    cases.push_back({says, t});
  };
  add("codes must be uint8 [4, 2, 16]",
      [](TurboQuantTensor& t) { t.groups[0].codes = t.groups[0].codes.slice(2, 0, 15); });
  add("norms must be float16 [4, 2]",
      [](TurboQuantTensor& t) { t.groups[0].norms = t.groups[0].norms.to(torch::kFloat32); });
  add("qjl must be uint8 [4, 2, 8]",
      [](TurboQuantTensor& t) { t.groups[0].qjl = torch::Tensor(); });
  add("residual_norms must be float16 [4, 2]",
      [](TurboQuantTensor& t) { t.groups[0].residual_norms = t.groups[0].residual_norms[0]; });
  add("shape must be [tokens, kv_heads, 64]", [](TurboQuantTensor& t) { t.shape = {4, 2}; });
  add("2 groups of codes, expected 1", [](TurboQuantTensor& t) { t.groups.push_back({}); });
  add("outlier_mask must be undefined", [](TurboQuantTensor& t) {
    t.outlier_mask = torch::zeros({2, 8}, torch::kUInt8);
  });
  add("rotated must be float32 [4, 2, 64]", [](TurboQuantTensor& t) { t.exact_cleanup = true; });
  for (const Case& c : cases) {
    SCOPED_TRACE(c.says);
    absl::StatusOr<torch::Tensor> x = tq.Decode(c.t);
    ASSERT_FALSE(x.ok());
    EXPECT_EQ(x.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(x.status()), HasSubstr(c.says));
  }
}

// ---------------------------------------------------------------------------------------------
// The KvFormat adapter and the registry.

TEST(TurboQuantKvFormatTest, SpecsAreCanonicalAndRoundTrip) {
  const struct {
    const char* spec;
    const char* canonical;
    int64_t bytes_per_vector;  // at head_dim 128
  } cases[] = {
      {"turboquant_mse:bits=3:seed=7", "turboquant_mse:bits=3:rotation=hadamard:seed=7", 50},
      {"turboquant_prod:bits=4:seed=1", "turboquant_prod:bits=4:rotation=hadamard:seed=1", 68},
      {"turboquant_mse_split:bits=2.5:seed=9",
       "turboquant_mse_split:bits=2.5:rotation=hadamard:seed=9", 44},
      {"turboquant_prod_split:bits=3.5:rotation=dense",
       "turboquant_prod_split:bits=3.5:rotation=dense:seed=0", 64},
      {"turboquant_mse", "turboquant_mse:bits=3:rotation=hadamard:seed=0", 50},
  };
  const torch::Tensor x = Gaussian(33, 4, 128, 23);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.spec);
    absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKvFormat(c.spec);
    ASSERT_TRUE(format.ok()) << format.status();
    EXPECT_EQ((*format)->name(), c.canonical);
    const int64_t mask =
        absl::string_view(c.spec).find("split") != absl::string_view::npos ? 16 : 0;
    EXPECT_EQ((*format)->Bytes(33, 4, 128, KvRole::kValue), 33 * 4 * c.bytes_per_vector + 4 * mask);
    absl::StatusOr<EncodedKv> e = (*format)->Encode(x, KvRole::kValue);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->bytes(), (*format)->Bytes(33, 4, 128, KvRole::kValue));
    absl::StatusOr<torch::Tensor> x_hat = (*format)->Decode(*e);
    ASSERT_TRUE(x_hat.ok()) << x_hat.status();
    // The same as the TurboQuant of the spec.
    absl::StatusOr<TurboQuant> tq = TurboQuantForSpec(e->format, 128);
    ASSERT_TRUE(tq.ok()) << tq.status();
    absl::StatusOr<TurboQuantTensor> t = TurboQuantTensorFromEncodedKv(*e);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_TRUE(torch::equal(*x_hat, *tq->Decode(*t)));
  }
  const std::vector<std::string> known = KnownKvFormats();
  for (const char* spec : {"turboquant_mse:bits=3:rotation=hadamard:seed=0",
                           "turboquant_prod:bits=3:rotation=hadamard:seed=0",
                           "turboquant_mse_split:bits=3.5:rotation=hadamard:seed=0",
                           "turboquant_prod_split:bits=3.5:rotation=hadamard:seed=0"}) {
    EXPECT_NE(std::find(known.begin(), known.end(), spec), known.end()) << spec;
  }
}

TEST(TurboQuantKvFormatTest, BadSpecsNameTheProblem) {
  EXPECT_THAT(Message(MakeKvFormat("turboquant_mse:bits=5").status()),
              HasSubstr("bits=5 is not an integer in [1, 4]"));
  EXPECT_THAT(Message(MakeKvFormat("turboquant_mse_split:bits=3").status()),
              HasSubstr("bits=3 is not supported (1.5, 2.5 or 3.5"));
  EXPECT_THAT(Message(MakeKvFormat("turboquant_prod:rotation=givens").status()),
              HasSubstr("rotation=givens is not hadamard or dense"));
  EXPECT_THAT(Message(MakeKvFormat("turboquant_prod:seed=-1").status()),
              HasSubstr("seed=-1 is not an integer"));
  EXPECT_THAT(Message(MakeKvFormat("turboquant_prod:block=32").status()),
              HasSubstr("no parameter 'block'"));
  auto format = *MakeKvFormat("turboquant_mse");
  EXPECT_THAT(Message(format->Encode(torch::randn({4, 2, 96}), KvRole::kKey).status()),
              HasSubstr("power-of-two dimension >= 2, got 96"));
  EXPECT_EQ(format->Bytes(4, 2, 96, KvRole::kKey), 0);
  EXPECT_THAT(Message(format->Encode(torch::randn({4, 96}), KvRole::kKey).status()),
              HasSubstr("expected [tokens, kv_heads, head_dim]"));
  auto other = *MakeKvFormat("turboquant_mse:seed=1");
  EncodedKv e = *other->Encode(torch::randn({2, 1, 64}), KvRole::kKey);
  EXPECT_THAT(Message(format->Decode(e).status()), HasSubstr("cannot decode"));
  e.format = format->name();
  e.parts["extra"] = torch::zeros({1});
  EXPECT_THAT(Message(format->Decode(e).status()), HasSubstr("unexpected part 'extra'"));
}

}  // namespace
}  // namespace kvgate::kernels
