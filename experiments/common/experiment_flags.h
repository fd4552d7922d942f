// The command line every experiment binary shares, defined once: the absl flags --model,
// --context, --decode_steps, --dtype, --device, --seed, --out and --allow_non_finite_weights, their
// checks (InvalidArgument, one line naming the flag), and the check of a context against the model
// (max_position_embeddings) and the prompt corpus.
//
// Usage (an experiment's main; defaults that differ per experiment are passed in):
//   ExperimentDefaults defaults;
//   defaults.context = 8192;
//   defaults.decode_steps = 4;
//   absl::StatusOr<CommonFlags> flags = ParseExperimentCommandLine(argc, argv, usage, defaults);
//   if (!flags.ok()) { std::cerr << "qwen_oracle: " << flags.status().message() << "\n"; return 2; }
//   ... load the model and the prompt ...
//   absl::StatusOr<std::string> context_note =
//       FitContextToModel(*flags, config.max_position_embeddings);   // flags->context is now final
//   ... cut the prompt to flags->context tokens ...
//   absl::Status fits = CheckContextFits(*flags, 0, corpus_tokens);

#ifndef KVGATE_EXPERIMENTS_COMMON_EXPERIMENT_FLAGS_H_
#define KVGATE_EXPERIMENTS_COMMON_EXPERIMENT_FLAGS_H_

#include <torch/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kvgate::experiments {

// The shared flags' values.
struct CommonFlags {
  std::string model;  // "": the embedded default (or the experiment's environment variable)
  // Prompt tokens: --context, or (--context left at 0) the experiment's target context, which
  // FitContextToModel caps to what the model allows.
  int64_t context = 2048;
  bool context_is_target = false;  // --context was left at 0
  int64_t decode_steps = 1;
  std::string dtype = "float32";
  std::string device = "cpu";
  int64_t seed = 0;
  std::string out;
  bool allow_non_finite_weights = false;  // runtime::ModelOptions::allow_non_finite_weights
};

// The defaults that differ between experiments.
struct ExperimentDefaults {
  int64_t context = 2048;
  int64_t decode_steps = 1;
  std::string dtype = "float32";
};

// InvalidArgument, one line naming the flag and the allowed values, for a bad value.
absl::StatusOr<torch::Dtype> ParseDtype(const std::string& dtype);
absl::StatusOr<torch::Device> ParseDevice(const std::string& device);  // "cpu", "cuda[:n]"
// --context >= 1, --decode_steps >= 1, --dtype and --device known.
absl::Status CheckCommonFlags(const CommonFlags& flags);

// InvalidArgument naming --context when context + decode_steps positions exceed the model's
// max_position_embeddings (0: unknown, not checked), or when the context is longer than one copy
// of the prompt corpus of corpus_tokens tokens (an experiment's prompt never repeats the text).
absl::Status CheckContextFits(const CommonFlags& flags, int64_t max_position_embeddings,
                              int64_t corpus_tokens);

// The run's context, in words for the run's first lines (records carry the context itself):
// --context as given (CheckContextFits's error when it does not fit the model), or, when --context
// was left at 0, the target context capped to max_position_embeddings minus --decode_steps
// (flags->context is lowered then). 0 for max_position_embeddings: unknown, not capped.
absl::StatusOr<std::string> FitContextToModel(CommonFlags* flags, int64_t max_position_embeddings);

// Sets the shared flags' defaults to `defaults`, parses the command line (absl exits with status
// 1 and its message on an unknown flag or a value of the wrong type), rejects positional
// arguments, and returns the checked flags (CheckCommonFlags).
absl::StatusOr<CommonFlags> ParseExperimentCommandLine(int argc, char** argv, const char* usage,
                                                       const ExperimentDefaults& defaults);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_COMMON_EXPERIMENT_FLAGS_H_
