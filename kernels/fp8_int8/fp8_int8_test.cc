// Tests of fp8 e4m3 and int8 K/V (fp8_int8.h): the hand-written e4m3 rounding against torch's
// Float8_e4m3fn (every code, random values, every tie) and its saturation; the round trip against
// the stored scales on seeded random K/V (both codes, both granularities, three dtypes,
// non-contiguous input); the layout from hand-built codes; byte accounting; bad input; and the
// KvFormat adapter (fp8_int8_kv_format.h).
//
// Run: tools/bazel test //kernels/fp8_int8:fp8_int8_test

#include "kernels/fp8_int8/fp8_int8.h"

#include <c10/util/Float8_e4m3fn.h>

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
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/fp8_int8/fp8_int8_kv_format.h"

namespace kvgate::kernels {

// gtest prints parameters with these: "fp8_e4m3", not "4-byte object <00-00 00-00>".
void PrintTo(Fp8Int8Code code, std::ostream* os) { *os << Fp8Int8CodeName(code); }
void PrintTo(ScaleGranularity granularity, std::ostream* os) {
  *os << ScaleGranularityName(granularity);
}

namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// Gaussian K/V-like values [T, H, D] whose magnitude varies by (token, head) over e^-3..e^3, with
// 1% outliers eight times larger, from a seeded generator.
torch::Tensor RandomKv(int64_t tokens, int64_t heads, int64_t head_dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_magnitude(-3.0f, 3.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  torch::Tensor x = torch::empty({tokens, heads, head_dim}, torch::kFloat32);
  float* data = x.data_ptr<float>();
  float magnitude = 1.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (i % head_dim == 0) magnitude = std::exp(log_magnitude(rng));
    data[i] = magnitude * (unit(rng) < 0.01f ? 8.0f : 1.0f) * normal(rng);
  }
  return x;
}

uint8_t TorchE4m3Bits(float x) { return c10::Float8_e4m3fn(x).x; }

// ---------------------------------------------------------------------------------------------
// e4m3 rounding.

TEST(E4m3Test, EveryCodeDecodesLikeTorch) {
  for (int bits = 0; bits < 256; ++bits) {
    SCOPED_TRACE(bits);
    const float torch_value = static_cast<float>(
        c10::Float8_e4m3fn(static_cast<uint8_t>(bits), c10::Float8_e4m3fn::from_bits()));
    const float ours = E4m3ToFloat(static_cast<uint8_t>(bits));
    if (std::isnan(torch_value)) {
      EXPECT_TRUE(std::isnan(ours));
      EXPECT_EQ(bits & 0x7F, 0x7F);
    } else {
      EXPECT_EQ(ours, torch_value);
      EXPECT_EQ(std::signbit(ours), std::signbit(torch_value));
      // Every finite code is a fixed point of the encoder.
      EXPECT_EQ(E4m3FromFloat(ours), bits);
    }
  }
  EXPECT_EQ(E4m3ToFloat(0x7E), 448.0f);
  EXPECT_EQ(E4m3ToFloat(0x08), 0.015625f);             // smallest normal 2^-6
  EXPECT_EQ(E4m3ToFloat(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
}

TEST(E4m3Test, RandomValuesRoundLikeTorchBelow464) {
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<float> log2_magnitude(-14.0f, std::log2(463.9f));
  for (int i = 0; i < 200000; ++i) {
    const float x = std::exp2(log2_magnitude(rng)) * (i % 2 ? -1.0f : 1.0f);
    ASSERT_EQ(E4m3FromFloat(x), TorchE4m3Bits(x)) << absl::StrFormat("x = %.9g", x);
  }
}

TEST(E4m3Test, TiesGoToEvenMantissa) {
  // Every midpoint between two consecutive non-negative finite codes c and c + 1 rounds to the
  // even one of the two, as torch does.
  for (int c = 0; c < 0x7E; ++c) {
    const float lo = E4m3ToFloat(c), hi = E4m3ToFloat(c + 1);
    const float mid = lo + (hi - lo) / 2;  // exact in float32
    SCOPED_TRACE(absl::StrFormat("between %g and %g", lo, hi));
    const int even = (c % 2 == 0) ? c : c + 1;
    EXPECT_EQ(E4m3FromFloat(mid), even);
    EXPECT_EQ(E4m3FromFloat(-mid), even | 0x80);
    EXPECT_EQ(E4m3FromFloat(mid), TorchE4m3Bits(mid));
    // Just off the midpoint, the nearest wins.
    EXPECT_EQ(E4m3FromFloat(std::nextafter(mid, 0.0f)), c);
    EXPECT_EQ(E4m3FromFloat(std::nextafter(mid, 1e9f)), c + 1);
  }
  EXPECT_EQ(E4m3FromFloat(1.0625f), 0x38);                 // 1 + 1/16 -> 1.0
  EXPECT_EQ(E4m3ToFloat(E4m3FromFloat(1.1875f)), 1.25f);   // 1 + 3/16 -> 1.25
  EXPECT_EQ(E4m3FromFloat(std::ldexp(1.0f, -10)), 0x00);   // half the smallest subnormal -> 0
  EXPECT_EQ(E4m3FromFloat(std::ldexp(3.0f, -10)), 0x02);   // 1.5 subnormal steps -> 2
  EXPECT_EQ(E4m3FromFloat(std::ldexp(15.0f, -10)), 0x08);  // 7.5 steps -> smallest normal
}

TEST(E4m3Test, SaturatesAtPlusMinus448) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {448.0f, 455.0f, 463.99f, 464.0f, 480.0f, 1e6f, 3e38f, inf}) {
    SCOPED_TRACE(x);
    EXPECT_EQ(E4m3FromFloat(x), 0x7E);
    EXPECT_EQ(E4m3FromFloat(-x), 0xFE);
  }
  EXPECT_EQ(E4m3FromFloat(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(E4m3FromFloat(0.0f), 0x00);
  EXPECT_EQ(E4m3FromFloat(-0.0f), 0x80);
  EXPECT_EQ(E4m3FromFloat(432.0f), 0x7E);  // the midpoint of 416 and 448 goes to even 448
}

// ---------------------------------------------------------------------------------------------
// Round trip.

using RoundTripParam = std::tuple<Fp8Int8Code, ScaleGranularity, torch::ScalarType>;

class Fp8Int8RoundTripTest : public ::testing::TestWithParam<RoundTripParam> {};

// Checks q against x: the scales are absmax / max_code, and every element is within the bound
// of fp8_int8.h of its x_hat.
void ExpectFaithful(const torch::Tensor& x, const Fp8Int8Tensor& q, const torch::Tensor& x_hat) {
  const torch::Tensor xf = x.to(torch::kFloat32).contiguous();
  ASSERT_EQ(x_hat.sizes(), x.sizes());
  ASSERT_EQ(x_hat.scalar_type(), torch::kFloat32);
  const int64_t tokens = x.size(0), heads = x.size(1), head_dim = x.size(2);
  // Expected scales.
  const torch::Tensor absmax = tokens == 0 ? torch::zeros_like(q.scales)
                               : q.granularity == ScaleGranularity::kToken ? xf.abs().amax({2})
                                                                           : xf.abs().amax({0, 2});
  EXPECT_TRUE(torch::equal(q.scales, absmax / Fp8Int8MaxCode(q.code)));
  const float* xs = xf.data_ptr<float>();
  const float* hs = x_hat.contiguous().data_ptr<float>();
  const float* scales = q.scales.data_ptr<float>();
  int failures = 0;
  for (int64_t i = 0; i < xf.numel() && failures < 5; ++i) {
    const int64_t t = i / (heads * head_dim), h = (i / head_dim) % heads;
    const float scale = scales[q.granularity == ScaleGranularity::kToken ? t * heads + h : h];
    const float v = xs[i];
    const float err = std::fabs(v - hs[i]);
    const float bound = q.code == Fp8Int8Code::kFp8E4m3
                            ? std::max(std::ldexp(std::fabs(v), -4), std::ldexp(scale, -10))
                            : scale / 2;
    if (err > bound * (1 + 1e-6f) + 1e-6f * std::fabs(v)) {
      ADD_FAILURE() << absl::StrFormat("element %d: x = %.9g, x_hat = %.9g, err %.9g > bound %.9g",
                                       i, v, hs[i], err, bound);
      ++failures;
    }
  }
}

TEST_P(Fp8Int8RoundTripTest, ErrorWithinBoundOfStoredScale) {
  const auto& [code, granularity, dtype] = GetParam();
  for (auto [tokens, heads, head_dim] :
       {std::tuple{17, 4, 128}, std::tuple{5, 2, 64}, std::tuple{3, 1, 7}, std::tuple{0, 4, 64}}) {
    SCOPED_TRACE(absl::StrFormat("[%d, %d, %d]", tokens, heads, head_dim));
    const torch::Tensor x = RandomKv(tokens, heads, head_dim, 100 + tokens).to(dtype);
    absl::StatusOr<Fp8Int8Tensor> q = QuantizeFp8Int8(x, code, granularity);
    ASSERT_TRUE(q.ok()) << q.status();
    EXPECT_EQ(q->codes.sizes(), x.sizes());
    EXPECT_EQ(q->codes.scalar_type(), code == Fp8Int8Code::kInt8 ? torch::kInt8 : torch::kUInt8);
    EXPECT_EQ(q->scales.scalar_type(), torch::kFloat32);
    EXPECT_EQ(q->bytes(), Fp8Int8Bytes(tokens, heads, head_dim, granularity));
    absl::StatusOr<torch::Tensor> x_hat = DequantizeFp8Int8(*q);
    ASSERT_TRUE(x_hat.ok()) << x_hat.status();
    ExpectFaithful(x, *q, *x_hat);
    if (code == Fp8Int8Code::kFp8E4m3 && tokens > 0) {
      // The codes are torch's e4m3 of x / scale (no value here reaches 464).
      const torch::Tensor xf = x.to(torch::kFloat32);
      const torch::Tensor scale = granularity == ScaleGranularity::kToken
                                      ? q->scales.unsqueeze(-1)
                                      : q->scales.view({1, heads, 1});
      const torch::Tensor torch_codes = (xf / scale).to(torch::kFloat8_e4m3fn).view(torch::kUInt8);
      EXPECT_TRUE(torch::equal(torch_codes, q->codes));
    }
  }
}

// e.g. "fp8_e4m3_token_Float"
std::string RoundTripName(const ::testing::TestParamInfo<RoundTripParam>& info) {
  const auto& [code, granularity, dtype] = info.param;
  return absl::StrFormat("%s_%s_%s", Fp8Int8CodeName(code), ScaleGranularityName(granularity),
                         c10::toString(dtype));
}

INSTANTIATE_TEST_SUITE_P(
    CodesGranularitiesDtypes, Fp8Int8RoundTripTest,
    ::testing::Combine(::testing::Values(Fp8Int8Code::kFp8E4m3, Fp8Int8Code::kInt8),
                       ::testing::Values(ScaleGranularity::kToken, ScaleGranularity::kHead),
                       ::testing::Values(torch::kFloat32, torch::kBFloat16, torch::kFloat16)),
    RoundTripName);

TEST(Fp8Int8Test, NonContiguousQuantizesLikeItsContiguousCopy) {
  const torch::Tensor x = RandomKv(4, 64, 6, 7).permute({0, 2, 1});  // [4, 6, 64]
  ASSERT_FALSE(x.is_contiguous());
  for (Fp8Int8Code code : {Fp8Int8Code::kFp8E4m3, Fp8Int8Code::kInt8}) {
    absl::StatusOr<Fp8Int8Tensor> a = QuantizeFp8Int8(x, code, ScaleGranularity::kToken);
    absl::StatusOr<Fp8Int8Tensor> b =
        QuantizeFp8Int8(x.contiguous(), code, ScaleGranularity::kToken);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(torch::equal(a->codes, b->codes));
    EXPECT_TRUE(torch::equal(a->scales, b->scales));
  }
}

TEST(Fp8Int8Test, AbsmaxMapsToTheLargestCodeAndZerosStayZero) {
  torch::Tensor x = RandomKv(3, 2, 32, 8);
  x[1][0].zero_();
  x[2][1][5] = -1000.0f;  // the absmax of its vector
  for (Fp8Int8Code code : {Fp8Int8Code::kFp8E4m3, Fp8Int8Code::kInt8}) {
    SCOPED_TRACE(Fp8Int8CodeName(code));
    absl::StatusOr<Fp8Int8Tensor> q = QuantizeFp8Int8(x, code, ScaleGranularity::kToken);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->scales[1][0].item<float>(), 0.0f);
    EXPECT_EQ(q->codes[1][0].abs().sum().item<int64_t>(), 0);
    const int largest = code == Fp8Int8Code::kFp8E4m3 ? 0xFE : -127;  // -448 or -127
    EXPECT_EQ(q->codes[2][1][5].item<int>(), code == Fp8Int8Code::kFp8E4m3 ? largest : -127);
    absl::StatusOr<torch::Tensor> x_hat = DequantizeFp8Int8(*q);
    ASSERT_TRUE(x_hat.ok());
    EXPECT_NEAR((*x_hat)[2][1][5].item<float>(), -1000.0f, 1e-3f);
    EXPECT_TRUE(torch::equal((*x_hat)[1][0], torch::zeros({32})));
  }
}

// ---------------------------------------------------------------------------------------------
// Layout.

TEST(Fp8Int8LayoutTest, HandBuiltCodesDequantizeExactly) {
  // [2 tokens, 2 heads, 4 dims]; per-token scales 0.5, 2, 4, 0.25.
  const float scale_values[4] = {0.5f, 2.0f, 4.0f, 0.25f};
  const uint8_t fp8_bits[4] = {0x38, 0xB8, 0x7E, 0x01};  // 1, -1, 448, 2^-9
  const int8_t int8_codes[4] = {1, -1, 127, -127};
  torch::Tensor scales = torch::empty({2, 2});
  torch::Tensor fp8 = torch::empty({2, 2, 4}, torch::kUInt8);
  torch::Tensor int8 = torch::empty({2, 2, 4}, torch::kInt8);
  for (int v = 0; v < 4; ++v) {
    scales.view({-1})[v] = scale_values[v];
    for (int d = 0; d < 4; ++d) {
      fp8.view({-1})[v * 4 + d] = fp8_bits[d];
      int8.view({-1})[v * 4 + d] = int8_codes[d];
    }
  }
  absl::StatusOr<torch::Tensor> a =
      DequantizeFp8Int8({Fp8Int8Code::kFp8E4m3, ScaleGranularity::kToken, fp8, scales});
  absl::StatusOr<torch::Tensor> b =
      DequantizeFp8Int8({Fp8Int8Code::kInt8, ScaleGranularity::kToken, int8, scales});
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  const float fp8_values[4] = {1.0f, -1.0f, 448.0f, std::ldexp(1.0f, -9)};
  for (int v = 0; v < 4; ++v) {
    for (int d = 0; d < 4; ++d) {
      EXPECT_EQ(a->view({-1})[v * 4 + d].item<float>(), fp8_values[d] * scale_values[v]);
      EXPECT_EQ(b->view({-1})[v * 4 + d].item<float>(), int8_codes[d] * scale_values[v]);
    }
  }
  // Per-head: scales [H], shared by every token of the head.
  absl::StatusOr<torch::Tensor> c = DequantizeFp8Int8(
      {Fp8Int8Code::kInt8, ScaleGranularity::kHead, int8, torch::tensor({3.0f, 5.0f})});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)[1][0][2].item<float>(), 127 * 3.0f);
  EXPECT_EQ((*c)[1][1][3].item<float>(), -127 * 5.0f);
}

