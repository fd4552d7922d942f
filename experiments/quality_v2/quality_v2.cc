#include "experiments/quality_v2/quality_v2.h"

#include <torch/torch.h>

#include <chrono>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/kv_cache.h"
#include "gates/metrics.h"
#include "gates/position_quality.h"

namespace kvgate::experiments {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

runtime::KvCache CloneCache(const runtime::KvCache& cache) {
  runtime::KvCache out;
  for (const torch::Tensor& k : cache.k) out.k.push_back(k.clone());
  for (const torch::Tensor& v : cache.v) out.v.push_back(v.clone());
  out.length = cache.length;
  return out;
}

torch::Tensor CpuFloat(const torch::Tensor& t) {
  return t.to(torch::kCPU, torch::kFloat32).contiguous();
}

gates::Values Span(const torch::Tensor& t) {
  return gates::Values(t.data_ptr<float>(), static_cast<size_t>(t.numel()));
}

bool Finite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

}  // namespace

absl::StatusOr<std::vector<ConfigPositions>> RunFormatsOverWindows(
    const runtime::Model& model, const std::vector<std::vector<int64_t>>& windows,
    int64_t context, int64_t positions,
    const std::vector<std::shared_ptr<const kernels::KvFormat>>& formats,
    const std::function<void(const std::string&)>& progress) {
  if (context < 1 || positions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("quality_v2: context ", context, " and positions ", positions,
                     " must be >= 1"));
  }
  const size_t length = static_cast<size_t>(context + positions + 1);
  for (size_t w = 0; w < windows.size(); ++w) {
    if (windows[w].size() != length) {
      return absl::InvalidArgumentError(
          absl::StrCat("quality_v2: window ", w, " has ", windows[w].size(),
                       " tokens, not context + positions + 1 = ", length));
    }
  }
  torch::NoGradGuard no_grad;
  const runtime::ModelConfig& config = model.config();
  std::vector<ConfigPositions> configs(formats.size());
  for (size_t f = 0; f < formats.size(); ++f) {
    configs[f].variant = formats[f]->name();
    configs[f].kv_ratio =
        kernels::KvBytesVsBf16(*formats[f], context, config.num_key_value_heads, config.head_dim);
  }
  for (size_t w = 0; w < windows.size(); ++w) {
    const Clock::time_point window_start = Clock::now();
    const std::vector<int64_t> prompt(windows[w].begin(), windows[w].begin() + context);
    const std::vector<int64_t> forced(windows[w].begin() + context,
                                      windows[w].begin() + context + positions);
    runtime::KvCache base = model.NewCache(context + positions);
    absl::StatusOr<torch::Tensor> prefill = runtime::Prefill(model, base, prompt);
    if (!prefill.ok()) return prefill.status();

    runtime::KvCache cache = CloneCache(base);
    absl::StatusOr<runtime::DecodeResult> dense = runtime::DecodeForced(model, cache, forced);
    if (!dense.ok()) return dense.status();
    bool finite = true;
    std::vector<torch::Tensor> ref_logits;
    for (const runtime::DecodeStep& step : dense->steps) {
      ref_logits.push_back(CpuFloat(step.logits));
      finite = finite && Finite(ref_logits.back());
    }

    for (size_t f = 0; f < formats.size(); ++f) {
      const Clock::time_point start = Clock::now();
      ConfigPositions& c = configs[f];
      runtime::DecodeOptions driven;
      driven.policy = runtime::KvRoundTripAttention(formats[f]);
      cache = CloneCache(base);
      absl::StatusOr<runtime::DecodeResult> test =
          runtime::DecodeForced(model, cache, forced, driven);
      if (!test.ok()) {
        return absl::Status(test.status().code(),
                            absl::StrCat(c.variant, ": ", test.status().message()));
      }
      runtime::DecodeOptions local;
      local.local_policy = runtime::KvRoundTripAttention(formats[f]);
      local.capture_layer_outputs = true;
      local.capture_logits = false;
      cache = CloneCache(base);
      absl::StatusOr<runtime::DecodeResult> layer_local =
          runtime::DecodeForced(model, cache, forced, local);
      if (!layer_local.ok()) {
        return absl::Status(layer_local.status().code(),
                            absl::StrCat(c.variant, ": ", layer_local.status().message()));
      }
      std::vector<double> kl, mse, top10, argmax, dp, adp, l2;
      bool window_finite = finite;
      for (int64_t i = 0; i < positions; ++i) {
        const torch::Tensor got = CpuFloat(test->steps[i].logits);
        const int64_t true_next = windows[w][context + i + 1];
        absl::StatusOr<gates::PositionQuality> q =
            gates::MeasurePosition(Span(ref_logits[i]), Span(got), true_next);
        if (!q.ok()) return q.status();
        std::vector<torch::Tensor> ref_layers, test_layers;
        std::vector<gates::Values> ref_spans, test_spans;
        for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
          ref_layers.push_back(CpuFloat(layer_local->steps[i].layer_outputs[l]));
          test_layers.push_back(CpuFloat(layer_local->steps[i].local_outputs[l]));
          window_finite = window_finite && Finite(ref_layers.back());
        }
        for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
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
      }
      c.kl_divergence.push_back(std::move(kl));
      c.decode_logit_mse.push_back(std::move(mse));
      c.top10_overlap.push_back(std::move(top10));
      c.argmax_agreement.push_back(std::move(argmax));
      c.delta_p.push_back(std::move(dp));
      c.abs_delta_p.push_back(std::move(adp));
      c.layer_median_o_proj_rel_l2.push_back(std::move(l2));
      c.reference_finite = c.reference_finite && window_finite;
      c.seconds += SecondsSince(start);
    }
    if (progress) {
      progress(absl::StrFormat("window %d/%d: %d + %d positions, %d formats, %.1f s", w + 1,
                               windows.size(), context, positions, formats.size(),
                               SecondsSince(window_start)));
    }
  }
  return configs;
}

