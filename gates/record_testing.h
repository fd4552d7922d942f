// Test helpers: a complete, valid record to start from.
#ifndef KVGATE_GATES_RECORD_TESTING_H_
#define KVGATE_GATES_RECORD_TESTING_H_

#include <string>

#include "gates/record.h"

namespace kvgate::gates::testing {

// Step `step` of an oracle run of variant global_block_mass:f=0.3760:b=16, passing, pinned to a
// spec sha256 of `spec_sha256` (64 hex digits).
inline Record ExampleRecord(
    int step = 0,
    std::string spec_sha256 = "1384de09e2b19bae000a9ea719f4206862fd342f1d11fcb7afb210cc76011936") {
  Record r;
  r.experiment = "qwen_oracle";
  r.variant = "global_block_mass:f=0.3760:b=16";
  r.target = {.model = "Qwen2.5-7B-Instruct",
              .weights_sha256 = "random:seed=7",
              .context = 8192,
              .dtype = "bfloat16",
              .device = "NVIDIA H100 80GB HBM3"};
  r.step = step;
  r.metrics = {{"decode_logit_mse", 0.0312},
               {"top10_overlap", 0.9},
               {"argmax_agreement", 1},
               {"layer_median_o_proj_rel_l2", 0.041},
               {"reference_finite", 1}};
  r.gate = {.id = "work_reduction_oracle",
            .version = 1,
            .spec_sha256 = std::move(spec_sha256),
            .verdict = Verdict::kPass,
            .failed = {}};
  r.provenance = {.git_commit = "6f4a41a",
                  .dirty = false,
                  .build_config = "opt --config=cuda",
                  .torch_version = "2.11.0",
                  .cuda_version = "13.0",
                  .host = "gpu-1",
                  .start_time = "2026-11-27T18:20:00Z",
                  .seed = 7};
  return r;
}

}  // namespace kvgate::gates::testing

#endif  // KVGATE_GATES_RECORD_TESTING_H_
