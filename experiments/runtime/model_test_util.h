// Test support for experiments/runtime: the tiny checkpoints of testdata/fixtures/ (made by
// tools/fixtures/make_tiny_checkpoints.py) read without any loader, and error measures.
//
// A fixture folder holds weights.pt (torch.save of {Hugging Face name: float32 tensor}, read with
// torch::pickle_load), kvgate_config.json (ModelConfig's fields) and expected.pt (transformers'
// logits; see the generator's docstring).

#ifndef KVGATE_EXPERIMENTS_RUNTIME_MODEL_TEST_UTIL_H_
#define KVGATE_EXPERIMENTS_RUNTIME_MODEL_TEST_UTIL_H_

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/runtime/model_weights.h"

namespace kvgate::runtime {

struct Fixture {
  ModelWeights weights;
  torch::Tensor prompt_ids;        // int64 [T]
  torch::Tensor prefill_logits;    // float32 [T, vocab]
  torch::Tensor decode_tokens_in;  // int64 [n]
  torch::Tensor decode_logits;     // float32 [n, vocab]
  torch::Tensor greedy_tokens;     // int64 [n + 1]
};

// The folder of a fixture by name ("tiny_llama", "tiny_qwen2"), relative to the test's runfiles.
std::string FixtureDir(const std::string& name);

// Reads a fixture folder. NotFound / InvalidArgument naming the file on a problem.
absl::StatusOr<Fixture> LoadFixture(const std::string& dir);

// torch.save of a dict of tensors -> the dict.
absl::StatusOr<std::map<std::string, torch::Tensor>> LoadTensorDict(const std::string& path);

// max |actual - expected| / max |expected|, in float64.
double RelativeError(const torch::Tensor& actual, const torch::Tensor& expected);

std::vector<int64_t> ToVector(const torch::Tensor& ids);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_MODEL_TEST_UTIL_H_
