// The tensor API of KIVI-style K/V (see kivi.h): checks parameters and tensors, splits off the
// bf16 window of newest tokens and runs the scalar reference of kivi_ref.cc on the rest.

#include "kernels/kivi/kivi.h"

#include <algorithm>
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

const char* RoleName(KvRole role) { return role == KvRole::kKey ? "keys" : "values"; }

// InvalidArgument when [., H, D] cannot be encoded with these parameters.
absl::Status CheckHeadDim(int64_t head_dim, KvRole role, const KiviParams& params) {
  if (head_dim <= 0 || (head_dim * params.bits) % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "head_dim %d must be a positive multiple of %d to pack %d-bit codes into bytes", head_dim,
        8 / params.bits, params.bits));
  }
  if (role == KvRole::kValue && head_dim % params.group != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "values are grouped along head_dim: head_dim %d is not a multiple of group %d", head_dim,
        params.group));
  }
  return absl::OkStatus();
}

std::vector<int64_t> ScalesShape(int64_t quantized, int64_t heads, int64_t head_dim, KvRole role,
                                 int64_t group) {
  if (role == KvRole::kKey) return {quantized / group, heads, head_dim};
  return {quantized, heads, head_dim / group};
}

}  // namespace

std::string KiviParams::Name() const {
  return absl::StrCat("kivi:bits=", bits, ":group=", group, ":residual=", residual);
}

absl::Status KiviParams::Check() const {
  if (bits != 2 && bits != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("kivi: bits=", bits, " is not supported (2 or 4)"));
  }
  if (group < 1) return absl::InvalidArgumentError(absl::StrCat("kivi: group=", group, " < 1"));
  if (residual < 0) {
    return absl::InvalidArgumentError(absl::StrCat("kivi: residual=", residual, " < 0"));
  }
  return absl::OkStatus();
}

int64_t KiviQuantizedTokens(int64_t tokens, KvRole role, const KiviParams& params) {
  const int64_t old = std::max<int64_t>(tokens - params.residual, 0);
  return role == KvRole::kKey ? old / params.group * params.group : old;
}

std::vector<int64_t> KiviTensor::shape() const {
  if (!residual.defined() || residual.dim() != 3) return {};
  const int64_t quantized = codes.defined() && codes.dim() == 3 ? codes.size(0) : 0;
  return {quantized + residual.size(0), residual.size(1), residual.size(2)};
}

int64_t KiviTensor::bytes() const {
  int64_t bytes = 0;
  for (const torch::Tensor* t : {&codes, &scales, &zeros, &residual}) {
    if (t->defined()) bytes += t->numel() * static_cast<int64_t>(t->element_size());
  }
  return bytes;
}

absl::StatusOr<KiviTensor> QuantizeKivi(const torch::Tensor& x, KvRole role,
                                        const KiviParams& params) {
  const std::string where = absl::StrFormat("QuantizeKivi(%s, %s) of %s: ", params.Name(),
                                            RoleName(role), DescribeTensor(x));
  if (absl::Status s = params.Check(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
  }
  if (absl::Status s = CheckCpuFloatInput(x, where); !s.ok()) return s;
  if (x.dim() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "expected [tokens, kv_heads, head_dim], got rank ", x.dim()));
  }
  const int64_t tokens = x.size(0), heads = x.size(1), head_dim = x.size(2);
  if (absl::Status s = CheckHeadDim(head_dim, role, params); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
  }
  const torch::Tensor xf = x.to(torch::kFloat32).contiguous();
  const float* data = xf.data_ptr<float>();
  for (int64_t i = 0; i < xf.numel(); ++i) {
    if (!std::isfinite(data[i])) {
      const char* what = std::isnan(data[i]) ? "NaN" : (data[i] > 0 ? "+Inf" : "-Inf");
      return absl::InvalidArgumentError(absl::StrFormat(
          "%selement [%d, %d, %d] (flat %d) is %s: kivi takes finite values only", where,
          i / (heads * head_dim), (i / head_dim) % heads, i % head_dim, i, what));
    }
  }

  const int64_t quantized = KiviQuantizedTokens(tokens, role, params);
  KiviTensor q;
  q.role = role;
  q.params = params;
  q.codes = torch::empty({quantized, heads, head_dim * params.bits / 8}, torch::kUInt8);
  q.scales =
      torch::empty(ScalesShape(quantized, heads, head_dim, role, params.group), torch::kFloat16);
  q.zeros = torch::empty_like(q.scales);
  q.residual = xf.slice(0, quantized, tokens).to(torch::kBFloat16).contiguous();
  absl::Status s = QuantizeKiviRef(data, quantized, heads, head_dim, role, params.bits,
                                   params.group, q.codes.data_ptr<uint8_t>(),
                                   q.scales.data_ptr<c10::Half>(), q.zeros.data_ptr<c10::Half>());
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(where, s.message()));
  return q;
}

