#include "experiments/gpu_decode/decode_step.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/utils.h>

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "experiments/gpu_decode/step_kernels_launch.h"

namespace kvgate::gpu_decode {
namespace {

Bf16Bits* Bits(const torch::Tensor& t) { return reinterpret_cast<Bf16Bits*>(t.data_ptr()); }

absl::Status Launched(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, " launch failed: ", cudaGetErrorString(e)));
}

std::string Shape(const torch::Tensor& t) { return std::string(c10::str(t.sizes())); }

}  // namespace

int64_t StepWeights::StepReadBytes() const {
  int64_t bytes = final_norm.nbytes() + lm_head.nbytes();
  for (const Layer& l : layers) {
    bytes += l.input_norm.nbytes() + l.wqkv.nbytes() + (l.bqkv.defined() ? l.bqkv.nbytes() : 0) +
             l.wo.nbytes() + l.post_norm.nbytes() + l.w_gate_up.nbytes() + l.w_down.nbytes();
  }
  return bytes;
}

absl::StatusOr<StepWeights> RandomStepWeights(const runtime::ModelConfig& c, uint64_t seed,
                                              const torch::Device& device) {
  if (!device.is_cuda()) return absl::InvalidArgumentError("RandomStepWeights: a CUDA device");
  torch::NoGradGuard no_grad;
  const c10::cuda::CUDAGuard guard(device);
  at::Generator gen = at::make_generator<at::CUDAGeneratorImpl>(device.index());
  gen.set_current_seed(seed);
  const auto o = torch::dtype(torch::kBFloat16).device(device);
  auto normal = [&](std::vector<int64_t> shape, double std) {
    return at::normal(0.0, std, shape, gen, o);
  };
  const int64_t h = c.hidden_size, d = c.head_dim;
  const int64_t qkv = (c.num_attention_heads + 2 * c.num_key_value_heads) * d;
  StepWeights w;
  w.config = c;
  w.embed = normal({c.vocab_size, h}, 0.02);
  w.final_norm = torch::ones({h}, o);
  w.lm_head = c.tie_word_embeddings ? w.embed : normal({c.vocab_size, h}, 0.02);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    StepWeights::Layer l;
    l.input_norm = torch::ones({h}, o);
    l.post_norm = torch::ones({h}, o);
    l.wqkv = normal({qkv, h}, 1.0 / std::sqrt(static_cast<double>(h)));
    if (c.attention_bias) l.bqkv = normal({qkv}, 0.01);
    l.wo = normal({h, c.num_attention_heads * d},
                  1.0 / std::sqrt(static_cast<double>(c.num_attention_heads * d)));
    l.w_gate_up = normal({2 * c.intermediate_size, h}, 1.0 / std::sqrt(static_cast<double>(h)));
    l.w_down = normal({h, c.intermediate_size},
                      1.0 / std::sqrt(static_cast<double>(c.intermediate_size)));
    w.layers.push_back(std::move(l));
  }
  return w;
}

