// Lloyd-Max scalar codebooks for one coordinate of a uniformly random unit vector: the codebooks
// TurboQuant (arXiv 2504.19874) uses after its random rotation. Plain C++ (no LibTorch).
//
// In dimension d >= 2 one coordinate x of a uniform unit vector has the density
//
//   f_d(x) = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)) * (1 - x^2)^((d-3)/2),   -1 < x < 1,
//
// (so (x+1)/2 ~ Beta((d-1)/2, (d-1)/2); for large d, x ~ N(0, 1/d)). A b-bit codebook is the
// 2^b centroids c_0 < ... < c_{K-1} and K-1 boundaries t_k = (c_{k-1} + c_k)/2 minimizing
// E[(x - c(x))^2], where c(x) is the centroid of the cell x falls in. ComputeSphereCodebook finds
// them by Lloyd-Max iterations (centroid = conditional mean of its cell, boundary = midpoint) on
// that density, with every integral computed numerically: in the variable theta = asin(x) the
// measure f_d(x) dx is proportional to cos(theta)^(d-2) dtheta, smooth for every d >= 2, which
// composite 16-point Gauss-Legendre quadrature integrates to double precision. The codebook is
// symmetric (c_k = -c_{K-1-k}, the middle boundary is 0); only the positive half is iterated.
// Bits 0 gives the single centroid 0 (the mean), for TurboQuant_prod at one bit.
//
// The distortion of a unit vector quantized coordinate by coordinate after an orthogonal rotation
// is d * coordinate_distortion (unit_vector_distortion()); the paper quotes about 0.36, 0.117,
// 0.03, 0.009 for b = 1..4 (the Gaussian Lloyd-Max values 0.3634, 0.1175, 0.03454, 0.009497
// rounded), which these codebooks reproduce for d = 128 (see lloyd_max_test.cc).
//
// Usage:
//   absl::StatusOr<SphereCodebook> cb = ComputeSphereCodebook(/*dim=*/128, /*bits=*/3);
//   const SphereCodebook& same = CachedSphereCodebook(128, 3);  // computed once a process
//   double mse = cb->unit_vector_distortion();                  // ~0.0345
//
// Tests: tools/bazel test //kernels/turboquant:lloyd_max_test

#ifndef KVGATE_KERNELS_TURBOQUANT_LLOYD_MAX_H_
#define KVGATE_KERNELS_TURBOQUANT_LLOYD_MAX_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace kvgate::kernels {

// The most bits a codebook may have here (TurboQuant uses 1..4 and 0 for prod at one bit).
inline constexpr int kMaxSphereCodebookBits = 8;

struct SphereCodebook {
  int64_t dim = 0;
  int bits = 0;
  std::vector<double> centroids;     // 2^bits, ascending
  std::vector<double> boundaries;    // 2^bits - 1, ascending: boundaries[k] = (c_k + c_{k+1}) / 2
  double coordinate_distortion = 0;  // E[(x - c(x))^2] for one coordinate x ~ f_d
  int iterations = 0;                // Lloyd-Max iterations until the centroids stopped moving

  // E||u - u_hat||^2 for a uniform unit vector u in R^dim: dim * coordinate_distortion.
  double unit_vector_distortion() const { return static_cast<double>(dim) * coordinate_distortion; }
};

// The density f_d(x) above (0 outside (-1, 1)); dim >= 2.
double SphereCoordinateDensity(int64_t dim, double x);

// Integrals of g(x) f_d(x) dx over [a, b] (-1 <= a <= b <= 1) by the quadrature described above,
// for g = 1, x and x^2: mass[0..2]. Exposed for tests.
void SphereCoordinateMoments(int64_t dim, double a, double b, double moments[3]);

// The b-bit Lloyd-Max codebook for f_d. InvalidArgument unless 2 <= dim <= 65536 and
// 0 <= bits <= kMaxSphereCodebookBits.
absl::StatusOr<SphereCodebook> ComputeSphereCodebook(int64_t dim, int bits);

// ComputeSphereCodebook, computed once per (dim, bits) in a process and kept (thread-safe).
// The arguments must be valid (checked: an invalid pair aborts with the error message).
const SphereCodebook& CachedSphereCodebook(int64_t dim, int bits);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_TURBOQUANT_LLOYD_MAX_H_
