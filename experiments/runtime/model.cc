#include "experiments/runtime/model.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experiments/runtime/model_loader_common.h"

namespace kvgate::runtime {
namespace {

std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// transformers' LlamaRMSNorm: normalize in float32, cast back, then scale. x: [T, hidden].
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const torch::Tensor xf = x.to(torch::kFloat);
  return weight *
         (xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps)).to(x.scalar_type());
}

// Rotate-half RoPE. x: [T, n, D]; cos, sin: [T, 1, D] in x's dtype.
torch::Tensor Rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

}  // namespace

absl::StatusOr<Model> Model::Create(const ModelWeights& weights, const ModelOptions& options) {
  const ModelConfig& c = weights.config;
  // The same config checks as the loaders (architecture, positive sizes, heads, rotary pairs).
  if (absl::Status s = CheckModelConfig(c, "config"); !s.ok()) return s;
  if (options.dtype != torch::kFloat32 && options.dtype != torch::kBFloat16 &&
      options.dtype != torch::kFloat16) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype ", c10::toString(options.dtype), ": float32, bfloat16 or float16"));
  }
  auto embed_it = weights.tensors.find("model.embed_tokens.weight");
  if (embed_it == weights.tensors.end() || !embed_it->second.defined()) {
    return absl::InvalidArgumentError("missing tensor model.embed_tokens.weight");
  }

  Model model;
  model.config_ = c;
  model.options_ = options;
  if (!model.options_.device) model.options_.device = embed_it->second.device();
  const torch::TensorOptions to = torch::dtype(options.dtype).device(*model.options_.device);

  try {
    torch::NoGradGuard no_grad;
    std::set<std::string> used;
    absl::Status error;  // the first problem; later lookups then do nothing
    auto get = [&](const std::string& name, std::vector<int64_t> shape) -> torch::Tensor {
      if (!error.ok()) return {};
      auto it = weights.tensors.find(name);
      if (it == weights.tensors.end() || !it->second.defined()) {
        error = absl::InvalidArgumentError(
            absl::StrCat("missing tensor ", name, " (expected ", ShapeString(shape), ")"));
        return {};
      }
      const torch::Tensor& t = it->second;
      if (!t.is_floating_point()) {
        error = absl::InvalidArgumentError(absl::StrCat("tensor ", name, " has dtype ",
                                                        c10::toString(t.scalar_type()),
                                                        ", not floating point"));
        return {};
      }
      if (t.sizes() != c10::IntArrayRef(shape)) {
        error = absl::InvalidArgumentError(absl::StrCat("tensor ", name, " has shape ",
                                                        ShapeString(t.sizes()), ", expected ",
                                                        ShapeString(shape), " from the config"));
        return {};
      }
      used.insert(name);
      torch::Tensor converted = t.to(to).contiguous();
      if (!options.allow_non_finite_weights && !torch::isfinite(converted).all().item<bool>()) {
        const int64_t nans = torch::isnan(converted).sum().item<int64_t>();
        const int64_t infs = torch::isinf(converted).sum().item<int64_t>();
        error = absl::InvalidArgumentError(absl::StrCat(
            "tensor ", name, " holds ", nans, " NaN and ", infs, " infinite value(s)",
            t.scalar_type() != converted.scalar_type() && torch::isfinite(t).all().item<bool>()
                ? absl::StrCat(" after conversion to ", c10::toString(options.dtype))
                : "",
            " (non-finite weights give no valid reference; ModelOptions.allow_non_finite_weights "
            "loads them anyway)"));
        return {};
      }
      return converted;
    };

    const int64_t h = c.hidden_size, d = c.head_dim, nq = c.num_attention_heads * d,
                  nkv = c.num_key_value_heads * d, inter = c.intermediate_size;
    const bool qkv_bias = c.attention_bias;
    const bool o_bias =
        c.attention_bias && c.architecture == "llama";  // Llama's flag covers o_proj
    model.embed_ = get("model.embed_tokens.weight", {c.vocab_size, h});
    model.norm_ = get("model.norm.weight", {h});
    model.lm_head_ =
        c.tie_word_embeddings ? model.embed_ : get("lm_head.weight", {c.vocab_size, h});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = absl::StrCat("model.layers.", i, ".");
      Layer layer;
      layer.input_norm = get(p + "input_layernorm.weight", {h});
      const torch::Tensor wq = get(p + "self_attn.q_proj.weight", {nq, h});
      const torch::Tensor wk = get(p + "self_attn.k_proj.weight", {nkv, h});
      const torch::Tensor wv = get(p + "self_attn.v_proj.weight", {nkv, h});
      torch::Tensor bq, bk, bv;
      if (qkv_bias) {
        bq = get(p + "self_attn.q_proj.bias", {nq});
        bk = get(p + "self_attn.k_proj.bias", {nkv});
        bv = get(p + "self_attn.v_proj.bias", {nkv});
      }
      layer.wo = get(p + "self_attn.o_proj.weight", {h, nq});
      if (o_bias) layer.bo = get(p + "self_attn.o_proj.bias", {h});
      layer.post_norm = get(p + "post_attention_layernorm.weight", {h});
      const torch::Tensor wg = get(p + "mlp.gate_proj.weight", {inter, h});
      const torch::Tensor wu = get(p + "mlp.up_proj.weight", {inter, h});
      layer.w_down = get(p + "mlp.down_proj.weight", {h, inter});
      if (!error.ok()) return error;
      layer.wqkv = torch::cat({wq, wk, wv}, 0);  // [nq + 2 nkv, h]
      if (qkv_bias) layer.bqkv = torch::cat({bq, bk, bv}, 0);
      layer.w_gate_up = torch::cat({wg, wu}, 0);  // [2 inter, h]
      model.layers_.push_back(std::move(layer));
    }
    if (!error.ok()) return error;

    std::vector<std::string> unused;
    for (const auto& [name, tensor] : weights.tensors) {
      if (used.count(name) || absl::EndsWith(name, "rotary_emb.inv_freq") ||
          (c.tie_word_embeddings && name == "lm_head.weight")) {
        continue;
      }
      unused.push_back(name);
    }
    if (!unused.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(unused.size(), " tensor(s) the ", c.architecture,
                       " model does not use (attention_bias ", c.attention_bias,
                       ", tie_word_embeddings ", c.tie_word_embeddings, "), e.g. ", unused[0]));
    }

    // transformers' default rope: inv_freq = 1 / theta^(arange(0, D, 2) / D), in float32.
    const torch::TensorOptions f32 = torch::dtype(torch::kFloat32).device(*model.options_.device);
    model.inv_freq_ = 1.0 / torch::pow(c.rope_theta, torch::arange(0, d, 2, f32.dtype(torch::kLong))
                                                         .to(torch::kFloat32)
                                                         .div(static_cast<double>(d)));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("Model::Create: ", e.what_without_backtrace()));
  }
  return model;
}

