// Describing and checking tensors in error messages, shared by every kernel of kernels/ so that a
// bad input reads the same way whichever format or primitive refused it.
//
// Usage:
//   if (absl::Status s = CheckCpuTensor("scales", q.scales, torch::kHalf, {n, 4}); !s.ok()) return
//   s; return absl::InvalidArgumentError(absl::StrCat("x must be rank 3, got ",
//   DescribeTensor(x)));

#ifndef KVGATE_KERNELS_COMMON_TENSOR_CHECKS_H_
#define KVGATE_KERNELS_COMMON_TENSOR_CHECKS_H_

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kvgate::kernels {

// "float32", "bfloat16", "float16", "uint8", else LibTorch's name for the dtype.
std::string DtypeName(torch::ScalarType dtype);

// e.g. "float32 [5, 4, 128] on cpu", or "an undefined tensor".
std::string DescribeTensor(const torch::Tensor& t);

// InvalidArgument ("<name> must be <dtype> [<shape>] on cpu, got <what it is>") unless t is a
// defined CPU tensor of that dtype and shape.
absl::Status CheckCpuTensor(absl::string_view name, const torch::Tensor& t, torch::ScalarType dtype,
                            const std::vector<int64_t>& shape);

// InvalidArgument ("<where>x is undefined", "<where>x must be a CPU tensor", "<where>dtype must
// be float32, bfloat16 or float16") unless x is a defined CPU float tensor: the input check every
// KV format's quantizer starts with; `where` names the call and the tensor.
absl::Status CheckCpuFloatInput(const torch::Tensor& x, absl::string_view where);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_COMMON_TENSOR_CHECKS_H_
