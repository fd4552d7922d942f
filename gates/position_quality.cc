// See position_quality.h.

#include "gates/position_quality.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvgate::gates {
namespace {

// softmax(x)[token], in double, max-subtracted.
double SoftmaxAt(Values x, int64_t token) {
  const float max = *std::max_element(x.begin(), x.end());
  double sum = 0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - max);
  return std::exp(static_cast<double>(x[token]) - max) / sum;
}

}  // namespace

absl::StatusOr<double> DeltaP(Values ref, Values test, int64_t token) {
  if (ref.empty() || ref.size() != test.size()) {
    return absl::InvalidArgumentError(absl::StrCat("delta_p: rows of ", ref.size(), " and ",
                                                   test.size(), " values"));
  }
  if (token < 0 || token >= static_cast<int64_t>(ref.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("delta_p: token ", token, " outside a vocabulary of ", ref.size()));
  }
  if (!AllFinite(ref) || !AllFinite(test)) return std::numeric_limits<double>::quiet_NaN();
  return SoftmaxAt(test, token) - SoftmaxAt(ref, token);
}

absl::StatusOr<PositionQuality> MeasurePosition(Values ref, Values test, int64_t true_token) {
  absl::StatusOr<double> kl = KlDivergence(ref, test);
  absl::StatusOr<double> mse = DecodeLogitMse(ref, test);
  absl::StatusOr<double> top10 = TopKOverlap(ref, test, 10);
  absl::StatusOr<double> argmax = ArgmaxAgreement(ref, test);
  absl::StatusOr<double> dp = DeltaP(ref, test, true_token);
  for (const absl::Status& s :
       {kl.status(), mse.status(), top10.status(), argmax.status(), dp.status()}) {
    if (!s.ok()) return s;
  }
  PositionQuality q;
  q.kl_divergence = *kl;
  q.decode_logit_mse = *mse;
  q.top10_overlap = *top10;
  q.argmax_agreement = *argmax;
  q.delta_p = *dp;
  q.abs_delta_p = std::fabs(*dp);
  return q;
}

}  // namespace kvgate::gates
