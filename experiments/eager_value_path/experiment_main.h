// The command line shared by //experiments:eager_value_path and //experiments:fused_codebook:
// flags, model and prompt, RunCompressedDecode, judging and appending the rows, verdict tables.
#ifndef KVGATE_EXPERIMENTS_EAGER_VALUE_PATH_EXPERIMENT_MAIN_H_
#define KVGATE_EXPERIMENTS_EAGER_VALUE_PATH_EXPERIMENT_MAIN_H_

#include "experiments/eager_value_path/compressed_decode.h"

namespace kvgate::experiments {

// experiment: records' experiment and file name; latency_gate: the latency spec id. Returns the
// process exit code (0 ok, 1 on a run error, 2 on a bad flag).
int ExperimentMain(int argc, char** argv, KvPath path, const char* experiment,
                   const char* latency_gate, const char* usage);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_EAGER_VALUE_PATH_EXPERIMENT_MAIN_H_
