// 8-bit K/V with float32 scales: fp8 e4m3 and int8 codes, one scale per token or per kv head, the
// KV-cache formats serving engines use.
//
// A tensor x of shape [T, H, D] (tokens, kv_heads, head_dim; any D >= 1) is stored as one byte a
// value plus float32 scales, at one of two granularities:
//
//   scale=token   one scale per (token, kv head): the D values of one head's vector share it
//                 ("per-token" in serving engines: each cache slot carries its own scale)
//   scale=head    one scale per kv head, over every token encoded (a serving engine calibrates a
//                 static per-head scale ahead of time; this one is the absmax of exactly the data
//                 encoded, which flatters it a little)
//
//   fp8_e4m3  scale = absmax / 448, code = E4m3FromFloat(x / scale),
//             x_hat = E4m3ToFloat(code) * scale
//   int8      scale = absmax / 127, code = clamp(round(x / scale), -127, 127),
//             x_hat = code * scale
//   scale 0 (an all-zero group): every code 0, x_hat exactly 0.
//
// All arithmetic is float32; round() is round-half-to-even (std::nearbyint).
// e4m3 is e4m3fn (OCP FP8, torch.float8_e4m3fn): 1 sign bit, 4 exponent bits of bias 7, 3 mantissa
// bits, no infinities; S.1111.111 is NaN, so the largest finite value is 448 = 1.75 * 2^8. Normal
// values are (1 + m/8) * 2^(e-7) for exponent field e in 1..15, subnormals m * 2^-9 (m 1..7).
// E4m3FromFloat rounds to the nearest value, ties to even mantissa, and saturates: |x| >= 448
// (infinities included) becomes +-448; NaN becomes NaN (0x7F). (torch's own conversion is not
// saturating: above 464 it gives NaN; below that the two agree bit for bit.)
//
// Error bounds, elementwise, from the stored float32 scale (plus float32 rounding, 2^-23 relative):
//   fp8:  |x - x_hat| <= max(2^-4 |x|, 2^-10 scale)   (half a mantissa step, or half the subnormal
//                                                        step 2^-9 times the scale)
//   int8: |x - x_hat| <= scale / 2
//
// Layout of an Fp8Int8Tensor for x [T, H, D], contiguous, row major:
//   codes   uint8 [T, H, D] (fp8: e4m3fn bit patterns)  or  int8 [T, H, D] (int8)
//   scales  float32 [T, H] (scale=token)  or  float32 [H] (scale=head)
// Bytes: T*H*D + 4*T*H (token) or T*H*D + 4*H (head); against 2*T*H*D in bf16 a KV ratio just
// under 2 (2D/(D+4) per token: 1.88 at D=64, 1.94 at D=128).
//
// Errors: a rank other than 3, a dtype other than float32/bfloat16/float16, a non-CPU tensor, or a
// NaN/Inf value (named by its [token, head, dim] and flat index) are InvalidArgument.
//
// Usage:
//   torch::Tensor k = torch::randn({4096, 4, 128});  // [tokens, kv_heads, head_dim]
//   absl::StatusOr<kvgate::kernels::Fp8Int8Tensor> q = kvgate::kernels::QuantizeFp8Int8(
//       k, kvgate::kernels::Fp8Int8Code::kFp8E4m3, kvgate::kernels::ScaleGranularity::kToken);
//   absl::StatusOr<torch::Tensor> k_hat = kvgate::kernels::DequantizeFp8Int8(*q);  // float32
//
// The reference loops (Quantize*Ref, Dequantize*Ref, E4m3FromFloat, E4m3ToFloat) work on raw
// buffers, in fp8_int8_ref.cc; the tensor API checks tensors and calls them, in fp8_int8.cc.
// Tests: tools/bazel test //kernels/fp8_int8:fp8_int8_test

#ifndef KVGATE_KERNELS_FP8_INT8_FP8_INT8_H_
#define KVGATE_KERNELS_FP8_INT8_FP8_INT8_H_

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kvgate::kernels {

// What one byte holds.
enum class Fp8Int8Code { kFp8E4m3, kInt8 };

// Which values share a scale.
enum class ScaleGranularity { kToken, kHead };

// "fp8_e4m3" or "int8", the format names specs use.
std::string Fp8Int8CodeName(Fp8Int8Code code);

// "token" or "head", the value of the spec's scale parameter.
std::string ScaleGranularityName(ScaleGranularity granularity);

// Largest code magnitude: 448 (e4m3) or 127 (int8); scale = absmax / this.
float Fp8Int8MaxCode(Fp8Int8Code code);

// A quantized [T, H, D] tensor; see the layout above.
struct Fp8Int8Tensor {
  Fp8Int8Code code = Fp8Int8Code::kFp8E4m3;
  ScaleGranularity granularity = ScaleGranularity::kToken;
  torch::Tensor codes;   // uint8 (fp8) or int8 [T, H, D]
  torch::Tensor scales;  // float32 [T, H] or [H]

  // Exact bytes of codes + scales.
  int64_t bytes() const;
};

// Quantizes x [T, H, D] (float32, bfloat16 or float16, on the CPU, contiguous or not; T may be 0).
absl::StatusOr<Fp8Int8Tensor> QuantizeFp8Int8(const torch::Tensor& x, Fp8Int8Code code,
                                              ScaleGranularity granularity);

// float32 [T, H, D], after checking q's tensors have the dtypes and shapes of the layout above.
absl::StatusOr<torch::Tensor> DequantizeFp8Int8(const Fp8Int8Tensor& q);

// Exact bytes of T tokens of one layer's keys (or values): T*H*D + 4*T*H or T*H*D + 4*H.
// 0 when an argument is negative or head_dim is 0.
int64_t Fp8Int8Bytes(int64_t tokens, int64_t kv_heads, int64_t head_dim,
                     ScaleGranularity granularity);

// e4m3fn encoding of x: nearest, ties to even, saturating to +-448; NaN -> 0x7F.
uint8_t E4m3FromFloat(float x);

// The value of an e4m3fn bit pattern (0x7F and 0xFF are NaN).
float E4m3ToFloat(uint8_t bits);

// The plain scalar references over raw contiguous buffers x[T * H * D] (finite values: the tensor
// API checks that first). They write codes[T * H * D] and scales, [T * H] (token) or [H] (head).
void QuantizeFp8E4m3Ref(const float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                        ScaleGranularity granularity, uint8_t* codes, float* scales);
void QuantizeInt8Ref(const float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                     ScaleGranularity granularity, int8_t* codes, float* scales);

// The inverses: out[T * H * D] from codes and scales laid out as above.
void DequantizeFp8E4m3Ref(const uint8_t* codes, const float* scales, int64_t tokens, int64_t heads,
                          int64_t head_dim, ScaleGranularity granularity, float* out);
void DequantizeInt8Ref(const int8_t* codes, const float* scales, int64_t tokens, int64_t heads,
                       int64_t head_dim, ScaleGranularity granularity, float* out);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_FP8_INT8_FP8_INT8_H_
