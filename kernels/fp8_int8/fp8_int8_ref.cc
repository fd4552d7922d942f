// The plain scalar reference of fp8 e4m3 and int8 K/V (see fp8_int8.h for the formats): e4m3
// rounding done by hand (no hardware or library conversion), one element at a time, float32
// arithmetic throughout. Clear rather than fast; device kernels are checked against it.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/fp8_int8/fp8_int8.h"

namespace kvgate::kernels {
namespace {

constexpr float kE4m3Max = 448.0f;
constexpr float kE4m3MinNormal = 0.015625f;  // 2^-6
constexpr uint8_t kE4m3MaxBits = 0x7E;       // S.1111.110 = 448
constexpr uint8_t kE4m3NanBits = 0x7F;       // S.1111.111

// The scale's index of element (t, h) of [T, H, D]: one a (token, head) or one a head.
int64_t ScaleIndex(int64_t t, int64_t h, int64_t heads, ScaleGranularity granularity) {
  return granularity == ScaleGranularity::kToken ? t * heads + h : h;
}

// scales[] = absmax of each group / max_code.
void ComputeScales(const float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                   ScaleGranularity granularity, float max_code, float* scales) {
  const int64_t num_scales = granularity == ScaleGranularity::kToken ? tokens * heads : heads;
  std::fill(scales, scales + num_scales, 0.0f);  // absmax first
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      float& absmax = scales[ScaleIndex(t, h, heads, granularity)];
      const float* row = x + (t * heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) absmax = std::max(absmax, std::fabs(row[d]));
    }
  }
  for (int64_t i = 0; i < num_scales; ++i) scales[i] /= max_code;
}

// The 256 values of e4m3fn, built once.
const std::array<float, 256>& E4m3Table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int bits = 0; bits < 256; ++bits) {
      const int field = (bits >> 3) & 0xF;
      const int mantissa = bits & 0x7;
      float value;
      if (field == 0xF && mantissa == 0x7) {
        value = std::numeric_limits<float>::quiet_NaN();
      } else if (field == 0) {
        value = std::ldexp(static_cast<float>(mantissa), -9);  // subnormal: m * 2^-9
      } else {
        value = std::ldexp(static_cast<float>(8 + mantissa), field - 7 - 3);  // (1 + m/8) 2^(e-7)
      }
      t[bits] = (bits & 0x80) ? -value : value;
    }
    return t;
  }();
  return table;
}

}  // namespace

uint8_t E4m3FromFloat(float x) {
  if (std::isnan(x)) return kE4m3NanBits;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  const float a = std::fabs(x);
  if (a >= kE4m3Max) return sign | kE4m3MaxBits;  // saturate, infinities included
  if (a < kE4m3MinNormal) {
    // Subnormal range: the nearest multiple of 2^-9 (exact scaling by a power of two). m = 8 is
    // the smallest normal 2^-6, whose bit pattern 0.0001.000 is 8 as well.
    const int m = static_cast<int>(std::nearbyint(a * 512.0f));
    return sign | static_cast<uint8_t>(m);
  }
  // Normal: a = f * 2^e with f in [0.5, 1), i.e. (2f) * 2^(e-1) with 2f in [1, 2). Scaled to
  // eighths of that binade, the mantissa is round(a * 2^(3 - (e - 1))) - 8, in 0..8.
  int e = 0;
  std::frexp(a, &e);
  int exponent = e - 1;                                                   // unbiased, -6..8
  int q = static_cast<int>(std::nearbyint(std::ldexp(a, 3 - exponent)));  // 8..16
  if (q == 16) {  // rounded up into the next binade
    q = 8;
    ++exponent;
  }
  // a < 448 keeps (exponent, q) at or below (8, 14): 0x7E, never the NaN pattern.
  return sign | static_cast<uint8_t>(((exponent + 7) << 3) | (q - 8));
}

float E4m3ToFloat(uint8_t bits) { return E4m3Table()[bits]; }

float Fp8Int8MaxCode(Fp8Int8Code code) { return code == Fp8Int8Code::kFp8E4m3 ? kE4m3Max : 127.0f; }

void QuantizeFp8E4m3Ref(const float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                        ScaleGranularity granularity, uint8_t* codes, float* scales) {
  ComputeScales(x, tokens, heads, head_dim, granularity, kE4m3Max, scales);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const float scale = scales[ScaleIndex(t, h, heads, granularity)];
      const int64_t row = (t * heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) {
        codes[row + d] = scale == 0.0f ? 0 : E4m3FromFloat(x[row + d] / scale);
      }
    }
  }
}

void QuantizeInt8Ref(const float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                     ScaleGranularity granularity, int8_t* codes, float* scales) {
  ComputeScales(x, tokens, heads, head_dim, granularity, 127.0f, scales);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const float scale = scales[ScaleIndex(t, h, heads, granularity)];
      const int64_t row = (t * heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) {
        const float q =
            scale == 0.0f ? 0.0f : std::clamp(std::nearbyint(x[row + d] / scale), -127.0f, 127.0f);
        codes[row + d] = static_cast<int8_t>(q);
      }
    }
  }
}

void DequantizeFp8E4m3Ref(const uint8_t* codes, const float* scales, int64_t tokens, int64_t heads,
                          int64_t head_dim, ScaleGranularity granularity, float* out) {
  const std::array<float, 256>& table = E4m3Table();
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const float scale = scales[ScaleIndex(t, h, heads, granularity)];
      const int64_t row = (t * heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) out[row + d] = table[codes[row + d]] * scale;
    }
  }
}

void DequantizeInt8Ref(const int8_t* codes, const float* scales, int64_t tokens, int64_t heads,
                       int64_t head_dim, ScaleGranularity granularity, float* out) {
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const float scale = scales[ScaleIndex(t, h, heads, granularity)];
      const int64_t row = (t * heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) {
        out[row + d] = static_cast<float>(codes[row + d]) * scale;
      }
    }
  }
}

}  // namespace kvgate::kernels
