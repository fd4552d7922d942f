// What the loaders share: load options, the tensors a ModelConfig implies (names and shapes, the
// contract of model_weights.h), the check of loaded weights against it, and model names.
//
// Usage:
//   absl::Status ok = kvgate::runtime::CheckModelWeights(weights);
//   // e.g. "model.gguf: tensor model.layers.3.mlp.up_proj.weight has shape [1536, 575],
//   //       expected [1536, 576] (intermediate_size, hidden_size)"

#ifndef KVGATE_EXPERIMENTS_RUNTIME_MODEL_LOADER_COMMON_H_
#define KVGATE_EXPERIMENTS_RUNTIME_MODEL_LOADER_COMMON_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "experiments/runtime/model_weights.h"

namespace kvgate::runtime {

struct LoadOptions {
  // Fill ModelWeights::weights_sha256. Hashing reads every byte of the weight files once (the
  // pages stay in the page cache for the copy to the GPU); shards are hashed in parallel.
  bool compute_sha256 = true;
};

struct ExpectedTensor {
  std::vector<int64_t> shape;
  std::string dims;  // the config fields behind the shape, e.g. "vocab_size, hidden_size"
};

// Every tensor `config` implies, by Hugging Face name (see model_weights.h).
std::map<std::string, ExpectedTensor> ExpectedTensors(const ModelConfig& config);

// Positive sizes, heads divisible by kv heads, a known architecture; errors name `source`.
absl::Status CheckModelConfig(const ModelConfig& config, absl::string_view source);

// Exactly the expected tensors, with the expected shapes, each float32, bfloat16 or float16 and
// defined. Errors name weights.source and the tensor.
absl::Status CheckModelWeights(const ModelWeights& weights);

// The shortest decimal that reads back as `value` (GGUF stores 1e-5 as float 9.99999975e-06).
double ShortestDouble(float value);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_MODEL_LOADER_COMMON_H_
