// The model shapes kvgate builds models of, in one table (gpt-fast's `transformer_configs`): the
// embedded default (SmolLM2-135M), Qwen2.5-7B-Instruct for the CUDA decode step, and the tiny
// shapes the tests run on. A loaded model takes its config from its own files (hf_snapshot.h,
// gguf_weights.h); this table is for seeded random weights of an exact shape (RandomModelWeights)
// and for code that needs a shape without loading a model.
//
// Usage:
//   const ModelConfig c = *kvgate::runtime::ModelConfigNamed("qwen2.5-7b");
//   ModelWeights w = RandomModelWeights(c, /*seed=*/0);

#ifndef KVGATE_EXPERIMENTS_RUNTIME_MODEL_CONFIGS_H_
#define KVGATE_EXPERIMENTS_RUNTIME_MODEL_CONFIGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experiments/runtime/model_weights.h"

namespace kvgate::runtime {

struct NamedModelConfig {
  std::string name;  // lowercase, e.g. "smollm2-135m"
  ModelConfig config;
};

// Every shape, in table order.
const std::vector<NamedModelConfig>& ModelConfigs();

// The shape called `name`; NotFound listing the known names otherwise.
absl::StatusOr<ModelConfig> ModelConfigNamed(absl::string_view name);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_MODEL_CONFIGS_H_