absl::StatusOr<StepWeights> StepWeightsFrom(const runtime::ModelWeights& weights,
                                            const torch::Device& device) {
  const runtime::ModelConfig& c = weights.config;
  auto get = [&](const std::string& name) -> absl::StatusOr<torch::Tensor> {
    auto it = weights.tensors.find(name);
    if (it == weights.tensors.end()) return absl::NotFoundError(absl::StrCat("no tensor ", name));
    return it->second.to(device, torch::kBFloat16).contiguous();
  };
#define KVGATE_GET(var, name)                       \
  absl::StatusOr<torch::Tensor> var##_or = get(name); \
  if (!var##_or.ok()) return var##_or.status();       \
  torch::Tensor var = *var##_or;
  StepWeights w;
  w.config = c;
  KVGATE_GET(embed, "model.embed_tokens.weight");
  KVGATE_GET(norm, "model.norm.weight");
  w.embed = embed;
  w.final_norm = norm;
  if (c.tie_word_embeddings) {
    w.lm_head = embed;
  } else {
    KVGATE_GET(lm_head, "lm_head.weight");
    w.lm_head = lm_head;
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    KVGATE_GET(in_norm, p + "input_layernorm.weight");
    KVGATE_GET(post_norm, p + "post_attention_layernorm.weight");
    KVGATE_GET(wq, p + "self_attn.q_proj.weight");
    KVGATE_GET(wk, p + "self_attn.k_proj.weight");
    KVGATE_GET(wv, p + "self_attn.v_proj.weight");
    KVGATE_GET(wo, p + "self_attn.o_proj.weight");
    KVGATE_GET(gate, p + "mlp.gate_proj.weight");
    KVGATE_GET(up, p + "mlp.up_proj.weight");
    KVGATE_GET(down, p + "mlp.down_proj.weight");
    StepWeights::Layer l;
    l.input_norm = in_norm;
    l.post_norm = post_norm;
    l.wqkv = torch::cat({wq, wk, wv}, 0).contiguous();
    if (c.attention_bias) {
      KVGATE_GET(bq, p + "self_attn.q_proj.bias");
      KVGATE_GET(bk, p + "self_attn.k_proj.bias");
      KVGATE_GET(bv, p + "self_attn.v_proj.bias");
      l.bqkv = torch::cat({bq, bk, bv}, 0).contiguous();
    }
    l.wo = wo;
    l.w_gate_up = torch::cat({gate, up}, 0).contiguous();
    l.w_down = down;
    w.layers.push_back(std::move(l));
  }
#undef KVGATE_GET
  return w;
}

DecodeStep::DecodeStep(const StepWeights& weights, StepAttention* attention, int64_t position,
                       StepOptions options)
    : w_(weights), attention_(attention), position_(position), options_(options) {
  const runtime::ModelConfig& c = w_.config;
  const torch::Device device = w_.embed.device();
  const auto bf = torch::dtype(torch::kBFloat16).device(device);
  token_ = torch::zeros({1}, torch::dtype(torch::kInt64).device(device));
  h_ = torch::empty({c.hidden_size}, torch::dtype(torch::kFloat32).device(device));
  xn_ = torch::empty({c.hidden_size}, bf);
  qkv_ = torch::empty({(c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim}, bf);
  q_ = torch::empty({c.num_attention_heads, c.head_dim}, bf);
  act_ = torch::empty({c.intermediate_size}, bf);
  logits_ = torch::empty({c.vocab_size}, bf);
}

absl::Status DecodeStep::Gemv(const torch::Tensor& w, const torch::Tensor& x,
                              const torch::Tensor& bias, torch::Tensor* y,
                              torch::Tensor* residual) {
  if (options_.cublas) {
    torch::Tensor out = bias.defined() ? at::addmm(bias, x.view({1, -1}), w.t())
                                       : at::mm(x.view({1, -1}), w.t());
    if (residual != nullptr) {
      residual->add_(out.view({-1}));
    } else {
      y->copy_(out.view({-1}));
    }
    return absl::OkStatus();
  }
  return Launched(LaunchGemv(Bits(w), Bits(x), static_cast<int>(w.size(0)),
                             static_cast<int>(w.size(1)), bias.defined() ? Bits(bias) : nullptr,
                             y != nullptr ? Bits(*y) : nullptr,
                             residual != nullptr ? residual->data_ptr<float>() : nullptr,
                             c10::cuda::getCurrentCUDAStream()),
                  "gemv");
}

absl::Status DecodeStep::Run() {
  const runtime::ModelConfig& c = w_.config;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int hidden = static_cast<int>(c.hidden_size);
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (absl::Status s = Launched(
          LaunchEmbedRow(Bits(w_.embed), token_.data_ptr<int64_t>(), hidden, h_.data_ptr<float>(),
                         stream),
          "embed");
      !s.ok()) {
    return s;
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const StepWeights::Layer& l = w_.layers[i];
    if (absl::Status s = Launched(LaunchRmsNorm(h_.data_ptr<float>(), Bits(l.input_norm), hidden,
                                                eps, Bits(xn_), stream),
                                  "rms_norm");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = Gemv(l.wqkv, xn_, l.bqkv, &qkv_, nullptr); !s.ok()) return s;
    const KvSlot slot = attention_->Slot(i, position_);
    if (absl::Status s = Launched(
            LaunchRopeKv(Bits(qkv_), static_cast<int>(c.num_attention_heads),
                         static_cast<int>(c.num_key_value_heads), static_cast<int>(c.head_dim),
                         position_, c.rope_theta, Bits(q_), Bits(slot.k), Bits(slot.v),
                         slot.head_stride, stream),
            "rope_kv");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = attention_->Append(i, slot, position_); !s.ok()) return s;
    absl::StatusOr<torch::Tensor> attn = attention_->Attend(i, q_, position_);
    if (!attn.ok()) return attn.status();
    if (!attn->is_contiguous() || attn->numel() != q_.numel()) {
      return absl::InternalError(absl::StrCat(attention_->Name(), ": Attend returned ",
                                              Shape(*attn)));
    }
    if (absl::Status s = Gemv(l.wo, *attn, {}, nullptr, &h_); !s.ok()) return s;
    if (absl::Status s = Launched(LaunchRmsNorm(h_.data_ptr<float>(), Bits(l.post_norm), hidden,
                                                eps, Bits(xn_), stream),
                                  "rms_norm");
        !s.ok()) {
      return s;
    }
    if (options_.cublas) {
      const torch::Tensor gu = at::mm(xn_.view({1, -1}), l.w_gate_up.t()).view({-1});
      const torch::Tensor gate = gu.narrow(0, 0, c.intermediate_size);
      const torch::Tensor up = gu.narrow(0, c.intermediate_size, c.intermediate_size);
      act_.copy_(torch::silu(gate) * up);
    } else if (absl::Status s = Launched(
                   LaunchGemvSiluMul(Bits(l.w_gate_up), Bits(xn_),
                                     static_cast<int>(c.intermediate_size), hidden, Bits(act_),
                                     stream),
                   "gemv_silu_mul");
               !s.ok()) {
      return s;
    }
    if (absl::Status s = Gemv(l.w_down, act_, {}, nullptr, &h_); !s.ok()) return s;
  }
  if (absl::Status s = Launched(LaunchRmsNorm(h_.data_ptr<float>(), Bits(w_.final_norm), hidden,
                                              eps, Bits(xn_), stream),
                                "rms_norm");
      !s.ok()) {
    return s;
  }
  return Gemv(w_.lm_head, xn_, {}, &logits_, nullptr);
}

absl::Status DecodeStep::RunAttentionOnly() {
  for (int64_t i = 0; i < w_.config.num_hidden_layers; ++i) {
    absl::StatusOr<torch::Tensor> attn = attention_->Attend(i, q_, position_);
    if (!attn.ok()) return attn.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<at::cuda::CUDAGraph>> DecodeStep::CaptureGraph(
    const std::function<absl::Status()>& body, int warmup) {
  at::cuda::CUDAStream side = at::cuda::getStreamFromPool();
  at::cuda::CUDAStream main = at::cuda::getCurrentCUDAStream();
  at::cuda::CUDAEvent ready;
  ready.record(main);
  ready.block(side);
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  {
    const at::cuda::CUDAStreamGuard guard(side);
    for (int i = 0; i < warmup; ++i) {
      if (absl::Status s = body(); !s.ok()) return s;
    }
    side.synchronize();
    graph->capture_begin();
    absl::Status s = body();
    graph->capture_end();
    if (!s.ok()) return s;
  }
  at::cuda::CUDAEvent done;
  done.record(side);
  done.block(main);
  return graph;
}

}  // namespace kvgate::gpu_decode
