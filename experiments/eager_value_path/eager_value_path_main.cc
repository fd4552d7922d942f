// //experiments:eager_value_path — TurboQuant-family KV (turboquant_mse / turboquant_prod at 2, 3
// and 4 bits) through the eager dequantize-then-attend path inside the real decode step: quality
// against dense (hfkv_real_kv_quality) and decode-step time against dense in the same run
// (eager_value_path_latency). See compressed_decode.h for the method.
//
//   OMP_WAIT_POLICY=PASSIVE tools/bazel run //experiments:eager_value_path -- --context=2048
#include "experiments/eager_value_path/experiment_main.h"

int main(int argc, char** argv) {
  return kvgate::experiments::ExperimentMain(
      argc, argv, kvgate::experiments::KvPath::kEager, "eager_value_path",
      "eager_value_path_latency",
      "TurboQuant KV through the eager dequantize-then-attend path in the real decode step: "
      "quality and decode-step time vs dense, judged and appended to the records.");
}
