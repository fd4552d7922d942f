// The tensor API of int4 K/V (see int4.h): checks tensors, lays out the outputs, and runs the
// scalar reference of int4_ref.cc on CPU tensors. A device kernel is dispatched from here.

#include "kernels/int4/int4.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kernels/common/tensor_checks.h"

namespace kvgate::kernels {
namespace {

// leading + [last]
std::vector<int64_t> WithLast(c10::IntArrayRef leading, int64_t last) {
  std::vector<int64_t> shape(leading.begin(), leading.end());
  shape.push_back(last);
  return shape;
}

}  // namespace

std::string_view Int4SchemeName(Int4Scheme scheme) {
  switch (scheme) {
    case Int4Scheme::kSymmetric:
      return "symmetric_int4";
    case Int4Scheme::kAffine:
      return "affine_int4";
  }
  return "unknown_int4";
}

std::vector<int64_t> Int4Tensor::shape() const {
  if (!codes.defined() || codes.dim() == 0) return {};
  std::vector<int64_t> shape(codes.sizes().begin(), codes.sizes().end());
  shape.back() *= 2;
  return shape;
}

int64_t Int4Tensor::bytes() const {
  int64_t bytes = 0;
  for (const torch::Tensor* t : {&codes, &scales, &zeros}) {
    if (t->defined()) bytes += t->numel() * static_cast<int64_t>(t->element_size());
  }
  return bytes;
}

absl::StatusOr<Int4Tensor> QuantizeInt4(const torch::Tensor& x, Int4Scheme scheme) {
  const std::string where =
      absl::StrFormat("QuantizeInt4(%s) of %s: ", Int4SchemeName(scheme), DescribeTensor(x));
  if (absl::Status s = CheckCpuFloatInput(x, where); !s.ok()) return s;
  if (x.dim() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "rank must be >= 1, with head_dim the last dimension"));
  }
  const int64_t d = x.size(-1);
  if (d <= 0 || d % kInt4BlockSize != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%slast dimension is %d, must be a positive multiple of %d", where, d, kInt4BlockSize));
  }

  // Row-major float32, so flat indices in messages are those of x's logical order.
  const torch::Tensor xf = x.to(torch::kFloat32).contiguous();
  const c10::IntArrayRef leading = x.sizes().slice(0, x.dim() - 1);
  Int4Tensor q;
  q.scheme = scheme;
  q.codes = torch::empty(WithLast(leading, d / 2), torch::kUInt8);
  q.scales = torch::empty(WithLast(leading, d / kInt4BlockSize), torch::kFloat16);
  if (scheme == Int4Scheme::kAffine) q.zeros = torch::empty_like(q.scales);

  absl::Status s = QuantizeInt4Ref(xf.data_ptr<float>(), xf.numel() / kInt4BlockSize, scheme,
                                   q.codes.data_ptr<uint8_t>(), q.scales.data_ptr<c10::Half>(),
                                   q.zeros.defined() ? q.zeros.data_ptr<c10::Half>() : nullptr);
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(where, s.message()));
  return q;
}

absl::StatusOr<torch::Tensor> DequantizeInt4(const Int4Tensor& q) {
  const std::string where = absl::StrFormat("DequantizeInt4(%s): ", Int4SchemeName(q.scheme));
  if (!q.codes.defined() || !q.codes.device().is_cpu() || q.codes.scalar_type() != torch::kUInt8 ||
      q.codes.dim() == 0 || q.codes.size(-1) <= 0 || q.codes.size(-1) % (kInt4BlockSize / 2) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%scodes must be uint8 [..., D/2] on cpu with D a positive multiple of %d, got %s", where,
        kInt4BlockSize, DescribeTensor(q.codes)));
  }
  const int64_t d = 2 * q.codes.size(-1);
  const c10::IntArrayRef leading = q.codes.sizes().slice(0, q.codes.dim() - 1);
  const std::vector<int64_t> scales_shape = WithLast(leading, d / kInt4BlockSize);
  if (absl::Status s = CheckCpuTensor("scales", q.scales, torch::kFloat16, scales_shape); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
  }
  if (q.scheme == Int4Scheme::kAffine) {
    if (absl::Status s = CheckCpuTensor("zeros", q.zeros, torch::kFloat16, scales_shape); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
    }
  } else if (q.zeros.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "zeros must be undefined (symmetric keeps no zero points), got ",
                     DescribeTensor(q.zeros)));
  }

  const torch::Tensor codes = q.codes.contiguous();
  const torch::Tensor scales = q.scales.contiguous();
  const torch::Tensor zeros = q.zeros.defined() ? q.zeros.contiguous() : torch::Tensor();
  torch::Tensor out = torch::empty(WithLast(leading, d), torch::kFloat32);
  DequantizeInt4Ref(codes.data_ptr<uint8_t>(), scales.data_ptr<c10::Half>(),
                    zeros.defined() ? zeros.data_ptr<c10::Half>() : nullptr,
                    out.numel() / kInt4BlockSize, q.scheme, out.data_ptr<float>());
  return out;
}

int64_t Int4BytesPerVector(int64_t head_dim, Int4Scheme scheme) {
  if (head_dim <= 0 || head_dim % kInt4BlockSize != 0) return 0;
  const int64_t blocks = head_dim / kInt4BlockSize;
  const int64_t fp16_per_block = scheme == Int4Scheme::kAffine ? 2 : 1;  // scale (+ zero point)
  return head_dim / 2 + blocks * fp16_per_block * 2;
}

double Int4BytesVsBf16(int64_t head_dim, Int4Scheme scheme) {
  const int64_t bytes = Int4BytesPerVector(head_dim, scheme);
  if (bytes == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(bytes) / (2.0 * static_cast<double>(head_dim));
}

}  // namespace kvgate::kernels
