#include "kernels/int4/int4_attention_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/int4/int4_attention_launch.h"

namespace kvgate::kernels {
namespace {

std::string Describe(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  return absl::StrCat(t.toString(), " ", std::string(c10::str(t.sizes())),
                      t.is_contiguous() ? "" : " (not contiguous)", " on ", t.device().str());
}

// `name` must be a contiguous tensor of `dtype` and exactly `sizes` on `device`.
absl::Status CheckTensor(const std::string& name, const torch::Tensor& t,
                         torch::ScalarType dtype, const std::vector<int64_t>& sizes,
                         const torch::Device& device) {
  if (!t.defined() || t.scalar_type() != dtype || t.sizes() != torch::IntArrayRef(sizes) ||
      !t.is_contiguous() || t.device() != device) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: ", name, " must be a contiguous ", c10::toString(dtype),
        " tensor of shape ", std::string(c10::str(torch::IntArrayRef(sizes))), " on ",
        device.str(), ", got ", Describe(t)));
  }
  return absl::OkStatus();
}

cuda::DecodeAttentionSplit PlanFor(const cuda::DecodeAttentionShape& shape,
                                   const torch::Device& device, int kernel) {
  const int sms = at::cuda::getDeviceProperties(device.index())->multiProcessorCount;
  return cuda::PlanInt4DecodeAttention(shape, sms, kernel);
}

// Kernel 0 is the best variant for the shape: kernel2 (tensor cores) for head_dim 128, measured
// faster than kernel1 at 32K and 128K for both schemes (run 10 of
// kernels/attention/CUDA_NOTES.md; at 8K affine kernel2 was 10% slower), else kernel1.
constexpr int kAutoKernelForHeadDim128 = 2;
int Resolve(int kernel, int64_t head_dim) {
  if (kernel != 0) return kernel;
  return head_dim == 128 ? kAutoKernelForHeadDim128 : 1;
}

cuda::Int4Operand OperandOf(const Int4Tensor& t) {
  cuda::Int4Operand operand;
  operand.codes = t.codes.data_ptr<uint8_t>();
  operand.scales = reinterpret_cast<const uint16_t*>(t.scales.data_ptr());
  if (t.scheme == Int4Scheme::kAffine) {
    operand.zeros = reinterpret_cast<const uint16_t*>(t.zeros.data_ptr());
  }
  return operand;
}

}  // namespace

absl::StatusOr<torch::Tensor> Int4DecodeAttentionCudaWorkspace(const torch::Tensor& q,
                                                               int64_t tokens, int64_t kv_heads,
                                                               int kernel) {
  if (!q.defined() || !q.is_cuda() || q.dim() != 2 || tokens < 1 || kv_heads < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention workspace: q must be a rank-2 CUDA tensor and tokens, kv_heads >= "
        "1; got q ",
        Describe(q), ", tokens ", tokens, ", kv_heads ", kv_heads));
  }
  const cuda::DecodeAttentionShape shape{static_cast<int>(q.size(0)), static_cast<int>(kv_heads),
                                         static_cast<int>(q.size(1)), tokens};
  const cuda::DecodeAttentionSplit split =
      PlanFor(shape, q.device(), Resolve(kernel, q.size(1)));
  return torch::empty({cuda::Int4DecodeAttentionWorkspaceFloats(shape, split)},
                      torch::dtype(torch::kFloat32).device(q.device()));
}

