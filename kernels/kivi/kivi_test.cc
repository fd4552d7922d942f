// Tests of KIVI-style K/V (kivi.h): which tokens are quantized and which stay bf16; the round trip
// group by group against the stored fp16 scales and zero points (keys per channel, values per
// token; 2 and 4 bits; several group sizes, windows and shapes; three dtypes); the bit packing from
// hand-built codes; byte accounting; bad input; and the KvFormat adapter (kivi_kv_format.h).
//
// Run: tools/bazel test //kernels/kivi:kivi_test

#include "kernels/kivi/kivi.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/kivi/kivi_kv_format.h"

namespace kvgate::kernels {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

const char* RoleName(KvRole role) { return role == KvRole::kKey ? "key" : "value"; }

// K/V-like values [T, H, D]: Gaussian with a magnitude per channel (as keys have, e^-2..e^2), an
// offset per channel, and 1% outliers eight times larger; seeded.
torch::Tensor RandomKv(int64_t tokens, int64_t heads, int64_t head_dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_magnitude(-2.0f, 2.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> magnitude(heads * head_dim), offset(heads * head_dim);
  for (int64_t c = 0; c < heads * head_dim; ++c) {
    magnitude[c] = std::exp(log_magnitude(rng));
    offset[c] = 0.5f * magnitude[c] * normal(rng);
  }
  torch::Tensor x = torch::empty({tokens, heads, head_dim}, torch::kFloat32);
  float* data = x.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = i % (heads * head_dim);
    data[i] = offset[c] + magnitude[c] * (unit(rng) < 0.01f ? 8.0f : 1.0f) * normal(rng);
  }
  return x;
}

// Checks q and x_hat against x group by group: scale and zero point are the format's, every
// element of the quantized part is at its group's nearest grid point, within
// max(scale/2, zero - min, max - (zero + levels*scale)) (the last two from fp16 rounding, checked
// small); the window is bf16(x) exactly.
void ExpectFaithful(const torch::Tensor& x, const KiviTensor& q, const torch::Tensor& x_hat) {
  const torch::Tensor xf = x.to(torch::kFloat32).contiguous();
  const int64_t tokens = x.size(0), heads = x.size(1), head_dim = x.size(2);
  const int64_t quantized = KiviQuantizedTokens(tokens, q.role, q.params);
  const int64_t group = q.params.group;
  const int levels = (1 << q.params.bits) - 1;
  ASSERT_EQ(x_hat.sizes(), x.sizes());
  ASSERT_EQ(q.codes.size(0), quantized);
  ASSERT_EQ(q.residual.size(0), tokens - quantized);
  EXPECT_TRUE(torch::equal(x_hat.slice(0, quantized),
                           xf.slice(0, quantized).to(torch::kBFloat16).to(torch::kFloat32)));
  const float* xs = xf.data_ptr<float>();
  const torch::Tensor hat = x_hat.contiguous();
  const float* hs = hat.data_ptr<float>();
  const c10::Half* scales = q.scales.data_ptr<c10::Half>();
  const c10::Half* zeros = q.zeros.data_ptr<c10::Half>();
  // Groups as lists of flat indices into x, with their scale index.
  std::vector<std::pair<int64_t, std::vector<int64_t>>> groups;
  if (q.role == KvRole::kKey) {
    for (int64_t g = 0; g < quantized / group; ++g) {
      for (int64_t c = 0; c < heads * head_dim; ++c) {
        std::vector<int64_t> members;
        for (int64_t i = 0; i < group; ++i)
          members.push_back((g * group + i) * heads * head_dim + c);
        groups.emplace_back(g * heads * head_dim + c, members);
      }
    }
  } else {
    for (int64_t v = 0; v < quantized * heads; ++v) {
      for (int64_t j = 0; j < head_dim / group; ++j) {
        std::vector<int64_t> members;
        for (int64_t i = 0; i < group; ++i) members.push_back(v * head_dim + j * group + i);
        groups.emplace_back(v * (head_dim / group) + j, members);
      }
    }
  }
  int failures = 0;
  for (const auto& [s, members] : groups) {
    if (failures >= 5) break;
    float min = xs[members[0]], max = xs[members[0]];
    for (int64_t i : members) {
      min = std::min(min, xs[i]);
      max = std::max(max, xs[i]);
    }
    const float zero = static_cast<float>(zeros[s]);
    const float scale = static_cast<float>(scales[s]);
    EXPECT_EQ(zero, static_cast<float>(c10::Half(min))) << "group " << s;
    const float expected_scale =
        min == max ? 0.0f : static_cast<float>(c10::Half(std::max(max - zero, 0.0f) / levels));
    EXPECT_EQ(scale, expected_scale) << "group " << s;
    const float below = zero - min;
    const float above = max - (zero + levels * scale);
    const float half_fp16_step = std::ldexp(std::fabs(min), -11) + std::ldexp(1.0f, -25);
    EXPECT_LE(below, half_fp16_step) << "group " << s;
    EXPECT_LE(above, min == max ? half_fp16_step : 0.01f * scale + 1e-6f * std::fabs(max));
    const float bound = std::max({scale / 2, below, above});
    for (int64_t i : members) {
      const float err = std::fabs(xs[i] - hs[i]);
      float nearest = std::numeric_limits<float>::infinity();
      for (int c = 0; c <= levels; ++c) {
        nearest = std::min(nearest, std::fabs(xs[i] - (c * scale + zero)));
      }
      const float tiny = 1e-5f * scale + 1e-6f * (std::fabs(xs[i]) + std::fabs(zero));
      if (err > bound + tiny || err > nearest + tiny) {
        ADD_FAILURE() << absl::StrFormat(
            "%s element %d (group %d): x = %.9g, x_hat = %.9g, err %.9g, bound %.9g, nearest %.9g",
            RoleName(q.role), i, s, xs[i], hs[i], err, bound, nearest);
        ++failures;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Which tokens are quantized.

TEST(KiviSplitTest, QuantizedTokensAndWindow) {
  const KiviParams p{2, 32, 128};
  const struct {
    int64_t tokens, keys, values;
  } cases[] = {{0, 0, 0},     {1, 0, 0},     {128, 0, 0},        {129, 0, 1},       {159, 0, 31},
               {160, 32, 32}, {161, 32, 33}, {4096, 3968, 3968}, {4100, 3968, 3972}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.tokens);
    EXPECT_EQ(KiviQuantizedTokens(c.tokens, KvRole::kKey, p), c.keys);
    EXPECT_EQ(KiviQuantizedTokens(c.tokens, KvRole::kValue, p), c.values);
  }
  // No window: keys quantize whole groups only, values everything.
  EXPECT_EQ(KiviQuantizedTokens(100, KvRole::kKey, {4, 32, 0}), 96);
  EXPECT_EQ(KiviQuantizedTokens(100, KvRole::kValue, {4, 32, 0}), 100);
}

// ---------------------------------------------------------------------------------------------
// Round trip.

using RoundTripParam = std::tuple<int, KvRole, KiviParams>;

class KiviRoundTripTest : public ::testing::TestWithParam<std::tuple<int, KvRole>> {};

TEST_P(KiviRoundTripTest, ErrorWithinHalfStepOfStoredScale) {
  const auto& [bits, role] = GetParam();
  const struct {
    int64_t tokens, heads, head_dim, group, residual;
  } shapes[] = {
      {300, 4, 128, 32, 128},  // defaults: 160 quantized keys (5 groups), 172 values
      {200, 2, 64, 16, 20},    // 176 keys, 180 values
      {37, 1, 32, 8, 0},       // no window: 32 keys (a 5-token remainder stays bf16), 37 values
      {64, 3, 64, 64, 0},      // group as wide as head_dim
      {50, 2, 64, 32, 128},    // all in the window
      {0, 4, 128, 32, 128},    // empty
  };
  for (const auto& sh : shapes) {
    const KiviParams params{bits, sh.group, sh.residual};
    for (torch::ScalarType dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
      SCOPED_TRACE(absl::StrFormat("%s %s [%d, %d, %d] %s", params.Name(), RoleName(role),
                                   sh.tokens, sh.heads, sh.head_dim, c10::toString(dtype)));
      const torch::Tensor x =
          RandomKv(sh.tokens, sh.heads, sh.head_dim, 1000 + sh.tokens + bits).to(dtype);
      absl::StatusOr<KiviTensor> q = QuantizeKivi(x, role, params);
      ASSERT_TRUE(q.ok()) << q.status();
      EXPECT_EQ(q->shape(), x.sizes().vec());
      EXPECT_EQ(q->bytes(), KiviBytes(sh.tokens, sh.heads, sh.head_dim, role, params));
      EXPECT_EQ(q->residual.scalar_type(), torch::kBFloat16);
      absl::StatusOr<torch::Tensor> x_hat = DequantizeKivi(*q);
      ASSERT_TRUE(x_hat.ok()) << x_hat.status();
      ExpectFaithful(x, *q, *x_hat);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BitsRoles, KiviRoundTripTest,
                         ::testing::Combine(::testing::Values(2, 4),
                                            ::testing::Values(KvRole::kKey, KvRole::kValue)),
                         [](const ::testing::TestParamInfo<std::tuple<int, KvRole>>& info) {
                           return absl::StrFormat("bits%d_%s", std::get<0>(info.param),
                                                  RoleName(std::get<1>(info.param)));
                         });

TEST(KiviTest, MoreBitsAndSmallerGroupsAreMoreAccurate) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({512, 2, 64});  // N(0, 1): 2 bits ~0.4, 4 bits ~0.08
  const auto error = [&](KvRole role, const KiviParams& p) {
    torch::Tensor x_hat = *DequantizeKivi(*QuantizeKivi(x, role, p));
    return ((x_hat - x).norm() / x.norm()).item<double>();
  };
  for (KvRole role : {KvRole::kKey, KvRole::kValue}) {
    SCOPED_TRACE(RoleName(role));
    EXPECT_LT(error(role, {4, 32, 0}), error(role, {2, 32, 0}));
    EXPECT_LT(error(role, {2, 16, 0}), error(role, {2, 64, 0}));
    EXPECT_LT(error(role, {2, 32, 256}), error(role, {2, 32, 0}));  // half kept in bf16
    EXPECT_LT(error(role, {2, 32, 0}), 0.5);
    EXPECT_LT(error(role, {4, 32, 0}), 0.1);
  }
}

// ---------------------------------------------------------------------------------------------
// Packing.

TEST(KiviPackingTest, HandBuiltCodesDequantizeExactly) {
  // Values, one token, one head, D = 8, one group of 8 channels: scale 0.5, zero -1.
  // 2 bits: byte 0 holds channels 0..3 (bits 0-1, 2-3, 4-5, 6-7), byte 1 channels 4..7.
  // 0b11100100 = codes 0, 1, 2, 3; 0b00011011 = codes 3, 2, 1, 0.
  KiviTensor q;
  q.role = KvRole::kValue;
  q.params = {2, 8, 0};
  q.codes = torch::tensor({0b11100100, 0b00011011}, torch::kUInt8).view({1, 1, 2});
  q.scales = torch::full({1, 1, 1}, 0.5, torch::kFloat16);
  q.zeros = torch::full({1, 1, 1}, -1.0, torch::kFloat16);
  q.residual = torch::empty({0, 1, 8}, torch::kBFloat16);
  absl::StatusOr<torch::Tensor> x_hat = DequantizeKivi(q);
  ASSERT_TRUE(x_hat.ok()) << x_hat.status();
  const float expected2[8] = {-1, -0.5, 0, 0.5, 0.5, 0, -0.5, -1};
  for (int d = 0; d < 8; ++d) EXPECT_EQ((*x_hat)[0][0][d].item<float>(), expected2[d]) << d;

  // 4 bits: byte k holds channel 2k low, 2k+1 high. 0x21 = codes 1, 2; 0xF0 = codes 0, 15.
  q.params = {4, 8, 0};
  q.codes = torch::tensor({0x21, 0xF0, 0x00, 0xFF}, torch::kUInt8).view({1, 1, 4});
  x_hat = DequantizeKivi(q);
  ASSERT_TRUE(x_hat.ok()) << x_hat.status();
  const float expected4[8] = {-0.5, 0, -1, 6.5, -1, -1, 6.5, 6.5};
  for (int d = 0; d < 8; ++d) EXPECT_EQ((*x_hat)[0][0][d].item<float>(), expected4[d]) << d;

  // Keys: 2 tokens in one group, D = 4, per-channel scales 1, 2, 3, 4 and zeros 0.
  KiviTensor k;
  k.role = KvRole::kKey;
  k.params = {2, 2, 0};
  k.codes = torch::tensor({0b11100100, 0b00000011}, torch::kUInt8).view({2, 1, 1});
  k.scales = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).to(torch::kFloat16).view({1, 1, 4});
  k.zeros = torch::zeros({1, 1, 4}, torch::kFloat16);
  k.residual = torch::full({1, 1, 4}, 7.0, torch::kBFloat16);  // a third token in the window
  absl::StatusOr<torch::Tensor> k_hat = DequantizeKivi(k);
  ASSERT_TRUE(k_hat.ok()) << k_hat.status();
  EXPECT_TRUE(torch::equal(*k_hat, torch::tensor({0.0f, 2.0f, 6.0f, 12.0f, 3.0f, 0.0f, 0.0f, 0.0f,
                                                  7.0f, 7.0f, 7.0f, 7.0f})
                                       .view({3, 1, 4})));
}

TEST(KiviPackingTest, QuantizingTheGridIsExact) {
  // Values already on a group's grid come back exactly, and their codes are the grid indices.
  torch::Tensor x = torch::empty({1, 1, 4});
  x[0][0] = torch::tensor({0.0f, 1.0f, 2.0f, 3.0f});  // min 0, max 3, scale 1 at 2 bits
  absl::StatusOr<KiviTensor> q = QuantizeKivi(x, KvRole::kValue, {2, 4, 0});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->codes[0][0][0].item<int>(), 0b11100100);
  EXPECT_TRUE(torch::equal(*DequantizeKivi(*q), x));
}

// ---------------------------------------------------------------------------------------------
// Bytes.

TEST(KiviBytesTest, HandCountAndRatio) {
  const KiviParams p;  // kivi:bits=2:group=32:residual=128
  // 4096 tokens, 4 heads, 128 dims: 3968 quantized each.
  EXPECT_EQ(KiviBytes(4096, 4, 128, KvRole::kKey, p),
            3968 * 4 * 32 + 4 * 124 * 4 * 128 + 2 * 128 * 512);
  EXPECT_EQ(KiviBytes(4096, 4, 128, KvRole::kValue, p),
            3968 * 4 * 32 + 4 * 3968 * 4 * 4 + 2 * 128 * 512);
  EXPECT_EQ(KiviBytes(4096, 4, 128, KvRole::kKey, p), 892928);
  absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKiviKvFormat({"kivi", {}});
  ASSERT_TRUE(format.ok());
  EXPECT_EQ(absl::StrFormat("%.2f", 1.0 / KvBytesVsBf16(**format, 4096, 4, 128)), "4.70");
  EXPECT_NEAR(KvBytesVsBf16(**format, 100, 4, 128), 1.0, 1e-12);  // all in the window
  // Unencodable shapes count 0.
  EXPECT_EQ(KiviBytes(10, 4, 48, KvRole::kValue, p), 0);  // 48 % 32
  EXPECT_EQ(KiviBytes(10, 4, 6, KvRole::kKey, p), 0);     // 6 % 4
  EXPECT_EQ(KiviBytes(10, 4, 64, KvRole::kKey, {3, 32, 128}), 0);
}

// ---------------------------------------------------------------------------------------------
// Bad input.

TEST(KiviErrorTest, BadParametersAndShapes) {
  const torch::Tensor x = RandomKv(40, 2, 64, 6);
  const struct {
    torch::Tensor x;
    KvRole role;
    KiviParams params;
    const char* says;
  } cases[] = {
      {x, KvRole::kKey, {3, 32, 0}, "bits=3 is not supported (2 or 4)"},
      {x, KvRole::kKey, {8, 32, 0}, "bits=8 is not supported"},
      {x, KvRole::kKey, {2, 0, 0}, "group=0 < 1"},
      {x, KvRole::kKey, {2, 32, -1}, "residual=-1 < 0"},
      {x, KvRole::kValue, {2, 48, 0}, "head_dim 64 is not a multiple of group 48"},
      {RandomKv(4, 2, 6, 1),
       KvRole::kKey,
       {2, 2, 0},
       "head_dim 6 must be a positive multiple of 4"},
      {x[0], KvRole::kKey, {}, "expected [tokens, kv_heads, head_dim], got rank 2"},
      {x.to(torch::kFloat64), KvRole::kKey, {}, "dtype must be"},
      {torch::Tensor(), KvRole::kKey, {}, "undefined"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    absl::StatusOr<KiviTensor> q = QuantizeKivi(c.x, c.role, c.params);
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(q.status()), HasSubstr(c.says));
  }
}

TEST(KiviErrorTest, NonFiniteIsNamedEvenInTheWindow) {
  for (int64_t t : {3, 39}) {  // quantized part and window (residual 8: 32 keys quantized)
    torch::Tensor x = RandomKv(40, 2, 64, 7);
    x[t][1][5] = std::numeric_limits<float>::quiet_NaN();
    absl::StatusOr<KiviTensor> q = QuantizeKivi(x, KvRole::kKey, {2, 32, 8});
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(
        Message(q.status()),
        HasSubstr(absl::StrFormat("element [%d, 1, 5] (flat %d) is NaN", t, t * 128 + 64 + 5)));
  }
}

TEST(KiviErrorTest, Fp16OverflowIsOutOfRangeNamingTheGroup) {
  torch::Tensor x = RandomKv(64, 2, 32, 8);
  x[40][1][7] = 1e6f;  // key group 1 (tokens 32..63), head 1, channel 7
  absl::StatusOr<KiviTensor> k = QuantizeKivi(x, KvRole::kKey, {2, 32, 0});
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(Message(k.status()),
              HasSubstr("key group [1, 1, 7] (tokens 32..63, head 1, channel 7)"));
  EXPECT_THAT(Message(k.status()), HasSubstr("fp16 range"));
  x[40][1][7] = -1e6f;  // value group [40, 1, 0]: the zero point overflows
  absl::StatusOr<KiviTensor> v = QuantizeKivi(x, KvRole::kValue, {2, 32, 0});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(Message(v.status()),
              HasSubstr("value group [40, 1, 0] (token 40, head 1, channels 0..31): zero point"));
  // In the window, the same value is only bf16-rounded.
  EXPECT_TRUE(QuantizeKivi(x, KvRole::kValue, {2, 32, 30}).ok());
}

TEST(KiviErrorTest, DequantizeRejectsInconsistentTensors) {
  absl::StatusOr<KiviTensor> good =
      QuantizeKivi(RandomKv(200, 2, 64, 9), KvRole::kKey, {2, 32, 100});
  ASSERT_TRUE(good.ok());  // 96 quantized, 104 in the window
  ASSERT_TRUE(DequantizeKivi(*good).ok());
  KiviTensor short_window = *good;  // 160 tokens would quantize 32 keys, not 96
  short_window.residual = short_window.residual.slice(0, 40);
  EXPECT_THAT(Message(DequantizeKivi(short_window).status()),
              HasSubstr("96 quantized and 64 window tokens: keys of 160 tokens quantize 32"));
  KiviTensor as_value = *good;
  as_value.role = KvRole::kValue;  // values of 200 tokens quantize 100
  EXPECT_THAT(Message(DequantizeKivi(as_value).status()), HasSubstr("quantize 100"));
  KiviTensor scales32 = *good;
  scales32.scales = scales32.scales.to(torch::kFloat32);
  EXPECT_THAT(Message(DequantizeKivi(scales32).status()),
              HasSubstr("scales must be float16 [3, 2, 64]"));
  KiviTensor no_zeros = *good;
  no_zeros.zeros = torch::Tensor();
  EXPECT_THAT(Message(DequantizeKivi(no_zeros).status()), HasSubstr("zeros must be float16"));
  KiviTensor float_window = *good;
  float_window.residual = float_window.residual.to(torch::kFloat32);
  EXPECT_THAT(Message(DequantizeKivi(float_window).status()),
              HasSubstr("residual must be BFloat16"));
}

// ---------------------------------------------------------------------------------------------
// KvFormat adapter.

TEST(KiviKvFormatTest, SpecsParseToCanonicalNames) {
  const struct {
    const char* spec;
    const char* name;
  } cases[] = {
      {"kivi", "kivi:bits=2:group=32:residual=128"},
      {"kivi:bits=4", "kivi:bits=4:group=32:residual=128"},
      {"kivi:residual=0:group=16:bits=2", "kivi:bits=2:group=16:residual=0"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<KvFormatSpec> parsed = ParseKvFormatSpec(c.spec);
    ASSERT_TRUE(parsed.ok());
    absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKiviKvFormat(*parsed);
    ASSERT_TRUE(format.ok()) << format.status();
    EXPECT_EQ((*format)->name(), c.name);
  }
  const struct {
    KvFormatSpec spec;
    const char* says;
  } bad[] = {
      {{"kivi", {{"bits", "3"}}}, "bits=3 is not supported (2 or 4)"},
      {{"kivi", {{"bits", "two"}}}, "bits=two is not an integer"},
      {{"kivi", {{"group", "0"}}}, "group=0 is not an integer in [1,"},
      {{"kivi", {{"residual", "-4"}}}, "residual=-4 is not an integer in [0,"},
      {{"kivi", {{"block", "32"}}}, "no parameter 'block'"},
  };
  for (const auto& c : bad) {
    SCOPED_TRACE(c.says);
    absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKiviKvFormat(c.spec);
    ASSERT_FALSE(format.ok());
    EXPECT_EQ(format.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(format.status()), HasSubstr(c.says));
  }
}

TEST(KiviKvFormatTest, EncodeDecodeBothRoles) {
  absl::StatusOr<std::unique_ptr<KvFormat>> format =
      MakeKiviKvFormat({"kivi", {{"residual", "16"}}});
  ASSERT_TRUE(format.ok());
  const torch::Tensor x = RandomKv(100, 2, 64, 10);
  for (KvRole role : {KvRole::kKey, KvRole::kValue}) {
    absl::StatusOr<EncodedKv> encoded = (*format)->Encode(x, role);
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    EXPECT_EQ(encoded->role, role);
    EXPECT_EQ(encoded->bytes(), (*format)->Bytes(100, 2, 64, role));
    absl::StatusOr<torch::Tensor> decoded = (*format)->Decode(*encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    const KiviTensor direct = *QuantizeKivi(x, role, {2, 32, 16});
    EXPECT_TRUE(torch::equal(*decoded, *DequantizeKivi(direct)));
    EncodedKv missing = *encoded;
    missing.parts.erase("residual");
    EXPECT_THAT(Message((*format)->Decode(missing).status()), HasSubstr("lacks residual"));
  }
  EncodedKv other = *(*format)->Encode(x, KvRole::kKey);
  other.format = "kivi:bits=4:group=32:residual=16";
  EXPECT_THAT(Message((*format)->Decode(other).status()), HasSubstr("cannot decode"));
}

}  // namespace
}  // namespace kvgate::kernels
