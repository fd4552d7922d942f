// The plain scalar reference of KIVI-style K/V (see kivi.h for the format): one group at a time,
// one element at a time, float32 arithmetic with fp16 scales and zero points. Keys' groups run
// along tokens (G values of one channel, stride heads * head_dim apart), values' along channels
// (G consecutive values of one vector). Clear rather than fast.

#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "kernels/kivi/kivi.h"

namespace kvgate::kernels {
namespace {

// The code of one element: clamp(round((x - zero) / scale), 0, levels); 0 when scale is 0.
int Code(float x, float scale, float zero, int levels) {
  if (scale == 0.0f) return 0;
  return static_cast<int>(
      std::clamp(std::nearbyint((x - zero) / scale), 0.0f, static_cast<float>(levels)));
}

// Writes a code of `bits` bits for element d of a packed row (the row zeroed beforehand).
void PutCode(uint8_t* row, int64_t d, int bits, int code) {
  const int per_byte = 8 / bits;
  row[d / per_byte] |= static_cast<uint8_t>(code << ((d % per_byte) * bits));
}

int GetCode(const uint8_t* row, int64_t d, int bits) {
  const int per_byte = 8 / bits;
  return (row[d / per_byte] >> ((d % per_byte) * bits)) & ((1 << bits) - 1);
}

// zero = fp16(min), scale = fp16(max(max - zero, 0) / levels) (0 if min == max). Returns "" or,
// when either overflows fp16, what overflowed in words (the caller names the group).
std::string GroupScale(float min, float max, int levels, c10::Half* scale, c10::Half* zero) {
  *zero = c10::Half(min);
  if (std::isinf(static_cast<float>(*zero))) {
    return absl::StrFormat("zero point min = %g is beyond fp16 range (|value| <= 65504)", min);
  }
  const float unrounded =
      (min == max) ? 0.0f : std::max(max - static_cast<float>(*zero), 0.0f) / levels;
  *scale = c10::Half(unrounded);
  if (std::isinf(static_cast<float>(*scale))) {
    return absl::StrFormat("scale (max-zero)/%d = %g is beyond fp16 range (|value| <= 65504)",
                           levels, unrounded);
  }
  return "";
}

}  // namespace

absl::Status QuantizeKiviRef(const float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                             KvRole role, int bits, int64_t group, uint8_t* codes,
                             c10::Half* scales, c10::Half* zeros) {
  const int levels = (1 << bits) - 1;
  const int64_t row_bytes = head_dim * bits / 8;
  std::fill(codes, codes + tokens * heads * row_bytes, 0);
  if (role == KvRole::kKey) {
    // Group g of channel (h, d): tokens g*G .. g*G + G - 1.
    for (int64_t g = 0; g < tokens / group; ++g) {
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t d = 0; d < head_dim; ++d) {
          const auto at = [&](int64_t i) {
            return x[((g * group + i) * heads + h) * head_dim + d];
          };
          float min = at(0), max = at(0);
          for (int64_t i = 1; i < group; ++i) {
            min = std::min(min, at(i));
            max = std::max(max, at(i));
          }
          const int64_t s = (g * heads + h) * head_dim + d;
          if (std::string bad = GroupScale(min, max, levels, &scales[s], &zeros[s]); !bad.empty()) {
            return absl::OutOfRangeError(
                absl::StrFormat("key group [%d, %d, %d] (tokens %d..%d, head %d, channel %d): %s",
                                g, h, d, g * group, g * group + group - 1, h, d, bad));
          }
          const float scale = static_cast<float>(scales[s]);
          const float zero = static_cast<float>(zeros[s]);
          for (int64_t i = 0; i < group; ++i) {
            PutCode(codes + ((g * group + i) * heads + h) * row_bytes, d, bits,
                    Code(at(i), scale, zero, levels));
          }
        }
      }
    }
  } else {
    // Group j of vector (t, h): channels j*G .. j*G + G - 1.
    const int64_t groups = head_dim / group;
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        const float* row = x + (t * heads + h) * head_dim;
        uint8_t* row_codes = codes + (t * heads + h) * row_bytes;
        for (int64_t j = 0; j < groups; ++j) {
          const float* values = row + j * group;
          const float min = *std::min_element(values, values + group);
          const float max = *std::max_element(values, values + group);
          const int64_t s = (t * heads + h) * groups + j;
          if (std::string bad = GroupScale(min, max, levels, &scales[s], &zeros[s]); !bad.empty()) {
            return absl::OutOfRangeError(
                absl::StrFormat("value group [%d, %d, %d] (token %d, head %d, channels %d..%d): %s",
                                t, h, j, t, h, j * group, j * group + group - 1, bad));
          }
          const float scale = static_cast<float>(scales[s]);
          const float zero = static_cast<float>(zeros[s]);
          for (int64_t i = 0; i < group; ++i) {
            PutCode(row_codes, j * group + i, bits, Code(values[i], scale, zero, levels));
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

void DequantizeKiviRef(const uint8_t* codes, const c10::Half* scales, const c10::Half* zeros,
                       int64_t tokens, int64_t heads, int64_t head_dim, KvRole role, int bits,
                       int64_t group, float* out) {
  const int64_t row_bytes = head_dim * bits / 8;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const uint8_t* row_codes = codes + (t * heads + h) * row_bytes;
      float* row_out = out + (t * heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) {
        const int64_t s = role == KvRole::kKey ? ((t / group) * heads + h) * head_dim + d
                                               : (t * heads + h) * (head_dim / group) + d / group;
        row_out[d] =
            static_cast<float>(GetCode(row_codes, d, bits)) * static_cast<float>(scales[s]) +
            static_cast<float>(zeros[s]);
      }
    }
  }
}

}  // namespace kvgate::kernels