absl::Status Int4DecodeAttentionCudaInto(const torch::Tensor& q, const Int4Tensor& k,
                                         const Int4Tensor& v, torch::Tensor& out,
                                         torch::Tensor& workspace, double scale, int kernel) {
  if (!q.defined() || !q.is_cuda() || q.dim() != 2 || q.scalar_type() != torch::kBFloat16 ||
      !q.is_contiguous()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: q must be a contiguous bf16 CUDA tensor [heads, head_dim], got ",
        Describe(q)));
  }
  const torch::Device device = q.device();
  const int64_t heads = q.size(0), head_dim = q.size(1);
  if (k.scheme != v.scheme) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: k is ", std::string(Int4SchemeName(k.scheme)), " but v is ",
        std::string(Int4SchemeName(v.scheme)), " (one scheme for both)"));
  }
  if (!k.codes.defined() || k.codes.dim() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: k.codes must be uint8 [tokens, kv_heads, head_dim / 2], got ",
        Describe(k.codes)));
  }
  const bool affine = k.scheme == Int4Scheme::kAffine;
  const int64_t tokens = k.codes.size(0), kv_heads = k.codes.size(1);
  if (head_dim % kInt4BlockSize != 0 || k.codes.size(2) * 2 != head_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: k.codes ", std::string(c10::str(k.codes.sizes())),
        " does not hold head_dim ", head_dim, " of q (a multiple of ", kInt4BlockSize, ")"));
  }
  const std::vector<int64_t> codes_shape = {tokens, kv_heads, head_dim / 2};
  const std::vector<int64_t> params_shape = {tokens, kv_heads, head_dim / kInt4BlockSize};
  for (const auto& [name, operand] :
       {std::pair<std::string, const Int4Tensor*>{"k", &k}, {"v", &v}}) {
    if (absl::Status s = CheckTensor(name + ".codes", operand->codes, torch::kUInt8, codes_shape,
                                     device);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckTensor(name + ".scales", operand->scales, torch::kHalf,
                                     params_shape, device);
        !s.ok()) {
      return s;
    }
    if (affine) {
      if (absl::Status s = CheckTensor(name + ".zeros", operand->zeros, torch::kHalf,
                                       params_shape, device);
          !s.ok()) {
        return s;
      }
    } else if (operand->zeros.defined()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "int4 decode attention: ", name, ".zeros must be undefined for symmetric_int4, got ",
          Describe(operand->zeros)));
    }
  }
  if (absl::Status s = CheckTensor("out", out, torch::kBFloat16, {heads, head_dim}, device);
      !s.ok()) {
    return s;
  }
  if (tokens < 1 || kv_heads < 1 || heads % kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: q's ", heads, " heads over k.codes' ", kv_heads,
        " kv heads and ", tokens, " tokens: need tokens >= 1 and heads a multiple of kv_heads"));
  }
  kernel = Resolve(kernel, head_dim);
  if (kernel < 1 || kernel > 2 || (kernel == 2 && head_dim != 128)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: no kernel", kernel, " for head_dim ", head_dim,
        " (int4_decode_attention_kernel1: 64 or 128; kernel2: 128; 0 picks one)"));
  }
  const cuda::DecodeAttentionShape shape{static_cast<int>(heads), static_cast<int>(kv_heads),
                                         static_cast<int>(head_dim), tokens};
  const cuda::DecodeAttentionSplit split = PlanFor(shape, device, kernel);
  const int64_t needed = cuda::Int4DecodeAttentionWorkspaceFloats(shape, split);
  if (!workspace.defined() || workspace.scalar_type() != torch::kFloat32 ||
      workspace.device() != device || !workspace.is_contiguous() || workspace.numel() < needed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: workspace must be contiguous float32 of at least ", needed,
        " values on ", device.str(), " (see Int4DecodeAttentionCudaWorkspace), got ",
        Describe(workspace)));
  }
  const float softmax_scale =
      scale > 0.0 ? static_cast<float>(scale) : 1.0f / std::sqrt(static_cast<float>(head_dim));
  const c10::cuda::CUDAGuard guard(device);
  const cudaError_t status = cuda::LaunchInt4DecodeAttention(
      reinterpret_cast<const uint16_t*>(q.data_ptr()), OperandOf(k), OperandOf(v), affine,
      reinterpret_cast<uint16_t*>(out.data_ptr()), shape, split, softmax_scale,
      workspace.data_ptr<float>(), at::cuda::getCurrentCUDAStream(device.index()));
  if (status == cudaErrorInvalidValue) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: unsupported shape (head_dim ", head_dim, " must be 64 or 128; ",
        "heads / kv_heads = ", heads / kv_heads, " must be 1 to 8)"));
  }
  if (status != cudaSuccess) {
    return absl::InternalError(absl::StrCat("int4_decode_attention_kernel", kernel,
                                            " failed: ", cudaGetErrorString(status)));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> Int4DecodeAttentionCuda(const torch::Tensor& q, const Int4Tensor& k,
                                                      const Int4Tensor& v, double scale) {
  if (!k.codes.defined() || k.codes.dim() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int4 decode attention: k.codes must be uint8 [tokens, kv_heads, head_dim / 2], got ",
        Describe(k.codes)));
  }
  absl::StatusOr<torch::Tensor> workspace =
      Int4DecodeAttentionCudaWorkspace(q, k.codes.size(0), k.codes.size(1));
  if (!workspace.ok()) return workspace.status();
  torch::Tensor out = torch::empty_like(q);
  if (absl::Status s = Int4DecodeAttentionCudaInto(q, k, v, out, *workspace, scale); !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace kvgate::kernels
