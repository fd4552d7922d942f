// Loads a GGUF file of the llama (or qwen2) architecture as ModelWeights: metadata to ModelConfig,
// every tensor dequantized to float32 (F32, F16, BF16, Q8_0, Q4_0, Q4_1; gguf.h) under its Hugging
// Face name, with llama.cpp's permutation of attn_q/attn_k rows undone so the model can use
// rotate-half RoPE.
//
// Names: token_embd -> model.embed_tokens, output_norm -> model.norm, output -> lm_head (absent:
// tied embeddings), blk.N.attn_norm -> model.layers.N.input_layernorm, blk.N.ffn_norm ->
// post_attention_layernorm, blk.N.attn_{q,k,v,output} -> self_attn.{q,k,v,o}_proj,
// blk.N.ffn_{gate,up,down} -> mlp.{gate,up,down}_proj (.weight and .bias alike).
//
// The permutation: llama.cpp's convert_hf_to_gguf.py writes a llama q (or k) weight W of
// [n_head * head_dim, hidden] as W.reshape(n_head, 2, head_dim/2, hidden).swapaxes(1, 2), so that
// rotary pairs are adjacent rows (GPT-J style); UndoGgufRopePermutation applies the inverse,
// reshape(n_head, head_dim/2, 2, hidden).swapaxes(1, 2), with n_head = attention heads for q and
// key/value heads for k. qwen2 GGUFs are written unpermuted (NEOX RoPE) and are left as they are.
//
// Metadata: {arch}.block_count, .embedding_length, .feed_forward_length, .attention.head_count,
// .attention.layer_norm_rms_epsilon are required; .attention.head_count_kv (default: heads),
// .attention.key_length (default hidden/heads), .rope.freq_base (10000), .context_length,
// .vocab_size (default: the token list's length) optional; tokenizer.ggml.bos/eos_token_id.
// Refused (Unimplemented): rope scaling, a rope dimension other than head_dim, other
// architectures, tensors this mapping does not know, quantization types other than the six.
//
// weights_note says what was dequantized, e.g. for the embedded SmolLM2:
//   "Q4_1-dequantized to float32 (GGUF tensor types: 210 Q4_1, 61 F32, 1 Q8_0)".
//
// Usage:
//   absl::StatusOr<kvgate::runtime::ModelWeights> w = kvgate::runtime::LoadGgufModel(path);

#ifndef KVGATE_EXPERIMENTS_RUNTIME_GGUF_WEIGHTS_H_
#define KVGATE_EXPERIMENTS_RUNTIME_GGUF_WEIGHTS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experiments/runtime/gguf.h"
#include "experiments/runtime/model_loader_common.h"
#include "experiments/runtime/model_weights.h"

namespace kvgate::runtime {

absl::StatusOr<ModelConfig> GgufModelConfig(const GgufFile& gguf);

absl::StatusOr<ModelWeights> LoadGgufModel(const std::string& path,
                                           const LoadOptions& options = {});
absl::StatusOr<ModelWeights> GgufToModelWeights(const GgufFile& gguf,
                                                const LoadOptions& options = {});

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight"; InvalidArgument if unknown.
absl::StatusOr<std::string> GgufToHfName(absl::string_view gguf_name);

// A tensor's values in float32, shape dims reversed ([ne1, ne0]), rows as stored (permuted).
absl::StatusOr<torch::Tensor> DequantizeToTensor(const GgufTensorInfo& tensor);

// The inverse of convert_hf_to_gguf.py's permute for a weight [n_head * head_dim, ...] or a bias
// [n_head * head_dim]; returns a new contiguous tensor.
torch::Tensor UndoGgufRopePermutation(const torch::Tensor& w, int64_t n_head);

// "SmolLM2-135M-Instruct" for ".../SmolLM2-135M-Instruct.Q4_1.gguf".
std::string GgufModelName(const std::string& path);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_GGUF_WEIGHTS_H_
