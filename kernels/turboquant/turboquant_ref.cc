// The plain reference of TurboQuant (see turboquant.h for the format): one vector at a time, the
// rotation as a dense matrix product accumulated in double, the QJL sketch likewise, codes found by
// counting boundaries. Clear rather than fast; the fast path and any device kernel are checked
// against it.

#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::kernels {
namespace {

// fp16(value), or OutOfRange naming vector v when it overflows.
absl::Status ToHalf(float value, const char* what, int64_t v, c10::Half* out) {
  const c10::Half h(value);
  if (std::isinf(static_cast<float>(h))) {
    return absl::OutOfRangeError(
        absl::StrFormat("vector %d: %s = %g is beyond fp16 range (<= 65504)", v, what, value));
  }
  *out = h;
  return absl::OkStatus();
}

// ||x|| accumulated in double, rounded to float.
float Norm(const float* x, int64_t d) {
  double sum = 0.0;
  for (int64_t j = 0; j < d; ++j) sum += static_cast<double>(x[j]) * x[j];
  return static_cast<float>(std::sqrt(sum));
}

}  // namespace

absl::Status TurboQuantCodec::EncodeRef(const float* x, int64_t n, uint8_t* codes, c10::Half* norms,
                                        uint8_t* qjl, c10::Half* residual_norms) const {
  const int64_t d = dim_;
  const int64_t m = sketch_dim();
  const std::vector<float>& r_matrix = rotation_.matrix();
  std::vector<float> u(d), y(d), x_mse(d), residual(d);
  std::vector<uint8_t> code(d);
  std::vector<uint8_t> signs(m);
  for (int64_t v = 0; v < n; ++v) {
    const float* xv = x + v * d;
    std::fill(x_mse.begin(), x_mse.end(), 0.0f);
    if (mse_bits_ > 0) {
      const float norm = Norm(xv, d);
      if (absl::Status s = ToHalf(norm, "norm ||x||", v, &norms[v]); !s.ok()) return s;
      for (int64_t j = 0; j < d; ++j) u[j] = norm > 0.0f ? xv[j] / norm : 0.0f;
      for (int64_t i = 0; i < d; ++i) {  // y = R u
        double acc = 0.0;
        for (int64_t j = 0; j < d; ++j) acc += static_cast<double>(r_matrix[i * d + j]) * u[j];
        y[i] = static_cast<float>(acc);
      }
      for (int64_t i = 0; i < d; ++i) {
        int c = 0;
        for (float t : boundaries_) c += y[i] > t ? 1 : 0;
        code[i] = static_cast<uint8_t>(c);
      }
      PackCodes(code.data(), d, mse_bits_, codes + v * code_bytes());
      // x_mse = nu * R^T c[code], with the stored norm, exactly as DecodeRef computes it.
      const float nu = static_cast<float>(norms[v]);
      for (int64_t j = 0; j < d; ++j) {
        double acc = 0.0;
        for (int64_t i = 0; i < d; ++i) {
          acc += static_cast<double>(r_matrix[i * d + j]) * centroids_[code[i]];
        }
        x_mse[j] = nu * static_cast<float>(acc);
      }
    }
    if (kind_ == TurboQuantKind::kProd) {
      for (int64_t j = 0; j < d; ++j) residual[j] = xv[j] - x_mse[j];
      const float rho = Norm(residual.data(), d);
      if (absl::Status s = ToHalf(rho, "residual norm ||r||", v, &residual_norms[v]); !s.ok()) {
        return s;
      }
      for (int64_t i = 0; i < m; ++i) {  // s = sign(S r)
        double acc = 0.0;
        for (int64_t j = 0; j < d; ++j)
          acc += static_cast<double>(sketch_[i * d + j]) * residual[j];
        signs[i] = acc >= 0.0 ? 1 : 0;
      }
      PackCodes(signs.data(), m, 1, qjl + v * qjl_bytes());
    }
  }
  return absl::OkStatus();
}

void TurboQuantCodec::DecodeRef(const uint8_t* codes, const c10::Half* norms, const uint8_t* qjl,
                                const c10::Half* residual_norms, int64_t n, float* out) const {
  const int64_t d = dim_;
  const int64_t m = sketch_dim();
  const std::vector<float>& r_matrix = rotation_.matrix();
  std::vector<uint8_t> code(d), signs(m);
  for (int64_t v = 0; v < n; ++v) {
    float* ov = out + v * d;
    for (int64_t j = 0; j < d; ++j) ov[j] = 0.0f;
    if (mse_bits_ > 0) {
      UnpackCodes(codes + v * code_bytes(), d, mse_bits_, code.data());
      const float nu = static_cast<float>(norms[v]);
      for (int64_t j = 0; j < d; ++j) {
        double acc = 0.0;
        for (int64_t i = 0; i < d; ++i) {
          acc += static_cast<double>(r_matrix[i * d + j]) * centroids_[code[i]];
        }
        ov[j] = nu * static_cast<float>(acc);
      }
    }
    if (kind_ == TurboQuantKind::kProd) {
      UnpackCodes(qjl + v * qjl_bytes(), m, 1, signs.data());
      const float scale = static_cast<float>(residual_norms[v]) * qjl_scale_;
      for (int64_t j = 0; j < d; ++j) {  // S^T s
        double acc = 0.0;
        for (int64_t i = 0; i < m; ++i) {
          acc += (signs[i] ? 1.0 : -1.0) * static_cast<double>(sketch_[i * d + j]);
        }
        ov[j] += scale * static_cast<float>(acc);
      }
    }
  }
}

}  // namespace kvgate::kernels
