// References for the fused attention (see codebook_attention.h): dense attention over given K/V
// in plain loops with double accumulation, and the eager path (TurboQuant Decode, then dense).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernels/turboquant/codebook_attention.h"

namespace kvgate::kernels {
namespace {

// q [heads, D], k [T, H, D] as float32 contiguous, or InvalidArgument.
absl::Status CheckShapes(const torch::Tensor& q, const torch::Tensor& k, const char* where) {
  if (!q.defined() || !k.defined() || q.dim() != 2 || k.dim() != 3 || q.size(1) != k.size(2) ||
      k.size(1) == 0 || q.size(0) % k.size(1) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": q must be [heads, D] and k [T, kv_heads, D] with heads a multiple of kv_heads"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<torch::Tensor> DenseLogitsRef(const torch::Tensor& q, const torch::Tensor& k) {
  if (absl::Status s = CheckShapes(q, k, "DenseLogitsRef"); !s.ok()) return s;
  const torch::Tensor qf = q.to(torch::kFloat32).contiguous();
  const torch::Tensor kf = k.to(torch::kFloat32).contiguous();
  const int64_t heads = qf.size(0), D = qf.size(1), T = kf.size(0), H = kf.size(1);
  const int64_t group = heads / H;
  torch::Tensor logits = torch::empty({heads, T}, torch::kFloat32);
  float* ls = logits.data_ptr<float>();
  const float* qs = qf.data_ptr<float>();
  const float* ks = kf.data_ptr<float>();
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t hk = h / group;  // query head h reads kv head h / (heads / kv_heads)
    for (int64_t t = 0; t < T; ++t) {
      double dot = 0.0;
      for (int64_t j = 0; j < D; ++j) {
        dot += static_cast<double>(qs[h * D + j]) * ks[(t * H + hk) * D + j];
      }
      ls[h * T + t] = static_cast<float>(dot);
    }
  }
  return logits;
}

absl::StatusOr<torch::Tensor> DenseAttentionRef(const torch::Tensor& q, const torch::Tensor& k,
                                                const torch::Tensor& v, float scale) {
  if (absl::Status s = CheckShapes(q, k, "DenseAttentionRef"); !s.ok()) return s;
  if (!v.defined() || v.sizes() != k.sizes() || k.size(0) == 0) {
    return absl::InvalidArgumentError("DenseAttentionRef: v must be non-empty and shaped like k");
  }
  const torch::Tensor qf = q.to(torch::kFloat32).contiguous();
  const torch::Tensor kf = k.to(torch::kFloat32).contiguous();
  const torch::Tensor vf = v.to(torch::kFloat32).contiguous();
  const int64_t heads = qf.size(0), D = qf.size(1), T = kf.size(0), H = kf.size(1);
  const int64_t group = heads / H;
  const float* qs = qf.data_ptr<float>();
  const float* ks = kf.data_ptr<float>();
  const float* vs = vf.data_ptr<float>();
  torch::Tensor out = torch::empty({heads, D}, torch::kFloat32);
  float* os = out.data_ptr<float>();
  std::vector<double> logits(T), acc(D);
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t hk = h / group;
    double max = -INFINITY;
    for (int64_t t = 0; t < T; ++t) {
      double dot = 0.0;
      for (int64_t j = 0; j < D; ++j) {
        dot += static_cast<double>(qs[h * D + j]) * ks[(t * H + hk) * D + j];
      }
      logits[t] = scale * dot;
      max = std::max(max, logits[t]);
    }
    double sum = 0.0;
    for (int64_t t = 0; t < T; ++t) {
      logits[t] = std::exp(logits[t] - max);
      sum += logits[t];
    }
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t t = 0; t < T; ++t) {
      const double p = logits[t] / sum;
      for (int64_t j = 0; j < D; ++j) acc[j] += p * vs[(t * H + hk) * D + j];
    }
    for (int64_t j = 0; j < D; ++j) os[h * D + j] = static_cast<float>(acc[j]);
  }
  return out;
}

absl::StatusOr<torch::Tensor> EagerAttentionRef(const torch::Tensor& q, const TurboQuant& kq,
                                                const TurboQuantTensor& k, const TurboQuant& vq,
                                                const TurboQuantTensor& v, float scale) {
  absl::StatusOr<torch::Tensor> k_hat = kq.Decode(k);
  if (!k_hat.ok()) return k_hat.status();
  absl::StatusOr<torch::Tensor> v_hat = vq.Decode(v);
  if (!v_hat.ok()) return v_hat.status();
  return DenseAttentionRef(q, *k_hat, *v_hat, scale);
}

}  // namespace kvgate::kernels
