// What the hfkv_int4 and speed_ceiling binaries share after their command line
// (experiments/common/experiment_flags.h): loading the chosen model (experiment_io.h's
// ChooseModel: --model, else the embedded SmolLM2-135M-Instruct) and its tokenizer, checking that
// the context fits the model and the corpus, cutting the license corpus to exactly --context tokens
// (prompt_corpus.h), and the records' target.
//
// Usage:
//   absl::StatusOr<RunSetup> setup = SetUpRun(flags, [](const std::string& line) { ... });
//   // setup->model, setup->prompt (exactly setup->target.context ids), setup->target

#ifndef KVGATE_EXPERIMENTS_COMMON_EXPERIMENT_SETUP_H_
#define KVGATE_EXPERIMENTS_COMMON_EXPERIMENT_SETUP_H_

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/common/experiment_flags.h"
#include "experiments/common/experiment_io.h"
#include "experiments/runtime/model.h"
#include "gates/record.h"

namespace kvgate::experiments {

struct RunSetup {
  ModelChoice choice;
  std::optional<runtime::Model> model;
  std::vector<int64_t> prompt;  // the license corpus cut to exactly target.context tokens
  std::string prompt_note;
  std::string context_note;  // FitContextToModel's words: --context, or the target's (capped)
  gates::Target target;  // model name, weights sha256, context, dtype, device
  double load_seconds = 0;
};

absl::StatusOr<RunSetup> SetUpRun(const CommonFlags& flags,
                                  const std::function<void(const std::string&)>& progress);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_COMMON_EXPERIMENT_SETUP_H_
