#include "kernels/common/tensor_checks.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kvgate::kernels {

std::string DtypeName(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return "float32";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat16:
      return "float16";
    case torch::kUInt8:
      return "uint8";
    default:
      return c10::toString(dtype);
  }
}

std::string DescribeTensor(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  return absl::StrFormat("%s [%s] on %s", DtypeName(t.scalar_type()),
                         absl::StrJoin(t.sizes(), ", "), t.device().str());
}

absl::Status CheckCpuTensor(absl::string_view name, const torch::Tensor& t, torch::ScalarType dtype,
                            const std::vector<int64_t>& shape) {
  if (!t.defined() || !t.device().is_cpu() || t.scalar_type() != dtype ||
      t.sizes() != c10::IntArrayRef(shape)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s must be %s [%s] on cpu, got %s", name,
                                                      DtypeName(dtype), absl::StrJoin(shape, ", "),
                                                      DescribeTensor(t)));
  }
  return absl::OkStatus();
}

absl::Status CheckCpuFloatInput(const torch::Tensor& x, absl::string_view where) {
  if (!x.defined()) return absl::InvalidArgumentError(absl::StrCat(where, "x is undefined"));
  if (!x.device().is_cpu()) {
    return absl::InvalidArgumentError(absl::StrCat(where, "x must be a CPU tensor"));
  }
  const torch::ScalarType dtype = x.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "dtype must be float32, bfloat16 or float16"));
  }
  return absl::OkStatus();
}

}  // namespace kvgate::kernels
