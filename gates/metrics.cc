#include "gates/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace kvgate::gates {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

absl::Status CheckPair(Values ref, Values test) {
  if (ref.empty()) return absl::InvalidArgumentError("empty reference");
  if (ref.size() != test.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("reference has %d values, test has %d", ref.size(), test.size()));
  }
  return absl::OkStatus();
}

bool BothFinite(Values ref, Values test) { return AllFinite(ref) && AllFinite(test); }

// Indices of the k largest values, larger first, ties to the lower index. Values are finite.
std::vector<size_t> TopK(Values values, int k) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](size_t a, size_t b) {
    return values[a] != values[b] ? values[a] > values[b] : a < b;
  });
  order.resize(k);
  return order;
}

size_t Argmax(Values values) { return TopK(values, 1)[0]; }

// log(softmax(values)), computed stably. Values are finite.
std::vector<double> LogSoftmax(Values values) {
  const double max = *std::max_element(values.begin(), values.end());
  double sum = 0.0;
  for (float v : values) sum += std::exp(v - max);
  const double log_norm = max + std::log(sum);
  std::vector<double> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = values[i] - log_norm;
  return out;
}

double SquaredNorm(Values values) {
  double sum = 0.0;
  for (float v : values) sum += static_cast<double>(v) * v;
  return sum;
}

}  // namespace

bool AllFinite(Values values) {
  return std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); });
}

absl::StatusOr<double> DecodeLogitMse(Values ref, Values test) {
  if (absl::Status s = CheckPair(ref, test); !s.ok()) return s;
  if (!BothFinite(ref, test)) return kNaN;
  double sum = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(test[i]) - ref[i];
    sum += d * d;
  }
  return sum / ref.size();
}

absl::StatusOr<double> TopKOverlap(Values ref, Values test, int k) {
  if (absl::Status s = CheckPair(ref, test); !s.ok()) return s;
  if (k < 1 || static_cast<size_t>(k) > ref.size()) {
    return absl::InvalidArgumentError(absl::StrFormat("k = %d is outside [1, %d]", k, ref.size()));
  }
  if (!BothFinite(ref, test)) return kNaN;
  std::vector<size_t> a = TopK(ref, k), b = TopK(test, k);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<size_t> common;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
  return static_cast<double>(common.size()) / k;
}

absl::StatusOr<double> ArgmaxAgreement(Values ref, Values test) {
  if (absl::Status s = CheckPair(ref, test); !s.ok()) return s;
  if (!BothFinite(ref, test)) return kNaN;
  return Argmax(ref) == Argmax(test) ? 1.0 : 0.0;
}

absl::StatusOr<double> KlDivergence(Values ref, Values test) {
  if (absl::Status s = CheckPair(ref, test); !s.ok()) return s;
  if (!BothFinite(ref, test)) return kNaN;
  const std::vector<double> log_p = LogSoftmax(ref), log_q = LogSoftmax(test);
  double kl = 0.0;
  for (size_t i = 0; i < log_p.size(); ++i) kl += std::exp(log_p[i]) * (log_p[i] - log_q[i]);
  return std::max(kl, 0.0);  // rounding can leave -1e-17 for identical distributions
}

absl::StatusOr<double> AbsDeltaP(Values ref, Values test, int64_t token) {
  if (absl::Status s = CheckPair(ref, test); !s.ok()) return s;
  if (token < 0 || static_cast<size_t>(token) >= ref.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("token %d is outside the vocabulary of %d", token, ref.size()));
  }
  if (!BothFinite(ref, test)) return kNaN;
  return std::abs(std::exp(LogSoftmax(test)[token]) - std::exp(LogSoftmax(ref)[token]));
}

absl::StatusOr<Fidelity> FidelityOverPositions(const std::vector<Values>& ref_rows,
                                               const std::vector<Values>& test_rows) {
  if (ref_rows.empty()) return absl::InvalidArgumentError("no positions");
  if (ref_rows.size() != test_rows.size()) {
    return absl::InvalidArgumentError(absl::StrFormat("reference has %d positions, test has %d",
                                                      ref_rows.size(), test_rows.size()));
  }
  Fidelity sum;
  for (size_t i = 0; i < ref_rows.size(); ++i) {
    absl::StatusOr<double> kl = KlDivergence(ref_rows[i], test_rows[i]);
    if (!kl.ok()) return kl.status();
    absl::StatusOr<double> same = ArgmaxAgreement(ref_rows[i], test_rows[i]);
    const int64_t token = AllFinite(ref_rows[i]) ? Argmax(ref_rows[i]) : 0;
    absl::StatusOr<double> delta_p = AbsDeltaP(ref_rows[i], test_rows[i], token);
    sum.mean_kl_divergence += *kl;
    sum.same_top_p_rate += *same;
    sum.mean_abs_delta_p += *delta_p;
  }
  const double n = ref_rows.size();
  return Fidelity{sum.mean_kl_divergence / n, sum.mean_abs_delta_p / n, sum.same_top_p_rate / n};
}

absl::StatusOr<double> RelativeL2(Values ref, Values test) {
  if (absl::Status s = CheckPair(ref, test); !s.ok()) return s;
  if (!BothFinite(ref, test)) return kNaN;
  const double ref_norm2 = SquaredNorm(ref);
  if (ref_norm2 == 0.0) return absl::InvalidArgumentError("the reference is all zeros");
  double diff_norm2 = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(test[i]) - ref[i];
    diff_norm2 += d * d;
  }
  return std::sqrt(diff_norm2 / ref_norm2);
}

absl::StatusOr<double> LayerMedianRelativeL2(const std::vector<Values>& ref_layers,
                                             const std::vector<Values>& test_layers) {
  if (ref_layers.empty()) return absl::InvalidArgumentError("no layers");
  if (ref_layers.size() != test_layers.size()) {
    return absl::InvalidArgumentError(absl::StrFormat("reference has %d layers, test has %d",
                                                      ref_layers.size(), test_layers.size()));
  }
  std::vector<double> per_layer;
  for (size_t l = 0; l < ref_layers.size(); ++l) {
    absl::StatusOr<double> rel = RelativeL2(ref_layers[l], test_layers[l]);
    if (!rel.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("layer %d: %s", l, rel.status().message()));
    }
    if (std::isnan(*rel)) return kNaN;
    per_layer.push_back(*rel);
  }
  std::sort(per_layer.begin(), per_layer.end());
  const size_t n = per_layer.size();
  return n % 2 == 1 ? per_layer[n / 2] : (per_layer[n / 2 - 1] + per_layer[n / 2]) / 2.0;
}

absl::StatusOr<double> ActiveHistoryFraction(absl::Span<const int64_t> active_per_head,
                                             int64_t history_length) {
  if (active_per_head.empty()) return absl::InvalidArgumentError("no heads");
  if (history_length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("history length must be > 0, got %d", history_length));
  }
  double total = 0.0;
  for (int64_t active : active_per_head) {
    if (active < 0 || active > history_length) {
      return absl::InvalidArgumentError(
          absl::StrFormat("a head attends %d tokens of a history of %d", active, history_length));
    }
    total += active;
  }
  return total / active_per_head.size() / history_length;
}

}  // namespace kvgate::gates
