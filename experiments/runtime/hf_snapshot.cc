// See hf_snapshot.h.

#include "experiments/runtime/hf_snapshot.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "experiments/runtime/json_limits.h"
#include "experiments/runtime/safetensors.h"
#include "gates/sha256.h"

namespace kvgate::runtime {
namespace {

bool IsDirectory(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool IsFile(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

absl::StatusOr<torch::ScalarType> TorchDtype(const SafetensorsTensor& t, const std::string& path) {
  switch (t.dtype) {
    case SafetensorsDtype::kF32:
      return torch::kFloat32;
    case SafetensorsDtype::kBF16:
      return torch::kBFloat16;
    case SafetensorsDtype::kF16:
      return torch::kFloat16;
    default:
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor ", t.name, " has dtype ",
                                                     SafetensorsDtypeName(t.dtype),
                                                     ", expected F32, BF16 or F16"));
  }
}

// A tensor over the mapped bytes (the mapping lives as long as the tensor), or a copy when the
// bytes are not aligned to the element size.
absl::StatusOr<torch::Tensor> MappedTensor(const SafetensorsTensor& t,
                                           const std::shared_ptr<MappedFile>& file) {
  absl::StatusOr<torch::ScalarType> dtype = TorchDtype(t, file->path());
  if (!dtype.ok()) return dtype.status();
  const auto options = torch::TensorOptions().dtype(*dtype);
  const size_t element = SafetensorsDtypeBytes(t.dtype);
  if (reinterpret_cast<uintptr_t>(t.data) % element != 0 || t.numel == 0) {
    torch::Tensor copy = torch::empty(t.shape, options);
    if (t.numel > 0) std::memcpy(copy.data_ptr(), t.data, t.end - t.begin);
    return copy;
  }
  std::shared_ptr<MappedFile> keep = file;
  return torch::from_blob(
      t.data, t.shape, [keep](void*) {}, options);
}

bool PlainFileName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name != "." && name != ".." &&
         absl::EndsWith(name, ".safetensors");
}

// RoPE's base frequency. transformers 5 writes `rope_parameters: {rope_theta, rope_type}`,
// transformers 4 a top-level `rope_theta` and `rope_scaling` (null for plain RoPE); both are read.
// ModelConfig has plain RoPE only, so a rope_type other than "default" (yarn, linear, dynamic,
// llama3, ...) or a parameter plain RoPE does not have is refused: running it as plain RoPE would
// silently give other logits.
absl::StatusOr<double> ParseRopeTheta(const JsonObject& f, const nlohmann::json& json) {
  absl::StatusOr<double> top_level = f.DoubleOr("rope_theta", 10000.0);
  if (!top_level.ok()) return top_level.status();
  double theta = *top_level;
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    if (!f.Has(key)) continue;
    const nlohmann::json& params = json[key];
    if (!params.is_object()) {
      return f.FieldError(key, absl::StrCat("expected an object, got ", JsonTypeName(params)));
    }
    const JsonObject p(params, f.source());
    const auto unimplemented = [&](const std::string& field, const std::string& what) {
      return absl::UnimplementedError(absl::StrCat(
          f.source(), ": field \"", key, ".", field, "\": ", what,
          " is not implemented (plain RoPE only: rope_type \"default\" with rope_theta)"));
    };
    // "type" is the older spelling of "rope_type".
    const char* type_key = p.Has("rope_type") ? "rope_type" : p.Has("type") ? "type" : nullptr;
    if (type_key == nullptr) return unimplemented("rope_type", "a RoPE with no rope_type");
    if (!params[type_key].is_string() || params[type_key] != "default") {
      return unimplemented(type_key, params[type_key].dump());
    }
    for (const auto& [name, value] : params.items()) {
      if (name != "rope_type" && name != "type" && name != "rope_theta" && !value.is_null()) {
        return unimplemented(name, value.dump());
      }
    }
    if (!p.Has("rope_theta")) continue;
    if (!params["rope_theta"].is_number() || params["rope_theta"].get<double>() <= 0) {
      return f.FieldError(absl::StrCat(key, ".rope_theta"),
                          absl::StrCat("expected a positive number, got ", params["rope_theta"].dump()));
    }
    const double nested = params["rope_theta"].get<double>();
    if (f.Has("rope_theta") && nested != *top_level) {
      return f.FieldError(absl::StrCat(key, ".rope_theta"),
                          absl::StrCat(nested, " differs from the top-level rope_theta ", *top_level));
    }
    theta = nested;
  }
  return theta;
}

}  // namespace

