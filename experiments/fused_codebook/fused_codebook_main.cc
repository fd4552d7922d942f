// //experiments:fused_codebook — TurboQuant-family KV (turboquant_mse / turboquant_prod at 2, 3
// and 4 bits) through the fused codebook primitives (logits from codes, QJL residual, value path in
// the rotated space; kernels/turboquant/codebook_attention.h) inside the real decode step, plus the
// exact-cleanup variants (the same loops, no approximation): quality against dense
// (hfkv_real_kv_quality) and attention time inside the step against dense in the same run
// (fused_codebook_latency). See experiments/eager_value_path/compressed_decode.h for the method.
//
//   OMP_WAIT_POLICY=PASSIVE tools/bazel run //experiments:fused_codebook -- --context=2048
#include "experiments/eager_value_path/experiment_main.h"

int main(int argc, char** argv) {
  return kvgate::experiments::ExperimentMain(
      argc, argv, kvgate::experiments::KvPath::kFused, "fused_codebook", "fused_codebook_latency",
      "TurboQuant KV through the fused codebook attention in the real decode step (plus exact "
      "cleanup): quality and attention time vs dense, judged and appended to the records.");
}
