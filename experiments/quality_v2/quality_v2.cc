#include "experiments/quality_v2/quality_v2.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/common/selector_policy.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/kv_cache.h"
#include "experiments/runtime/wall_clock.h"
#include "gates/metrics.h"
#include "gates/position_quality.h"

namespace kvgate::experiments {
namespace {

using Clock = std::chrono::steady_clock;

torch::Tensor CpuFloat(const torch::Tensor& t) {
  return t.to(torch::kCPU, torch::kFloat32).contiguous();
}

gates::Values Span(const torch::Tensor& t) {
  return gates::Values(t.data_ptr<float>(), static_cast<size_t>(t.numel()));
}

bool Finite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

// Per window, exp(mean over its positions): perplexity from NLLs.
gates::Windows PerWindowPerplexity(const gates::Windows& nll) {
  gates::Windows out;
  for (const std::vector<double>& w : nll) out.push_back({std::exp(gates::Mean(w))});
  return out;
}

// One window of a configuration: the driven run's logits against the dense reference's, the
// layer-local run's outputs against the dense ones, the true next tokens; appends a row of
// per-position values to every measure of `c`.
absl::Status AppendWindow(const std::vector<torch::Tensor>& ref_logits,
                          const std::vector<double>& dense_nll, bool reference_finite,
                          const runtime::DecodeResult& driven,
                          const runtime::DecodeResult& layer_local,
                          const std::vector<int64_t>& window, int64_t context, int64_t layers,
                          const SelectorState* selector, ConfigPositions& c) {
  const int64_t positions = static_cast<int64_t>(ref_logits.size());
  std::vector<double> kl, mse, top10, argmax, dp, adp, l2, nll, fraction;
  bool window_finite = reference_finite;
  for (int64_t i = 0; i < positions; ++i) {
    const torch::Tensor got = CpuFloat(driven.steps[i].logits);
    const int64_t true_next = window[context + i + 1];
    absl::StatusOr<gates::PositionQuality> q =
        gates::MeasurePosition(Span(ref_logits[i]), Span(got), true_next);
    if (!q.ok()) return q.status();
    std::vector<torch::Tensor> ref_layers, test_layers;
    std::vector<gates::Values> ref_spans, test_spans;
    for (int64_t l = 0; l < layers; ++l) {
      ref_layers.push_back(CpuFloat(layer_local.steps[i].layer_outputs[l]));
      test_layers.push_back(CpuFloat(layer_local.steps[i].local_outputs[l]));
      window_finite = window_finite && Finite(ref_layers.back());
    }
    for (int64_t l = 0; l < layers; ++l) {
      ref_spans.push_back(Span(ref_layers[l]));
      test_spans.push_back(Span(test_layers[l]));
    }
    absl::StatusOr<double> rel = gates::LayerMedianRelativeL2(ref_spans, test_spans);
    kl.push_back(q->kl_divergence);
    mse.push_back(q->decode_logit_mse);
    top10.push_back(q->top10_overlap);
    argmax.push_back(q->argmax_agreement);
    dp.push_back(q->delta_p);
    adp.push_back(q->abs_delta_p);
    l2.push_back(rel.ok() ? *rel : std::numeric_limits<double>::quiet_NaN());
    nll.push_back(NegativeLogLikelihood(got, true_next));
    if (selector != nullptr) fraction.push_back(selector->MeanFraction(i));
  }
  c.kl_divergence.push_back(std::move(kl));
  c.decode_logit_mse.push_back(std::move(mse));
  c.top10_overlap.push_back(std::move(top10));
  c.argmax_agreement.push_back(std::move(argmax));
  c.delta_p.push_back(std::move(dp));
  c.abs_delta_p.push_back(std::move(adp));
  c.layer_median_o_proj_rel_l2.push_back(std::move(l2));
  c.nll.push_back(std::move(nll));
  c.dense_nll.push_back(dense_nll);
  if (selector != nullptr) c.active_history_fraction.push_back(std::move(fraction));
  c.reference_finite = c.reference_finite && window_finite;
  return absl::OkStatus();
}

absl::Status Named(const std::string& variant, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(variant, ": ", s.message()));
}

// `done` (RunOverWindows's) is a run of these configurations over its first W windows, W the same
// for every measure and at most `windows`, each row `positions` values.
absl::Status CheckDone(const std::vector<ConfigPositions>& done,
                       const std::vector<ConfigPositions>& configs, size_t windows,
                       int64_t positions) {
  auto refuse = [](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("quality_v2: the windows done: ", why));
  };
  if (done.size() != configs.size()) {
    return refuse(absl::StrCat(done.size(), " configurations, this run has ", configs.size()));
  }
  const size_t w = done[0].kl_divergence.size();
  if (w > windows) return refuse(absl::StrCat(w, " windows, this run has ", windows));
  for (size_t k = 0; k < done.size(); ++k) {
    const ConfigPositions& d = done[k];
    if (d.variant != configs[k].variant || d.gate != configs[k].gate ||
        d.selector != configs[k].selector) {
      return refuse(absl::StrCat("configuration ", k, " is ", d.variant, ", this run's ",
                                 configs[k].variant));
    }
    for (const WindowMeasure& measure : WindowMeasures()) {
      const gates::Windows& m = d.*measure.field;
      if (measure.selectors_only && !d.selector) {
        if (!m.empty()) return refuse(absl::StrCat(d.variant, ": a kept fraction for a format"));
        continue;
      }
      if (m.size() != w) {
        return refuse(absl::StrCat(d.variant, ": measures of ", m.size(), " and ", w, " windows"));
      }
      for (const std::vector<double>& row : m) {
        if (static_cast<int64_t>(row.size()) != positions) {
          return refuse(
              absl::StrCat(d.variant, ": a row of ", row.size(), " values, not ", positions));
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<WindowMeasure>& WindowMeasures() {
  static const auto* measures = new std::vector<WindowMeasure>{
      {"kl_divergence", &ConfigPositions::kl_divergence, false},
      {"decode_logit_mse", &ConfigPositions::decode_logit_mse, false},
      {"top10_overlap", &ConfigPositions::top10_overlap, false},
      {"argmax_agreement", &ConfigPositions::argmax_agreement, false},
      {"delta_p", &ConfigPositions::delta_p, false},
      {"abs_delta_p", &ConfigPositions::abs_delta_p, false},
      {"layer_median_o_proj_rel_l2", &ConfigPositions::layer_median_o_proj_rel_l2, false},
      {"nll", &ConfigPositions::nll, false},
      {"dense_nll", &ConfigPositions::dense_nll, false},
      {"active_history_fraction", &ConfigPositions::active_history_fraction, true}};
  return *measures;
}

double NegativeLogLikelihood(const torch::Tensor& logits, int64_t token) {
  return -torch::log_softmax(logits.to(torch::kFloat64), 0)[token].item<double>();
}

absl::StatusOr<std::vector<ConfigPositions>> RunOverWindows(
    const runtime::Model& model, const std::vector<std::vector<int64_t>>& windows, int64_t context,
    int64_t positions, const std::vector<std::shared_ptr<const kernels::KvFormat>>& formats,
    const std::vector<std::string>& selectors,
    const std::function<void(const std::string&)>& progress, std::vector<ConfigPositions> done,
    const WindowDone& window_done) {
  if (context < 1 || positions < 1) {
    return absl::InvalidArgumentError(absl::StrCat("quality_v2: context ", context,
                                                   " and positions ", positions, " must be >= 1"));
  }
  const size_t length = static_cast<size_t>(context + positions + 1);
  for (size_t w = 0; w < windows.size(); ++w) {
    if (windows[w].size() != length) {
      return absl::InvalidArgumentError(
          absl::StrCat("quality_v2: window ", w, " has ", windows[w].size(),
                       " tokens, not context + positions + 1 = ", length));
    }
  }
  absl::StatusOr<SelectorSpecs> specs = CheckSelectorSpecs(selectors, context);
  if (!specs.ok()) return specs.status();
  torch::NoGradGuard no_grad;
  const runtime::ModelConfig& config = model.config();
  const int64_t layers = config.num_hidden_layers;
  std::vector<ConfigPositions> configs(formats.size() + specs->canonical.size());
  for (size_t f = 0; f < formats.size(); ++f) {
    configs[f].variant = formats[f]->name();
    configs[f].gate = kFormatWindowsGate;
    configs[f].kv_ratio =
        kernels::KvBytesVsBf16(*formats[f], context, config.num_key_value_heads, config.head_dim);
  }
  for (size_t s = 0; s < specs->canonical.size(); ++s) {
    ConfigPositions& c = configs[formats.size() + s];
    c.variant = specs->canonical[s];
    c.gate = kSelectorWindowsGate;
    c.selector = true;
  }
  size_t first_window = 0;
  if (!done.empty()) {
    if (absl::Status s = CheckDone(done, configs, windows.size(), positions); !s.ok()) return s;
    first_window = done[0].kl_divergence.size();
    configs = std::move(done);
  }
  for (size_t w = first_window; w < windows.size(); ++w) {
    const Clock::time_point window_start = Clock::now();
    const std::vector<int64_t> prompt(windows[w].begin(), windows[w].begin() + context);
    const std::vector<int64_t> forced(windows[w].begin() + context,
                                      windows[w].begin() + context + positions);
    runtime::KvCache base = model.NewCache(context + positions);
    absl::StatusOr<torch::Tensor> prefill = runtime::Prefill(model, base, prompt);
    if (!prefill.ok()) return prefill.status();

    // The dense reference; with the oracles' per-step attention probabilities when asked for
    // (decode steps attend by explicit matmuls either way, so the logits are the same).
    runtime::KvCache cache = base.Clone();
    runtime::DecodeOptions dense_options;
    dense_options.capture_attention_probs = specs->wants_step_probs;
    absl::StatusOr<runtime::DecodeResult> dense =
        runtime::DecodeForced(model, cache, forced, dense_options);
    if (!dense.ok()) return dense.status();
    bool finite = true;
    std::vector<torch::Tensor> ref_logits, step_probs;
    std::vector<double> dense_nll;
    for (int64_t i = 0; i < positions; ++i) {
      const runtime::DecodeStep& step = dense->steps[i];
      ref_logits.push_back(CpuFloat(step.logits));
      finite = finite && Finite(ref_logits.back());
      dense_nll.push_back(NegativeLogLikelihood(ref_logits.back(), windows[w][context + i + 1]));
      if (specs->wants_step_probs) {
        step_probs.push_back(torch::stack(step.attention_probs));  // [layers, heads, T]
        finite = finite && Finite(step_probs.back());
      }
    }
    dense = runtime::DecodeResult();

    // What the deployable selectors see of the prompt: a capturing prefill of a scratch cache.
    PromptCapture capture;
    if (specs->wants_prompt) {
      auto captured = std::make_shared<PromptCapture>();
      captured->prompt = context;
      captured->window = specs->wants_window ? kSnapKvCaptureWindow : 0;
      runtime::ForwardHooks hooks;
      hooks.policy = CapturingDense(captured, layers);
      runtime::KvCache scratch = model.NewCache(context);
      for (int64_t begin = 0; begin < context; begin += kPrefillChunk) {
        const int64_t end = std::min(context, begin + kPrefillChunk);
        absl::StatusOr<torch::Tensor> logits = runtime::Prefill(
            model, scratch, std::vector<int64_t>(prompt.begin() + begin, prompt.begin() + end),
            hooks);
        if (!logits.ok()) return logits.status();
      }
      capture = *captured;
    }

    for (size_t k = 0; k < configs.size(); ++k) {
      const Clock::time_point start = Clock::now();
      ConfigPositions& c = configs[k];
      std::shared_ptr<SelectorState> driven_state, local_state;
      runtime::DecodeOptions driven, local;
      if (c.selector) {
        driven_state = NewSelectorState(c.variant, step_probs, capture);
        local_state = NewSelectorState(c.variant, step_probs, capture);
        driven.policy = SelectorPolicy(driven_state);
        local.local_policy = SelectorPolicy(local_state);
      } else {
        driven.policy = runtime::KvRoundTripAttention(formats[k]);
        local.local_policy = runtime::KvRoundTripAttention(formats[k]);
      }
      local.capture_layer_outputs = true;
      local.capture_logits = false;
      cache = base.Clone();
      absl::StatusOr<runtime::DecodeResult> test =
          runtime::DecodeForced(model, cache, forced, driven);
      if (!test.ok()) return Named(c.variant, test.status());
      cache = base.Clone();
      absl::StatusOr<runtime::DecodeResult> layer_local =
          runtime::DecodeForced(model, cache, forced, local);
      if (!layer_local.ok()) return Named(c.variant, layer_local.status());
      if (absl::Status s = AppendWindow(ref_logits, dense_nll, finite, *test, *layer_local,
                                        windows[w], context, layers, driven_state.get(), c);
          !s.ok()) {
        return Named(c.variant, s);
      }
      c.seconds += SecondsSince(start);
    }
    if (progress) {
      progress(absl::StrFormat(
          "window %d/%d: %d + %d positions, %d formats, %d selectors, dense perplexity %.3f, "
          "%.1f s",
          w + 1, windows.size(), context, positions, formats.size(), specs->canonical.size(),
          std::exp(gates::Mean(dense_nll)), SecondsSince(window_start)));
    }
    if (window_done) {
      if (absl::Status s = window_done(w + 1, configs); !s.ok()) return s;
    }
  }
  return configs;
}

absl::StatusOr<std::vector<gates::Record>> QualityRecords(
    const std::vector<ConfigPositions>& configs, const gates::Target& target, uint64_t seed) {
  std::vector<gates::Record> records;
  for (const ConfigPositions& c : configs) {
    gates::Record r;
    r.experiment = kQualityV2Experiment;
    r.variant = c.variant;
    r.target = target;
    // Per window: perplexities, their ratio and its log (the mean NLL difference).
    const gates::Windows ppl = PerWindowPerplexity(c.nll);
    const gates::Windows dense_ppl = PerWindowPerplexity(c.dense_nll);
    gates::Windows ratio, log_ratio;
    for (size_t w = 0; w < ppl.size(); ++w) {
      ratio.push_back({ppl[w][0] / dense_ppl[w][0]});
      log_ratio.push_back({gates::Mean(c.nll[w]) - gates::Mean(c.dense_nll[w])});
    }
    std::vector<std::pair<const char*, const gates::Windows*>> measures = {
        {gates::kKlDivergence, &c.kl_divergence},
        {gates::kDecodeLogitMse, &c.decode_logit_mse},
        {gates::kTop10Overlap, &c.top10_overlap},
        {gates::kArgmaxAgreement, &c.argmax_agreement},
        {gates::kDeltaP, &c.delta_p},
        {gates::kAbsDeltaP, &c.abs_delta_p},
        {gates::kLayerMedianOProjRelL2, &c.layer_median_o_proj_rel_l2},
        {kPerplexity, &ppl},
        {kDensePerplexity, &dense_ppl},
        {kPerplexityRatio, &ratio},
        {kLogPerplexityRatio, &log_ratio},
    };
    if (c.selector) measures.push_back({gates::kActiveHistoryFraction, &c.active_history_fraction});
    for (const auto& [name, values] : measures) {
      if (absl::Status s = gates::AddDistributionMetrics(name, *values, seed, &r.metrics);
          !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(c.variant, ": ", s.message()));
      }
    }
    r.metrics[kWindows] = static_cast<double>(c.decode_logit_mse.size());
    r.metrics[kPositionsPerWindow] =
        c.decode_logit_mse.empty() ? 0.0 : static_cast<double>(c.decode_logit_mse[0].size());
    if (!c.selector) r.metrics[gates::kKvRatio] = c.kv_ratio;
    r.metrics[gates::kReferenceFinite] = c.reference_finite ? 1.0 : 0.0;
    records.push_back(std::move(r));
  }
  return records;
}

std::string QualityTable(const std::vector<gates::Record>& records,
                         const std::vector<std::string>& verdicts) {
  const bool with_verdicts = verdicts.size() == records.size() && !records.empty();
  std::string out = absl::StrCat(
      "| configuration | MSE mean [95% CI] | top-10 mean [CI] | argmax rate | KLD mean | KLD p99 | "
      "delta-p mean | layer-local L2 mean | kv_ratio / kept | perplexity dense | perplexity | "
      "ratio [CI] |",
      with_verdicts ? " verdict |" : "", "\n|---|---|---|---|---|---|---|---|---|---|---|---|",
      with_verdicts ? "---|" : "", "\n");
  for (size_t i = 0; i < records.size(); ++i) {
    const std::map<std::string, double>& m = records[i].metrics;
    auto at = [&](const std::string& k, double* v) {
      auto it = m.find(k);
      if (it == m.end()) return false;
      *v = it->second;
      return true;
    };
    // One value with `digits` decimals (signed when `sign`), or "-" when the record lacks it.
    auto one = [&](const std::string& k, int digits, bool sign = false) {
      double v;
      if (!at(k, &v)) return std::string("-");
      return sign ? absl::StrFormat("%+.*f", digits, v) : absl::StrFormat("%.*f", digits, v);
    };
    // A mean and its interval: "<name>_mean [<name>_mean_ci_low, <name>_mean_ci_high]".
    auto interval = [&](const std::string& name, int digits) {
      double mean, low, high;
      if (!at(name + "_mean", &mean) || !at(name + "_mean_ci_low", &low) ||
          !at(name + "_mean_ci_high", &high)) {
        return std::string("-");
      }
      return absl::StrFormat("%.*f [%.*f, %.*f]", digits, mean, digits, low, digits, high);
    };
    const bool selector = m.count(gates::kKvRatio) == 0;
    absl::StrAppend(&out, "| ", records[i].variant, " | ", interval("decode_logit_mse", 4), " | ",
                    interval("top10_overlap", 3), " | ", one("argmax_agreement_mean", 3), " | ",
                    one("kl_divergence_mean", 5), " | ", one("kl_divergence_p99", 4), " | ",
                    one("delta_p_mean", 5, true), " | ", one("layer_median_o_proj_rel_l2_mean", 4),
                    " | ",
                    selector ? absl::StrCat("kept ", one("active_history_fraction_mean", 4))
                             : one(gates::kKvRatio, 4),
                    " | ", one("dense_perplexity_mean", 3), " | ", one("perplexity_mean", 3), " | ",
                    interval(kPerplexityRatio, 4), " |");
    if (with_verdicts) absl::StrAppend(&out, " ", verdicts[i], " |");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace kvgate::experiments