KvCache Model::NewCache(int64_t capacity) const {
  return MakeKvCache(config_.num_hidden_layers, capacity, config_.num_key_value_heads,
                     config_.head_dim, torch::dtype(options_.dtype).device(*options_.device));
}

absl::StatusOr<torch::Tensor> Model::Forward(const torch::Tensor& tokens, KvCache& cache,
                                             const ForwardHooks& hooks) const {
  const ModelConfig& c = config_;
  if (tokens.dim() != 1 || tokens.size(0) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Forward: tokens must be [T], T >= 1; got ", ShapeString(tokens.sizes())));
  }
  const int64_t t = tokens.size(0), pos = cache.length;
  if (cache.layers() != c.num_hidden_layers || pos + t > cache.capacity()) {
    return absl::OutOfRangeError(absl::StrCat("Forward: ", t, " tokens at position ", pos,
                                              " do not fit a cache of ", cache.layers(),
                                              " layers and capacity ", cache.capacity()));
  }
  const int64_t heads = c.num_attention_heads, kv_heads = c.num_key_value_heads, d = c.head_dim;
  const int64_t nq = heads * d, nkv = kv_heads * d, inter = c.intermediate_size;
  const int64_t layers = c.num_hidden_layers;
  for (std::vector<torch::Tensor>* capture :
       {hooks.attention_probs, hooks.layer_outputs, hooks.local_outputs, hooks.layer_inputs}) {
    if (capture != nullptr) capture->assign(layers, torch::Tensor());
  }
  if (hooks.first_nonfinite_layer != nullptr) *hooks.first_nonfinite_layer = -1;
  auto guard = [&](const torch::Tensor& out, int64_t layer) {
    if (hooks.first_nonfinite_layer != nullptr && *hooks.first_nonfinite_layer < 0 &&
        !torch::isfinite(out).all().item<bool>()) {
      *hooks.first_nonfinite_layer = layer;
    }
  };
  torch::NoGradGuard no_grad;
  try {
    const torch::Tensor ids = tokens.to(device(), torch::kLong);  // [T]
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("Forward: token ", lo < 0 ? lo : hi, " outside [0, ", c.vocab_size, ")"));
    }
    torch::Tensor x = embed_.index_select(0, ids);  // [T, hidden]

    // cos, sin: [T, 1, D] for positions [pos, pos + T), computed in float32 as transformers does.
    const torch::Tensor positions =
        torch::arange(pos, pos + t, torch::dtype(torch::kFloat32).device(device()));  // [T]
    const torch::Tensor freqs = torch::outer(positions, inv_freq_);                   // [T, D / 2]
    const torch::Tensor emb = torch::cat({freqs, freqs}, -1);                         // [T, D]
    const torch::Tensor cos = emb.cos().to(dtype()).unsqueeze(1);
    const torch::Tensor sin = emb.sin().to(dtype()).unsqueeze(1);

    for (int64_t i = 0; i < layers; ++i) {
      const Layer& layer = layers_[i];
      if (hooks.layer_inputs) (*hooks.layer_inputs)[i] = x;
      torch::Tensor hn = RmsNorm(x, layer.input_norm, c.rms_norm_eps);
      const torch::Tensor qkv = at::linear(hn, layer.wqkv, layer.bqkv);  // [T, nq + 2 nkv]
      // q and k rotate together: [T, heads + kv_heads, D].
      const torch::Tensor qk =
          Rope(qkv.narrow(1, 0, nq + nkv).view({t, heads + kv_heads, d}), cos, sin);
      const torch::Tensor q = qk.narrow(1, 0, heads);         // [T, heads, D]
      const torch::Tensor k = qk.narrow(1, heads, kv_heads);  // [T, kv_heads, D]
      const torch::Tensor v = qkv.narrow(1, nq + nkv, nkv).view({t, kv_heads, d});
      auto [k_all, v_all] = cache.Update(i, pos, k, v);  // [pos + T, kv_heads, D]

      AttentionCall call{i, hooks.step, pos, q, k_all, v_all, hooks.attention_probs != nullptr};
      absl::StatusOr<AttentionResult> attn =
          hooks.policy ? hooks.policy(call)
                       : absl::StatusOr<AttentionResult>(
                             Attend(q, k_all, v_all, /*keep=*/{}, call.want_probs));
      if (!attn.ok()) return attn.status();
      if (!attn->out.defined() || attn->out.sizes() != q.sizes()) {
        return absl::InternalError(
            absl::StrCat("layer ", i, ": the attention policy returned ",
                         attn->out.defined() ? ShapeString(attn->out.sizes()) : "nothing",
                         " for q ", ShapeString(q.sizes())));
      }
      const torch::Tensor o = at::linear(attn->out.reshape({t, nq}), layer.wo, layer.bo);  // [T, h]
      if (hooks.attention_probs) (*hooks.attention_probs)[i] = attn->probs;
      if (hooks.layer_outputs) (*hooks.layer_outputs)[i] = o;
      if (hooks.local_policy) {
        call.want_probs = false;
        absl::StatusOr<AttentionResult> local = hooks.local_policy(call);
        if (!local.ok()) return local.status();
        if (!local->out.defined() || local->out.sizes() != q.sizes()) {
          return absl::InternalError(absl::StrCat(
              "layer ", i, ": the local policy's output is not ", ShapeString(q.sizes())));
        }
        if (hooks.local_outputs) {
          (*hooks.local_outputs)[i] = at::linear(local->out.reshape({t, nq}), layer.wo, layer.bo);
        }
      }
      x = x + o;
      hn = RmsNorm(x, layer.post_norm, c.rms_norm_eps);
      const torch::Tensor gate_up = at::linear(hn, layer.w_gate_up);  // [T, 2 inter]
      x = x + at::linear(at::silu(gate_up.narrow(1, 0, inter)) * gate_up.narrow(1, inter, inter),
                         layer.w_down);
      guard(x, i);
    }
    cache.length = pos + t;
    torch::Tensor out = RmsNorm(x, norm_, c.rms_norm_eps);  // [T, hidden]
    guard(out, layers);
    return out;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("Forward: ", e.what_without_backtrace()));
  }
}

