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
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_weights.h"
#include "kernels/kv_format/kv_format.h"

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

// The fixture `name` (e.g. "tiny_llama") as a float32 model on the CPU.
absl::StatusOr<Model> LoadFixtureModel(const std::string& name);

// n token ids that fit every fixture's vocabulary (a fixed, non-repeating pattern).
std::vector<int64_t> FixturePrompt(int64_t n);

// A lossless KvFormat for tests: keeps the tensor as float32, so decode returns it exactly.
class IdentityKvFormat : public kernels::KvFormat {
 public:
  explicit IdentityKvFormat(std::string name = "identity") : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  absl::StatusOr<kernels::EncodedKv> Encode(const torch::Tensor& x,
                                            kernels::KvRole role) const override;
  absl::StatusOr<torch::Tensor> Decode(const kernels::EncodedKv& e) const override;
  int64_t Bytes(int64_t tokens, int64_t kv_heads, int64_t head_dim,
                kernels::KvRole role) const override;

 private:
  std::string name_;
};

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_MODEL_TEST_UTIL_H_