absl::StatusOr<torch::Tensor> DequantizeKivi(const KiviTensor& q) {
  const std::string where =
      absl::StrFormat("DequantizeKivi(%s, %s): ", q.params.Name(), RoleName(q.role));
  if (absl::Status s = q.params.Check(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
  }
  if (!q.residual.defined() || !q.residual.device().is_cpu() ||
      q.residual.scalar_type() != torch::kBFloat16 || q.residual.dim() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "residual must be BFloat16 [tokens, kv_heads, head_dim] on cpu, got ",
                     DescribeTensor(q.residual)));
  }
  const int64_t heads = q.residual.size(1), head_dim = q.residual.size(2);
  if (absl::Status s = CheckHeadDim(head_dim, q.role, q.params); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
  }
  if (!q.codes.defined() || q.codes.dim() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "codes must be Byte [quantized tokens, kv_heads, head_dim*bits/8], got ",
        DescribeTensor(q.codes)));
  }
  const int64_t quantized = q.codes.size(0);
  const int64_t tokens = quantized + q.residual.size(0);
  if (quantized != KiviQuantizedTokens(tokens, q.role, q.params)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s%d quantized and %d window tokens: %s of %d tokens quantize %d", where,
                        quantized, q.residual.size(0), RoleName(q.role), tokens,
                        KiviQuantizedTokens(tokens, q.role, q.params)));
  }
  if (absl::Status s = CheckCpuTensor("codes", q.codes, torch::kUInt8,
                                      {quantized, heads, head_dim * q.params.bits / 8});
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
  }
  const std::vector<int64_t> scales_shape =
      ScalesShape(quantized, heads, head_dim, q.role, q.params.group);
  for (auto [name, t] : {std::pair{"scales", &q.scales}, std::pair{"zeros", &q.zeros}}) {
    if (absl::Status s = CheckCpuTensor(name, *t, torch::kFloat16, scales_shape); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
    }
  }
  const torch::Tensor codes = q.codes.contiguous();
  const torch::Tensor scales = q.scales.contiguous();
  const torch::Tensor zeros = q.zeros.contiguous();
  torch::Tensor out = torch::empty({tokens, heads, head_dim}, torch::kFloat32);
  DequantizeKiviRef(codes.data_ptr<uint8_t>(), scales.data_ptr<c10::Half>(),
                    zeros.data_ptr<c10::Half>(), quantized, heads, head_dim, q.role, q.params.bits,
                    q.params.group, out.data_ptr<float>());
  out.slice(0, quantized, tokens).copy_(q.residual);
  return out;
}

int64_t KiviBytes(int64_t tokens, int64_t kv_heads, int64_t head_dim, KvRole role,
                  const KiviParams& params) {
  if (!params.Check().ok() || tokens < 0 || kv_heads < 0 ||
      !CheckHeadDim(head_dim, role, params).ok()) {
    return 0;
  }
  const int64_t quantized = KiviQuantizedTokens(tokens, role, params);
  const int64_t groups = role == KvRole::kKey ? (quantized / params.group) * kv_heads * head_dim
                                              : quantized * kv_heads * (head_dim / params.group);
  return quantized * kv_heads * head_dim * params.bits / 8 + 4 * groups +
         2 * (tokens - quantized) * kv_heads * head_dim;
}

}  // namespace kvgate::kernels
