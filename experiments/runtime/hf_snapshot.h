// Loads a Hugging Face snapshot folder (LlamaForCausalLM or Qwen2ForCausalLM) as ModelWeights:
//   config.json                     -> ModelConfig (ParseHfConfig)
//   model.safetensors               one file, or
//   model.safetensors.index.json    {"weight_map": {tensor: shard file}} and its shards
// Tensors keep their stored dtype (Qwen2.5-7B-Instruct: bfloat16, ~15 GB) and point into the
// memory-mapped shards (copy-on-write, so in-place writes never reach the files): nothing is read
// until used, and each byte is read from disk once. weights_sha256 is the file's sha256, or for
// shards the sha256 of their `sha256sum` listing in name order (what
// `sha256sum model-*.safetensors | sha256sum` prints). tokenizer.json is read by LoadTokenizer
// (tokenizer.h), the chat template by LoadChatTemplate (chat_template.h).
//
// config.json: required architectures[0], vocab_size, hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads, rms_norm_eps; optional num_key_value_heads (default:
// heads), head_dim (default hidden/heads), rope_theta (10000), max_position_embeddings,
// tie_word_embeddings (false), attention_bias (Llama; Qwen2 always has q/k/v biases),
// bos_token_id, eos_token_id (a list gives its first). Refused as Unimplemented: rope_scaling
// other than null, use_sliding_window true, hidden_act other than silu, mlp_bias true.
// A tied snapshot's stored lm_head.weight is dropped; rotary_emb.inv_freq buffers are ignored.
//
// Usage:
//   absl::StatusOr<kvgate::runtime::ModelWeights> w =
//       kvgate::runtime::LoadHfSnapshot("/models/Qwen2.5-7B-Instruct");

#ifndef KVGATE_EXPERIMENTS_RUNTIME_HF_SNAPSHOT_H_
#define KVGATE_EXPERIMENTS_RUNTIME_HF_SNAPSHOT_H_

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/runtime/model_loader_common.h"
#include "experiments/runtime/model_weights.h"

namespace kvgate::runtime {

// config.json's fields as a ModelConfig; errors name `source` and the field.
absl::StatusOr<ModelConfig> ParseHfConfig(const nlohmann::json& config, const std::string& source);

absl::StatusOr<ModelWeights> LoadHfSnapshot(const std::string& dir,
                                            const LoadOptions& options = {});

// The model's name from its folder: "Qwen2.5-7B-Instruct" for .../Qwen2.5-7B-Instruct and for a
// hub cache folder .../models--Qwen--Qwen2.5-7B-Instruct/snapshots/<hash>.
std::string SnapshotModelName(const std::string& dir);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_HF_SNAPSHOT_H_
