// The tensor API of fp8 e4m3 and int8 K/V (see fp8_int8.h): checks tensors, lays out the outputs
// and runs the scalar reference of fp8_int8_ref.cc on CPU tensors. A device kernel is dispatched
// from here.

#include "kernels/fp8_int8/fp8_int8.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kernels/common/tensor_checks.h"

namespace kvgate::kernels {
namespace {

std::vector<int64_t> ScalesShape(int64_t tokens, int64_t heads, ScaleGranularity granularity) {
  if (granularity == ScaleGranularity::kToken) return {tokens, heads};
  return {heads};
}

}  // namespace

std::string Fp8Int8CodeName(Fp8Int8Code code) {
  return code == Fp8Int8Code::kFp8E4m3 ? "fp8_e4m3" : "int8";
}

std::string ScaleGranularityName(ScaleGranularity granularity) {
  return granularity == ScaleGranularity::kToken ? "token" : "head";
}

int64_t Fp8Int8Tensor::bytes() const {
  int64_t bytes = 0;
  for (const torch::Tensor* t : {&codes, &scales}) {
    if (t->defined()) bytes += t->numel() * static_cast<int64_t>(t->element_size());
  }
  return bytes;
}

absl::StatusOr<Fp8Int8Tensor> QuantizeFp8Int8(const torch::Tensor& x, Fp8Int8Code code,
                                              ScaleGranularity granularity) {
  const std::string where =
      absl::StrFormat("QuantizeFp8Int8(%s, scale=%s) of %s: ", Fp8Int8CodeName(code),
                      ScaleGranularityName(granularity), DescribeTensor(x));
  if (absl::Status s = CheckCpuFloatInput(x, where); !s.ok()) return s;
  if (x.dim() != 3 || x.size(2) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "expected [tokens, kv_heads, head_dim] with head_dim >= 1"));
  }
  const int64_t tokens = x.size(0), heads = x.size(1), head_dim = x.size(2);
  const torch::Tensor xf = x.to(torch::kFloat32).contiguous();
  const float* data = xf.data_ptr<float>();
  for (int64_t i = 0; i < xf.numel(); ++i) {
    if (!std::isfinite(data[i])) {
      const char* what = std::isnan(data[i]) ? "NaN" : (data[i] > 0 ? "+Inf" : "-Inf");
      return absl::InvalidArgumentError(
          absl::StrFormat("%selement [%d, %d, %d] (flat %d) is %s: %s takes finite values only",
                          where, i / (heads * head_dim), (i / head_dim) % heads, i % head_dim, i,
                          what, Fp8Int8CodeName(code)));
    }
  }

  Fp8Int8Tensor q;
  q.code = code;
  q.granularity = granularity;
  q.scales = torch::empty(ScalesShape(tokens, heads, granularity), torch::kFloat32);
  if (code == Fp8Int8Code::kFp8E4m3) {
    q.codes = torch::empty({tokens, heads, head_dim}, torch::kUInt8);
    QuantizeFp8E4m3Ref(data, tokens, heads, head_dim, granularity, q.codes.data_ptr<uint8_t>(),
                       q.scales.data_ptr<float>());
  } else {
    q.codes = torch::empty({tokens, heads, head_dim}, torch::kInt8);
    QuantizeInt8Ref(data, tokens, heads, head_dim, granularity, q.codes.data_ptr<int8_t>(),
                    q.scales.data_ptr<float>());
  }
  return q;
}

absl::StatusOr<torch::Tensor> DequantizeFp8Int8(const Fp8Int8Tensor& q) {
  const std::string where =
      absl::StrFormat("DequantizeFp8Int8(%s, scale=%s): ", Fp8Int8CodeName(q.code),
                      ScaleGranularityName(q.granularity));
  const torch::ScalarType code_dtype =
      q.code == Fp8Int8Code::kFp8E4m3 ? torch::kUInt8 : torch::kInt8;
  if (!q.codes.defined() || !q.codes.device().is_cpu() || q.codes.scalar_type() != code_dtype ||
      q.codes.dim() != 3 || q.codes.size(2) == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%scodes must be %s [tokens, kv_heads, head_dim] on cpu, got %s", where,
                        c10::toString(code_dtype), DescribeTensor(q.codes)));
  }
  const int64_t tokens = q.codes.size(0), heads = q.codes.size(1), head_dim = q.codes.size(2);
  const std::vector<int64_t> scales_shape = ScalesShape(tokens, heads, q.granularity);
  if (!q.scales.defined() || !q.scales.device().is_cpu() ||
      q.scales.scalar_type() != torch::kFloat32 ||
      q.scales.sizes() != c10::IntArrayRef(scales_shape)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%sscales must be float32 [%s] on cpu, got %s", where,
                        absl::StrJoin(scales_shape, ", "), DescribeTensor(q.scales)));
  }
  const torch::Tensor codes = q.codes.contiguous();
  const torch::Tensor scales = q.scales.contiguous();
  torch::Tensor out = torch::empty({tokens, heads, head_dim}, torch::kFloat32);
  if (q.code == Fp8Int8Code::kFp8E4m3) {
    DequantizeFp8E4m3Ref(codes.data_ptr<uint8_t>(), scales.data_ptr<float>(), tokens, heads,
                         head_dim, q.granularity, out.data_ptr<float>());
  } else {
    DequantizeInt8Ref(codes.data_ptr<int8_t>(), scales.data_ptr<float>(), tokens, heads, head_dim,
                      q.granularity, out.data_ptr<float>());
  }
  return out;
}

int64_t Fp8Int8Bytes(int64_t tokens, int64_t kv_heads, int64_t head_dim,
                     ScaleGranularity granularity) {
  if (tokens < 0 || kv_heads < 0 || head_dim <= 0) return 0;
  const int64_t scales = granularity == ScaleGranularity::kToken ? tokens * kv_heads : kv_heads;
  return tokens * kv_heads * head_dim + 4 * scales;
}

}  // namespace kvgate::kernels
