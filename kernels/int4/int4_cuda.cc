#include "kernels/int4/int4_cuda.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "absl/strings/str_cat.h"
#include "kernels/int4/int4_launch.h"

namespace kvgate::kernels {

Int4Tensor Int4TensorTo(const Int4Tensor& q, const torch::Device& device) {
  Int4Tensor moved = q;
  moved.codes = q.codes.to(device);
  moved.scales = q.scales.to(device);
  if (q.zeros.defined()) moved.zeros = q.zeros.to(device);
  return moved;
}

absl::Status DequantizeInt4CudaInto(const Int4Tensor& q, torch::Tensor& out) {
  if (!q.codes.is_cuda()) return absl::InvalidArgumentError("Int4Tensor is not on a CUDA device");
  const bool affine = q.scheme == Int4Scheme::kAffine;
  const int64_t num_blocks = q.scales.numel();
  if (q.codes.scalar_type() != torch::kUInt8 || q.scales.scalar_type() != torch::kHalf ||
      q.codes.numel() != num_blocks * kInt4BlockSize / 2 || !q.codes.is_contiguous() ||
      !q.scales.is_contiguous() || q.scales.device() != q.codes.device()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Int4Tensor codes ", q.codes.toString(), " ", q.codes.numel(), " bytes and scales ",
        q.scales.toString(), " ", num_blocks, " blocks do not form contiguous blocks of ",
        kInt4BlockSize, " on one device"));
  }
  if (affine != q.zeros.defined() ||
      (affine && (q.zeros.numel() != num_blocks || q.zeros.scalar_type() != torch::kHalf ||
                  !q.zeros.is_contiguous() || q.zeros.device() != q.codes.device()))) {
    return absl::InvalidArgumentError("Int4Tensor zero points do not match its scheme and scales");
  }
  if (!out.defined() || out.scalar_type() != torch::kFloat32 || !out.is_contiguous() ||
      out.device() != q.codes.device() || out.numel() != num_blocks * kInt4BlockSize) {
    return absl::InvalidArgumentError(absl::StrCat("output must be contiguous float32 with ",
                                                   num_blocks * kInt4BlockSize, " values on ",
                                                   q.codes.device().str()));
  }
  const c10::cuda::CUDAGuard guard(q.codes.device());
  const cudaError_t status = cuda::LaunchDequantizeInt4(
      q.codes.data_ptr<uint8_t>(), reinterpret_cast<const uint16_t*>(q.scales.data_ptr()),
      affine ? reinterpret_cast<const uint16_t*>(q.zeros.data_ptr()) : nullptr,
      out.data_ptr<float>(), num_blocks, c10::cuda::getCurrentCUDAStream());
  if (status != cudaSuccess) {
    return absl::InternalError(
        absl::StrCat("dequantize_int4_kernel1 launch failed: ", cudaGetErrorString(status)));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> DequantizeInt4Cuda(const Int4Tensor& q) {
  torch::Tensor out = torch::empty(
      q.shape(), torch::TensorOptions().dtype(torch::kFloat32).device(q.codes.device()));
  if (absl::Status s = DequantizeInt4CudaInto(q, out); !s.ok()) return s;
  return out;
}

}  // namespace kvgate::kernels
