// Seeded rotations and Gaussian matrices (see rotation.h).

#include "kernels/turboquant/rotation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace kvgate::kernels {
namespace {

constexpr double kPi = 3.14159265358979323846;

uint64_t SplitMix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

bool IsPowerOfTwo(int64_t d) { return d > 0 && (d & (d - 1)) == 0; }

// The unnormalized fast Walsh-Hadamard transform in place, d a power of two: in float for the
// rotation itself (FastWalshHadamard), in double for materializing it.
template <typename T>
void Fwht(T* x, int64_t d) {
  for (int64_t len = 1; len < d; len <<= 1) {
    for (int64_t i = 0; i < d; i += 2 * len) {
      for (int64_t j = i; j < i + len; ++j) {
        const T a = x[j], b = x[j + len];
        x[j] = a + b;
        x[j + len] = a - b;
      }
    }
  }
}

// x <- (H D2 H D1) x / d in double: for materializing the Hadamard rotation.
void HadamardRotationDouble(const std::vector<float>& s1, const std::vector<float>& s2,
                            std::vector<double>& x) {
  const int64_t d = static_cast<int64_t>(x.size());
  for (int64_t i = 0; i < d; ++i) x[i] *= s1[i];
  Fwht(x.data(), d);
  for (int64_t i = 0; i < d; ++i) x[i] *= s2[i];
  Fwht(x.data(), d);
  for (int64_t i = 0; i < d; ++i) x[i] /= static_cast<double>(d);
}

}  // namespace

uint64_t SeededBits(uint64_t seed, uint64_t stream, uint64_t counter) {
  return SplitMix64(SplitMix64(seed ^ SplitMix64(stream)) + counter);
}

double SeededUniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  return (static_cast<double>(SeededBits(seed, stream, counter) >> 11) + 0.5) * 0x1.0p-53;
}

double SeededGaussian(uint64_t seed, uint64_t stream, uint64_t counter) {
  const double u1 = SeededUniform(seed, stream, 2 * counter);
  const double u2 = SeededUniform(seed, stream, 2 * counter + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

std::vector<float> GaussianMatrix(uint64_t seed, uint64_t stream, int64_t rows, int64_t cols) {
  std::vector<float> m(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) {
    m[i] = static_cast<float>(SeededGaussian(seed, stream, static_cast<uint64_t>(i)));
  }
  return m;
}

std::string_view RotationKindName(RotationKind kind) {
  return kind == RotationKind::kHadamard ? "hadamard" : "dense";
}

void FastWalshHadamard(float* x, int64_t d) { Fwht(x, d); }

absl::StatusOr<Rotation> Rotation::Make(RotationKind kind, int64_t dim, uint64_t seed) {
  if (dim < 1 || dim > kMaxRotationDim) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rotation: dimension %d is not in [1, %d]", dim, kMaxRotationDim));
  }
  if (kind == RotationKind::kHadamard && (!IsPowerOfTwo(dim) || dim < 2)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rotation=hadamard needs a power-of-two dimension >= 2, got %d (use rotation=dense, a "
        "Haar-random orthogonal matrix, for any dimension)",
        dim));
  }
  Rotation r;
  r.kind_ = kind;
  r.dim_ = dim;
  r.seed_ = seed;
  const int64_t d = dim;
  r.matrix_.resize(static_cast<size_t>(d * d));
  if (kind == RotationKind::kHadamard) {
    r.signs1_.resize(d);
    r.signs2_.resize(d);
    for (int64_t i = 0; i < d; ++i) {
      r.signs1_[i] = (SeededBits(seed, kStreamSigns1, i) >> 63) ? -1.0f : 1.0f;
      r.signs2_[i] = (SeededBits(seed, kStreamSigns2, i) >> 63) ? -1.0f : 1.0f;
    }
    std::vector<double> column(d);
    for (int64_t j = 0; j < d; ++j) {  // column j of R is R e_j
      std::fill(column.begin(), column.end(), 0.0);
      column[j] = 1.0;
      HadamardRotationDouble(r.signs1_, r.signs2_, column);
      for (int64_t i = 0; i < d; ++i) r.matrix_[i * d + j] = static_cast<float>(column[i]);
    }
  } else {
    // Columns of a Gaussian matrix, orthonormalized in order by modified Gram-Schmidt, twice.
    std::vector<std::vector<double>> q(d, std::vector<double>(d));
    for (int64_t j = 0; j < d; ++j) {
      for (int64_t i = 0; i < d; ++i) {
        q[j][i] = SeededGaussian(seed, kStreamHaar, static_cast<uint64_t>(i * d + j));
      }
    }
    for (int64_t j = 0; j < d; ++j) {
      for (int pass = 0; pass < 2; ++pass) {
        for (int64_t k = 0; k < j; ++k) {
          double dot = 0.0;
          for (int64_t i = 0; i < d; ++i) dot += q[k][i] * q[j][i];
          for (int64_t i = 0; i < d; ++i) q[j][i] -= dot * q[k][i];
        }
      }
      double norm = 0.0;
      for (int64_t i = 0; i < d; ++i) norm += q[j][i] * q[j][i];
      norm = std::sqrt(norm);
      for (int64_t i = 0; i < d; ++i) q[j][i] /= norm;
    }
    // R = Q^T: y_i = <q_i, x>; the rows of R are the orthonormal columns of Q.
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t j = 0; j < d; ++j) r.matrix_[i * d + j] = static_cast<float>(q[i][j]);
    }
  }
  return r;
}

void Rotation::Apply(const float* x, float* y) const {
  const int64_t d = dim_;
  if (kind_ == RotationKind::kHadamard) {
    for (int64_t i = 0; i < d; ++i) y[i] = x[i] * signs1_[i];
    FastWalshHadamard(y, d);
    for (int64_t i = 0; i < d; ++i) y[i] *= signs2_[i];
    FastWalshHadamard(y, d);
    const float inv = 1.0f / static_cast<float>(d);  // exact: d is a power of two
    for (int64_t i = 0; i < d; ++i) y[i] *= inv;
    return;
  }
  for (int64_t i = 0; i < d; ++i) {
    const float* row = matrix_.data() + i * d;
    float acc = 0.0f;
    for (int64_t j = 0; j < d; ++j) acc += row[j] * x[j];
    y[i] = acc;
  }
}

void Rotation::ApplyTranspose(const float* y, float* x) const {
  const int64_t d = dim_;
  if (kind_ == RotationKind::kHadamard) {
    // R^T = D1 H D2 H / d (H and D symmetric).
    for (int64_t i = 0; i < d; ++i) x[i] = y[i];
    FastWalshHadamard(x, d);
    for (int64_t i = 0; i < d; ++i) x[i] *= signs2_[i];
    FastWalshHadamard(x, d);
    const float inv = 1.0f / static_cast<float>(d);
    for (int64_t i = 0; i < d; ++i) x[i] *= signs1_[i] * inv;
    return;
  }
  for (int64_t j = 0; j < d; ++j) x[j] = 0.0f;
  for (int64_t i = 0; i < d; ++i) {
    const float* row = matrix_.data() + i * d;
    const float yi = y[i];
    for (int64_t j = 0; j < d; ++j) x[j] += row[j] * yi;
  }
}

}  // namespace kvgate::kernels
