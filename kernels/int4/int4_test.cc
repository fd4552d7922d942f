// Tests of int4 K/V (int4.h): the round trip against the stored block scales on seeded random
// K/V-like inputs (float32, bfloat16, float16; several shapes; non-contiguous), the packed layout
// from hand-built codes, edge values and errors, byte accounting and the KV ratios.
//
// Run: tools/bazel test //kernels/int4:int4_test

#include "kernels/int4/int4.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::kernels {

// gtest prints parameters with this: "symmetric_int4", not "4-byte object <00-00 00-00>".
void PrintTo(Int4Scheme scheme, std::ostream* os) { *os << Int4SchemeName(scheme); }

namespace {

using ::testing::HasSubstr;

constexpr Int4Scheme kSchemes[] = {Int4Scheme::kSymmetric, Int4Scheme::kAffine};

// K/V-like float32 values, contiguous, from a seeded generator: Gaussian, with a magnitude that
// varies by block over about e^-3..e^3, an offset per block (so blocks are not centred on zero),
// and 1% outliers eight times larger. Works for any shape (blocks are runs of 32 flat elements).
torch::Tensor RandomKv(const std::vector<int64_t>& shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_magnitude(-3.0f, 3.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  torch::Tensor x = torch::empty(shape, torch::kFloat32);
  float* data = x.data_ptr<float>();
  float magnitude = 1.0f;
  float offset = 0.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (i % kInt4BlockSize == 0) {
      magnitude = std::exp(log_magnitude(rng));
      offset = 0.5f * magnitude * normal(rng);
    }
    const float outlier = unit(rng) < 0.01f ? 8.0f : 1.0f;
    data[i] = offset + magnitude * outlier * normal(rng);
  }
  return x;
}

// The message of a status, as a std::string for matchers to print.
std::string Message(const absl::Status& status) { return std::string(status.message()); }

std::string ShapeName(const std::vector<int64_t>& shape) { return absl::StrJoin(shape, "x"); }

// Checks q and its dequantization x_hat against x (any float dtype), block by block:
//  - the stored scale (and zero point) are the format's: fp16(absmax/7), or fp16(min) and
//    fp16(max(max - zero, 0)/15) (0 if min == max);
//  - every element's x_hat is its nearest point of the block's grid (codes -7..7 times the scale,
//    or zero + 0..15 times the scale);
//  - |x - x_hat| <= scale/2 (symmetric), or for affine the honest bound for a nearest-point grid
//    [zero, zero + 15 scale] over a block [min, max]:
//        max(scale/2, zero - min, max - zero - 15 scale),
//    where the last two (the fp16 rounding of zero and scale) are checked to be small. An affine
//    all-equal block (min == max) has scale 0: x_hat = zero = fp16(min).
// "Tiny" slack covers float32 rounding of x / scale and x - zero.
void ExpectFaithful(const torch::Tensor& x, const Int4Tensor& q, const torch::Tensor& x_hat) {
  const torch::Tensor xf = x.to(torch::kFloat32).contiguous();
  ASSERT_EQ(x_hat.scalar_type(), torch::kFloat32);
  ASSERT_EQ(x_hat.sizes().vec(), x.sizes().vec());
  ASSERT_TRUE(q.scales.is_contiguous());
  const float* xs = xf.data_ptr<float>();
  const torch::Tensor x_hat_rows = x_hat.contiguous();
  const float* hs = x_hat_rows.data_ptr<float>();
  const c10::Half* scales = q.scales.data_ptr<c10::Half>();
  const c10::Half* zeros = q.zeros.defined() ? q.zeros.data_ptr<c10::Half>() : nullptr;
  int failures = 0;
  for (int64_t b = 0; b < xf.numel() / kInt4BlockSize && failures < 5; ++b) {
    const float* block = xs + b * kInt4BlockSize;
    const float min = *std::min_element(block, block + kInt4BlockSize);
    const float max = *std::max_element(block, block + kInt4BlockSize);
    const float absmax = std::max(std::fabs(min), std::fabs(max));
    const float scale = static_cast<float>(scales[b]);
    float zero = 0.0f;
    int lo = -7, hi = 7;
    float bound = scale / 2;
    if (q.scheme == Int4Scheme::kSymmetric) {
      EXPECT_EQ(scale, static_cast<float>(c10::Half(absmax / 7.0f))) << "block " << b;
    } else {
      zero = static_cast<float>(zeros[b]);
      lo = 0;
      hi = 15;
      EXPECT_EQ(zero, static_cast<float>(c10::Half(min))) << "block " << b;
      const float expected_scale =
          min == max ? 0.0f : static_cast<float>(c10::Half(std::max(max - zero, 0.0f) / 15.0f));
      EXPECT_EQ(scale, expected_scale) << "block " << b;
      const float half_fp16_step = std::ldexp(std::fabs(min), -11) + std::ldexp(1.0f, -25);
      const float below = zero - min;                 // > 0 if fp16(min) rounded up
      const float above = max - (zero + 15 * scale);  // > 0 if the scale rounded down
      EXPECT_LE(below, half_fp16_step) << "block " << b;
      EXPECT_LE(above, min == max ? half_fp16_step : 0.01f * scale + 1e-6f * std::fabs(max))
          << "block " << b;
      bound = std::max({bound, below, above});
    }
    for (int64_t i = 0; i < kInt4BlockSize; ++i) {
      const float v = block[i];
      const float err = std::fabs(v - hs[b * kInt4BlockSize + i]);
      float nearest = std::numeric_limits<float>::infinity();
      for (int c = lo; c <= hi; ++c) nearest = std::min(nearest, std::fabs(v - (c * scale + zero)));
      const float tiny = 1e-5f * scale + 1e-6f * (std::fabs(v) + std::fabs(zero));
      if (err > bound + tiny || err > nearest + tiny) {
        ADD_FAILURE() << absl::StrFormat(
            "%s element %d (block %d): x = %.9g, x_hat = %.9g, |err| = %.9g, bound = %.9g, "
            "nearest grid point at %.9g, scale = %.9g, zero = %.9g",
            Int4SchemeName(q.scheme), b * kInt4BlockSize + i, b, v, hs[b * kInt4BlockSize + i], err,
            bound, nearest, scale, zero);
        ++failures;
      }
    }
  }
}

// Quantizes and dequantizes x, expecting both to succeed.
Int4Tensor QuantizeOk(const torch::Tensor& x, Int4Scheme scheme, torch::Tensor* x_hat) {
  absl::StatusOr<Int4Tensor> q = QuantizeInt4(x, scheme);
  EXPECT_TRUE(q.ok()) << q.status();
  if (!q.ok()) return {};
  absl::StatusOr<torch::Tensor> d = DequantizeInt4(*q);
  EXPECT_TRUE(d.ok()) << d.status();
  if (d.ok()) *x_hat = *d;
  return *q;
}

void ExpectSameTensors(const Int4Tensor& a, const Int4Tensor& b) {
  EXPECT_TRUE(torch::equal(a.codes, b.codes));
  EXPECT_TRUE(torch::equal(a.scales, b.scales));
  EXPECT_EQ(a.zeros.defined(), b.zeros.defined());
  if (a.zeros.defined() && b.zeros.defined()) EXPECT_TRUE(torch::equal(a.zeros, b.zeros));
}

// ---------------------------------------------------------------------------------------------
// Round trip: dtypes x shapes x schemes.

using RoundTripParam = std::tuple<torch::ScalarType, std::vector<int64_t>, Int4Scheme>;

class Int4RoundTripTest : public ::testing::TestWithParam<RoundTripParam> {};

// e.g. "bfloat16_17x4x128_affine_int4"
std::string RoundTripName(const ::testing::TestParamInfo<RoundTripParam>& info) {
  const auto& [dtype, shape, scheme] = info.param;
  const char* dtype_name = dtype == torch::kFloat32    ? "float32"
                           : dtype == torch::kBFloat16 ? "bfloat16"
                                                       : "float16";
  return absl::StrFormat("%s_%s_%s", dtype_name, ShapeName(shape), Int4SchemeName(scheme));
}

TEST_P(Int4RoundTripTest, ErrorWithinHalfStepOfStoredScale) {
  const auto& [dtype, shape, scheme] = GetParam();
  const torch::Tensor x = RandomKv(shape, /*seed=*/1000 + shape.back() + shape.size()).to(dtype);
  torch::Tensor x_hat;
  const Int4Tensor q = QuantizeOk(x, scheme, &x_hat);
  ASSERT_TRUE(x_hat.defined());

  std::vector<int64_t> codes_shape = shape, scales_shape = shape;
  codes_shape.back() /= 2;
  scales_shape.back() /= kInt4BlockSize;
  EXPECT_EQ(q.scheme, scheme);
  EXPECT_EQ(q.shape(), shape);
  EXPECT_EQ(q.codes.scalar_type(), torch::kUInt8);
  EXPECT_EQ(q.codes.sizes().vec(), codes_shape);
  EXPECT_TRUE(q.codes.is_contiguous());
  EXPECT_EQ(q.scales.scalar_type(), torch::kFloat16);
  EXPECT_EQ(q.scales.sizes().vec(), scales_shape);
  if (scheme == Int4Scheme::kAffine) {
    ASSERT_TRUE(q.zeros.defined());
    EXPECT_EQ(q.zeros.scalar_type(), torch::kFloat16);
    EXPECT_EQ(q.zeros.sizes().vec(), scales_shape);
  } else {
    EXPECT_FALSE(q.zeros.defined());
  }
  ExpectFaithful(x, q, x_hat);

  // A bfloat16 or float16 input quantizes exactly like its float32 values.
  if (dtype != torch::kFloat32) {
    torch::Tensor unused;
    ExpectSameTensors(q, QuantizeOk(x.to(torch::kFloat32), scheme, &unused));
  }
}

INSTANTIATE_TEST_SUITE_P(
    DtypesShapesSchemes, Int4RoundTripTest,
    ::testing::Combine(::testing::Values(torch::kFloat32, torch::kBFloat16, torch::kFloat16),
                       ::testing::Values(std::vector<int64_t>{32}, std::vector<int64_t>{3, 64},
                                         std::vector<int64_t>{17, 4, 128},  // [tokens, heads, 128]
                                         std::vector<int64_t>{2, 3, 5, 256}),
                       ::testing::ValuesIn(kSchemes)),
    RoundTripName);

TEST(Int4NonContiguousTest, QuantizesLikeItsContiguousCopy) {
  const torch::Tensor transposed = RandomKv({6, 128, 64}, 7).transpose(1, 2);  // [6, 64, 128]
  const torch::Tensor strided = RandomKv({8, 256}, 8).slice(1, 0, 256, 2);     // [8, 128]
  const torch::Tensor broadcast = RandomKv({1, 1, 64}, 9).expand({3, 2, 64});  // stride 0
  const torch::Tensor bf16_transposed = RandomKv({96, 10}, 10).to(torch::kBFloat16).t();
  for (const torch::Tensor& x : {transposed, strided, broadcast, bf16_transposed}) {
    SCOPED_TRACE(ShapeName(x.sizes().vec()));
    ASSERT_FALSE(x.is_contiguous());
    for (Int4Scheme scheme : kSchemes) {
      SCOPED_TRACE(Int4SchemeName(scheme));
      torch::Tensor x_hat, unused;
      const Int4Tensor q = QuantizeOk(x, scheme, &x_hat);
      ASSERT_TRUE(x_hat.defined());
      ExpectSameTensors(q, QuantizeOk(x.contiguous(), scheme, &unused));
      ExpectFaithful(x, q, x_hat);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The packed layout.

TEST(Int4PackingTest, HandBuiltSymmetricCodesDequantizeExactly) {
  // Two rows of two blocks; byte k of a block holds nibbles lo = k and hi = 15 - k, so element 2k
  // is (k - 8) * scale and element 2k + 1 is (7 - k) * scale.
  const float block_scales[2][2] = {{0.5f, 3.0f}, {0.125f, 1024.0f}};
  torch::Tensor codes = torch::empty({2, 32}, torch::kUInt8);
  torch::Tensor scales = torch::empty({2, 2}, torch::kFloat16);
  for (int r = 0; r < 2; ++r) {
    for (int b = 0; b < 2; ++b) {
      scales[r][b] = block_scales[r][b];
      for (int k = 0; k < 16; ++k) codes[r][b * 16 + k] = k | ((15 - k) << 4);
    }
  }
  absl::StatusOr<torch::Tensor> x_hat =
      DequantizeInt4({Int4Scheme::kSymmetric, codes, scales, torch::Tensor()});
  ASSERT_TRUE(x_hat.ok()) << x_hat.status();
  ASSERT_EQ(x_hat->sizes().vec(), (std::vector<int64_t>{2, 64}));
  for (int r = 0; r < 2; ++r) {
    for (int b = 0; b < 2; ++b) {
      for (int k = 0; k < 16; ++k) {
        const float s = block_scales[r][b];
        EXPECT_EQ((*x_hat)[r][b * 32 + 2 * k].item<float>(), (k - 8) * s)
            << r << " " << b << " " << k;
        EXPECT_EQ((*x_hat)[r][b * 32 + 2 * k + 1].item<float>(), (7 - k) * s)
            << r << " " << b << " " << k;
      }
    }
  }
  // Byte 15 is 0x0F: element 30 is its low nibble 0xF -> +7 * scale, element 31 its high nibble
  // 0 -> -8 * scale (a nibble quantizing never writes, but one that reads back all the same).
  EXPECT_EQ(codes[0][15].item<int>(), 0x0F);
  EXPECT_EQ((*x_hat)[0][30].item<float>(), 7 * 0.5f);
  EXPECT_EQ((*x_hat)[0][31].item<float>(), -8 * 0.5f);
}

TEST(Int4PackingTest, HandBuiltAffineCodesDequantizeExactly) {
  // One row of three blocks, element 2k = lo * scale + zero, 2k + 1 = hi * scale + zero.
  const float block_scales[3] = {0.25f, 2.0f, 0.0f};
  const float block_zeros[3] = {-1.0f, 100.0f, -3.5f};
  torch::Tensor codes = torch::empty({48}, torch::kUInt8);
  torch::Tensor scales = torch::empty({3}, torch::kFloat16);
  torch::Tensor zeros = torch::empty({3}, torch::kFloat16);
  for (int b = 0; b < 3; ++b) {
    scales[b] = block_scales[b];
    zeros[b] = block_zeros[b];
    for (int k = 0; k < 16; ++k) codes[b * 16 + k] = (15 - k) | (k << 4);
  }
  absl::StatusOr<torch::Tensor> x_hat = DequantizeInt4({Int4Scheme::kAffine, codes, scales, zeros});
  ASSERT_TRUE(x_hat.ok()) << x_hat.status();
  ASSERT_EQ(x_hat->sizes().vec(), (std::vector<int64_t>{96}));
  for (int b = 0; b < 3; ++b) {
    for (int k = 0; k < 16; ++k) {
      EXPECT_EQ((*x_hat)[b * 32 + 2 * k].item<float>(),
                (15 - k) * block_scales[b] + block_zeros[b]);
      EXPECT_EQ((*x_hat)[b * 32 + 2 * k + 1].item<float>(), k * block_scales[b] + block_zeros[b]);
    }
  }
}

TEST(Int4PackingTest, QuantizePutsEvenElementsInTheLowNibble) {
  // Symmetric: x[i] = (i % 15) - 7 has absmax 7, so scale 1 and nibble (i % 15) + 1, exactly.
  // Affine: x[i] = (i % 16) + 3 has min 3 and max 18, so zero 3, scale 1 and nibble i % 16.
  torch::Tensor sym = torch::empty({2, 32}, torch::kFloat32);
  torch::Tensor aff = torch::empty({2, 32}, torch::kFloat32);
  for (int i = 0; i < 64; ++i) {
    sym.view({64})[i] = static_cast<float>((i % 15) - 7);
    aff.view({64})[i] = static_cast<float>((i % 16) + 3);
  }
  torch::Tensor sym_hat, aff_hat;
  const Int4Tensor qs = QuantizeOk(sym, Int4Scheme::kSymmetric, &sym_hat);
  const Int4Tensor qa = QuantizeOk(aff, Int4Scheme::kAffine, &aff_hat);
  ASSERT_TRUE(sym_hat.defined() && aff_hat.defined());
  for (int k = 0; k < 32; ++k) {  // byte k of the flat codes holds elements 2k and 2k + 1
    const int sym_byte = ((2 * k) % 15 + 1) | (((2 * k + 1) % 15 + 1) << 4);
    const int aff_byte = ((2 * k) % 16) | (((2 * k + 1) % 16) << 4);
    EXPECT_EQ(qs.codes.view({32})[k].item<int>(), sym_byte) << "byte " << k;
    EXPECT_EQ(qa.codes.view({32})[k].item<int>(), aff_byte) << "byte " << k;
  }
  EXPECT_TRUE(torch::equal(qs.scales, torch::ones({2, 1}, torch::kFloat16)));
  EXPECT_TRUE(torch::equal(qa.scales, torch::ones({2, 1}, torch::kFloat16)));
  EXPECT_TRUE(torch::equal(qa.zeros, torch::full({2, 1}, 3.0, torch::kFloat16)));
  EXPECT_TRUE(torch::equal(sym_hat, sym));
  EXPECT_TRUE(torch::equal(aff_hat, aff));
}

// ---------------------------------------------------------------------------------------------
// Edge values.

TEST(Int4EdgeTest, AllEqualBlocks) {
  // Constant blocks among random ones, with values fp16 holds exactly (2.5) and not (0.1, -3.3).
  torch::Tensor x = RandomKv({3, 128}, 21);
  const struct {
    int row, block;
    float value;
  } constant[] = {{0, 1, 2.5f}, {1, 0, 0.1f}, {2, 3, -3.3f}};
  for (const auto& c : constant) x[c.row].slice(0, c.block * 32, c.block * 32 + 32).fill_(c.value);
  for (Int4Scheme scheme : kSchemes) {
    SCOPED_TRACE(Int4SchemeName(scheme));
    torch::Tensor x_hat;
    const Int4Tensor q = QuantizeOk(x, scheme, &x_hat);
    ASSERT_TRUE(x_hat.defined());
    ExpectFaithful(x, q, x_hat);
    for (const auto& c : constant) {
      SCOPED_TRACE(c.value);
      const float fp16_value = static_cast<float>(c10::Half(c.value));
      const torch::Tensor block_hat = x_hat[c.row].slice(0, c.block * 32, c.block * 32 + 32);
      const torch::Tensor block_codes = q.codes[c.row].slice(0, c.block * 16, c.block * 16 + 16);
      if (scheme == Int4Scheme::kAffine) {  // scale 0, codes 0, x_hat = zero = fp16(value)
        EXPECT_EQ(q.scales[c.row][c.block].item<float>(), 0.0f);
        EXPECT_EQ(q.zeros[c.row][c.block].item<float>(), fp16_value);
        EXPECT_TRUE(torch::equal(block_codes, torch::zeros({16}, torch::kUInt8)));
        EXPECT_TRUE(torch::equal(block_hat, torch::full({32}, fp16_value)));
      } else {  // every code +-7: x_hat = +-7 * fp16(|value| / 7)
        const float scale = static_cast<float>(c10::Half(std::fabs(c.value) / 7.0f));
        EXPECT_EQ(q.scales[c.row][c.block].item<float>(), scale);
        EXPECT_TRUE(
            torch::equal(block_codes, torch::full({16}, c.value > 0 ? 0xFF : 0x11, torch::kUInt8)));
        EXPECT_TRUE(torch::equal(block_hat, torch::full({32}, std::copysign(7 * scale, c.value))));
      }
    }
  }
}

TEST(Int4EdgeTest, AllZeroBlocksAreExactZeros) {
  torch::Tensor x = RandomKv({2, 128}, 22);
  x[0].slice(0, 64, 96).zero_();
  x[1].slice(0, 0, 32).zero_();
  for (Int4Scheme scheme : kSchemes) {
    SCOPED_TRACE(Int4SchemeName(scheme));
    torch::Tensor x_hat;
    const Int4Tensor q = QuantizeOk(x, scheme, &x_hat);
    ASSERT_TRUE(x_hat.defined());
    ExpectFaithful(x, q, x_hat);
    const int zero_code = scheme == Int4Scheme::kSymmetric ? 0x88 : 0x00;
    for (auto [row, block] : {std::pair{0, 2}, std::pair{1, 0}}) {
      EXPECT_EQ(q.scales[row][block].item<float>(), 0.0f);
      if (q.zeros.defined()) {
        EXPECT_EQ(q.zeros[row][block].item<float>(), 0.0f);
      }
      EXPECT_TRUE(torch::equal(q.codes[row].slice(0, block * 16, block * 16 + 16),
                               torch::full({16}, zero_code, torch::kUInt8)));
      EXPECT_TRUE(
          torch::equal(x_hat[row].slice(0, block * 32, block * 32 + 32), torch::zeros({32})));
    }
    // The random blocks beside them are not zero.
    EXPECT_GT(q.scales[0][0].item<float>(), 0.0f);
  }
}

TEST(Int4EdgeTest, LargeMagnitudesThatFitFp16) {
  torch::Tensor x = RandomKv({4, 64}, 23);
  x[0][0] = 6e4f;  // with small values beside it
  x[0][1] = -6e4f;
  x[1].slice(0, 0, 32).mul_(1000.0f).clamp_(-6e4f, 6e4f);
  x[1][5] = -6e4f;
  x[2].slice(0, 32, 64).fill_(6.5e4f);  // an all-equal block near the top of fp16
  x[3][40] = 65504.0f;                  // fp16's largest finite value
  for (const torch::Tensor& input : {x, x.to(torch::kFloat16)}) {
    for (Int4Scheme scheme : kSchemes) {
      SCOPED_TRACE(
          absl::StrFormat("%s %s", Int4SchemeName(scheme), c10::toString(input.scalar_type())));
      torch::Tensor x_hat;
      const Int4Tensor q = QuantizeOk(input, scheme, &x_hat);
      ASSERT_TRUE(x_hat.defined());
      ExpectFaithful(input, q, x_hat);
      EXPECT_TRUE(torch::isfinite(q.scales).all().item<bool>());
      EXPECT_NEAR(x_hat[0][0].item<float>(), 6e4f, q.scales[0][0].item<float>() / 2 + 1);
      EXPECT_NEAR(x_hat[0][1].item<float>(), -6e4f, q.scales[0][0].item<float>() / 2 + 1);
    }
  }
}

TEST(Int4EdgeTest, RangeLimitIsOnTheScaleAndZeroPoint) {
  // Symmetric stores only absmax/7, so 4e5 fits (scale 57143); affine stores the minimum itself,
  // so a block with min -4e5 does not, while one spanning [0, 4e5] does (scale 26667).
  torch::Tensor x = RandomKv({1, 32}, 24);
  x[0][3] = -4e5f;
  torch::Tensor x_hat;
  ExpectFaithful(x, QuantizeOk(x, Int4Scheme::kSymmetric, &x_hat), x_hat);
  absl::StatusOr<Int4Tensor> affine = QuantizeInt4(x, Int4Scheme::kAffine);
  ASSERT_FALSE(affine.ok());
  EXPECT_EQ(affine.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(Message(affine.status()), HasSubstr("zero point"));

  torch::Tensor positive = x.abs();
  positive[0][0] = 0.0f;
  ExpectFaithful(positive, QuantizeOk(positive, Int4Scheme::kAffine, &x_hat), x_hat);
}

TEST(Int4EdgeTest, OverflowingScaleOrZeroPointIsOutOfRange) {
  const struct {
    Int4Scheme scheme;
    float value;
    const char* what;
  } cases[] = {
      {Int4Scheme::kSymmetric, 1e6f, "scale absmax/7"},
      {Int4Scheme::kSymmetric, -1e6f, "scale absmax/7"},
      {Int4Scheme::kAffine, 1e6f, "scale (max-zero)/15"},
      {Int4Scheme::kAffine, -1e6f, "zero point min"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(absl::StrFormat("%s %g", Int4SchemeName(c.scheme), c.value));
    torch::Tensor x = RandomKv({2, 128}, 25);
    x[1][70] = c.value;  // flat element 198, block 6 (elements 192..223)
    absl::StatusOr<Int4Tensor> q = QuantizeInt4(x, c.scheme);
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_THAT(Message(q.status()), HasSubstr("fp16 range"));
    EXPECT_THAT(Message(q.status()), HasSubstr("block 6 (elements 192..223)"));
    EXPECT_THAT(Message(q.status()), HasSubstr(c.what));
    EXPECT_THAT(Message(q.status()), HasSubstr("float32 [2, 128]"));
  }
}

TEST(Int4EdgeTest, NanAndInfAreRejectedNamingTheIndex) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const struct {
    float value;
    int64_t index;  // flat, in [5, 4, 128]
    const char* name;
  } cases[] = {{nan, 293, "NaN"}, {inf, 1000, "+Inf"}, {-inf, 2559, "-Inf"}, {nan, 0, "NaN"}};
  for (const auto& c : cases) {
    for (torch::ScalarType dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
      for (Int4Scheme scheme : kSchemes) {
        SCOPED_TRACE(absl::StrFormat("%s at %d, %s, %s", c.name, c.index, c10::toString(dtype),
                                     Int4SchemeName(scheme)));
        torch::Tensor x = RandomKv({5, 4, 128}, 26);
        x.view({-1})[c.index] = c.value;
        absl::StatusOr<Int4Tensor> q = QuantizeInt4(x.to(dtype), scheme);
        ASSERT_FALSE(q.ok());
        EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
        EXPECT_THAT(Message(q.status()),
                    HasSubstr(absl::StrCat("element ", c.index, " is ", c.name, ":")));
      }
    }
  }
  // For a non-contiguous x the index is that of x's own row-major order: x[3][37] is 3*128 + 37.
  torch::Tensor base = RandomKv({128, 64}, 27);
  base[37][3] = nan;
  absl::StatusOr<Int4Tensor> q = QuantizeInt4(base.t(), Int4Scheme::kSymmetric);
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(Message(q.status()), HasSubstr("element 421 is NaN"));
}

TEST(Int4EdgeTest, BadLastDimensionIsRejected) {
  const std::vector<std::vector<int64_t>> shapes = {{48}, {16}, {4, 100}, {4, 0}, {0}, {2, 32, 33}};
  for (const std::vector<int64_t>& shape : shapes) {
    SCOPED_TRACE(ShapeName(shape));
    for (Int4Scheme scheme : kSchemes) {
      absl::StatusOr<Int4Tensor> q = QuantizeInt4(RandomKv(shape, 28), scheme);
      ASSERT_FALSE(q.ok());
      EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(Message(q.status()),
                  HasSubstr(absl::StrCat("last dimension is ", shape.back(),
                                         ", must be a positive multiple of 32")));
    }
  }
  absl::StatusOr<Int4Tensor> scalar = QuantizeInt4(torch::tensor(1.5f), Int4Scheme::kSymmetric);
  ASSERT_FALSE(scalar.ok());
  EXPECT_EQ(scalar.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(scalar.status()), HasSubstr("rank"));
}

TEST(Int4EdgeTest, BadDtypeOrDeviceIsRejected) {
  const torch::Tensor x = RandomKv({4, 32}, 29);
  const struct {
    torch::Tensor x;
    const char* says;
  } cases[] = {
      {x.to(torch::kFloat64), "dtype must be float32, bfloat16 or float16"},
      {x.to(torch::kInt32), "dtype must be float32, bfloat16 or float16"},
      {x.to(torch::kUInt8), "dtype must be float32, bfloat16 or float16"},
      {torch::empty({4, 32}, torch::TensorOptions().device(torch::kMeta)), "must be a CPU tensor"},
      {torch::Tensor(), "undefined"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    for (Int4Scheme scheme : kSchemes) {
      absl::StatusOr<Int4Tensor> q = QuantizeInt4(c.x, scheme);
      ASSERT_FALSE(q.ok());
      EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(Message(q.status()), HasSubstr(c.says));
    }
  }
}

TEST(Int4EdgeTest, EmptyLeadingDimensionGivesEmptyTensors) {
  for (Int4Scheme scheme : kSchemes) {
    absl::StatusOr<Int4Tensor> q = QuantizeInt4(torch::empty({0, 4, 128}), scheme);
    ASSERT_TRUE(q.ok()) << q.status();
    EXPECT_EQ(q->shape(), (std::vector<int64_t>{0, 4, 128}));
    EXPECT_EQ(q->scales.sizes().vec(), (std::vector<int64_t>{0, 4, 4}));
    EXPECT_EQ(q->bytes(), 0);
    absl::StatusOr<torch::Tensor> x_hat = DequantizeInt4(*q);
    ASSERT_TRUE(x_hat.ok()) << x_hat.status();
    EXPECT_EQ(x_hat->sizes().vec(), (std::vector<int64_t>{0, 4, 128}));
  }
}

// ---------------------------------------------------------------------------------------------
// DequantizeInt4 checks what it is given.

TEST(Int4DequantizeTest, RejectsInconsistentTensors) {
  const torch::Tensor x = RandomKv({2, 3, 64}, 30);
  absl::StatusOr<Int4Tensor> sym = QuantizeInt4(x, Int4Scheme::kSymmetric);
  absl::StatusOr<Int4Tensor> aff = QuantizeInt4(x, Int4Scheme::kAffine);
  ASSERT_TRUE(sym.ok() && aff.ok());
  ASSERT_TRUE(DequantizeInt4(*sym).ok());
  ASSERT_TRUE(DequantizeInt4(*aff).ok());

  const torch::Tensor meta_codes =
      torch::empty({2, 3, 32}, torch::TensorOptions().dtype(torch::kUInt8).device(torch::kMeta));
  const struct {
    const char* name;
    Int4Tensor q;
    const char* says;
  } cases[] = {
      {"codes int8", {sym->scheme, sym->codes.to(torch::kInt8), sym->scales, {}}, "codes must be"},
      {"codes undefined", {sym->scheme, {}, sym->scales, {}}, "codes must be"},
      {"codes of 15 bytes a row",
       {sym->scheme, sym->codes.slice(-1, 0, 15), sym->scales, {}},
       "codes must be"},
      {"codes rank 0",
       {sym->scheme, torch::ones({}, torch::kUInt8), sym->scales, {}},
       "codes must be"},
      {"codes on meta", {sym->scheme, meta_codes, sym->scales, {}}, "codes must be"},
      {"scales float32",
       {sym->scheme, sym->codes, sym->scales.to(torch::kFloat32), {}},
       "scales must be float16 [2, 3, 2]"},
      {"scales one block short",
       {sym->scheme, sym->codes, sym->scales.slice(-1, 0, 1), {}},
       "scales must be float16 [2, 3, 2]"},
      {"scales other leading dims",
       {sym->scheme, sym->codes, sym->scales.slice(0, 0, 1), {}},
       "scales must be float16 [2, 3, 2]"},
      {"scales other rank",
       {sym->scheme, sym->codes, sym->scales.reshape({6, 2}), {}},
       "scales must be float16 [2, 3, 2]"},
      {"scales undefined", {sym->scheme, sym->codes, {}, {}}, "scales must be"},
      {"symmetric with zeros",
       {Int4Scheme::kSymmetric, aff->codes, aff->scales, aff->zeros},
       "zeros must be undefined"},
      {"affine without zeros",
       {Int4Scheme::kAffine, aff->codes, aff->scales, {}},
       "zeros must be float16 [2, 3, 2]"},
      {"zeros float32",
       {aff->scheme, aff->codes, aff->scales, aff->zeros.to(torch::kFloat32)},
       "zeros must be float16 [2, 3, 2]"},
      {"zeros one row short",
       {aff->scheme, aff->codes, aff->scales, aff->zeros.slice(1, 0, 2)},
       "zeros must be float16 [2, 3, 2]"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<torch::Tensor> x_hat = DequantizeInt4(c.q);
    ASSERT_FALSE(x_hat.ok());
    EXPECT_EQ(x_hat.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(x_hat.status()), HasSubstr(c.says));
  }
}

// ---------------------------------------------------------------------------------------------
// Bytes and ratios.

TEST(Int4BytesTest, BytesOfATensorMatchAHandCount) {
  // [5, 4, 128]: 20 vectors of 4 blocks. Codes 20 * 64 bytes; scales (and zeros) 20 * 4 * 2 bytes.
  const torch::Tensor x = RandomKv({5, 4, 128}, 31);
  absl::StatusOr<Int4Tensor> sym = QuantizeInt4(x, Int4Scheme::kSymmetric);
  absl::StatusOr<Int4Tensor> aff = QuantizeInt4(x, Int4Scheme::kAffine);
  ASSERT_TRUE(sym.ok() && aff.ok());
  EXPECT_EQ(sym->bytes(), 20 * 64 + 20 * 4 * 2);               // 1440
  EXPECT_EQ(aff->bytes(), 20 * 64 + 20 * 4 * 2 + 20 * 4 * 2);  // 1600
  EXPECT_EQ(sym->bytes(), 20 * Int4BytesPerVector(128, Int4Scheme::kSymmetric));
  EXPECT_EQ(aff->bytes(), 20 * Int4BytesPerVector(128, Int4Scheme::kAffine));
  // The tensors hold exactly those bytes.
  EXPECT_EQ(sym->codes.nbytes() + sym->scales.nbytes(), 1440u);
  EXPECT_EQ(aff->codes.nbytes() + aff->scales.nbytes() + aff->zeros.nbytes(), 1600u);
  // And 1/3.56 (1/3.20) of bf16's 5 * 4 * 128 * 2 = 5120 bytes.
  EXPECT_DOUBLE_EQ(sym->bytes() / 5120.0, Int4BytesVsBf16(128, Int4Scheme::kSymmetric));
  EXPECT_DOUBLE_EQ(aff->bytes() / 5120.0, Int4BytesVsBf16(128, Int4Scheme::kAffine));
}

TEST(Int4BytesTest, BytesPerVectorAndKvRatios) {
  EXPECT_EQ(Int4BytesPerVector(32, Int4Scheme::kSymmetric), 18);
  EXPECT_EQ(Int4BytesPerVector(32, Int4Scheme::kAffine), 20);
  EXPECT_EQ(Int4BytesPerVector(128, Int4Scheme::kSymmetric), 72);
  EXPECT_EQ(Int4BytesPerVector(128, Int4Scheme::kAffine), 80);
  for (int64_t head_dim : {32, 64, 96, 128, 256}) {
    SCOPED_TRACE(head_dim);
    EXPECT_DOUBLE_EQ(Int4BytesVsBf16(head_dim, Int4Scheme::kSymmetric), 18.0 / 64.0);
    EXPECT_DOUBLE_EQ(Int4BytesVsBf16(head_dim, Int4Scheme::kAffine), 20.0 / 64.0);
    EXPECT_EQ(absl::StrFormat("%.2f", 1.0 / Int4BytesVsBf16(head_dim, Int4Scheme::kSymmetric)), "3.56");
    EXPECT_EQ(absl::StrFormat("%.2f", 1.0 / Int4BytesVsBf16(head_dim, Int4Scheme::kAffine)), "3.20");
  }
  for (int64_t bad : {0, -32, 16, 48, 130}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(Int4BytesPerVector(bad, Int4Scheme::kSymmetric), 0);
    EXPECT_TRUE(std::isnan(Int4BytesVsBf16(bad, Int4Scheme::kAffine)));
  }
}

TEST(Int4SchemeTest, Names) {
  EXPECT_EQ(Int4SchemeName(Int4Scheme::kSymmetric), "symmetric_int4");
  EXPECT_EQ(Int4SchemeName(Int4Scheme::kAffine), "affine_int4");
}

}  // namespace
}  // namespace kvgate::kernels
