// TurboQuant fused codebook logits and attention on CUDA for LibTorch tensors: the kernels of
// codebook_attention.cu (codebook_attention_launch.h: format, variant, method) behind the
// TurboQuantTensor interface of turboquant.h, checked against codebook_attention.h's CPU path.
//
// Scope: one group (no outlier split, no exact cleanup), head_dim 128, any rotation (the dense
// matrix is copied from the host), query groups (heads / kv_heads) 1..8; keys kMse (bits 1..4) or
// kProd (bits 1..4, with the QJL residual); values kMse (bits 1..4). The query is bf16; sums are
// float32 (the mma takes fp16 codebook values and an fp16 query scaled to max |.| = 1).
//
// Usage:
//   absl::StatusOr<CodebookCudaFormat> kf = CodebookCudaFormat::Make(*tq, torch::kCUDA);
//   absl::StatusOr<TurboQuantTensor> k = TurboQuantTensorToCuda(*k_cpu, torch::kCUDA);
//   absl::StatusOr<torch::Tensor> logits = CodebookLogitsCuda(q, *kf, *k);   // float32 [28, T]
//   absl::StatusOr<torch::Tensor> out = CodebookAttentionCuda(q, *kf, *k, *vf, *v);  // bf16 [28, 128]
//
// For CUDA graphs and timing, the ...Into forms write caller-owned out and workspace
// (CodebookCudaWorkspace) and allocate nothing; `tokens` (default: all rows of k) lets a
// preallocated cache of more rows be attended up to its current length. A workspace made for T
// tokens serves any tokens <= T. CodebookAttentionCudaInto was checked under CUDA graph capture
// and replay (codebook_attention_cuda_test, H100). This API is stable: later kernels change
// behind it.
//
// Errors: InvalidArgument naming the tensor ("q", "k.codes", "v.norms", "out", "workspace", ...)
// on a dtype, shape, device, layout or format mismatch; Internal on a launch failure.

#ifndef KVGATE_KERNELS_TURBOQUANT_CODEBOOK_ATTENTION_CUDA_H_
#define KVGATE_KERNELS_TURBOQUANT_CODEBOOK_ATTENTION_CUDA_H_

#include <torch/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::kernels {

// The device constants of one TurboQuant format: made once, before any graph capture.
struct CodebookCudaFormat {
  std::string name;  // TurboQuant::name(); a TurboQuantTensor must carry the same format
  int mse_bits = 0;
  bool prod = false;
  float qjl_scale = 0.0f;
  torch::Tensor rotation;    // float32 [128, 128], R
  torch::Tensor rotation_t;  // float32 [128, 128], R^T
  torch::Tensor sketch_t;    // float32 [128, 128], S^T (kProd; else undefined)
  torch::Tensor signs;       // float32 [2, 128], D1 and D2 of rotation=hadamard; else undefined
  torch::Tensor pair_table;  // int32 [2^(2 mse_bits)]: fp16 pairs (c[f & mask], c[f >> bits])

  // InvalidArgument for the outlier split or a head_dim other than 128.
  static absl::StatusOr<CodebookCudaFormat> Make(const TurboQuant& tq, const torch::Device& device);
};

// t with every tensor copied to `device` (contiguous). InvalidArgument for exact cleanup tensors.
absl::StatusOr<TurboQuantTensor> TurboQuantTensorToCuda(const TurboQuantTensor& t,
                                                        const torch::Device& device);

// A float32 workspace on q's device for logits and attention of up to `tokens` tokens.
absl::StatusOr<torch::Tensor> CodebookCudaWorkspace(const torch::Tensor& q, int64_t kv_heads,
                                                    int64_t tokens);

// Unscaled logits <q_h, k_hat_t> into out [heads, tokens] (float32 or bf16), q bf16 [heads, 128].
absl::Status CodebookLogitsCudaInto(const torch::Tensor& q, const CodebookCudaFormat& k_format,
                                    const TurboQuantTensor& k, torch::Tensor& out,
                                    torch::Tensor& workspace, int64_t tokens = -1);
absl::StatusOr<torch::Tensor> CodebookLogitsCuda(const torch::Tensor& q,
                                                 const CodebookCudaFormat& k_format,
                                                 const TurboQuantTensor& k);

// softmax(scale q k_hat^T) v_hat into out [heads, 128] (float32 or bf16). scale <= 0 means
// 1/sqrt(128).
absl::Status CodebookAttentionCudaInto(const torch::Tensor& q, const CodebookCudaFormat& k_format,
                                       const TurboQuantTensor& k,
                                       const CodebookCudaFormat& v_format,
                                       const TurboQuantTensor& v, torch::Tensor& out,
                                       torch::Tensor& workspace, double scale = 0.0,
                                       int64_t tokens = -1);
absl::StatusOr<torch::Tensor> CodebookAttentionCuda(const torch::Tensor& q,
                                                    const CodebookCudaFormat& k_format,
                                                    const TurboQuantTensor& k,
                                                    const CodebookCudaFormat& v_format,
                                                    const TurboQuantTensor& v, double scale = 0.0);

// The dense baseline of the logits benchmark: q bf16 [heads, 128], k bf16 [T, kv_heads, 128], out
// [heads, T] float32 or bf16 (dense_logits_kernel1).
absl::Status DenseLogitsCudaInto(const torch::Tensor& q, const torch::Tensor& k,
                                 torch::Tensor& out);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_TURBOQUANT_CODEBOOK_ATTENTION_CUDA_H_
