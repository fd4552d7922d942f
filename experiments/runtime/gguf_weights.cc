// See gguf_weights.h.

#include "experiments/runtime/gguf_weights.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gates/sha256.h"

namespace kvgate::runtime {
namespace {

constexpr std::pair<absl::string_view, absl::string_view> kLayerNames[] = {
    {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"},
    {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

}  // namespace

absl::StatusOr<std::string> GgufToHfName(absl::string_view name) {
  std::string suffix;
  absl::string_view stem = name;
  for (absl::string_view s : {".weight", ".bias"}) {
    if (absl::EndsWith(name, s)) {
      suffix = std::string(s);
      stem = name.substr(0, name.size() - s.size());
    }
  }
  if (!suffix.empty()) {
    if (stem == "token_embd" && suffix == ".weight")
      return std::string("model.embed_tokens.weight");
    if (stem == "output_norm" && suffix == ".weight") return std::string("model.norm.weight");
    if (stem == "output" && suffix == ".weight") return std::string("lm_head.weight");
    if (absl::StartsWith(stem, "blk.")) {
      absl::string_view rest = stem.substr(4);
      const size_t dot = rest.find('.');
      int layer = -1;
      if (dot != absl::string_view::npos && absl::SimpleAtoi(rest.substr(0, dot), &layer) &&
          layer >= 0 && absl::StrCat(layer) == rest.substr(0, dot)) {
        const absl::string_view part = rest.substr(dot + 1);
        for (const auto& [gguf, hf] : kLayerNames) {
          if (part == gguf) return absl::StrCat("model.layers.", layer, ".", hf, suffix);
        }
      }
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("tensor \"", name, "\" has no Hugging Face name in this loader"));
}

absl::StatusOr<ModelConfig> GgufModelConfig(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  ModelConfig c;
  absl::StatusOr<std::string> arch = gguf.GetString("general.architecture");
  if (!arch.ok()) return arch.status();
  if (*arch != "llama" && *arch != "qwen2") {
    return absl::UnimplementedError(absl::StrCat(path, ": general.architecture \"", *arch,
                                                 "\" is not implemented (llama, qwen2 are)"));
  }
  c.architecture = *arch;
  const std::string p = *arch + ".";
  auto get = [&](const std::string& key, int64_t* out) -> absl::Status {
    absl::StatusOr<uint64_t> v = gguf.GetUint(key);
    if (!v.ok()) return v.status();
    if (*v == 0 || *v > (uint64_t{1} << 32)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": metadata key \"", key, "\" is ", *v, ", expected a positive size"));
    }
    *out = static_cast<int64_t>(*v);
    return absl::OkStatus();
  };
  for (auto [key, out] : {std::pair<std::string, int64_t*>{p + "block_count", &c.num_hidden_layers},
                          {p + "embedding_length", &c.hidden_size},
                          {p + "feed_forward_length", &c.intermediate_size},
                          {p + "attention.head_count", &c.num_attention_heads}}) {
    if (absl::Status s = get(key, out); !s.ok()) return s;
  }
  c.num_key_value_heads = c.num_attention_heads;
  if (gguf.Find(p + "attention.head_count_kv") != nullptr) {
    if (absl::Status s = get(p + "attention.head_count_kv", &c.num_key_value_heads); !s.ok())
      return s;
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  if (gguf.Find(p + "attention.key_length") != nullptr) {
    if (absl::Status s = get(p + "attention.key_length", &c.head_dim); !s.ok()) return s;
    int64_t value_length = c.head_dim;
    if (gguf.Find(p + "attention.value_length") != nullptr) {
      if (absl::Status s = get(p + "attention.value_length", &value_length); !s.ok()) return s;
    }
    if (value_length != c.head_dim) {
      return absl::UnimplementedError(absl::StrCat(path, ": attention.key_length ", c.head_dim,
                                                   " differs from attention.value_length ",
                                                   value_length));
    }
  } else if (c.hidden_size % c.num_attention_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", p, "embedding_length ", c.hidden_size,
                     " is not a multiple of the head count ", c.num_attention_heads));
  }
  if (gguf.Find(p + "rope.dimension_count") != nullptr) {
    int64_t rope_dims = 0;
    if (absl::Status s = get(p + "rope.dimension_count", &rope_dims); !s.ok()) return s;
    if (rope_dims != c.head_dim) {
      return absl::UnimplementedError(absl::StrCat(path, ": ", p, "rope.dimension_count ",
                                                   rope_dims, " is not head_dim ", c.head_dim,
                                                   " (partial rotary is not implemented)"));
    }
  }
  for (const char* scaling : {"rope.scaling.type", "rope.scaling.factor"}) {
    const GgufValue* v = gguf.Find(p + scaling);
    if (v != nullptr && !(v->type == GgufValueType::kString && v->string_value == "none") &&
        !(v->type == GgufValueType::kFloat32 && v->float_value == 1.0)) {
      return absl::UnimplementedError(
          absl::StrCat(path, ": ", p, scaling, " is set: RoPE scaling is not implemented"));
    }
  }
  absl::StatusOr<double> eps = gguf.GetFloat(p + "attention.layer_norm_rms_epsilon");
  if (!eps.ok()) return eps.status();
  c.rms_norm_eps = ShortestDouble(static_cast<float>(*eps));
  if (gguf.Find(p + "rope.freq_base") != nullptr) {
    absl::StatusOr<double> theta = gguf.GetFloat(p + "rope.freq_base");
    if (!theta.ok()) return theta.status();
    c.rope_theta = ShortestDouble(static_cast<float>(*theta));
  }
  if (gguf.Find(p + "context_length") != nullptr) {
    if (absl::Status s = get(p + "context_length", &c.max_position_embeddings); !s.ok()) return s;
  }
  if (gguf.Find(p + "vocab_size") != nullptr) {
    if (absl::Status s = get(p + "vocab_size", &c.vocab_size); !s.ok()) return s;
  } else if (gguf.Find("tokenizer.ggml.tokens") != nullptr) {
    absl::StatusOr<const std::vector<std::string>*> tokens =
        gguf.GetStringArray("tokenizer.ggml.tokens");
    if (!tokens.ok()) return tokens.status();
    c.vocab_size = static_cast<int64_t>((*tokens)->size());
  } else if (const GgufTensorInfo* embd = gguf.FindTensor("token_embd.weight");
             embd != nullptr && embd->dims.size() == 2) {
    c.vocab_size = embd->dims[1];
  }
  c.tie_word_embeddings = gguf.FindTensor("output.weight") == nullptr;
  c.attention_bias = *arch == "qwen2" || gguf.FindTensor("blk.0.attn_q.bias") != nullptr;
  for (auto [key, out] :
       {std::pair<const char*, int64_t*>{"tokenizer.ggml.bos_token_id", &c.bos_token_id},
        {"tokenizer.ggml.eos_token_id", &c.eos_token_id}}) {
    if (gguf.Find(key) == nullptr) continue;
    absl::StatusOr<uint64_t> id = gguf.GetUint(key);
    if (!id.ok()) return id.status();
    *out = static_cast<int64_t>(*id);
  }
  if (absl::Status s = CheckModelConfig(c, path); !s.ok()) return s;
  return c;
}

absl::StatusOr<torch::Tensor> DequantizeToTensor(const GgufTensorInfo& t) {
  if (!GgmlTypeDequantizable(t.type)) {
    return absl::UnimplementedError(absl::StrCat(
        "tensor \"", t.name, "\" is ", GgmlTypeName(t.type),
        ": dequantizing it is not implemented (F32, F16, BF16, Q8_0, Q4_0, Q4_1 are)"));
  }
  torch::Tensor out = torch::empty(t.TorchShape(), torch::kFloat32);
  if (absl::Status s = DequantizeGgufTensor(t, out.data_ptr<float>()); !s.ok()) return s;
  return out;
}

torch::Tensor UndoGgufRopePermutation(const torch::Tensor& w, int64_t n_head) {
  const int64_t rows = w.size(0);
  std::vector<int64_t> shape = {n_head, rows / n_head / 2, 2};
  for (int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(1, 2).reshape(w.sizes()).contiguous();
}

std::string GgufModelName(const std::string& path) {
  std::string name = path.substr(path.rfind('/') + 1);
  if (absl::EndsWith(name, ".gguf")) name.resize(name.size() - 5);
  const size_t dot = name.rfind('.');
  if (dot != std::string::npos) {
    const std::string tail = absl::AsciiStrToUpper(name.substr(dot + 1));
    for (uint32_t type = 0; type < 64; ++type) {
      if (GgmlTypeName(type) == tail) {
        name.resize(dot);
        break;
      }
    }
  }
  return name;
}

absl::StatusOr<ModelWeights> GgufToModelWeights(const GgufFile& gguf, const LoadOptions& options) {
  const std::string& path = gguf.path();
  ModelWeights weights;
  weights.source = path;
  weights.model_name = GgufModelName(path);
  absl::StatusOr<ModelConfig> config = GgufModelConfig(gguf);
  if (!config.ok()) return config.status();
  weights.config = *config;

  const std::vector<GgufTensorInfo>& infos = gguf.tensors();
  std::vector<std::string> names(infos.size());
  std::map<uint32_t, int> type_counts;
  for (size_t i = 0; i < infos.size(); ++i) {
    absl::StatusOr<std::string> name = GgufToHfName(infos[i].name);
    if (!name.ok())
      return absl::UnimplementedError(absl::StrCat(path, ": ", name.status().message()));
    if (!GgmlTypeDequantizable(infos[i].type)) {
      return absl::UnimplementedError(
          absl::StrCat(path, ": tensor \"", infos[i].name, "\" is ", GgmlTypeName(infos[i].type),
                       "; only F32, F16, BF16, Q8_0, Q4_0, Q4_1 are implemented"));
    }
    names[i] = *std::move(name);
    ++type_counts[infos[i].type];
  }
  // Dequantize in parallel, one tensor per task.
  std::vector<torch::Tensor> tensors(infos.size());
  std::vector<absl::Status> statuses(infos.size());
  at::parallel_for(0, static_cast<int64_t>(infos.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      absl::StatusOr<torch::Tensor> t = DequantizeToTensor(infos[i]);
      if (t.ok()) {
        tensors[i] = *std::move(t);
      } else {
        statuses[i] = t.status();
      }
    }
  });
  const bool permuted = weights.config.architecture == "llama";
  for (size_t i = 0; i < infos.size(); ++i) {
    if (!statuses[i].ok())
      return absl::Status(statuses[i].code(), absl::StrCat(path, ": ", statuses[i].message()));
    torch::Tensor t = std::move(tensors[i]);
    if (permuted && (absl::StrContains(names[i], ".self_attn.q_proj.") ||
                     absl::StrContains(names[i], ".self_attn.k_proj."))) {
      const bool is_q = absl::StrContains(names[i], ".q_proj.");
      const int64_t n_head =
          is_q ? weights.config.num_attention_heads : weights.config.num_key_value_heads;
      if (t.dim() < 1 || t.size(0) != n_head * weights.config.head_dim) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": tensor \"", infos[i].name, "\" has ", t.dim() < 1 ? 0 : t.size(0),
            " rows, expected ", n_head * weights.config.head_dim, " (heads * head_dim)"));
      }
      t = UndoGgufRopePermutation(t, n_head);
    }
    weights.tensors.emplace(names[i], std::move(t));
  }

  // What was dequantized, most common quantized type first.
  std::vector<std::pair<int, uint32_t>> by_count;
  for (const auto& [type, count] : type_counts) by_count.emplace_back(count, type);
  std::sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::string> parts;
  std::string main_type;
  bool quantized = false;
  for (const auto& [count, type] : by_count) {
    parts.push_back(absl::StrCat(count, " ", GgmlTypeName(type)));
    const bool q = type == static_cast<uint32_t>(GgmlType::kQ8_0) ||
                   type == static_cast<uint32_t>(GgmlType::kQ4_0) ||
                   type == static_cast<uint32_t>(GgmlType::kQ4_1);
    if (q && !quantized) main_type = GgmlTypeName(type);
    if (!q && main_type.empty() && type != static_cast<uint32_t>(GgmlType::kF32))
      main_type = GgmlTypeName(type);
    quantized = quantized || q;
  }
  if (!main_type.empty()) {
    weights.weights_note =
        absl::StrCat(main_type, quantized ? "-dequantized" : "-converted",
                     " to float32 (GGUF tensor types: ", absl::StrJoin(parts, ", "), ")");
  }
  if (absl::Status s = CheckModelWeights(weights); !s.ok()) return s;
  if (options.compute_sha256) weights.weights_sha256 = gates::Sha256Hex(gguf.file()->bytes());
  return weights;
}

absl::StatusOr<ModelWeights> LoadGgufModel(const std::string& path, const LoadOptions& options) {
  absl::StatusOr<GgufFile> gguf = GgufFile::Open(path);
  if (!gguf.ok()) return gguf.status();
  return GgufToModelWeights(*gguf, options);
}

}  // namespace kvgate::runtime