absl::StatusOr<std::vector<gates::Record>> FormatRecords(const std::vector<ConfigPositions>& configs,
                                                         const gates::Target& target,
                                                         uint64_t seed) {
  std::vector<gates::Record> records;
  for (const ConfigPositions& c : configs) {
    gates::Record r;
    r.experiment = kQualityV2Experiment;
    r.variant = c.variant;
    r.target = target;
    const std::pair<const char*, const gates::Windows*> measures[] = {
        {gates::kKlDivergence, &c.kl_divergence},
        {gates::kDecodeLogitMse, &c.decode_logit_mse},
        {gates::kTop10Overlap, &c.top10_overlap},
        {gates::kArgmaxAgreement, &c.argmax_agreement},
        {gates::kDeltaP, &c.delta_p},
        {gates::kAbsDeltaP, &c.abs_delta_p},
        {gates::kLayerMedianOProjRelL2, &c.layer_median_o_proj_rel_l2},
    };
    for (const auto& [name, values] : measures) {
      if (absl::Status s = gates::AddDistributionMetrics(name, *values, seed, &r.metrics);
          !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(c.variant, ": ", s.message()));
      }
    }
    r.metrics[kWindows] = static_cast<double>(c.decode_logit_mse.size());
    r.metrics[kPositionsPerWindow] =
        c.decode_logit_mse.empty() ? 0.0 : static_cast<double>(c.decode_logit_mse[0].size());
    r.metrics[gates::kKvRatio] = c.kv_ratio;
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
      "delta-p mean | layer-local L2 mean | kv_ratio |",
      with_verdicts ? " verdict |" : "", "\n|---|---|---|---|---|---|---|---|---|",
      with_verdicts ? "---|" : "", "\n");
  for (size_t i = 0; i < records.size(); ++i) {
    const std::map<std::string, double>& m = records[i].metrics;
    auto at = [&](const std::string& k) {
      auto it = m.find(k);
      return it == m.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
    };
    absl::StrAppendFormat(
        &out, "| %s | %.4f [%.4f, %.4f] | %.3f [%.3f, %.3f] | %.3f | %.5f | %.4f | %+.5f | %.4f | %.4f |",
        records[i].variant, at("decode_logit_mse_mean"), at("decode_logit_mse_mean_ci_low"),
        at("decode_logit_mse_mean_ci_high"), at("top10_overlap_mean"),
        at("top10_overlap_mean_ci_low"), at("top10_overlap_mean_ci_high"),
        at("argmax_agreement_mean"), at("kl_divergence_mean"), at("kl_divergence_p99"),
        at("delta_p_mean"), at("layer_median_o_proj_rel_l2_mean"), at(gates::kKvRatio));
    if (with_verdicts) absl::StrAppend(&out, " ", verdicts[i], " |");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace kvgate::experiments
