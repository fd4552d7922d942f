// Hardware-friendly int4 K/V: a KV-cache format of 4-bit codes in blocks of 32 along head_dim.
//
// A tensor x of shape [..., D] (D = head_dim, a positive multiple of 32) is cut into blocks of
// kInt4BlockSize = 32 consecutive elements along its last dimension. Each block keeps sixteen bytes
// of codes and an fp16 scale; the affine scheme also keeps an fp16 zero point.
//
//   symmetric_int4:  scale = fp16(absmax / 7)             (rounded to fp16 first, then used)
//                    q     = clamp(round(x / scale), -7, 7), stored as the unsigned nibble q + 8
//                    x_hat = (nibble - 8) * scale
//                    scale 0 (an all-zero block): every nibble 8, x_hat exactly 0
//   affine_int4:     zero  = fp16(min)
//                    scale = fp16(max(max - zero, 0) / 15)  (with zero as rounded; 0 if min == max)
//                    q     = clamp(round((x - zero) / scale), 0, 15), stored as the nibble q
//                    x_hat = nibble * scale + zero
//                    scale 0 (an all-equal block): every nibble 0, x_hat = zero
//
// round() is round-half-to-even (std::nearbyint, CUDA __float2int_rn); fp16() is IEEE round to
// nearest even. All arithmetic is float32, with scale and zero read back from fp16. Dequantizing
// is exact on any device: nibble * scale is exact in float32 (4 by 11 significant bits), so
// x_hat has at most one rounding (the affine add), the same with or without an fma.
// Every element gets its nearest grid point, so |x - x_hat| <= scale / 2 (symmetric, while the
// scale is a normal fp16, i.e. absmax >= 7 * 2^-14); affine adds the fp16 rounding of the zero.
//
// Layout of an Int4Tensor for x of shape [..., D], all three tensors contiguous and row major, with
// the same leading dimensions [...] as x. Let v be the flat index of a vector (a row of D), b the
// block within it (0 <= b < D/32) and i the element within the block (0 <= i < 32):
//
//   codes   uint8   [..., D/2]    byte  v*(D/2) + b*16 + i/2, low nibble if i is even, high if odd
//   scales  float16 [..., D/32]   entry v*(D/32) + b
//   zeros   float16 [..., D/32]   entry v*(D/32) + b; affine only (an undefined tensor otherwise)
//
// So element 2k of a row is the low nibble (byte & 0xF) of byte k and element 2k+1 its high nibble
// (byte >> 4); a block's codes are 16 consecutive bytes at an offset that is a multiple of 16 (one
// 16-byte load a block). A block takes 18 bytes (symmetric) or 20 bytes (affine) against 64 in
// bf16: a KV ratio of 64/18 = 3.56x or 64/20 = 3.20x.
//
// Errors: NaN or Inf input, a last dimension that is not a positive multiple of 32, a dtype other
// than float32/bfloat16/float16, or a non-CPU tensor are InvalidArgument; a block whose scale or
// zero point does not fit in fp16 (|value| above 65504 after rounding, e.g. 1e6) is OutOfRange.
// Messages name the flat element (or block) index in x's row-major order.
//
// Usage:
//   torch::Tensor k = torch::randn({4096, 4, 128});  // [tokens, heads, head_dim]
//   absl::StatusOr<kvgate::kernels::Int4Tensor> q =
//       kvgate::kernels::QuantizeInt4(k, kvgate::kernels::Int4Scheme::kSymmetric);
//   if (!q.ok()) return q.status();
//   int64_t bytes = q->bytes();  // 4096 * 4 * 72
//   absl::StatusOr<torch::Tensor> k_hat = kvgate::kernels::DequantizeInt4(*q);  // float32
//
// The reference loops (QuantizeInt4Ref, DequantizeInt4Ref) work on raw buffers of whole blocks, in
// int4_ref.cc; QuantizeInt4 and DequantizeInt4 check the tensors and call them, in int4.cc.
// Tests: tools/bazel test //kernels/int4:int4_test
// Benchmark: tools/bazel run //kernels/int4:int4_benchmark -- --benchmark_min_time=0.1

#ifndef KVGATE_KERNELS_INT4_INT4_H_
#define KVGATE_KERNELS_INT4_INT4_H_

#include <c10/util/Half.h>
#include <torch/types.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kvgate::kernels {

enum class Int4Scheme { kSymmetric, kAffine };

// Elements per block, along the last dimension; each block has its own scale (and zero point).
inline constexpr int64_t kInt4BlockSize = 32;

// "symmetric_int4" or "affine_int4", the names records use.
std::string_view Int4SchemeName(Int4Scheme scheme);

// A quantized tensor of shape [..., D]; see the layout above.
struct Int4Tensor {
  Int4Scheme scheme = Int4Scheme::kSymmetric;
  torch::Tensor codes;   // uint8 [..., D/2], two codes a byte, element 2k in the low nibble
  torch::Tensor scales;  // float16 [..., D/32]
  torch::Tensor zeros;   // float16 [..., D/32] for affine; undefined for symmetric

  // The shape of the tensor that was quantized: codes' shape with the last dimension doubled.
  // Empty if codes is undefined or of rank 0.
  std::vector<int64_t> shape() const;

  // Exact bytes of codes + scales + zeros (zeros only if defined).
  int64_t bytes() const;
};

// Quantizes x (float32, bfloat16 or float16, on the CPU, rank >= 1, contiguous or not; the last
// dimension a positive multiple of 32, leading dimensions may be 0). Returns contiguous tensors.
absl::StatusOr<Int4Tensor> QuantizeInt4(const torch::Tensor& x, Int4Scheme scheme);

// float32 [..., D] from q, after checking that q's tensors are defined CPU tensors of the dtypes
// and shapes the layout above gives (InvalidArgument otherwise).
absl::StatusOr<torch::Tensor> DequantizeInt4(const Int4Tensor& q);

// Exact bytes one vector of head_dim elements takes: head_dim/2 + (head_dim/32) * (2 or 4).
// Returns 0 unless head_dim is a positive multiple of 32.
int64_t Int4BytesPerVector(int64_t head_dim, Int4Scheme scheme);

// bytes_vs_bf16 (kv_format.h's KvBytesVsBf16) of one vector: Int4BytesPerVector / (2 * head_dim),
// 18/64 = 0.28125 (symmetric, 3.56x compression), 20/64 = 0.3125 (affine, 3.20x).
// NaN unless head_dim is a positive multiple of 32.
double Int4BytesVsBf16(int64_t head_dim, Int4Scheme scheme);

// The plain scalar reference, over raw contiguous buffers of num_blocks whole blocks (so a tensor
// [..., D] is num_blocks = numel / 32 blocks in a row): reads x[num_blocks * 32], writes
// codes[num_blocks * 16], scales[num_blocks] and, for affine, zeros[num_blocks] (zeros is ignored
// and may be null for symmetric). InvalidArgument on a NaN or Inf (naming its flat index),
// OutOfRange on a scale or zero point beyond fp16 range (naming the block); the outputs are then
// partly written. The device kernels are checked against these.
absl::Status QuantizeInt4Ref(const float* x, int64_t num_blocks, Int4Scheme scheme, uint8_t* codes,
                             c10::Half* scales, c10::Half* zeros);

// The inverse: reads codes[num_blocks * 16], scales[num_blocks], zeros[num_blocks] (affine only;
// ignored for symmetric) and writes out[num_blocks * 32].
void DequantizeInt4Ref(const uint8_t* codes, const c10::Half* scales, const c10::Half* zeros,
                       int64_t num_blocks, Int4Scheme scheme, float* out);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_INT4_INT4_H_
