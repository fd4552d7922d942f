// The plain float64 reference of decode attention (see attention.h): one head at a time, one
// token at a time, a max-subtracted softmax. Clear rather than fast; every other attention
// primitive is checked against it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/attention/attention.h"

namespace kvgate::kernels {

void DecodeAttentionRef(const double* q, const double* k, const double* v, int64_t heads,
                        int64_t kv_heads, int64_t tokens, int64_t head_dim, double scale,
                        const std::vector<std::vector<int64_t>>& rows, double* out, double* probs) {
  const int64_t group = heads / kv_heads;
  if (probs != nullptr) std::fill(probs, probs + heads * tokens, 0.0);
  std::vector<int64_t> all(tokens);
  for (int64_t t = 0; t < tokens; ++t) all[t] = t;
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / group;
    const std::vector<int64_t>& attended =
        rows.empty() ? all : rows[h * static_cast<int64_t>(rows.size()) / heads];
    const double* qh = q + h * head_dim;
    std::vector<double> logits(attended.size());
    double max = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < attended.size(); ++i) {
      const double* kt = k + (attended[i] * kv_heads + g) * head_dim;
      double dot = 0.0;
      for (int64_t d = 0; d < head_dim; ++d) dot += qh[d] * kt[d];
      logits[i] = scale * dot;
      max = std::max(max, logits[i]);
    }
    double sum = 0.0;
    for (double& logit : logits) {
      logit = std::exp(logit - max);
      sum += logit;
    }
    double* oh = out + h * head_dim;
    std::fill(oh, oh + head_dim, 0.0);
    for (size_t i = 0; i < attended.size(); ++i) {
      const double p = logits[i] / sum;
      if (probs != nullptr) probs[h * tokens + attended[i]] = p;
      const double* vt = v + (attended[i] * kv_heads + g) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) oh[d] += p * vt[d];
    }
  }
}

}  // namespace kvgate::kernels
