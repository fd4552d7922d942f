// Tests of the seeded rotations (rotation.h): orthogonality, the fast path against the dense
// matrix, determinism by seed, the generator's moments, and errors.
//
// Run: tools/bazel test //kernels/turboquant:rotation_test

#include "kernels/turboquant/rotation.h"

#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::kernels {
namespace {

using ::testing::HasSubstr;

std::vector<float> RandomVector(int64_t d, uint64_t seed) {
  std::vector<float> x(d);
  for (int64_t i = 0; i < d; ++i) x[i] = static_cast<float>(SeededGaussian(seed, 99, i));
  return x;
}

// max |R R^T - I| in double.
double OrthogonalityError(const Rotation& r) {
  const int64_t d = r.dim();
  const std::vector<float>& m = r.matrix();
  double worst = 0.0;
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t k = 0; k < d; ++k) {
      double dot = 0.0;
      for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(m[i * d + j]) * m[k * d + j];
      worst = std::max(worst, std::fabs(dot - (i == k ? 1.0 : 0.0)));
    }
  }
  return worst;
}

class RotationTest : public ::testing::TestWithParam<std::tuple<RotationKind, int64_t>> {};

TEST_P(RotationTest, OrthogonalAndTheFastPathIsTheMatrix) {
  const auto [kind, d] = GetParam();
  absl::StatusOr<Rotation> r = Rotation::Make(kind, d, 7);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(OrthogonalityError(*r), 1e-6);
  for (uint64_t s = 0; s < 4; ++s) {
    const std::vector<float> x = RandomVector(d, s);
    std::vector<float> y(d), back(d);
    r->Apply(x.data(), y.data());
    r->ApplyTranspose(y.data(), back.data());
    double norm_x = 0, norm_y = 0;
    for (int64_t i = 0; i < d; ++i) {
      double ref = 0.0;
      for (int64_t j = 0; j < d; ++j) ref += static_cast<double>(r->matrix()[i * d + j]) * x[j];
      EXPECT_NEAR(y[i], ref, 2e-5) << i;
      EXPECT_NEAR(back[i], x[i], 2e-5) << i;
      norm_x += x[i] * x[i];
      norm_y += y[i] * y[i];
    }
    EXPECT_NEAR(norm_y, norm_x, 1e-4 * norm_x);
  }
}

INSTANTIATE_TEST_SUITE_P(KindsAndDims, RotationTest,
                         ::testing::Values(std::tuple{RotationKind::kHadamard, int64_t{2}},
                                           std::tuple{RotationKind::kHadamard, int64_t{64}},
                                           std::tuple{RotationKind::kHadamard, int64_t{128}},
                                           std::tuple{RotationKind::kDense, int64_t{1}},
                                           std::tuple{RotationKind::kDense, int64_t{96}},
                                           std::tuple{RotationKind::kDense, int64_t{128}}));

TEST(RotationSeedTest, SameSeedSameRotationOtherSeedAnother) {
  for (RotationKind kind : {RotationKind::kHadamard, RotationKind::kDense}) {
    const Rotation a = *Rotation::Make(kind, 64, 1);
    const Rotation b = *Rotation::Make(kind, 64, 1);
    const Rotation c = *Rotation::Make(kind, 64, 2);
    EXPECT_EQ(a.matrix(), b.matrix());
    EXPECT_NE(a.matrix(), c.matrix());
  }
}

TEST(RotationHadamardTest, TwoRoundsMakeABasisVectorGaussianLike) {
  // One round would map e_0 to +-1/sqrt(d) everywhere (kurtosis 1); after two rounds its
  // coordinates look like N(0, 1/d) (kurtosis about 3).
  const int64_t d = 1024;
  const Rotation r = *Rotation::Make(RotationKind::kHadamard, d, 11);
  std::vector<float> e(d, 0.0f), y(d);
  e[0] = 1.0f;
  r.Apply(e.data(), y.data());
  double m2 = 0, m4 = 0;
  for (float v : y) {
    m2 += v * v;
    m4 += static_cast<double>(v) * v * v * v;
  }
  m2 /= d;
  m4 /= d;
  EXPECT_NEAR(m2 * d, 1.0, 1e-5);
  EXPECT_NEAR(m4 / (m2 * m2), 3.0, 0.6);
}

TEST(FastWalshHadamardTest, TimesItselfIsDTimesTheIdentity) {
  std::vector<float> x = RandomVector(32, 5), y = x;
  FastWalshHadamard(y.data(), 32);
  FastWalshHadamard(y.data(), 32);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(y[i], 32 * x[i], 1e-4);
  std::vector<float> e(8, 0.0f);
  e[3] = 1.0f;  // column 3 of H: (-1)^popcount(i & 3)
  FastWalshHadamard(e.data(), 8);
  const float expected[8] = {1, -1, -1, 1, 1, -1, -1, 1};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(e[i], expected[i]) << i;
}

TEST(SeededGaussianTest, MomentsAndDeterminism) {
  const int n = 200000;
  double sum = 0, sum2 = 0, sum4 = 0;
  for (int i = 0; i < n; ++i) {
    const double g = SeededGaussian(3, kStreamQjl, i);
    sum += g;
    sum2 += g * g;
    sum4 += g * g * g * g;
  }
  EXPECT_NEAR(sum / n, 0.0, 4.0 / std::sqrt(n));
  EXPECT_NEAR(sum2 / n, 1.0, 4.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(sum4 / n, 3.0, 4.0 * std::sqrt(96.0 / n));
  EXPECT_EQ(SeededGaussian(3, kStreamQjl, 17), SeededGaussian(3, kStreamQjl, 17));
  EXPECT_NE(SeededGaussian(3, kStreamQjl, 17), SeededGaussian(4, kStreamQjl, 17));
  EXPECT_NE(SeededGaussian(3, kStreamQjl, 17), SeededGaussian(3, kStreamHaar, 17));
  const std::vector<float> m = GaussianMatrix(3, kStreamQjl, 4, 5);
  EXPECT_EQ(m[2 * 5 + 3], static_cast<float>(SeededGaussian(3, kStreamQjl, 13)));
}

TEST(RotationErrorTest, NamesTheProblem) {
  EXPECT_THAT(Rotation::Make(RotationKind::kHadamard, 96, 0).status().message(),
              HasSubstr("rotation=hadamard needs a power-of-two dimension >= 2, got 96"));
  EXPECT_THAT(Rotation::Make(RotationKind::kHadamard, 1, 0).status().message(),
              HasSubstr("power-of-two"));
  EXPECT_THAT(Rotation::Make(RotationKind::kDense, 0, 0).status().message(),
              HasSubstr("dimension 0 is not in [1, 1024]"));
  EXPECT_THAT(Rotation::Make(RotationKind::kDense, 2048, 0).status().message(),
              HasSubstr("dimension 2048"));
  EXPECT_EQ(RotationKindName(RotationKind::kHadamard), "hadamard");
  EXPECT_EQ(RotationKindName(RotationKind::kDense), "dense");
}

}  // namespace
}  // namespace kvgate::kernels
