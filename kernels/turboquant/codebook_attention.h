// Fused packed-codebook attention for one decode step over TurboQuant K/V (turboquant.h): logits
// straight from the codes, never materializing K, and the value sum in the rotated space, unrotated
// once at the end. CPU, one thread. Tensors in, tensors out; a CUDA kernel can sit beside it.
//
// Shapes: q [heads, D] (float32; bfloat16/float16 are converted), K and V TurboQuantTensors of
// [T, kv_heads, D] made by the TurboQuant kq and vq (any kinds, bits, seeds; both of head_dim D).
// heads must be a positive multiple of kv_heads: query head h reads kv head h / (heads / kv_heads)
// (consecutive groups, as repeat_kv does). D is any head_dim the formats take: rotation=hadamard
// needs a power of two (D/2 for the split), and TurboQuant::Make says so; rotation=dense takes any.
//
// Logits, for query head h and token t (CodebookLogits returns them unscaled, [heads, T]):
//   logit[h][t] = sum over groups g of K (one; two for the split) of
//       nu_t * sum_j lut[j][code_tj]                 lut[j][c] = (R_g q_g)[j] * centroid[c]
//     + fp16(rho_t) * sqrt(pi/2)/m * <S_g q_g, s_t>  (kProd)
//   with q_g = q_h gathered at group g's channels of the kv head. R_g q_g, the table and S_g q_g
//   are computed once per query head; per token only codes are read. This equals <q_h, Decode(k)_t>
//   up to float rounding.
// Attention (CodebookAttention): p = softmax(scale * logits) over the T tokens, then per group of V
//   acc[j]  = sum_t p_t nu_t centroid[code_tj]        (the rotated space)
//   accs[i] = sum_t p_t fp16(rho_t) s_ti              (kProd)
//   out_g   = R_g^T acc + sqrt(pi/2)/m S_g^T accs     (once a query head)
//   scattered into the group's channels: out [heads, D] float32 = sum_t p_t Decode(v)_t.
// Exact cleanup (TurboQuant::EncodeExactCleanup tensors, for K, V or both) runs the same loops with
// the code lookup replaced by the stored rotated vector (nu = 1) and rho = 0: exact attention
// through the fused integration, to separate its overhead from the approximation error.
//
// Variants (the number is part of what a record names):
//   1  scalar: the per-query table lut[j][c] above, one lookup a coordinate; codes unpacked once a
//      token and kv head and shared by its query heads; values accumulated by one lookup a
//      coordinate; QJL by one sign test a bit.
//   2  decode-once: a token's codes expanded to centroid values through a 256-entry table per byte
//      (1, 2 and 4 bits; 3 bits: 8 codes from 3 bytes), signs to +-1 likewise, once a token and kv
//      head; then dot products / axpys with each query head's rotated q (4 accumulators), the same
//      loops as the dense baseline. The default.
// Dense baseline (DenseLogits, DenseAttention): the same loops over float32 K/V [T, kv_heads, D].
//
// References (codebook_attention_ref.cc), plain loops with double accumulation:
// DenseLogitsRef, DenseAttentionRef (dense attention on given K/V), and EagerAttentionRef
// (TurboQuant Decode of K and V, then DenseAttentionRef): what the fused path must equal.
//
// Errors (InvalidArgument, naming the problem): q not a finite float tensor [heads, D] on the CPU,
// heads not a positive multiple of kv_heads, K and V of other token or head counts, a head_dim
// other than the formats', K or V not of its format's layout (TurboQuant::Check), no tokens
// (attention only), or an unknown variant.
//
// Usage:
//   const float scale = 1.0f / std::sqrt(128.0f);
//   absl::StatusOr<torch::Tensor> out =
//       CodebookAttention(q, *tq, *k_codes, *tq, *v_codes, scale);      // q [32, 128]
//   absl::StatusOr<torch::Tensor> logits = CodebookLogits(q, *tq, *k_codes);  // [32, T]
//
// Tests: tools/bazel test //kernels/turboquant:codebook_attention_test
// Benchmark: tools/bazel run //kernels/turboquant:codebook_attention_benchmark --
//            --benchmark_min_time=0.1

#ifndef KVGATE_KERNELS_TURBOQUANT_CODEBOOK_ATTENTION_H_
#define KVGATE_KERNELS_TURBOQUANT_CODEBOOK_ATTENTION_H_

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::kernels {

inline constexpr int kCodebookAttentionDefaultVariant = 2;

// Unscaled logits <q_h, k_hat_t>, float32 [heads, T], from K's codes.
absl::StatusOr<torch::Tensor> CodebookLogits(const torch::Tensor& q, const TurboQuant& kq,
                                             const TurboQuantTensor& k,
                                             int variant = kCodebookAttentionDefaultVariant);

// softmax(scale * logits) V, float32 [heads, D], from K's and V's codes.
absl::StatusOr<torch::Tensor> CodebookAttention(const torch::Tensor& q, const TurboQuant& kq,
                                                const TurboQuantTensor& k, const TurboQuant& vq,
                                                const TurboQuantTensor& v, float scale,
                                                int variant = kCodebookAttentionDefaultVariant);

// The dense float32 baseline: k and v [T, kv_heads, D] float32; the loops of variant 2.
absl::StatusOr<torch::Tensor> DenseLogits(const torch::Tensor& q, const torch::Tensor& k);
absl::StatusOr<torch::Tensor> DenseAttention(const torch::Tensor& q, const torch::Tensor& k,
                                             const torch::Tensor& v, float scale);

// References: plain loops, double accumulation; k and v [T, kv_heads, D] of any float dtype.
absl::StatusOr<torch::Tensor> DenseLogitsRef(const torch::Tensor& q, const torch::Tensor& k);
absl::StatusOr<torch::Tensor> DenseAttentionRef(const torch::Tensor& q, const torch::Tensor& k,
                                                const torch::Tensor& v, float scale);
// Decode K and V (TurboQuant::Decode), then DenseAttentionRef.
absl::StatusOr<torch::Tensor> EagerAttentionRef(const torch::Tensor& q, const TurboQuant& kq,
                                                const TurboQuantTensor& k, const TurboQuant& vq,
                                                const TurboQuantTensor& v, float scale);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_TURBOQUANT_CODEBOOK_ATTENTION_H_
