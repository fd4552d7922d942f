// Quality of one teacher-forced decode position: the dense reference's logits against a
// compressed or selected path's logits at the same position, plus the text's true next token.
//
//   kl_divergence      KL(softmax(ref) || softmax(test)), nats
//   decode_logit_mse   mean over the vocabulary of (test - ref)^2
//   top10_overlap      |top-10(ref) ∩ top-10(test)| / 10
//   argmax_agreement   1 when both argmax tokens agree, else 0
//   delta_p            p_test(t) - p_ref(t), t the TRUE next token of the text (signed; llama.cpp's
//                      Δp of `llama-perplexity --kl-divergence`): negative when the path makes
//                      the text less likely
//   abs_delta_p        |delta_p|
// (gates/metrics.h computes each; the layer-local post-o_proj relative L2 is measured beside.)
//
// Usage:
//   absl::StatusOr<PositionQuality> q = MeasurePosition(dense_logits, int4_logits, true_token);

#ifndef KVGATE_GATES_POSITION_QUALITY_H_
#define KVGATE_GATES_POSITION_QUALITY_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "gates/metrics.h"

namespace kvgate::gates {

inline constexpr char kDeltaP[] = "delta_p";
inline constexpr char kAbsDeltaP[] = "abs_delta_p";

struct PositionQuality {
  double kl_divergence = 0, decode_logit_mse = 0, top10_overlap = 0, argmax_agreement = 0;
  double delta_p = 0, abs_delta_p = 0;
};

// softmax(test)[token] - softmax(ref)[token]; InvalidArgument for a token out of range.
absl::StatusOr<double> DeltaP(Values ref, Values test, int64_t token);

// Every measure above; errors of misuse (empty or mismatched rows, a token out of range).
absl::StatusOr<PositionQuality> MeasurePosition(Values ref, Values test, int64_t true_token);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_POSITION_QUALITY_H_
