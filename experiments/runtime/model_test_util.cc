#include "experiments/runtime/model_test_util.h"

#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvgate::runtime {
namespace {

absl::StatusOr<std::vector<char>> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

std::string FixtureDir(const std::string& name) {
  return "experiments/runtime/testdata/fixtures/" + name;
}

absl::StatusOr<std::map<std::string, torch::Tensor>> LoadTensorDict(const std::string& path) {
  absl::StatusOr<std::vector<char>> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  std::map<std::string, torch::Tensor> tensors;
  try {
    const c10::IValue value = torch::jit::pickle_load(*bytes);
    if (!value.isGenericDict()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a dict"));
    }
    for (const auto& entry : value.toGenericDict()) {
      tensors[entry.key().toStringRef()] = entry.value().toTensor();
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what_without_backtrace()));
  }
  return tensors;
}

absl::StatusOr<Fixture> LoadFixture(const std::string& dir) {
  Fixture f;
  absl::StatusOr<std::vector<char>> json_bytes = ReadFile(dir + "/kvgate_config.json");
  if (!json_bytes.ok()) return json_bytes.status();
  try {
    const nlohmann::json j = nlohmann::json::parse(json_bytes->begin(), json_bytes->end());
    ModelConfig& c = f.weights.config;
    c.architecture = j.at("architecture").get<std::string>();
    c.vocab_size = j.at("vocab_size").get<int64_t>();
    c.hidden_size = j.at("hidden_size").get<int64_t>();
    c.intermediate_size = j.at("intermediate_size").get<int64_t>();
    c.num_hidden_layers = j.at("num_hidden_layers").get<int64_t>();
    c.num_attention_heads = j.at("num_attention_heads").get<int64_t>();
    c.num_key_value_heads = j.at("num_key_value_heads").get<int64_t>();
    c.head_dim = j.at("head_dim").get<int64_t>();
    c.rms_norm_eps = j.at("rms_norm_eps").get<double>();
    c.rope_theta = j.at("rope_theta").get<double>();
    c.max_position_embeddings = j.at("max_position_embeddings").get<int64_t>();
    c.tie_word_embeddings = j.at("tie_word_embeddings").get<bool>();
    c.attention_bias = j.at("attention_bias").get<bool>();
    c.bos_token_id = j.at("bos_token_id").get<int64_t>();
    c.eos_token_id = j.at("eos_token_id").get<int64_t>();
    f.weights.model_name = j.at("fixture").at("name").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/kvgate_config.json: ", e.what()));
  }
  f.weights.source = dir;
  absl::StatusOr<std::map<std::string, torch::Tensor>> weights =
      LoadTensorDict(dir + "/weights.pt");
  if (!weights.ok()) return weights.status();
  f.weights.tensors = *std::move(weights);
  absl::StatusOr<std::map<std::string, torch::Tensor>> expected =
      LoadTensorDict(dir + "/expected.pt");
  if (!expected.ok()) return expected.status();
  for (auto [name, field] : std::vector<std::pair<const char*, torch::Tensor*>>{
           {"prompt_ids", &f.prompt_ids},
           {"prefill_logits", &f.prefill_logits},
           {"decode_tokens_in", &f.decode_tokens_in},
           {"decode_logits", &f.decode_logits},
           {"greedy_tokens", &f.greedy_tokens}}) {
    auto it = expected->find(name);
    if (it == expected->end()) {
      return absl::InvalidArgumentError(absl::StrCat(dir, "/expected.pt lacks ", name));
    }
    *field = it->second;
  }
  return f;
}

double RelativeError(const torch::Tensor& actual, const torch::Tensor& expected) {
  const torch::Tensor a = actual.to(torch::kCPU, torch::kFloat64);
  const torch::Tensor e = expected.to(torch::kCPU, torch::kFloat64);
  return ((a - e).abs().max() / e.abs().max()).item<double>();
}

std::vector<int64_t> ToVector(const torch::Tensor& ids) {
  const torch::Tensor x = ids.to(torch::kCPU, torch::kLong).contiguous();
  return std::vector<int64_t>(x.data_ptr<int64_t>(), x.data_ptr<int64_t>() + x.numel());
}

absl::StatusOr<Model> LoadFixtureModel(const std::string& name) {
  absl::StatusOr<Fixture> fixture = LoadFixture(FixtureDir(name));
  if (!fixture.ok()) return fixture.status();
  return Model::Create(fixture->weights);
}

std::vector<int64_t> FixturePrompt(int64_t n) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(3 + (i * 37) % 120);
  return ids;
}

absl::StatusOr<kernels::EncodedKv> IdentityKvFormat::Encode(const torch::Tensor& x,
                                                            kernels::KvRole role) const {
  return kernels::EncodedKv{name(), role, x.sizes().vec(), {{"x", x.to(torch::kFloat32).clone()}}};
}

absl::StatusOr<torch::Tensor> IdentityKvFormat::Decode(const kernels::EncodedKv& e) const {
  return e.parts.at("x");
}

int64_t IdentityKvFormat::Bytes(int64_t tokens, int64_t kv_heads, int64_t head_dim,
                                kernels::KvRole) const {
  return 4 * tokens * kv_heads * head_dim;
}

}  // namespace kvgate::runtime
