// See model_configs.h.

#include "experiments/runtime/model_configs.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kvgate::runtime {
namespace {

// One function a shape, every field set in config.json's order: the functions look alike because
// they are rows of one table (duplicates lists them as a pair), not repeated logic.

// SmolLM2-135M(-Instruct), the embedded default model's config.
ModelConfig SmolLM2_135M() {
  ModelConfig c;
  c.architecture = "llama";
  c.vocab_size = 49152;
  c.hidden_size = 576;
  c.intermediate_size = 1536;
  c.num_hidden_layers = 30;
  c.num_attention_heads = 9;
  c.num_key_value_heads = 3;
  c.head_dim = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 100000.0;
  c.max_position_embeddings = 8192;
  c.tie_word_embeddings = true;
  c.attention_bias = false;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  return c;
}

// Qwen2.5-7B-Instruct's config.json.
ModelConfig Qwen25_7B() {
  ModelConfig c;
  c.architecture = "qwen2";
  c.vocab_size = 152064;
  c.hidden_size = 3584;
  c.intermediate_size = 18944;
  c.num_hidden_layers = 28;
  c.num_attention_heads = 28;
  c.num_key_value_heads = 4;
  c.head_dim = 128;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.max_position_embeddings = 32768;
  c.tie_word_embeddings = false;
  c.attention_bias = true;
  c.bos_token_id = 151643;
  c.eos_token_id = 151645;
  return c;
}

// A three-layer Qwen2 shape with grouped heads, for CPU tests.
ModelConfig TinyQwen2() {
  ModelConfig c;
  c.architecture = "qwen2";
  c.vocab_size = 96;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 512;
  c.attention_bias = true;
  c.rope_theta = 10000;
  return c;
}

// A two-layer Qwen2 shape at head_dim 128 (the fused TurboQuant CUDA kernels take only 128), for
// the CUDA decode step's tests.
ModelConfig TinyQwen2Head128() {
  ModelConfig c;
  c.architecture = "qwen2";
  c.vocab_size = 640;
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 128;
  c.rope_theta = 1000000.0;
  c.attention_bias = true;
  return c;
}

}  // namespace

const std::vector<NamedModelConfig>& ModelConfigs() {
  static const auto* configs = new std::vector<NamedModelConfig>{
      {"smollm2-135m", SmolLM2_135M()},
      {"qwen2.5-7b", Qwen25_7B()},
      {"tiny-qwen2", TinyQwen2()},
      {"tiny-qwen2-head128", TinyQwen2Head128()},
  };
  return *configs;
}

absl::StatusOr<ModelConfig> ModelConfigNamed(absl::string_view name) {
  std::vector<std::string> names;
  for (const NamedModelConfig& entry : ModelConfigs()) {
    if (entry.name == name) return entry.config;
    names.push_back(entry.name);
  }
  return absl::NotFoundError(
      absl::StrCat("no model shape named '", name, "' (known: ", absl::StrJoin(names, ", "), ")"));
}

}  // namespace kvgate::runtime
