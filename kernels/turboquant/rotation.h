// Seeded random rotations and Gaussian sketches for TurboQuant (arXiv 2504.19874). Plain C++.
//
// Randomness is counter-based, so a value depends only on (seed, stream, index) and any device can
// recompute it: SeededBits = SplitMix64 of a mix of the three; uniforms take its top 53 bits
// (plus half an ulp, so never 0 or 1); Gaussians are Box-Muller (the cosine branch) on the
// uniforms of counters 2i and 2i+1. Bit-exact on one platform; libm's log/cos may differ in the
// last ulp elsewhere, so a CUDA port should copy the matrices from the host rather than regenerate.
//
// Rotations R (orthogonal d x d, y = R x):
//   kHadamard  R = (H D2 H D1) / d: two rounds of a random sign flip (D1, D2 diagonal +-1, streams
//              kStreamSigns1/2) and the Sylvester-Hadamard matrix H (H[i][j] = (-1)^popcount(i&j),
//              H H = d I). d must be a power of two (>= 2). The fast path is two in-place fast
//              Walsh-Hadamard transforms, O(d log d); the reference multiplies by the same matrix,
//              materialized (matrix()). One round would leave a basis vector's image with every
//              coordinate +-1/sqrt(d) (nothing like the Beta law the codebooks assume); after the
//              second, a coordinate is a sum of d random signs / d, close to N(0, 1/d).
//   kDense     R = a Haar-random orthogonal matrix: Q of the QR factorization (modified
//              Gram-Schmidt, twice, in double; the diagonal of R positive) of a d x d matrix of
//              seeded N(0, 1) entries. Any d >= 1; Apply is a dense O(d^2) product.
// The QJL sketch S (m x d, m = d here) has seeded N(0, 1) entries: GaussianMatrix(seed, ...).
//
// Usage:
//   absl::StatusOr<Rotation> r = Rotation::Make(RotationKind::kHadamard, 128, /*seed=*/7);
//   std::vector<float> y(128);
//   r->Apply(x.data(), y.data());           // y = R x
//   r->ApplyTranspose(y.data(), x.data());  // x = R^T y
//
// Tests: tools/bazel test //kernels/turboquant:rotation_test

#ifndef KVGATE_KERNELS_TURBOQUANT_ROTATION_H_
#define KVGATE_KERNELS_TURBOQUANT_ROTATION_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kvgate::kernels {

// Streams of the counter-based generator (distinct constants; the values are arbitrary).
inline constexpr uint64_t kStreamSigns1 = 0x5349474e53310001ULL;
inline constexpr uint64_t kStreamSigns2 = 0x5349474e53320002ULL;
inline constexpr uint64_t kStreamHaar = 0x4841415200000003ULL;
inline constexpr uint64_t kStreamQjl = 0x514a4c0000000004ULL;

// 64 well-mixed bits for (seed, stream, counter).
uint64_t SeededBits(uint64_t seed, uint64_t stream, uint64_t counter);
// Uniform in (0, 1).
double SeededUniform(uint64_t seed, uint64_t stream, uint64_t counter);
// N(0, 1).
double SeededGaussian(uint64_t seed, uint64_t stream, uint64_t counter);
// rows x cols row-major N(0, 1) entries; entry (i, j) is SeededGaussian(seed, stream, i*cols+j).
std::vector<float> GaussianMatrix(uint64_t seed, uint64_t stream, int64_t rows, int64_t cols);

enum class RotationKind { kHadamard, kDense };

// The largest dimension a Rotation takes (its dense matrix is kept: 4 MiB at 1024).
inline constexpr int64_t kMaxRotationDim = 1024;

// "hadamard" or "dense", the names specs use.
std::string_view RotationKindName(RotationKind kind);

// In-place unnormalized fast Walsh-Hadamard transform of x[0..d): x <- H x. d a power of two.
void FastWalshHadamard(float* x, int64_t d);

class Rotation {
 public:
  // InvalidArgument naming the problem: d < 1 (or d < 2 for kHadamard), d not a power of two for
  // kHadamard, or d > kMaxRotationDim.
  static absl::StatusOr<Rotation> Make(RotationKind kind, int64_t dim, uint64_t seed);

  RotationKind kind() const { return kind_; }
  int64_t dim() const { return dim_; }
  uint64_t seed() const { return seed_; }

  // y = R x (x and y of dim() floats, may not alias). The fast path: FWHT for kHadamard.
  void Apply(const float* x, float* y) const;
  // x = R^T y.
  void ApplyTranspose(const float* y, float* x) const;

  // R as a dense row-major dim x dim float32 matrix (R[i][j] = matrix()[i * dim + j]), computed in
  // double and rounded once; the reference paths multiply by it.
  const std::vector<float>& matrix() const { return matrix_; }

  // For kHadamard, the signs of D1 and D2 (+-1); empty for kDense.
  const std::vector<float>& signs1() const { return signs1_; }
  const std::vector<float>& signs2() const { return signs2_; }

  // An empty rotation (dim 0), for members assigned later.
  Rotation() = default;

 private:
  RotationKind kind_ = RotationKind::kHadamard;
  int64_t dim_ = 0;
  uint64_t seed_ = 0;
  std::vector<float> signs1_, signs2_;
  std::vector<float> matrix_;
};

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_TURBOQUANT_ROTATION_H_