// ---------------------------------------------------------------------------------------------
// Bytes.

TEST(Fp8Int8BytesTest, HandCountsAndRatios) {
  EXPECT_EQ(Fp8Int8Bytes(10, 4, 128, ScaleGranularity::kToken), 10 * 4 * 128 + 4 * 40);
  EXPECT_EQ(Fp8Int8Bytes(10, 4, 128, ScaleGranularity::kHead), 10 * 4 * 128 + 4 * 4);
  EXPECT_EQ(Fp8Int8Bytes(-1, 4, 128, ScaleGranularity::kHead), 0);
  for (const char* spec : {"fp8_e4m3", "fp8_e4m3:scale=token", "int8:scale=token"}) {
    SCOPED_TRACE(spec);
    absl::StatusOr<KvFormatSpec> parsed = ParseKvFormatSpec(spec);
    ASSERT_TRUE(parsed.ok());
    auto format = MakeFp8Int8KvFormat(
        *parsed, parsed->name == "int8" ? Fp8Int8Code::kInt8 : Fp8Int8Code::kFp8E4m3);
    ASSERT_TRUE(format.ok()) << format.status();
    EXPECT_NEAR(KvBytesVsBf16(**format, 4096, 4, 128), 132.0 / 256.0, 1e-12);
    EXPECT_NEAR(KvBytesVsBf16(**format, 4096, 2, 64), 68.0 / 128.0, 1e-12);
  }
}

