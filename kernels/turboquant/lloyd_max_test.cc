// Tests of the Lloyd-Max sphere codebooks (lloyd_max.h): the quadrature against closed forms, the
// Lloyd-Max fixed point, the distortions against the Gaussian Lloyd-Max values and the paper's
// (arXiv 2504.19874) rounded ones, and errors.
//
// Run: tools/bazel test //kernels/turboquant:lloyd_max_test

#include "kernels/turboquant/lloyd_max.h"

#include <cmath>
#include <cstdio>
#include <tuple>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::kernels {
namespace {

using ::testing::HasSubstr;

constexpr double kPi = 3.14159265358979323846;

// Max (1960) / Lloyd: the b-bit Lloyd-Max distortions of N(0, 1), b = 1..4.
constexpr double kGaussianDistortion[5] = {1.0, 0.3634, 0.1175, 0.03454, 0.009497};
// The paper's quoted distortions for unit vectors, b = 1..4 (rounded).
constexpr double kPaperDistortion[5] = {1.0, 0.36, 0.117, 0.03, 0.009};

TEST(SphereMomentsTest, MassOneAndSecondMomentOneOverD) {
  for (int64_t d : {2, 3, 4, 5, 16, 64, 128, 1023, 4096}) {
    SCOPED_TRACE(d);
    double m[3];
    SphereCoordinateMoments(d, -1.0, 1.0, m);
    EXPECT_NEAR(m[0], 1.0, 1e-11);  // lgamma of the normalizer: ~1e-12 at d = 4096
    EXPECT_NEAR(m[1], 0.0, 1e-14);
    EXPECT_NEAR(m[2] * static_cast<double>(d), 1.0, 1e-11);  // E x^2 = 1/d
  }
}

TEST(SphereMomentsTest, MatchesTheClosedFormFirstMoment) {
  // int_a^b x f_d(x) dx = [(1-a^2)^((d-1)/2) - (1-b^2)^((d-1)/2)] / ((d-1) Z_d).
  for (int64_t d : {3, 4, 7, 128}) {
    const double dd = static_cast<double>(d);
    const double log_z = 0.5 * std::log(kPi) + std::lgamma((dd - 1) / 2) - std::lgamma(dd / 2);
    for (auto [a, b] : {std::pair{0.0, 0.1}, std::pair{0.05, 0.3}, std::pair{-0.5, 0.9}}) {
      double m[3];
      SphereCoordinateMoments(d, a, b, m);
      const double exact = (std::pow(1 - a * a, (dd - 1) / 2) - std::pow(1 - b * b, (dd - 1) / 2)) /
                           ((dd - 1) * std::exp(log_z));
      EXPECT_NEAR(m[1], exact, 1e-13 + 1e-11 * std::fabs(exact)) << d << " " << a << " " << b;
    }
  }
}

TEST(SphereCodebookTest, OneBitCentroidIsTheMeanAbsoluteCoordinate) {
  // E|x| = Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)).
  for (int64_t d : {2, 3, 16, 128, 1024}) {
    absl::StatusOr<SphereCodebook> cb = ComputeSphereCodebook(d, 1);
    ASSERT_TRUE(cb.ok()) << cb.status();
    const double dd = static_cast<double>(d);
    const double mean_abs =
        std::exp(std::lgamma(dd / 2) - std::lgamma((dd + 1) / 2)) / std::sqrt(kPi);
    EXPECT_NEAR(cb->centroids[1], mean_abs, 1e-12) << d;
    EXPECT_NEAR(cb->centroids[0], -mean_abs, 1e-12) << d;
    EXPECT_NEAR(cb->unit_vector_distortion(), 1.0 - dd * mean_abs * mean_abs, 1e-10) << d;
  }
}

TEST(SphereCodebookTest, DimensionThreeIsTheUniformQuantizer) {
  // In R^3 a coordinate is uniform on [-1, 1] (Archimedes): centroids at cell midpoints.
  for (int bits = 1; bits <= 4; ++bits) {
    absl::StatusOr<SphereCodebook> cb = ComputeSphereCodebook(3, bits);
    ASSERT_TRUE(cb.ok()) << cb.status();
    const int k = 1 << bits;
    for (int i = 0; i < k; ++i) EXPECT_NEAR(cb->centroids[i], -1.0 + (2.0 * i + 1) / k, 1e-12);
    const double width = 2.0 / k;
    EXPECT_NEAR(cb->coordinate_distortion, width * width / 12, 1e-12) << bits;
  }
}

TEST(SphereCodebookTest, IsALloydMaxFixedPoint) {
  for (int64_t d : {8, 64, 128}) {
    for (int bits = 1; bits <= 4; ++bits) {
      SCOPED_TRACE(testing::Message() << "d=" << d << " bits=" << bits);
      absl::StatusOr<SphereCodebook> cb = ComputeSphereCodebook(d, bits);
      ASSERT_TRUE(cb.ok()) << cb.status();
      const int k = 1 << bits;
      ASSERT_EQ(cb->centroids.size(), static_cast<size_t>(k));
      ASSERT_EQ(cb->boundaries.size(), static_cast<size_t>(k - 1));
      for (int i = 0; i < k; ++i) {
        EXPECT_DOUBLE_EQ(cb->centroids[i], -cb->centroids[k - 1 - i]);  // symmetric
        const double lo = i == 0 ? -1.0 : cb->boundaries[i - 1];
        const double hi = i == k - 1 ? 1.0 : cb->boundaries[i];
        EXPECT_LT(lo, cb->centroids[i]);
        EXPECT_LT(cb->centroids[i], hi);
        double m[3];
        SphereCoordinateMoments(d, lo, hi, m);
        EXPECT_NEAR(cb->centroids[i], m[1] / m[0], 1e-12 / std::sqrt(static_cast<double>(d)));
      }
      for (int i = 0; i + 1 < k; ++i) {
        EXPECT_NEAR(cb->boundaries[i], 0.5 * (cb->centroids[i] + cb->centroids[i + 1]), 1e-15);
      }
    }
  }
}

TEST(SphereCodebookTest, DistortionsAtDimension128MatchThePaper) {
  for (int bits = 1; bits <= 4; ++bits) {
    const SphereCodebook& cb = CachedSphereCodebook(128, bits);
    const double distortion = cb.unit_vector_distortion();
    std::printf(
        "d=128 b=%d: unit-vector MSE %.6f (Gaussian Lloyd-Max %.6f, paper ~%g), %d "
        "Lloyd iterations\n",
        bits, distortion, kGaussianDistortion[bits], kPaperDistortion[bits], cb.iterations);
    // A coordinate at d = 128 is slightly lighter-tailed than N(0, 1/d): a little below Gaussian.
    EXPECT_LT(distortion, kGaussianDistortion[bits]) << bits;
    EXPECT_GT(distortion, 0.97 * kGaussianDistortion[bits]) << bits;
    // The paper's values are rounded (0.0345 -> 0.03): within 15%.
    EXPECT_NEAR(distortion, kPaperDistortion[bits], 0.15 * kPaperDistortion[bits]) << bits;
  }
}

TEST(SphereCodebookTest, LargeDimensionApproachesTheGaussianQuantizer) {
  for (int bits = 1; bits <= 4; ++bits) {
    const SphereCodebook& cb = CachedSphereCodebook(1024, bits);
    EXPECT_NEAR(cb.unit_vector_distortion(), kGaussianDistortion[bits],
                0.005 * kGaussianDistortion[bits])
        << bits;
  }
  // 1.5104 / sqrt(d): the 2-bit Gaussian Lloyd-Max outer centroid, scaled.
  EXPECT_NEAR(CachedSphereCodebook(1024, 2).centroids[3] * 32.0, 1.5104, 0.005);
}

TEST(SphereCodebookTest, ZeroBitsIsTheMean) {
  const SphereCodebook& cb = CachedSphereCodebook(64, 0);
  ASSERT_EQ(cb.centroids.size(), 1u);
  EXPECT_EQ(cb.centroids[0], 0.0);
  EXPECT_TRUE(cb.boundaries.empty());
  EXPECT_NEAR(cb.unit_vector_distortion(), 1.0, 1e-11);
}

TEST(SphereCodebookTest, DensityIntegratesLikeTheMoments) {
  // Trapezoid on a fine grid of the density at d = 64 against the quadrature's mass of a cell.
  const int64_t d = 64;
  double trapezoid = 0.0;
  const int steps = 200000;
  const double a = -0.1, b = 0.2, h = (b - a) / steps;
  for (int i = 0; i <= steps; ++i) {
    const double w = (i == 0 || i == steps) ? 0.5 : 1.0;
    trapezoid += w * h * SphereCoordinateDensity(d, a + i * h);
  }
  double m[3];
  SphereCoordinateMoments(d, a, b, m);
  EXPECT_NEAR(trapezoid, m[0], 1e-9);
  EXPECT_EQ(SphereCoordinateDensity(d, 1.0), 0.0);
  EXPECT_EQ(SphereCoordinateDensity(d, -1.5), 0.0);
}

TEST(SphereCodebookTest, RejectsBadArguments) {
  EXPECT_THAT(ComputeSphereCodebook(1, 2).status().message(), HasSubstr("dimension 1"));
  EXPECT_THAT(ComputeSphereCodebook(128, 9).status().message(), HasSubstr("9 bits"));
  EXPECT_THAT(ComputeSphereCodebook(128, -1).status().message(), HasSubstr("-1 bits"));
  EXPECT_EQ(ComputeSphereCodebook(0, 2).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvgate::kernels
