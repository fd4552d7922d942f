// What every loader of experiments/runtime produces and the model consumes: a decoder-only
// Llama-family or Qwen2 configuration and its tensors under Hugging Face names.
//
// Loaders (a Hugging Face snapshot folder, a GGUF file) return ModelWeights; Model (model.h) is
// built from one. Tensor names follow transformers' LlamaForCausalLM / Qwen2ForCausalLM:
//   model.embed_tokens.weight                      [vocab, hidden]
//   model.layers.{i}.input_layernorm.weight        [hidden]
//   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight   q,o: [heads*head_dim, hidden] / [hidden,
//   heads*head_dim]
//                                                   k,v: [kv_heads*head_dim, hidden]
//   model.layers.{i}.self_attn.{q,k,v}_proj.bias   Qwen2 only (attention_bias)
//   model.layers.{i}.post_attention_layernorm.weight   [hidden]
//   model.layers.{i}.mlp.{gate,up}_proj.weight     [intermediate, hidden]
//   model.layers.{i}.mlp.down_proj.weight          [hidden, intermediate]
//   model.norm.weight                              [hidden]
//   lm_head.weight                                 [vocab, hidden]; absent when tied
// Rotary embeddings use the Hugging Face (rotate-half) layout; a GGUF loader undoes llama.cpp's
// permutation of q/k rows so the same model code serves both.

#ifndef KVGATE_EXPERIMENTS_RUNTIME_MODEL_WEIGHTS_H_
#define KVGATE_EXPERIMENTS_RUNTIME_MODEL_WEIGHTS_H_

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>

namespace kvgate::runtime {

struct ModelConfig {
  std::string architecture;  // "llama" or "qwen2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless the config says otherwise
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (Qwen2)
  int64_t bos_token_id = -1;    // -1 when the model has none
  int64_t eos_token_id = -1;
};

struct ModelWeights {
  ModelConfig config;
  std::map<std::string, torch::Tensor> tensors;  // Hugging Face names, see above
  std::string model_name;      // e.g. "SmolLM2-135M-Instruct" or the snapshot folder's name
  std::string source;          // the path loaded
  std::string weights_sha256;  // of the weight file(s) as read, for records
  std::string weights_note;    // e.g. "Q4_1-dequantized to float32"; empty for plain weights
};

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_MODEL_WEIGHTS_H_