absl::StatusOr<ModelConfig> ParseHfConfig(const nlohmann::json& json, const std::string& source) {
  JsonObject f(json, source);
  if (absl::Status s = f.CheckIsObject("config.json"); !s.ok()) return s;
  ModelConfig c;
  absl::StatusOr<const nlohmann::json*> architectures = f.Get("architectures");
  if (!architectures.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(architectures.status().message(),
                     " (expected [\"LlamaForCausalLM\"] or [\"Qwen2ForCausalLM\"])"));
  }
  if (!(*architectures)->is_array() || (*architectures)->empty() ||
      !(**architectures)[0].is_string()) {
    return f.FieldError("architectures", "expected a non-empty array of strings");
  }
  const std::string arch = (**architectures)[0].get<std::string>();
  if (arch == "LlamaForCausalLM") {
    c.architecture = "llama";
  } else if (arch == "Qwen2ForCausalLM") {
    c.architecture = "qwen2";
  } else {
    return absl::UnimplementedError(
        absl::StrCat(source, ": field \"architectures\": ", arch,
                     " is not implemented (LlamaForCausalLM, Qwen2ForCausalLM are)"));
  }
  auto positive = [&](const char* key, int64_t* out) -> absl::Status {
    absl::StatusOr<int64_t> v = f.PositiveInt(key);
    if (!v.ok()) return v.status();
    *out = *v;
    return absl::OkStatus();
  };
  for (auto [key, out] : {std::pair<const char*, int64_t*>{"vocab_size", &c.vocab_size},
                          {"hidden_size", &c.hidden_size},
                          {"intermediate_size", &c.intermediate_size},
                          {"num_hidden_layers", &c.num_hidden_layers},
                          {"num_attention_heads", &c.num_attention_heads}}) {
    if (absl::Status s = positive(key, out); !s.ok()) return s;
  }
  absl::StatusOr<int64_t> kv = f.PositiveIntOr("num_key_value_heads", c.num_attention_heads);
  if (!kv.ok()) return kv.status();
  c.num_key_value_heads = *kv;
  if (!f.Has("head_dim") && c.hidden_size % c.num_attention_heads != 0) {
    return f.FieldError("hidden_size",
                        absl::StrCat(c.hidden_size, " is not a multiple of num_attention_heads ",
                                     c.num_attention_heads, " and there is no head_dim"));
  }
  absl::StatusOr<int64_t> head_dim =
      f.PositiveIntOr("head_dim", c.hidden_size / c.num_attention_heads);
  if (!head_dim.ok()) return head_dim.status();
  c.head_dim = *head_dim;
  absl::StatusOr<double> eps = f.Double("rms_norm_eps");
  if (!eps.ok()) return eps.status();
  c.rms_norm_eps = *eps;
  absl::StatusOr<double> theta = ParseRopeTheta(f, json);
  if (!theta.ok()) return theta.status();
  c.rope_theta = *theta;
  absl::StatusOr<int64_t> max_pos = f.PositiveIntOr("max_position_embeddings", 0);
  if (!max_pos.ok()) return max_pos.status();
  c.max_position_embeddings = *max_pos;
  absl::StatusOr<bool> tie = f.BoolOr("tie_word_embeddings", false);
  if (!tie.ok()) return tie.status();
  c.tie_word_embeddings = *tie;
  if (c.architecture == "qwen2") {
    c.attention_bias = true;  // Qwen2Attention: q/k/v with bias, o without
  } else {
    absl::StatusOr<bool> bias = f.BoolOr("attention_bias", false);
    if (!bias.ok()) return bias.status();
    c.attention_bias = *bias;
  }
  for (auto [key, out] : {std::pair<const char*, int64_t*>{"bos_token_id", &c.bos_token_id},
                          {"eos_token_id", &c.eos_token_id}}) {
    if (!f.Has(key)) continue;
    const nlohmann::json& v = json[key];
    const nlohmann::json& first = v.is_array() && !v.empty() ? v[0] : v;
    if (!first.is_number_integer() || first.get<int64_t>() < 0) {
      return f.FieldError(key,
                          absl::StrCat("expected a token id or a list of them, got ", v.dump()));
    }
    *out = first.get<int64_t>();
  }
  // What ModelConfig cannot express is refused, not ignored (RoPE scaling: ParseRopeTheta).
  absl::StatusOr<bool> sliding = f.BoolOr("use_sliding_window", false);
  if (!sliding.ok()) return sliding.status();
  if (*sliding)
    return absl::UnimplementedError(
        absl::StrCat(source, ": field \"use_sliding_window\": true is not implemented"));
  if (f.Has("hidden_act")) {
    absl::StatusOr<std::string> act = f.String("hidden_act");
    if (!act.ok()) return act.status();
    if (*act != "silu")
      return absl::UnimplementedError(
          absl::StrCat(source, ": field \"hidden_act\": ", *act, " is not implemented (silu is)"));
  }
  absl::StatusOr<bool> mlp_bias = f.BoolOr("mlp_bias", false);
  if (!mlp_bias.ok()) return mlp_bias.status();
  if (*mlp_bias)
    return absl::UnimplementedError(
        absl::StrCat(source, ": field \"mlp_bias\": true is not implemented"));
  if (absl::Status s = CheckModelConfig(c, source); !s.ok()) return s;
  return c;
}