torch::Tensor Model::Logits(const torch::Tensor& hidden) const {
  torch::NoGradGuard no_grad;
  return at::linear(hidden, lm_head_);  // [T, vocab]
}

ModelWeights RandomModelWeights(const ModelConfig& config, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const ModelConfig& c = config;
  const int64_t h = c.hidden_size, nq = c.num_attention_heads * c.head_dim,
                nkv = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
  auto linear = [&](int64_t out, int64_t in) {
    return at::randn({out, in}, gen, torch::kFloat32)
        .mul_(1.0 / std::sqrt(static_cast<double>(in)));
  };
  ModelWeights w;
  w.config = config;
  w.model_name = absl::StrCat("random(seed=", seed, ")");
  w.weights_note = "seeded random weights";
  auto& t = w.tensors;
  t["model.embed_tokens.weight"] = at::randn({c.vocab_size, h}, gen, torch::kFloat32).mul_(0.02);
  t["model.norm.weight"] = torch::ones({h});
  if (!c.tie_word_embeddings) {
    t["lm_head.weight"] = at::randn({c.vocab_size, h}, gen, torch::kFloat32).mul_(0.02);
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    t[p + "input_layernorm.weight"] = torch::ones({h});
    t[p + "post_attention_layernorm.weight"] = torch::ones({h});
    t[p + "self_attn.q_proj.weight"] = linear(nq, h);
    t[p + "self_attn.k_proj.weight"] = linear(nkv, h);
    t[p + "self_attn.v_proj.weight"] = linear(nkv, h);
    t[p + "self_attn.o_proj.weight"] = linear(h, nq);
    if (c.attention_bias) {
      t[p + "self_attn.q_proj.bias"] = at::randn({nq}, gen, torch::kFloat32).mul_(0.01);
      t[p + "self_attn.k_proj.bias"] = at::randn({nkv}, gen, torch::kFloat32).mul_(0.01);
      t[p + "self_attn.v_proj.bias"] = at::randn({nkv}, gen, torch::kFloat32).mul_(0.01);
      if (c.architecture == "llama") {
        t[p + "self_attn.o_proj.bias"] = at::randn({h}, gen, torch::kFloat32).mul_(0.01);
      }
    }
    t[p + "mlp.gate_proj.weight"] = linear(inter, h);
    t[p + "mlp.up_proj.weight"] = linear(inter, h);
    t[p + "mlp.down_proj.weight"] = linear(h, inter);
  }
  return w;
}

}  // namespace kvgate::runtime
