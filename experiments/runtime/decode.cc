#include "experiments/runtime/decode.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "experiments/runtime/wall_clock.h"

namespace kvgate::runtime {
namespace {

torch::Tensor ToCpuFloat(const torch::Tensor& x) {
  return x.defined() ? x.to(torch::kCPU, torch::kFloat32) : x;
}

// Greedy when forced is null, else teacher forcing with (*forced)[i].
absl::StatusOr<DecodeResult> DecodeLoop(const Model& model, KvCache& cache, int64_t first_token,
                                        int64_t n, const std::vector<int64_t>* forced,
                                        const DecodeOptions& options) {
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("decode: ", n, " steps"));
  DecodeResult result;
  result.steps.reserve(n);
  std::vector<torch::Tensor> probs, outputs, locals, inputs;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) {
    DecodeStep step;
    step.position = cache.length;
    step.token_in = forced ? (*forced)[i] : (i == 0 ? first_token : result.steps.back().token_out);
    ForwardHooks hooks;
    hooks.policy = options.policy;
    hooks.local_policy = options.local_policy;
    hooks.step = i;
    if (options.capture_attention_probs) hooks.attention_probs = &probs;
    if (options.capture_layer_outputs) {
      hooks.layer_outputs = &outputs;
      if (options.local_policy) hooks.local_outputs = &locals;
    }
    if (options.capture_layer_inputs) hooks.layer_inputs = &inputs;
    const auto step_start = std::chrono::steady_clock::now();
    absl::StatusOr<torch::Tensor> logits = DecodeOne(model, cache, step.token_in, hooks);
    if (!logits.ok()) {
      return absl::Status(logits.status().code(),
                          absl::StrCat("decode step ", i, ": ", logits.status().message()));
    }
    step.token_out = logits->argmax().item<int64_t>();
    step.seconds =
        SecondsSince(step_start);
    if (options.capture_logits) step.logits = ToCpuFloat(*logits);
    // [1, ...] per layer -> [...]
    for (auto [from, to] : {std::make_pair(&probs, &step.attention_probs),
                            std::make_pair(&outputs, &step.layer_outputs),
                            std::make_pair(&locals, &step.local_outputs),
                            std::make_pair(&inputs, &step.layer_inputs)}) {
      for (const torch::Tensor& x : *from) to->push_back(ToCpuFloat(x.squeeze(0)));
      from->clear();
    }
    result.steps.push_back(std::move(step));
    if (!forced && options.stop_token >= 0 && result.steps.back().token_out == options.stop_token) {
      break;
    }
  }
  result.seconds = SecondsSince(start);
  return result;
}

}  // namespace

absl::StatusOr<torch::Tensor> Prefill(const Model& model, KvCache& cache,
                                      const std::vector<int64_t>& tokens,
                                      const ForwardHooks& hooks) {
  if (tokens.empty()) return absl::InvalidArgumentError("Prefill: no tokens");
  absl::StatusOr<torch::Tensor> hidden =
      model.Forward(torch::tensor(tokens, torch::kLong), cache, hooks);  // [T, hidden]
  if (!hidden.ok()) return hidden.status();
  const int64_t t = hidden->size(0);
  return model.Logits(hidden->narrow(0, t - 1, 1)).squeeze(0).to(torch::kFloat32);  // [vocab]
}

absl::StatusOr<torch::Tensor> DecodeOne(const Model& model, KvCache& cache, int64_t token,
                                        const ForwardHooks& hooks) {
  absl::StatusOr<torch::Tensor> hidden =
      model.Forward(torch::tensor({token}, torch::kLong), cache, hooks);  // [1, hidden]
  if (!hidden.ok()) return hidden.status();
  return model.Logits(*hidden).squeeze(0).to(torch::kFloat32);  // [vocab]
}

std::vector<int64_t> DecodeResult::TokensIn() const {
  std::vector<int64_t> tokens;
  for (const DecodeStep& step : steps) tokens.push_back(step.token_in);
  return tokens;
}

std::vector<int64_t> DecodeResult::TokensOut() const {
  std::vector<int64_t> tokens;
  for (const DecodeStep& step : steps) tokens.push_back(step.token_out);
  return tokens;
}

absl::StatusOr<DecodeResult> DecodeN(const Model& model, KvCache& cache, int64_t first_token,
                                     int64_t n, const DecodeOptions& options) {
  return DecodeLoop(model, cache, first_token, n, nullptr, options);
}

absl::StatusOr<DecodeResult> DecodeForced(const Model& model, KvCache& cache,
                                          const std::vector<int64_t>& tokens,
                                          const DecodeOptions& options) {
  return DecodeLoop(model, cache, /*first_token=*/0, static_cast<int64_t>(tokens.size()), &tokens,
                    options);
}

std::string NonFiniteAt::Describe(int64_t num_hidden_layers) const {
  const std::string where = step < 0 ? "the prefill" : absl::StrCat("decode step ", step);
  if (layer < num_hidden_layers) {
    return absl::StrCat(where, ", layer ", layer, " (the output of model.layers.", layer, ")");
  }
  if (layer == num_hidden_layers) return absl::StrCat(where, ", the final norm (model.norm)");
  return absl::StrCat(where, ", lm_head (the logits)");
}

absl::StatusOr<std::optional<NonFiniteAt>> LocateNonFinite(const Model& model,
                                                           const std::vector<int64_t>& prompt,
                                                           const std::vector<int64_t>& tokens,
                                                           int64_t prefill_chunk) {
  if (prompt.empty()) return absl::InvalidArgumentError("LocateNonFinite: no prompt");
  const int64_t lm_head = model.config().num_hidden_layers + 1;
  const int64_t p = static_cast<int64_t>(prompt.size());
  const int64_t chunk = prefill_chunk > 0 ? prefill_chunk : p;
  KvCache cache = model.NewCache(p + static_cast<int64_t>(tokens.size()));
  int64_t layer = -1;
  ForwardHooks hooks;
  hooks.first_nonfinite_layer = &layer;
  torch::Tensor logits;
  for (int64_t begin = 0; begin < p; begin += chunk) {
    const int64_t end = std::min(p, begin + chunk);
    absl::StatusOr<torch::Tensor> l = Prefill(
        model, cache, std::vector<int64_t>(prompt.begin() + begin, prompt.begin() + end), hooks);
    if (!l.ok()) return l.status();
    if (layer >= 0) return NonFiniteAt{-1, layer};
    logits = *l;
  }
  if (!torch::isfinite(logits).all().item<bool>()) return NonFiniteAt{-1, lm_head};
  for (size_t i = 0; i < tokens.size(); ++i) {
    hooks.step = static_cast<int64_t>(i);
    absl::StatusOr<torch::Tensor> l = DecodeOne(model, cache, tokens[i], hooks);
    if (!l.ok()) return l.status();
    if (layer >= 0) return NonFiniteAt{static_cast<int64_t>(i), layer};
    if (!torch::isfinite(*l).all().item<bool>()) {
      return NonFiniteAt{static_cast<int64_t>(i), lm_head};
    }
  }
  return std::nullopt;
}

}  // namespace kvgate::runtime