// ---------------------------------------------------------------------------------------------
// Bad input.

TEST(Fp8Int8ErrorTest, NonFiniteIsNamedByIndex) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (auto [value, name] :
       {std::pair{nan, "NaN"}, std::pair{inf, "+Inf"}, std::pair{-inf, "-Inf"}}) {
    for (Fp8Int8Code code : {Fp8Int8Code::kFp8E4m3, Fp8Int8Code::kInt8}) {
      torch::Tensor x = RandomKv(5, 4, 64, 9);
      x[3][2][17] = value;  // flat 3*256 + 2*64 + 17 = 913
      absl::StatusOr<Fp8Int8Tensor> q = QuantizeFp8Int8(x, code, ScaleGranularity::kHead);
      ASSERT_FALSE(q.ok());
      EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(Message(q.status()),
                  HasSubstr(absl::StrFormat("element [3, 2, 17] (flat 913) is %s", name)));
    }
  }
}

TEST(Fp8Int8ErrorTest, BadShapesDtypesAndTensorsAreRejected) {
  const struct {
    torch::Tensor x;
    const char* says;
  } cases[] = {
      {torch::randn({4, 32}), "expected [tokens, kv_heads, head_dim]"},
      {torch::randn({2, 4, 0}), "expected [tokens, kv_heads, head_dim]"},
      {torch::randn({2, 4, 32}, torch::kFloat64), "dtype must be"},
      {torch::empty({2, 4, 32}, torch::TensorOptions().device(torch::kMeta)), "CPU tensor"},
      {torch::Tensor(), "undefined"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    absl::StatusOr<Fp8Int8Tensor> q =
        QuantizeFp8Int8(c.x, Fp8Int8Code::kFp8E4m3, ScaleGranularity::kToken);
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(q.status()), HasSubstr(c.says));
  }
  absl::StatusOr<Fp8Int8Tensor> good =
      QuantizeFp8Int8(RandomKv(3, 2, 16, 10), Fp8Int8Code::kInt8, ScaleGranularity::kToken);
  ASSERT_TRUE(good.ok());
  Fp8Int8Tensor wrong_code = *good;
  wrong_code.code = Fp8Int8Code::kFp8E4m3;  // int8 codes read as fp8
  EXPECT_THAT(Message(DequantizeFp8Int8(wrong_code).status()), HasSubstr("codes must be Byte"));
  Fp8Int8Tensor wrong_scales = *good;
  wrong_scales.granularity = ScaleGranularity::kHead;  // [T, H] scales read as [H]
  EXPECT_THAT(Message(DequantizeFp8Int8(wrong_scales).status()),
              HasSubstr("scales must be float32 [2]"));
  Fp8Int8Tensor half_scales = *good;
  half_scales.scales = half_scales.scales.to(torch::kFloat16);
  EXPECT_THAT(Message(DequantizeFp8Int8(half_scales).status()),
              HasSubstr("scales must be float32 [3, 2]"));
}

