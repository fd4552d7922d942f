// The plain scalar reference of int4 K/V (see int4.h for the format): one block of 32 floats at a
// time, one element at a time, float32 arithmetic throughout. Clear rather than fast; the device
// kernels and any faster CPU variant are checked against it.

#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "kernels/int4/int4.h"

namespace kvgate::kernels {
namespace {

constexpr int64_t kBytesPerBlock = kInt4BlockSize / 2;  // 16 bytes of codes a block

// InvalidArgument naming the first NaN or Inf of block b, if there is one.
absl::Status CheckFinite(const float* block, int64_t b) {
  for (int64_t i = 0; i < kInt4BlockSize; ++i) {
    if (!std::isfinite(block[i])) {
      const char* what = std::isnan(block[i]) ? "NaN" : (block[i] > 0 ? "+Inf" : "-Inf");
      return absl::InvalidArgumentError(absl::StrFormat(
          "element %d is %s: int4 takes finite values only", b * kInt4BlockSize + i, what));
    }
  }
  return absl::OkStatus();
}

// OutOfRange if value, the fp16 rounding of `what` for block b, overflowed to infinity.
absl::Status CheckFp16(c10::Half value, float unrounded, const char* what, int64_t b) {
  if (std::isinf(static_cast<float>(value))) {
    return absl::OutOfRangeError(absl::StrFormat(
        "block %d (elements %d..%d): %s = %g is beyond fp16 range (|value| <= 65504)", b,
        b * kInt4BlockSize, (b + 1) * kInt4BlockSize - 1, what, unrounded));
  }
  return absl::OkStatus();
}

// The nibble of one element: q + 8 with q = clamp(round(x / scale), -7, 7); 8 when scale is 0.
uint8_t SymmetricCode(float x, float scale) {
  if (scale == 0.0f) return 8;
  const float q = std::clamp(std::nearbyint(x / scale), -7.0f, 7.0f);
  return static_cast<uint8_t>(static_cast<int>(q) + 8);
}

// The nibble of one element: clamp(round((x - zero) / scale), 0, 15); 0 when scale is 0.
uint8_t AffineCode(float x, float scale, float zero) {
  if (scale == 0.0f) return 0;
  const float q = std::clamp(std::nearbyint((x - zero) / scale), 0.0f, 15.0f);
  return static_cast<uint8_t>(q);
}

}  // namespace

absl::Status QuantizeInt4Ref(const float* x, int64_t num_blocks, Int4Scheme scheme, uint8_t* codes,
                             c10::Half* scales, c10::Half* zeros) {
  for (int64_t b = 0; b < num_blocks; ++b) {
    const float* block = x + b * kInt4BlockSize;
    uint8_t* block_codes = codes + b * kBytesPerBlock;
    if (absl::Status s = CheckFinite(block, b); !s.ok()) return s;

    if (scheme == Int4Scheme::kSymmetric) {
      float absmax = 0.0f;
      for (int64_t i = 0; i < kInt4BlockSize; ++i) absmax = std::max(absmax, std::fabs(block[i]));
      const float unrounded_scale = absmax / 7.0f;
      const c10::Half scale_fp16(unrounded_scale);
      if (absl::Status s = CheckFp16(scale_fp16, unrounded_scale, "scale absmax/7", b); !s.ok()) {
        return s;
      }
      const float scale = static_cast<float>(scale_fp16);  // quantize with the stored scale
      scales[b] = scale_fp16;
      for (int64_t i = 0; i < kInt4BlockSize; i += 2) {
        const uint8_t low = SymmetricCode(block[i], scale);
        const uint8_t high = SymmetricCode(block[i + 1], scale);
        block_codes[i / 2] = static_cast<uint8_t>(low | (high << 4));
      }
    } else {
      float min = block[0];
      float max = block[0];
      for (int64_t i = 1; i < kInt4BlockSize; ++i) {
        min = std::min(min, block[i]);
        max = std::max(max, block[i]);
      }
      const c10::Half zero_fp16(min);
      if (absl::Status s = CheckFp16(zero_fp16, min, "zero point min", b); !s.ok()) return s;
      const float zero = static_cast<float>(zero_fp16);
      // An all-equal block keeps only its zero point. fp16(min) may also round above max when the
      // block spans less than half an fp16 step: the scale is then 0 too.
      const float unrounded_scale = (min == max) ? 0.0f : std::max(max - zero, 0.0f) / 15.0f;
      const c10::Half scale_fp16(unrounded_scale);
      if (absl::Status s = CheckFp16(scale_fp16, unrounded_scale, "scale (max-zero)/15", b);
          !s.ok()) {
        return s;
      }
      const float scale = static_cast<float>(scale_fp16);
      scales[b] = scale_fp16;
      zeros[b] = zero_fp16;
      for (int64_t i = 0; i < kInt4BlockSize; i += 2) {
        const uint8_t low = AffineCode(block[i], scale, zero);
        const uint8_t high = AffineCode(block[i + 1], scale, zero);
        block_codes[i / 2] = static_cast<uint8_t>(low | (high << 4));
      }
    }
  }
  return absl::OkStatus();
}

void DequantizeInt4Ref(const uint8_t* codes, const c10::Half* scales, const c10::Half* zeros,
                       int64_t num_blocks, Int4Scheme scheme, float* out) {
  for (int64_t b = 0; b < num_blocks; ++b) {
    const uint8_t* block_codes = codes + b * kBytesPerBlock;
    float* block_out = out + b * kInt4BlockSize;
    const float scale = static_cast<float>(scales[b]);
    for (int64_t i = 0; i < kInt4BlockSize; ++i) {
      const uint8_t byte = block_codes[i / 2];
      const int nibble = (i % 2 == 0) ? (byte & 0xF) : (byte >> 4);
      if (scheme == Int4Scheme::kSymmetric) {
        block_out[i] = static_cast<float>(nibble - 8) * scale;
      } else {
        block_out[i] = static_cast<float>(nibble) * scale + static_cast<float>(zeros[b]);
      }
    }
  }
}

}  // namespace kvgate::kernels
