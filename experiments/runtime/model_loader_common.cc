// See model_loader_common.h.

#include "experiments/runtime/model_loader_common.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kvgate::runtime {

std::map<std::string, ExpectedTensor> ExpectedTensors(const ModelConfig& c) {
  std::map<std::string, ExpectedTensor> out;
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;
  out["model.embed_tokens.weight"] = {{c.vocab_size, c.hidden_size}, "vocab_size, hidden_size"};
  out["model.norm.weight"] = {{c.hidden_size}, "hidden_size"};
  if (!c.tie_word_embeddings)
    out["lm_head.weight"] = {{c.vocab_size, c.hidden_size}, "vocab_size, hidden_size"};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    out[p + "input_layernorm.weight"] = {{c.hidden_size}, "hidden_size"};
    out[p + "post_attention_layernorm.weight"] = {{c.hidden_size}, "hidden_size"};
    out[p + "self_attn.q_proj.weight"] = {{q_dim, c.hidden_size},
                                          "num_attention_heads * head_dim, hidden_size"};
    out[p + "self_attn.k_proj.weight"] = {{kv_dim, c.hidden_size},
                                          "num_key_value_heads * head_dim, hidden_size"};
    out[p + "self_attn.v_proj.weight"] = {{kv_dim, c.hidden_size},
                                          "num_key_value_heads * head_dim, hidden_size"};
    out[p + "self_attn.o_proj.weight"] = {{c.hidden_size, q_dim},
                                          "hidden_size, num_attention_heads * head_dim"};
    if (c.attention_bias) {
      out[p + "self_attn.q_proj.bias"] = {{q_dim}, "num_attention_heads * head_dim"};
      out[p + "self_attn.k_proj.bias"] = {{kv_dim}, "num_key_value_heads * head_dim"};
      out[p + "self_attn.v_proj.bias"] = {{kv_dim}, "num_key_value_heads * head_dim"};
    }
    out[p + "mlp.gate_proj.weight"] = {{c.intermediate_size, c.hidden_size},
                                       "intermediate_size, hidden_size"};
    out[p + "mlp.up_proj.weight"] = {{c.intermediate_size, c.hidden_size},
                                     "intermediate_size, hidden_size"};
    out[p + "mlp.down_proj.weight"] = {{c.hidden_size, c.intermediate_size},
                                       "hidden_size, intermediate_size"};
  }
  return out;
}

absl::Status CheckModelConfig(const ModelConfig& c, absl::string_view source) {
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
  };
  if (c.architecture != "llama" && c.architecture != "qwen2") {
    return absl::UnimplementedError(absl::StrCat(source, ": architecture \"", c.architecture,
                                                 "\" is not implemented (llama, qwen2 are)"));
  }
  for (auto [name, value] : {std::pair<const char*, int64_t>{"vocab_size", c.vocab_size},
                             {"hidden_size", c.hidden_size},
                             {"intermediate_size", c.intermediate_size},
                             {"num_hidden_layers", c.num_hidden_layers},
                             {"num_attention_heads", c.num_attention_heads},
                             {"num_key_value_heads", c.num_key_value_heads},
                             {"head_dim", c.head_dim}}) {
    if (value <= 0)
      return error(absl::StrCat(name, " is ", value, ", expected a positive integer"));
    if (value > (int64_t{1} << 32))
      return error(absl::StrCat(name, " is ", value, ", implausibly large"));
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return error(absl::StrCat("num_attention_heads ", c.num_attention_heads,
                              " is not a multiple of num_key_value_heads ", c.num_key_value_heads));
  }
  if (c.head_dim % 2 != 0)
    return error(absl::StrCat("head_dim ", c.head_dim, " is odd (rotary embeddings need pairs)"));
  if (!(c.rms_norm_eps > 0) || !(c.rope_theta > 0)) {
    return error(absl::StrCat("rms_norm_eps (", c.rms_norm_eps, ") and rope_theta (", c.rope_theta,
                              ") must be positive"));
  }
  if (c.bos_token_id >= c.vocab_size || c.eos_token_id >= c.vocab_size) {
    return error(absl::StrCat("bos_token_id ", c.bos_token_id, " or eos_token_id ", c.eos_token_id,
                              " is outside the vocabulary of ", c.vocab_size));
  }
  return absl::OkStatus();
}

absl::Status CheckModelWeights(const ModelWeights& w) {
  if (absl::Status s = CheckModelConfig(w.config, w.source); !s.ok()) return s;
  const std::map<std::string, ExpectedTensor> expected = ExpectedTensors(w.config);
  for (const auto& [name, tensor] : w.tensors) {
    if (expected.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          w.source, ": unexpected tensor ", name,
          " (not implied by the config: ", w.config.architecture, ", ", w.config.num_hidden_layers,
          " layers, tie_word_embeddings=", w.config.tie_word_embeddings,
          ", attention_bias=", w.config.attention_bias, ")"));
    }
  }
  for (const auto& [name, e] : expected) {
    auto it = w.tensors.find(name);
    if (it == w.tensors.end()) {
      return absl::InvalidArgumentError(absl::StrCat(w.source, ": missing tensor ", name,
                                                     " (expected shape [",
                                                     absl::StrJoin(e.shape, ", "), "])"));
    }
    const torch::Tensor& t = it->second;
    if (!t.defined())
      return absl::InvalidArgumentError(absl::StrCat(w.source, ": tensor ", name, " is undefined"));
    if (t.sizes().vec() != e.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          w.source, ": tensor ", name, " has shape [", absl::StrJoin(t.sizes().vec(), ", "),
          "], expected [", absl::StrJoin(e.shape, ", "), "] (", e.dims, ")"));
    }
    const auto dtype = t.scalar_type();
    if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16) {
      return absl::InvalidArgumentError(absl::StrCat(w.source, ": tensor ", name, " has dtype ",
                                                     c10::toString(dtype),
                                                     ", expected float32, bfloat16 or float16"));
    }
  }
  return absl::OkStatus();
}

double ShortestDouble(float value) {
  char buffer[32];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, static_cast<double>(value));
    const double parsed = std::strtod(buffer, nullptr);
    if (static_cast<float>(parsed) == value) return parsed;
  }
  return value;
}

}  // namespace kvgate::runtime