TEST(Fp8Int8KvFormatTest, SpecsRoundTripAndDecodeChecksTheFormat) {
  const torch::Tensor x = RandomKv(9, 2, 64, 11);
  for (const char* spec :
       {"fp8_e4m3:scale=token", "fp8_e4m3:scale=head", "int8:scale=token", "int8:scale=head"}) {
    SCOPED_TRACE(spec);
    absl::StatusOr<KvFormatSpec> parsed = ParseKvFormatSpec(spec);
    ASSERT_TRUE(parsed.ok());
    const Fp8Int8Code code = parsed->name == "int8" ? Fp8Int8Code::kInt8 : Fp8Int8Code::kFp8E4m3;
    absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeFp8Int8KvFormat(*parsed, code);
    ASSERT_TRUE(format.ok()) << format.status();
    EXPECT_EQ((*format)->name(), spec);
    absl::StatusOr<EncodedKv> encoded = (*format)->Encode(x, KvRole::kValue);
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    EXPECT_EQ(encoded->bytes(), (*format)->Bytes(9, 2, 64, KvRole::kValue));
    absl::StatusOr<torch::Tensor> decoded = (*format)->Decode(*encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_LT(((*decoded - x).norm() / x.norm()).item<double>(),
              code == Fp8Int8Code::kInt8 ? 0.02 : 0.05);
    EncodedKv other = *encoded;
    other.format = "symmetric_int4:block=32";
    EXPECT_THAT(Message((*format)->Decode(other).status()), HasSubstr("cannot decode"));
    EncodedKv missing = *encoded;
    missing.parts.erase("scales");
    EXPECT_THAT(Message((*format)->Decode(missing).status()), HasSubstr("lacks scales"));
    EXPECT_THAT(Message((*format)->Encode(x[0], KvRole::kKey).status()), HasSubstr("rank 2"));
  }
  KvFormatSpec bad{"fp8_e4m3", {{"scale", "channel"}}};
  EXPECT_THAT(Message(MakeFp8Int8KvFormat(bad, Fp8Int8Code::kFp8E4m3).status()),
              HasSubstr("scale=channel is not token or head"));
  KvFormatSpec unknown{"int8", {{"bits", "4"}}};
  EXPECT_THAT(Message(MakeFp8Int8KvFormat(unknown, Fp8Int8Code::kInt8).status()),
              HasSubstr("no parameter 'bits'"));
}

}  // namespace
}  // namespace kvgate::kernels
