#include "kernels/attention/selected_attention_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/attention/selected_attention_launch.h"

namespace kvgate::kernels {
namespace {

constexpr char kWhere[] = "selected attention (CUDA): ";

std::string Describe(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  return absl::StrCat(t.toString(), " ", std::string(c10::str(t.sizes())), " on ",
                      t.device().str(), t.is_contiguous() ? "" : " (not contiguous)");
}

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(kWhere, what));
}

absl::Status CheckBf16(const char* name, const torch::Tensor& t, int64_t rank,
                       const torch::Device& device) {
  if (!t.defined() || t.dim() != rank || t.scalar_type() != torch::kBFloat16 ||
      !t.is_contiguous() || t.device() != device || t.size(rank - 1) != 128 ||
      reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 != 0) {
    return Bad(absl::StrCat(name, " must be a contiguous 16-byte aligned bf16 tensor of rank ",
                            rank, " ending in 128 on ", device.str(), ", got ", Describe(t)));
  }
  return absl::OkStatus();
}

int Multiprocessors(const torch::Device& device) {
  return at::cuda::getDeviceProperties(device.index())->multiProcessorCount;
}

}  // namespace

absl::StatusOr<torch::Tensor> SelectedAttentionCudaWorkspace(const torch::Tensor& q,
                                                             int64_t kv_heads, int64_t blocks,
                                                             int64_t block_size) {
  if (!q.defined() || !q.is_cuda() || q.dim() != 2 || kv_heads < 1 || blocks < 1 ||
      block_size < 1) {
    return Bad("workspace: q [heads, 128] on CUDA, kv_heads, blocks and block_size >= 1");
  }
  cuda::SelectedAttentionShape shape;
  shape.heads = static_cast<int>(q.size(0));
  shape.kv_heads = static_cast<int>(kv_heads);
  shape.blocks = blocks;
  shape.block_size = static_cast<int>(block_size);
  return torch::empty({cuda::SelectedAttentionWorkspaceFloats(shape, Multiprocessors(q.device()))},
                      torch::dtype(torch::kFloat32).device(q.device()));
}

absl::Status SelectedAttentionCudaInto(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const torch::Tensor& block_ids,
                                       int64_t block_size, torch::Tensor& out,
                                       torch::Tensor& workspace, double scale, int64_t tokens) {
  if (!q.defined() || !q.is_cuda()) return Bad("q must be a CUDA tensor, got " + Describe(q));
  const torch::Device device = q.device();
  if (absl::Status s = CheckBf16("q", q, 2, device); !s.ok()) return s;
  if (absl::Status s = CheckBf16("k", k, 3, device); !s.ok()) return s;
  if (absl::Status s = CheckBf16("v", v, 3, device); !s.ok()) return s;
  if (v.sizes() != k.sizes() || k.size(0) < 1 || k.size(1) < 1) {
    return Bad(absl::StrCat("v ", std::string(c10::str(v.sizes())), " must have k's shape ",
                            std::string(c10::str(k.sizes())), " [rows >= 1, kv_heads, 128]"));
  }
  const int64_t kv_heads = k.size(1), heads = q.size(0);
  if (heads < 1 || heads % kv_heads != 0 || heads / kv_heads > 8) {
    return Bad(absl::StrCat("q's heads (", heads, ") must be 1..8 times k's kv_heads (", kv_heads,
                            ")"));
  }
  if (!block_ids.defined() || block_ids.scalar_type() != torch::kInt32 ||
      block_ids.device() != device || !block_ids.is_contiguous() ||
      (block_ids.dim() != 1 && block_ids.dim() != 2) ||
      (block_ids.dim() == 2 && block_ids.size(0) != 1 && block_ids.size(0) != kv_heads) ||
      block_ids.size(-1) < 1) {
    return Bad(absl::StrCat("block_ids must be a contiguous int32 tensor [n >= 1] or [1 or "
                            "kv_heads (",
                            kv_heads, "), n] on ", device.str(), ", got ", Describe(block_ids)));
  }
  if (block_size < 1) return Bad(absl::StrCat("block_size (", block_size, ") must be >= 1"));
  const int64_t t = tokens < 0 ? k.size(0) : tokens;
  if (t < 1 || t > k.size(0)) {
    return Bad(absl::StrCat("tokens (", tokens, ") must be in [1, ", k.size(0), "], k's rows"));
  }
  if (!out.defined() ||
      (out.scalar_type() != torch::kBFloat16 && out.scalar_type() != torch::kFloat32) ||
      out.sizes() != q.sizes() || !out.is_contiguous() || out.device() != device) {
    return Bad(absl::StrCat("out must be a contiguous bf16 or float32 tensor ",
                            std::string(c10::str(q.sizes())), " on ", device.str(), ", got ",
                            Describe(out)));
  }
  cuda::SelectedAttentionShape shape;
  shape.heads = static_cast<int>(heads);
  shape.kv_heads = static_cast<int>(kv_heads);
  shape.tokens = t;
  shape.block_size = static_cast<int>(block_size);
  shape.id_rows = block_ids.dim() == 2 ? static_cast<int>(block_ids.size(0)) : 1;
  shape.blocks = block_ids.size(-1);
  const int sms = Multiprocessors(device);
  const int64_t needed = cuda::SelectedAttentionWorkspaceFloats(shape, sms);
  if (!workspace.defined() || workspace.scalar_type() != torch::kFloat32 ||
      !workspace.is_contiguous() || workspace.device() != device || workspace.numel() < needed) {
    return Bad(absl::StrCat("workspace must be contiguous float32 of at least ", needed,
                            " values on ", device.str(),
                            " (SelectedAttentionCudaWorkspace), got ", Describe(workspace)));
  }
  const float softmax_scale = scale > 0.0 ? static_cast<float>(scale) : 1.0f / std::sqrt(128.0f);
  const c10::cuda::CUDAGuard guard(device);
  const cudaError_t status = cuda::LaunchSelectedAttention(
      reinterpret_cast<const uint16_t*>(q.data_ptr()),
      reinterpret_cast<const uint16_t*>(k.data_ptr()),
      reinterpret_cast<const uint16_t*>(v.data_ptr()), block_ids.data_ptr<int32_t>(), shape,
      softmax_scale, out.data_ptr(), out.scalar_type() == torch::kBFloat16,
      workspace.data_ptr<float>(), sms, at::cuda::getCurrentCUDAStream(device.index()));
  if (status == cudaErrorInvalidValue) return Bad("unsupported shape");
  if (status != cudaSuccess) {
    return absl::InternalError(
        absl::StrCat(kWhere, "selected_attention_kernel1 failed: ", cudaGetErrorString(status)));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> SelectedAttentionCuda(const torch::Tensor& q, const torch::Tensor& k,
                                                    const torch::Tensor& v,
                                                    const torch::Tensor& block_ids,
                                                    int64_t block_size, double scale) {
  if (!k.defined() || k.dim() != 3 || !block_ids.defined() || block_ids.dim() < 1) {
    return Bad("k must be [rows, kv_heads, 128] and block_ids [n] or [rows, n]");
  }
  absl::StatusOr<torch::Tensor> workspace =
      SelectedAttentionCudaWorkspace(q, k.size(1), block_ids.size(-1), block_size);
  if (!workspace.ok()) return workspace.status();
  torch::Tensor out = torch::empty_like(q);
  if (absl::Status s = SelectedAttentionCudaInto(q, k, v, block_ids, block_size, out, *workspace,
                                                 scale);
      !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace kvgate::kernels
