// KIVI-style 2- and 4-bit K/V: keys quantized per channel, values per token, and a full-precision
// (bf16) window of the most recent tokens.
//
// Spec: kivi:bits=B:group=G:residual=R with B in {2, 4}, G >= 1, R >= 0; the defaults bits=2,
// group=32, residual=128 are KIVI-2 as the paper runs it. Canonical name, in that order:
// "kivi:bits=2:group=32:residual=128".
//
// For x of shape [T, H, D] (tokens, kv_heads, head_dim), the oldest Tq tokens are quantized and
// the T - Tq newest stay in bf16:
//
//   keys    Tq = floor(max(T - R, 0) / G) * G: whole groups of G consecutive tokens, quantized per
//           (group, head, channel): one scale and zero point for the G values of one channel.
//           So all T tokens stay bf16 while T < R + G; after that the newest R plus the
//           (T - R) mod G that do not fill a group (R to R + G - 1 tokens).
//   values  Tq = max(T - R, 0): every token older than the window, quantized per (token, head,
//           group of G consecutive channels); D must be a multiple of G. The newest min(T, R)
//           tokens stay bf16.
//
// Each group of values in [min, max] is quantized affinely, as affine int4 is (int4.h) but with
// 2^B - 1 steps:
//   zero  = fp16(min)
//   scale = fp16(max(max - zero, 0) / (2^B - 1))   (0 when min == max)
//   q     = clamp(round((x - zero) / scale), 0, 2^B - 1),   x_hat = q * scale + zero
// round() is round-half-to-even (std::nearbyint), arithmetic float32 with scale and zero read back
// from fp16. Every element gets its group's nearest grid point, so |x - x_hat| <= scale / 2 plus
// the fp16 rounding of zero (at most 2^-11 |min|) and of the scale. Window tokens are bf16-rounded
// (relative error <= 2^-9).
//
// Layout of a KiviTensor (and the EncodedKv parts of the same names), contiguous, row major:
//   codes     uint8    [Tq, H, D*B/8]  token t, head h, channel d at byte d / (8/B) of the row,
//                                      bits (d mod (8/B)) * B upward (lowest bits first); so
//                                      D*B must be a multiple of 8 (D even for B=4, D % 4 == 0
//                                      for B=2)
//   scales    float16  keys [Tq/G, H, D],  values [Tq, H, D/G]
//   zeros     float16  the shape of scales
//   residual  bfloat16 [T - Tq, H, D]  the newest tokens, in order (tokens Tq .. T-1)
// Bytes: Tq*H*D*B/8 + 4*(Tq/G)*H*D (keys) or 4*Tq*H*(D/G) (values) + 2*(T - Tq)*H*D. At
// T = 4096, H = 4, D = 128, defaults: 892928 bytes each for K and V against 4194304 in bf16
// (a KV ratio of 4.70); the ratio depends on T because of the window.
//
// Difference from KIVI's released code, which quantizes keys in chunks of R once R full-precision
// keys accumulate (so its key window holds T mod R tokens, 0..R-1): here both windows always keep
// at least the newest min(T, R) tokens in bf16, so keys and values agree on what is recent.
//
// Errors: a rank other than 3, a dtype other than float32/bfloat16/float16, a non-CPU tensor,
// NaN/Inf (named by [token, head, dim] and flat index), bits other than 2 or 4, a group < 1, a
// residual < 0, a head_dim not a multiple of 8/B, or (values) of G, are InvalidArgument; a group
// whose scale or zero point overflows fp16 (|value| > 65504) is OutOfRange, naming the group.
//
// Usage:
//   kvgate::kernels::KiviParams params;  // bits 2, group 32, residual 128
//   absl::StatusOr<kvgate::kernels::KiviTensor> k =
//       kvgate::kernels::QuantizeKivi(keys, kvgate::kernels::KvRole::kKey, params);  // [T, H, D]
//   absl::StatusOr<torch::Tensor> k_hat = kvgate::kernels::DequantizeKivi(*k);     // float32
//
// The reference loops (QuantizeKiviRef, DequantizeKiviRef) work on raw buffers of the quantized
// part, in kivi_ref.cc; the tensor API splits off the window and calls them, in kivi.cc.
// Tests: tools/bazel test //kernels/kivi:kivi_test

#ifndef KVGATE_KERNELS_KIVI_KIVI_H_
#define KVGATE_KERNELS_KIVI_KIVI_H_

#include <c10/util/Half.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::kernels {

struct KiviParams {
  int bits = 2;            // 2 or 4
  int64_t group = 32;      // G: tokens a key group, channels a value group
  int64_t residual = 128;  // R: newest tokens kept in bf16

  // "kivi:bits=2:group=32:residual=128".
  std::string Name() const;

  // InvalidArgument naming the problem: bits not 2 or 4, group < 1, residual < 0.
  absl::Status Check() const;
};

// Tq, the number of oldest tokens quantized out of `tokens` (see above); 0 if tokens <= 0.
int64_t KiviQuantizedTokens(int64_t tokens, KvRole role, const KiviParams& params);

// A KIVI-encoded [T, H, D] tensor of one role; see the layout above.
struct KiviTensor {
  KvRole role = KvRole::kKey;
  KiviParams params;
  torch::Tensor codes;     // uint8 [Tq, H, D*B/8]
  torch::Tensor scales;    // float16 [Tq/G, H, D] (keys) or [Tq, H, D/G] (values)
  torch::Tensor zeros;     // float16, as scales
  torch::Tensor residual;  // bfloat16 [T - Tq, H, D]

  // [T, H, D]: from residual's shape, with T = Tq + its tokens. Empty if residual is undefined.
  std::vector<int64_t> shape() const;

  // Exact bytes of all four tensors.
  int64_t bytes() const;
};

// Quantizes x [T, H, D] (float32, bfloat16 or float16, on the CPU, contiguous or not; T may be 0).
absl::StatusOr<KiviTensor> QuantizeKivi(const torch::Tensor& x, KvRole role,
                                        const KiviParams& params);

// float32 [T, H, D], after checking q's tensors against the layout above (InvalidArgument).
absl::StatusOr<torch::Tensor> DequantizeKivi(const KiviTensor& q);

// Exact bytes of T tokens of one layer's keys or values; 0 when the shape is not encodable
// (a negative size, D*B not a multiple of 8, or for values D not a multiple of G).
int64_t KiviBytes(int64_t tokens, int64_t kv_heads, int64_t head_dim, KvRole role,
                  const KiviParams& params);

// The plain scalar reference over raw contiguous buffers of the quantized part: x[tokens * heads *
// head_dim] (finite; the tensor API checks), tokens = Tq (a multiple of group for keys). Writes
// codes[tokens * heads * head_dim * bits / 8], and scales and zeros ([tokens/group, heads,
// head_dim] for keys, [tokens, heads, head_dim/group] for values). OutOfRange, naming the group,
// when a scale or zero point overflows fp16; the outputs are then partly written.
absl::Status QuantizeKiviRef(const float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                             KvRole role, int bits, int64_t group, uint8_t* codes,
                             c10::Half* scales, c10::Half* zeros);

// The inverse: out[tokens * heads * head_dim] from codes, scales and zeros laid out as above.
void DequantizeKiviRef(const uint8_t* codes, const c10::Half* scales, const c10::Half* zeros,
                       int64_t tokens, int64_t heads, int64_t head_dim, KvRole role, int bits,
                       int64_t group, float* out);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_KIVI_KIVI_H_
