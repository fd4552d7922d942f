// Lloyd-Max codebooks for a unit vector's coordinate (see lloyd_max.h): quadrature in
// theta = asin(x), where f_d(x) dx = cos(theta)^(d-2) dtheta / Z_d, Z_d = sqrt(pi)
// Gamma((d-1)/2) / Gamma(d/2).

#include "kernels/turboquant/lloyd_max.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace kvgate::kernels {
namespace {

constexpr int kGaussPoints = 16;
constexpr double kPi = 3.14159265358979323846;

struct GaussLegendre {
  std::array<double, kGaussPoints> nodes;    // on [-1, 1]
  std::array<double, kGaussPoints> weights;  // sum to 2
};

// Nodes and weights of the 16-point Gauss-Legendre rule, by Newton's method on P_16.
const GaussLegendre& Rule() {
  static const GaussLegendre rule = [] {
    GaussLegendre r;
    const int n = kGaussPoints;
    for (int i = 0; i < n; ++i) {
      double x = std::cos(kPi * (i + 0.75) / (n + 0.5));
      double derivative = 1.0;
      for (int step = 0; step < 100; ++step) {
        double p0 = 1.0, p1 = x;  // P_0, P_1, then up to P_n by the three-term recurrence
        for (int k = 2; k <= n; ++k) {
          const double p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
          p0 = p1;
          p1 = p2;
        }
        derivative = n * (x * p1 - p0) / (x * x - 1.0);
        const double dx = p1 / derivative;
        x -= dx;
        if (std::fabs(dx) < 1e-16) break;
      }
      r.nodes[i] = x;
      r.weights[i] = 2.0 / ((1.0 - x * x) * derivative * derivative);
    }
    return r;
  }();
  return rule;
}

// log Z_d.
double LogNormalizer(int64_t dim) {
  const double d = static_cast<double>(dim);
  return 0.5 * std::log(kPi) + std::lgamma((d - 1.0) / 2.0) - std::lgamma(d / 2.0);
}

}  // namespace

double SphereCoordinateDensity(int64_t dim, double x) {
  if (dim < 2 || !(x > -1.0 && x < 1.0)) return 0.0;
  const double d = static_cast<double>(dim);
  return std::exp(-LogNormalizer(dim) + (d - 3.0) / 2.0 * std::log1p(-x * x));
}

// Integrates g(x) f_d(x) over [a, b] for the three g's, plus (x - center)^2 f_d in moments[3] when
// requested; theta panels are at most min(0.05, 0.5 / sqrt(d)) wide, so the peak of width
// ~1/sqrt(d) always spans several panels.
static void Moments(int64_t dim, double a, double b, double center, double out[4]) {
  for (int i = 0; i < 4; ++i) out[i] = 0;
  a = std::clamp(a, -1.0, 1.0);
  b = std::clamp(b, -1.0, 1.0);
  if (!(b > a)) return;
  const double theta_a = std::asin(a), theta_b = std::asin(b);
  const double max_width = std::min(0.05, 0.5 / std::sqrt(static_cast<double>(dim)));
  const int64_t panels = std::clamp<int64_t>(
      static_cast<int64_t>(std::ceil((theta_b - theta_a) / max_width)), 1, 1 << 16);
  const double h = (theta_b - theta_a) / static_cast<double>(panels);
  const double log_z = LogNormalizer(dim);
  const double power = static_cast<double>(dim) - 2.0;
  const GaussLegendre& rule = Rule();
  for (int64_t p = 0; p < panels; ++p) {
    const double mid = theta_a + (static_cast<double>(p) + 0.5) * h;
    for (int i = 0; i < kGaussPoints; ++i) {
      const double theta = mid + 0.5 * h * rule.nodes[i];
      const double c = std::cos(theta);
      if (c <= 0.0) continue;
      const double w = 0.5 * h * rule.weights[i] * std::exp(power * std::log(c) - log_z);
      const double x = std::sin(theta);
      out[0] += w;
      out[1] += w * x;
      out[2] += w * x * x;
      out[3] += w * (x - center) * (x - center);
    }
  }
}

