#include "experiments/qwen_oracle/oracle.h"

#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "experiments/common/selector_policy.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/kv_cache.h"
#include "experiments/runtime/wall_clock.h"
#include "gates/metrics.h"

namespace kvgate::experiments {
namespace {

using Clock = std::chrono::steady_clock;

bool Finite(const torch::Tensor& t) { return !t.defined() || torch::isfinite(t).all().item<bool>(); }

gates::Values Span(const torch::Tensor& t) {
  return gates::Values(t.data_ptr<float>(), static_cast<size_t>(t.numel()));
}

torch::Tensor CpuFloat(const torch::Tensor& t) {
  return t.to(torch::kCPU, torch::kFloat32).contiguous();
}

double OrNaN(const absl::StatusOr<double>& value) {
  return value.ok() ? *value : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

absl::StatusOr<OracleResult> RunOracle(const runtime::Model& model,
                                       const std::vector<int64_t>& prompt,
                                       const gates::Target& target, const OracleOptions& options) {
  auto progress = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  const int64_t n = options.decode_steps;
  if (n < 1) return absl::InvalidArgumentError(absl::StrCat("decode_steps ", n, " must be >= 1"));
  if (prompt.empty()) return absl::InvalidArgumentError("empty prompt");
  OracleResult result;
  const int64_t p = static_cast<int64_t>(prompt.size());
  const int64_t layers = model.config().num_hidden_layers;
  absl::StatusOr<SelectorSpecs> specs = CheckSelectorSpecs(options.selectors, p);
  if (!specs.ok()) return specs.status();
  result.variants = specs->canonical;
  const bool wants_window = specs->wants_window;

  // 1. Prefill, in chunks, capturing what the deployable selectors see of the prompt.
  Clock::time_point start = Clock::now();
  auto capture = std::make_shared<PromptCapture>();
  capture->prompt = p;
  capture->window = wants_window ? kSnapKvCaptureWindow : 0;
  runtime::ForwardHooks prefill_hooks;
  prefill_hooks.policy = CapturingDense(capture, layers);
  runtime::KvCache base = model.NewCache(p + n);
  torch::Tensor prefill_logits;
  const int64_t chunk = std::max<int64_t>(1, options.prefill_chunk);
  for (int64_t begin = 0; begin < p; begin += chunk) {
    const int64_t end = std::min(p, begin + chunk);
    absl::StatusOr<torch::Tensor> logits = runtime::Prefill(
        model, base, std::vector<int64_t>(prompt.begin() + begin, prompt.begin() + end),
        prefill_hooks);
    if (!logits.ok()) return logits.status();
    prefill_logits = *logits;
    if ((begin / chunk) % 8 == 7 || end == p) {
      progress(absl::StrCat("prefill ", end, "/", p, " tokens, ", SecondsSince(start), " s"));
    }
  }
  result.prefill_seconds = SecondsSince(start);

  // 2. Dense reference: greedy, with every layer's probabilities and post-o_proj outputs.
  start = Clock::now();
  runtime::DecodeOptions dense_options;
  dense_options.capture_attention_probs = true;
  dense_options.capture_layer_outputs = true;
  runtime::KvCache dense_cache = base.Clone();
  const int64_t first = prefill_logits.argmax().item<int64_t>();
  absl::StatusOr<runtime::DecodeResult> dense =
      runtime::DecodeN(model, dense_cache, first, n, dense_options);
  if (!dense.ok()) return dense.status();
  dense_cache = runtime::KvCache();
  if (static_cast<int64_t>(dense->steps.size()) != n) {
    return absl::InternalError("dense reference stopped early");
  }
  result.dense_tokens = dense->TokensIn();
  std::vector<torch::Tensor> step_probs;  // per step [layers, heads, T]
  result.reference_finite = Finite(prefill_logits);
  for (const runtime::DecodeStep& step : dense->steps) {
    result.reference_finite = result.reference_finite && Finite(step.logits);
    for (const torch::Tensor& t : step.layer_outputs) {
      result.reference_finite = result.reference_finite && Finite(t);
    }
    for (const torch::Tensor& t : step.attention_probs) {
      result.reference_finite = result.reference_finite && Finite(t);
    }
    step_probs.push_back(torch::stack(step.attention_probs));
  }
  result.reference_seconds = SecondsSince(start);
  std::map<std::string, double> nonfinite_metrics;
  if (!result.reference_finite) {
    // Numerical guard: replay the dense run to name where it first went non-finite.
    absl::StatusOr<std::optional<runtime::NonFiniteAt>> at =
        runtime::LocateNonFinite(model, prompt, result.dense_tokens, chunk);
    if (!at.ok()) return at.status();
    const runtime::NonFiniteAt where = at->value_or(runtime::NonFiniteAt{0, layers + 1});
    result.reference_nonfinite = where.Describe(layers);
    nonfinite_metrics = {{runtime::kReferenceNonfiniteStep, static_cast<double>(where.step)},
                         {runtime::kReferenceNonfiniteLayer, static_cast<double>(where.layer)}};
  }
  progress(absl::StrCat("dense reference: ", n, " steps, ", result.reference_seconds, " s",
                        result.reference_finite
                            ? ""
                            : " -- NON-FINITE from " + result.reference_nonfinite +
                                  ": every row is invalid"));

  // 3. Each selector configuration, teacher-forced on the dense tokens.
  start = Clock::now();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::string& variant : result.variants) {
    const Clock::time_point config_start = Clock::now();
    std::vector<std::map<std::string, double>> metrics(n);
    if (!result.reference_finite) {
      for (int64_t i = 0; i < n; ++i) {
        metrics[i] = {{gates::kActiveHistoryFraction, nan}, {gates::kDecodeLogitMse, nan},
                      {gates::kTop10Overlap, nan},           {gates::kArgmaxAgreement, nan},
                      {gates::kKlDivergence, nan},           {gates::kLayerMedianOProjRelL2, nan},
                      {gates::kReferenceFinite, 0.0}};
        metrics[i].insert(nonfinite_metrics.begin(), nonfinite_metrics.end());
      }
    } else {
      // Driven by the selector: logits.
      std::shared_ptr<SelectorState> driven = NewSelectorState(variant, step_probs, *capture);
      runtime::DecodeOptions driven_options;
      driven_options.policy = SelectorPolicy(driven);
      runtime::KvCache cache = base.Clone();
      absl::StatusOr<runtime::DecodeResult> run =
          runtime::DecodeForced(model, cache, result.dense_tokens, driven_options);
      if (!run.ok()) return run.status();
      // Layer-local: dense-driven, the selector evaluated on each layer's dense input.
      std::shared_ptr<SelectorState> local = NewSelectorState(variant, step_probs, *capture);
      runtime::DecodeOptions local_options;
      local_options.local_policy = SelectorPolicy(local);
      local_options.capture_layer_outputs = true;
      cache = base.Clone();
      absl::StatusOr<runtime::DecodeResult> local_run =
          runtime::DecodeForced(model, cache, result.dense_tokens, local_options);
      if (!local_run.ok()) return local_run.status();
      cache = runtime::KvCache();
      for (int64_t i = 0; i < n; ++i) {
        const torch::Tensor ref = CpuFloat(dense->steps[i].logits);
        const torch::Tensor test = CpuFloat(run->steps[i].logits);
        std::vector<torch::Tensor> ref_layers, test_layers;
        std::vector<gates::Values> ref_spans, test_spans;
        for (int64_t l = 0; l < layers; ++l) {
          ref_layers.push_back(CpuFloat(local_run->steps[i].layer_outputs[l]));
          test_layers.push_back(CpuFloat(local_run->steps[i].local_outputs[l]));
        }
        for (int64_t l = 0; l < layers; ++l) {
          ref_spans.push_back(Span(ref_layers[l]));
          test_spans.push_back(Span(test_layers[l]));
        }
        const std::pair<double, int64_t> f = driven->fraction[i];
        metrics[i] = {
            {gates::kActiveHistoryFraction, f.second > 0 ? f.first / f.second : nan},
            {gates::kDecodeLogitMse, OrNaN(gates::DecodeLogitMse(Span(ref), Span(test)))},
            {gates::kTop10Overlap, OrNaN(gates::TopKOverlap(Span(ref), Span(test), 10))},
            {gates::kArgmaxAgreement, OrNaN(gates::ArgmaxAgreement(Span(ref), Span(test)))},
            {gates::kKlDivergence, OrNaN(gates::KlDivergence(Span(ref), Span(test)))},
            {gates::kLayerMedianOProjRelL2,
             OrNaN(gates::LayerMedianRelativeL2(ref_spans, test_spans))},
            {gates::kReferenceFinite, 1.0}};
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      gates::Record row;
      row.experiment = kOracleExperiment;
      row.variant = variant;
      row.target = target;
      row.step = i;
      row.metrics = metrics[i];
      result.rows.push_back(std::move(row));
    }
    progress(absl::StrCat(variant, ": ", n, " steps, ", SecondsSince(config_start), " s"));
  }
  result.selectors_seconds = SecondsSince(start);
  return result;
}

}  // namespace kvgate::experiments