std::string SnapshotModelName(const std::string& dir) {
  std::vector<std::string> parts = absl::StrSplit(dir, '/', absl::SkipEmpty());
  if (parts.empty()) return dir;
  if (parts.size() >= 3 && parts[parts.size() - 2] == "snapshots" &&
      absl::StartsWith(parts[parts.size() - 3], "models--")) {
    const std::string& repo = parts[parts.size() - 3];
    return repo.substr(repo.rfind("--") + 2);
  }
  return parts.back();
}

absl::StatusOr<ModelWeights> LoadHfSnapshot(const std::string& dir_in, const LoadOptions& options) {
  if (!IsDirectory(dir_in)) return absl::NotFoundError(absl::StrCat(dir_in, ": not a folder"));
  const std::string dir =
      absl::EndsWith(dir_in, "/") ? dir_in.substr(0, dir_in.size() - 1) : dir_in;
  ModelWeights weights;
  weights.source = dir;
  weights.model_name = SnapshotModelName(dir);

  const std::string config_path = dir + "/config.json";
  absl::StatusOr<nlohmann::json> config_json = ReadJsonFile(config_path);
  if (!config_json.ok()) return config_json.status();
  absl::StatusOr<ModelConfig> config = ParseHfConfig(*config_json, config_path);
  if (!config.ok()) return config.status();
  weights.config = *config;

  // The shards and which tensors each must hold.
  std::map<std::string, std::set<std::string>> shards;  // file name -> tensors (empty: all)
  const std::string index_path = dir + "/model.safetensors.index.json";
  const bool sharded = IsFile(index_path);
  if (sharded) {
    absl::StatusOr<nlohmann::json> index = ReadJsonFile(index_path);
    if (!index.ok()) return index.status();
    JsonObject fields(*index, index_path);
    absl::StatusOr<const nlohmann::json*> map = fields.Get("weight_map");
    if (!map.ok()) return map.status();
    if (!(*map)->is_object() || (*map)->empty())
      return fields.FieldError("weight_map", "expected an object of tensor: file");
    for (auto it = (*map)->begin(); it != (*map)->end(); ++it) {
      if (!it.value().is_string() || !PlainFileName(it.value().get<std::string>())) {
        return fields.FieldError("weight_map",
                                 absl::StrCat("tensor ", it.key(), " maps to ", it.value().dump(),
                                              ", expected a .safetensors file name in the folder"));
      }
      shards[it.value().get<std::string>()].insert(it.key());
    }
  } else if (IsFile(dir + "/model.safetensors")) {
    shards["model.safetensors"];
  } else {
    return absl::NotFoundError(
        absl::StrCat(dir, ": neither model.safetensors nor model.safetensors.index.json",
                     " (PyTorch .bin checkpoints are not supported)"));
  }

  std::vector<std::string> names;
  std::vector<SafetensorsFile> files;
  for (const auto& [name, listed] : shards) {
    absl::StatusOr<SafetensorsFile> st = SafetensorsFile::Open(dir + "/" + name);
    if (!st.ok()) {
      return sharded
                 ? absl::Status(st.status().code(), absl::StrCat(st.status().message(),
                                                                 " (listed in ", index_path, ")"))
                 : st.status();
    }
    std::set<std::string> found;
    for (const SafetensorsTensor& t : st->tensors()) {
      if (absl::EndsWith(t.name, ".rotary_emb.inv_freq")) continue;
      if (sharded && listed.count(t.name) == 0) {
        return absl::InvalidArgumentError(absl::StrCat(st->path(), ": holds tensor ", t.name,
                                                       ", which ", index_path,
                                                       " does not map to this file"));
      }
      if (t.name == "lm_head.weight" && weights.config.tie_word_embeddings) continue;
      absl::StatusOr<torch::Tensor> tensor = MappedTensor(t, st->file());
      if (!tensor.ok()) return tensor.status();
      if (!weights.tensors.emplace(t.name, *std::move(tensor)).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(st->path(), ": tensor ", t.name, " is also in another shard"));
      }
      found.insert(t.name);
    }
    for (const std::string& want : listed) {
      if (found.count(want) == 0 &&
          !(want == "lm_head.weight" && weights.config.tie_word_embeddings) &&
          !absl::EndsWith(want, ".rotary_emb.inv_freq")) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": maps tensor ", want, " to ",
                                                       name, ", which does not hold it"));
      }
    }
    names.push_back(name);
    files.push_back(*std::move(st));
  }
  weights.weights_note = "";
  if (absl::Status s = CheckModelWeights(weights); !s.ok()) return s;

  if (options.compute_sha256) {
    std::vector<std::string> digests(files.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < files.size(); ++i) {
      threads.emplace_back([&, i] { digests[i] = gates::Sha256Hex(files[i].file()->bytes()); });
    }
    for (std::thread& t : threads) t.join();
    if (!sharded) {
      weights.weights_sha256 = digests[0];
    } else {
      std::string listing;  // as `sha256sum` prints it, in name order (the map's order)
      for (size_t i = 0; i < files.size(); ++i)
        absl::StrAppend(&listing, digests[i], "  ", names[i], "\n");
      weights.weights_sha256 = gates::Sha256Hex(listing);
    }
  }
  return weights;
}

}  // namespace kvgate::runtime
