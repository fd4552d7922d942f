// The quality and size measures the gates judge. Each takes the dense reference first and the
// compressed (or selected) path second, and returns a double for a record's `metrics` object under
// the name given beside it.
//
//   decode_logit_mse             mean over the vocabulary of (test - ref)^2, one decode step
//   top10_overlap                |top-k(ref) ∩ top-k(test)| / k, k = 10 by default
//   argmax_agreement             1 if the argmax tokens agree, else 0 (ties: the lower index wins)
//   kl_divergence                KL(softmax(ref) || softmax(test)), natural log
//   mean_abs_delta_p             |p_test(t) - p_ref(t)| for the reference token t
//   same_top_p_rate              fraction of positions whose argmax agrees
//     (the last three, averaged over positions, are llama.cpp's fidelity measures: mean KLD,
//      mean Δp, same top p; here Δp is absolute and t is the reference's argmax)
//   relative_l2                  ||test - ref|| / ||ref||
//   layer_median_o_proj_rel_l2   median over layers of relative_l2 of the post-o_proj output
//   kv_ratio                     bytes_vs_bf16: compressed KV bytes / the same K, V in bf16
//                                (0.28125 = 28% of bf16; RECORDS.md, "KV size")
//   active_history_fraction      mean over heads of attended tokens / history length (f)
//   reference_finite             1 if every value of the dense reference is finite, else 0
//                                (AllFinite over the reference logits and o_proj outputs)
//   p_attn                       share of the dense decode step spent in attention (measured,
//                                not computed here; with active_history_fraction it feeds the
//                                speed ceiling, gates/speed_ceiling)
//
// A non-finite input value (NaN, ±Inf) makes a measure NaN: the record keeps it and its verdict is
// `invalid` (RECORDS.md). Errors are for misuse only: empty inputs, mismatched sizes, k out of
// range, a zero reference norm.
//
// Usage:
//   absl::StatusOr<double> mse = kvgate::gates::DecodeLogitMse(dense_logits, int4_logits);
//   absl::StatusOr<double> overlap = kvgate::gates::TopKOverlap(dense_logits, int4_logits);

#ifndef KVGATE_GATES_METRICS_H_
#define KVGATE_GATES_METRICS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kvgate::gates {

// Metric names as records carry them.
inline constexpr char kDecodeLogitMse[] = "decode_logit_mse";
inline constexpr char kTop10Overlap[] = "top10_overlap";
inline constexpr char kArgmaxAgreement[] = "argmax_agreement";
inline constexpr char kKlDivergence[] = "kl_divergence";
inline constexpr char kMeanAbsDeltaP[] = "mean_abs_delta_p";
inline constexpr char kSameTopPRate[] = "same_top_p_rate";
inline constexpr char kRelativeL2[] = "relative_l2";
inline constexpr char kLayerMedianOProjRelL2[] = "layer_median_o_proj_rel_l2";
inline constexpr char kKvRatio[] = "kv_ratio";
inline constexpr char kActiveHistoryFraction[] = "active_history_fraction";
inline constexpr char kReferenceFinite[] = "reference_finite";
inline constexpr char kPAttn[] = "p_attn";

using Values = absl::Span<const float>;

// True when every value is finite.
bool AllFinite(Values values);

// Mean of (test[i] - ref[i])^2 over the vocabulary.
absl::StatusOr<double> DecodeLogitMse(Values ref, Values test);

// |top-k(ref) ∩ top-k(test)| / k. Ties rank the lower index first. 1 <= k <= size.
absl::StatusOr<double> TopKOverlap(Values ref, Values test, int k = 10);

// 1.0 when both argmax indices agree (ties: the lower index), else 0.0.
absl::StatusOr<double> ArgmaxAgreement(Values ref, Values test);

// KL(P || Q) with P = softmax(ref), Q = softmax(test), in nats.
absl::StatusOr<double> KlDivergence(Values ref, Values test);

// |softmax(test)[token] - softmax(ref)[token]|.
absl::StatusOr<double> AbsDeltaP(Values ref, Values test, int64_t token);

// llama.cpp's fidelity summary over positions (one logit row per position).
struct Fidelity {
  double mean_kl_divergence = 0.0;
  double mean_abs_delta_p = 0.0;  // at each position's reference argmax
  double same_top_p_rate = 0.0;
};
absl::StatusOr<Fidelity> FidelityOverPositions(const std::vector<Values>& ref_rows,
                                               const std::vector<Values>& test_rows);

// ||test - ref|| / ||ref||. Error if ||ref|| is 0.
absl::StatusOr<double> RelativeL2(Values ref, Values test);

// Median over layers of RelativeL2(ref_layers[l], test_layers[l]); with an even number of layers,
// the mean of the two middle values.
absl::StatusOr<double> LayerMedianRelativeL2(const std::vector<Values>& ref_layers,
                                             const std::vector<Values>& test_layers);

// mean(active_per_head) / history_length; each head attends 0..history_length tokens.
absl::StatusOr<double> ActiveHistoryFraction(absl::Span<const int64_t> active_per_head,
                                             int64_t history_length);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_METRICS_H_
