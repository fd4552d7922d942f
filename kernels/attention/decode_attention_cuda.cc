#include "kernels/attention/decode_attention_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/attention/decode_attention_launch.h"

namespace kvgate::kernels {
namespace {

std::string Describe(const torch::Tensor& t) {
  return absl::StrCat(t.toString(), " ", std::string(c10::str(t.sizes())), " on ",
                      t.device().str());
}

absl::Status CheckOperand(const char* name, const torch::Tensor& t, int64_t rank,
                          const torch::Device& device) {
  if (!t.defined() || t.dim() != rank || t.scalar_type() != torch::kBFloat16 ||
      !t.is_contiguous() || t.device() != device) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decode attention: ", name, " must be a contiguous bf16 tensor of rank ", rank, " on ",
        device.str(), ", got ", t.defined() ? Describe(t) : std::string("an undefined tensor")));
  }
  return absl::OkStatus();
}

cuda::DecodeAttentionShape ShapeOf(const torch::Tensor& q, const torch::Tensor& k) {
  return {static_cast<int>(q.size(0)), static_cast<int>(k.size(1)), static_cast<int>(q.size(1)),
          k.size(0)};
}

// Kernel 0: kernel3 (tensor cores) for head_dim 128, the fastest measured; kernel1 otherwise.
int Resolve(int kernel, int64_t head_dim) {
  if (kernel != 0) return kernel;
  return head_dim == 128 ? 3 : 1;
}

cuda::DecodeAttentionSplit PlanFor(const cuda::DecodeAttentionShape& shape,
                                   const torch::Device& device, int kernel) {
  const int sms = at::cuda::getDeviceProperties(device.index())->multiProcessorCount;
  return cuda::PlanDecodeAttention(shape, sms, kernel);
}

}  // namespace

absl::StatusOr<torch::Tensor> DecodeAttentionCudaWorkspace(const torch::Tensor& q,
                                                           const torch::Tensor& k, int kernel) {
  if (!q.is_cuda() || q.dim() != 2 || k.dim() != 3 || k.size(1) < 1 || k.size(0) < 1) {
    return absl::InvalidArgumentError(
        "decode attention workspace: q [heads, D] and k [T, H, D] on CUDA");
  }
  const cuda::DecodeAttentionShape shape = ShapeOf(q, k);
  const cuda::DecodeAttentionSplit split = PlanFor(shape, q.device(), Resolve(kernel, q.size(1)));
  return torch::empty({cuda::DecodeAttentionWorkspaceFloats(shape, split)},
                      torch::dtype(torch::kFloat32).device(q.device()));
}

absl::Status DecodeAttentionCudaInto(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, torch::Tensor& out,
                                     torch::Tensor& workspace, double scale, int kernel) {
  if (!q.defined() || !q.is_cuda()) {
    return absl::InvalidArgumentError("decode attention: q must be a CUDA tensor");
  }
  const torch::Device device = q.device();
  for (auto [name, t, rank] : {std::tuple<const char*, const torch::Tensor&, int64_t>{"q", q, 2},
                               {"k", k, 3},
                               {"v", v, 3},
                               {"out", out, 2}}) {
    if (absl::Status s = CheckOperand(name, t, rank, device); !s.ok()) return s;
  }
  if (k.sizes() != v.sizes() || k.size(2) != q.size(1) || out.sizes() != q.sizes() ||
      k.size(0) < 1 || k.size(1) < 1 || q.size(0) % k.size(1) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("decode attention: shapes q ", std::string(c10::str(q.sizes())), ", k ",
                     std::string(c10::str(k.sizes())), ", v ", std::string(c10::str(v.sizes())),
                     ", out ", std::string(c10::str(out.sizes())),
                     " do not form q [heads, D], k = v [tokens >= 1, kv_heads, D], heads a "
                     "multiple of kv_heads"));
  }
  const cuda::DecodeAttentionShape shape = ShapeOf(q, k);
  kernel = Resolve(kernel, q.size(1));
  if (kernel < 1 || kernel > 4 || (kernel == 3 && q.size(1) != 128)) {
    return absl::InvalidArgumentError(
        absl::StrCat("decode attention: no kernel", kernel, " for head_dim ", q.size(1),
                     " (kernel1, kernel2 and kernel4: 64 or 128; kernel3: 128)"));
  }
  const cuda::DecodeAttentionSplit split = PlanFor(shape, device, kernel);
  const int64_t needed = cuda::DecodeAttentionWorkspaceFloats(shape, split);
  if (!workspace.defined() || workspace.scalar_type() != torch::kFloat32 ||
      workspace.device() != device || !workspace.is_contiguous() || workspace.numel() < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat("decode attention: workspace must be contiguous float32 of at least ", needed,
                     " values on ", device.str(), " (see DecodeAttentionCudaWorkspace)"));
  }
  const float softmax_scale =
      scale > 0.0 ? static_cast<float>(scale) : 1.0f / std::sqrt(static_cast<float>(q.size(1)));
  const c10::cuda::CUDAGuard guard(device);
  const cudaError_t status = cuda::LaunchDecodeAttention(
      reinterpret_cast<const uint16_t*>(q.data_ptr()),
      reinterpret_cast<const uint16_t*>(k.data_ptr()),
      reinterpret_cast<const uint16_t*>(v.data_ptr()), reinterpret_cast<uint16_t*>(out.data_ptr()),
      shape, split, softmax_scale, workspace.data_ptr<float>(),
      at::cuda::getCurrentCUDAStream(device.index()));
  if (status == cudaErrorInvalidValue) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decode attention: unsupported shape (head_dim ", shape.head_dim, " must be 64 or 128; ",
        "heads / kv_heads = ", shape.heads / shape.kv_heads, " must be 1 to 8; tokens ",
        shape.tokens, " at most 4096 chunks of ", split.chunk, ")"));
  }
  if (status != cudaSuccess) {
    return absl::InternalError(
        absl::StrCat("decode_attention_kernel", kernel, " failed: ", cudaGetErrorString(status)));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> DecodeAttentionCuda(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v, double scale) {
  absl::StatusOr<torch::Tensor> workspace = DecodeAttentionCudaWorkspace(q, k);
  if (!workspace.ok()) return workspace.status();
  torch::Tensor out = torch::empty_like(q);
  if (absl::Status s = DecodeAttentionCudaInto(q, k, v, out, *workspace, scale); !s.ok()) return s;
  return out;
}

}  // namespace kvgate::kernels