void SphereCoordinateMoments(int64_t dim, double a, double b, double moments[3]) {
  double out[4];
  Moments(dim, a, b, 0.0, out);
  for (int i = 0; i < 3; ++i) moments[i] = out[i];
}

absl::StatusOr<SphereCodebook> ComputeSphereCodebook(int64_t dim, int bits) {
  if (dim < 2 || dim > 65536) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sphere codebook: dimension %d is not in [2, 65536]", dim));
  }
  if (bits < 0 || bits > kMaxSphereCodebookBits) {
    return absl::InvalidArgumentError(absl::StrFormat("sphere codebook: %d bits is not in [0, %d]",
                                                      bits, kMaxSphereCodebookBits));
  }
  SphereCodebook cb;
  cb.dim = dim;
  cb.bits = bits;
  const int levels = 1 << bits;
  if (bits == 0) {
    double m[4];
    Moments(dim, -1.0, 1.0, 0.0, m);
    cb.centroids = {0.0};
    cb.coordinate_distortion = m[3];
    return cb;
  }

  // The positive half: centroids p[0..half), cells [s_k, s_{k+1}] with s_0 = 0, s_half = 1.
  const int half = levels / 2;
  const double sigma = 1.0 / std::sqrt(static_cast<double>(dim));
  std::vector<double> p(half), s(half + 1);
  for (int k = 0; k < half; ++k) p[k] = std::min(3.0 * sigma, 1.0) * (k + 0.5) / half;
  constexpr int kMaxIterations = 100000;
  const double tolerance = 1e-14 * sigma;
  int iteration = 0;
  for (; iteration < kMaxIterations; ++iteration) {
    s[0] = 0.0;
    s[half] = 1.0;
    for (int k = 1; k < half; ++k) s[k] = 0.5 * (p[k - 1] + p[k]);
    double moved = 0.0;
    for (int k = 0; k < half; ++k) {
      double m[4];
      Moments(dim, s[k], s[k + 1], 0.0, m);
      const double next = m[0] > 0 ? m[1] / m[0] : 0.5 * (s[k] + s[k + 1]);
      moved = std::max(moved, std::fabs(next - p[k]));
      p[k] = next;
    }
    if (moved <= tolerance) break;
  }
  cb.iterations = iteration + 1;
  for (int k = 1; k < half; ++k) s[k] = 0.5 * (p[k - 1] + p[k]);

  cb.centroids.resize(levels);
  for (int k = 0; k < half; ++k) {
    cb.centroids[half + k] = p[k];
    cb.centroids[half - 1 - k] = -p[k];
  }
  cb.boundaries.resize(levels - 1);
  for (int k = 0; k + 1 < levels; ++k) {
    cb.boundaries[k] = 0.5 * (cb.centroids[k] + cb.centroids[k + 1]);
  }
  cb.boundaries[half - 1] = 0.0;  // exactly, not -p + p rounded
  double distortion = 0.0;
  for (int k = 0; k < half; ++k) {
    double m[4];
    Moments(dim, s[k], s[k + 1], p[k], m);
    distortion += 2.0 * m[3];  // both halves
  }
  cb.coordinate_distortion = distortion;
  return cb;
}

const SphereCodebook& CachedSphereCodebook(int64_t dim, int bits) {
  static std::mutex* mutex = new std::mutex;
  static auto* cache = new std::map<std::pair<int64_t, int>, std::unique_ptr<SphereCodebook>>;
  std::lock_guard<std::mutex> lock(*mutex);
  std::unique_ptr<SphereCodebook>& entry = (*cache)[{dim, bits}];
  if (entry == nullptr) {
    absl::StatusOr<SphereCodebook> cb = ComputeSphereCodebook(dim, bits);
    if (!cb.ok()) {
      std::fprintf(stderr, "CachedSphereCodebook: %s\n",
                   std::string(cb.status().message()).c_str());
      std::abort();
    }
    entry = std::make_unique<SphereCodebook>(*std::move(cb));
  }
  return *entry;
}

}  // namespace kvgate::kernels
