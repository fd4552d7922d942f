#include "experiments/runtime/decode.h"

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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
        std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
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
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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

}  // namespace kvgate::runtime
