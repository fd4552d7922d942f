// The real decode step over a TurboQuant-family KV cache, shared by //experiments:eager_value_path
// and //experiments:fused_codebook.
//
// Method (RunCompressedDecode):
//   1. Prefill the prompt densely (the model's DenseAttention), once.
//   2. For each variant, clone the prefilled cache and encode every layer's K and V once with the
//      variant's TurboQuant (timed separately: encode_prefix_ms, never part of a step).
//   3. Decode --decode_steps steps, teacher-forced on the dense run's greedy tokens (step 0 feeds the
//      argmax of the prefill logits, step i the dense argmax of step i - 1). Runs are interleaved:
//      step i runs the dense reference and every variant once each, in an order rotated by i, so
//      load changes of the machine fall on all of them alike.
//   4. A compressed variant's AttentionPolicy attends from its encoded cache only: the new token's
//      K and V (in the dense cache the model writes) are encoded with the same TurboQuant and
//      APPENDED to the encoded cache (preallocated buffers; no full-precision tail), then
//        kEager             EagerDecodeAttention: decode K and V to float32, attend densely
//        kFused             CodebookAttention: logits from the codes (+ QJL residual for prod),
//                           value sum in the rotated space (variant 2, decode-once)
//        kFusedExactCleanup CodebookAttention over EncodeExactCleanup tensors: the fused loops
//                           with every approximation removed (equals dense up to float rounding)
//      The dense KvCache still exists (the model writes it): this measures time and quality, not
//      memory; kv_ratio is the encoded cache's bytes over bf16 K/V bytes at the prompt length.
//   5. Timings, median over steps: the whole step (DecodeOne + argmax) and the attention inside it
//      (sum over layers of the policy call, the new token's encoding included for compressed runs).
//
// Rows (gates::Record, verdicts left to experiments/common JudgeAndAppend):
//   quality: one a variant at step 0 (hfkv_real_kv_quality reads step 0 only): decode_logit_mse,
//     top10_overlap, argmax_agreement, kl_divergence, kv_ratio, reference_finite, and over all steps
//     mean_kl_divergence_all_steps, mean_abs_delta_p, same_top_p_rate.
//   latency: one a variant, step null: dense_decode_step_ms, compressed_decode_step_ms,
//     dense_attention_ms, compressed_attention_ms, encode_prefix_ms, kv_ratio, decode_steps.
#ifndef KVGATE_EXPERIMENTS_EAGER_VALUE_PATH_COMPRESSED_DECODE_H_
#define KVGATE_EXPERIMENTS_EAGER_VALUE_PATH_COMPRESSED_DECODE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/runtime/model.h"
#include "gates/record.h"

namespace kvgate::experiments {

enum class KvPath { kEager, kFused, kFusedExactCleanup };

struct PathVariant {
  std::string spec;     // canonical TurboQuant spec, e.g. "turboquant_mse:bits=3:rotation=hadamard:seed=0"
  KvPath path = KvPath::kEager;
  std::string variant;  // the records' variant: the spec, or "exact_cleanup(<spec>)"
};

// turboquant_mse and turboquant_prod at 2, 3 and 4 bits (canonical names from the registry), seed
// `seed`, through `path`; for kFused also the exact cleanup of turboquant_mse:bits=4 and
// turboquant_prod:bits=4. InvalidArgument from the registry as it is.
absl::StatusOr<std::vector<PathVariant>> StandardVariants(KvPath path, int64_t seed);

struct CompressedDecodeOptions {
  int64_t decode_steps = 16;
  std::string experiment;    // records' experiment
  gates::Target target;      // records' target (context = the prompt's length)
  std::function<void(const std::string&)> progress;  // one line at a time; may be empty
};

struct CompressedDecodeOutput {
  std::vector<gates::Record> quality;  // one a variant, step 0
  std::vector<gates::Record> latency;  // one a variant, step null
  double prefill_seconds = 0;
  // Empty when the dense reference is finite; else where it first went non-finite, in words
  // ("decode step 0, layer 1 (...)"), and the quality rows carry reference_finite = 0 and
  // reference_nonfinite_step / reference_nonfinite_layer (runtime/decode.h), so they are invalid.
  std::string reference_nonfinite;
};

// See above. prompt: token ids, at least 1; the model on the CPU.
absl::StatusOr<CompressedDecodeOutput> RunCompressedDecode(
    const runtime::Model& model, const std::vector<int64_t>& prompt,
    const std::vector<PathVariant>& variants, const CompressedDecodeOptions& options);

// The flags' checks, one clear message each: context >= 1, decode_steps >= 1, dtype float32 /
// bfloat16 / float16, device cpu (the fused primitives are CPU only), seed >= 0.
absl::Status CheckRunFlags(int64_t context, int64_t decode_steps, const std::string& dtype,
                           const std::string& device, int64_t seed);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_EAGER_VALUE_PATH_COMPRESSED_DECODE_H_
