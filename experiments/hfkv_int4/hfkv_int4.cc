#include "experiments/hfkv_int4/hfkv_int4.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <chrono>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/kv_cache.h"
#include "experiments/runtime/wall_clock.h"
#include "gates/metrics.h"
#include "kernels/kv_format/kv_format_registry.h"

namespace kvgate::experiments {
namespace {

gates::Values AsValues(const torch::Tensor& t) {
  return absl::MakeConstSpan(t.data_ptr<float>(), static_cast<size_t>(t.numel()));
}

}  // namespace

std::vector<std::string> DefaultFormatSpecs() {
  std::vector<std::string> raw = {"symmetric_int4:block=32", "affine_int4:block=32"};
  for (const std::string& spec : kernels::KnownKvFormats()) raw.push_back(spec);
  for (const char* name : {"turboquant_mse", "turboquant_prod"}) {
    for (int bits = 2; bits <= 4; ++bits) raw.push_back(absl::StrCat(name, ":bits=", bits));
  }
  std::vector<std::string> specs;
  std::set<std::string> seen;
  for (const std::string& spec : raw) {
    absl::StatusOr<std::unique_ptr<kernels::KvFormat>> format = kernels::MakeKvFormat(spec);
    const std::string name = format.ok() ? (*format)->name() : spec;
    if (seen.insert(name).second) specs.push_back(name);
  }
  return specs;
}

absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> MakeFormats(
    const std::vector<std::string>& specs) {
  std::vector<std::shared_ptr<const kernels::KvFormat>> formats;
  for (const std::string& spec : specs) {
    absl::StatusOr<std::unique_ptr<kernels::KvFormat>> format = kernels::MakeKvFormat(spec);
    if (!format.ok()) return format.status();
    formats.push_back(std::shared_ptr<const kernels::KvFormat>(std::move(*format)));
  }
  return formats;
}


absl::StatusOr<HfkvResult> RunHfkvQuality(
    const runtime::Model& model, const std::vector<int64_t>& prompt,
    const std::vector<std::shared_ptr<const kernels::KvFormat>>& formats, int64_t decode_steps,
    const std::function<void(const std::string&)>& progress) {
  if (prompt.empty()) return absl::InvalidArgumentError("hfkv_int4: the prompt is empty");
  if (decode_steps < 1) return absl::InvalidArgumentError("hfkv_int4: decode_steps must be >= 1");
  torch::NoGradGuard no_grad;
  HfkvResult result;
  const int64_t capacity = static_cast<int64_t>(prompt.size()) + decode_steps;

  auto start = std::chrono::steady_clock::now();
  runtime::KvCache prefilled = model.NewCache(capacity);
  absl::StatusOr<torch::Tensor> prefill_logits = runtime::Prefill(model, prefilled, prompt);
  if (!prefill_logits.ok()) return prefill_logits.status();
  const int64_t first = prefill_logits->argmax().item<int64_t>();
  result.prefill_seconds = SecondsSince(start);
  if (progress) {
    progress(absl::StrFormat("prefill: %d tokens in %.2f s", prompt.size(),
                             result.prefill_seconds));
  }

  runtime::KvCache dense_cache = prefilled.Clone();
  absl::StatusOr<runtime::DecodeResult> dense =
      runtime::DecodeN(model, dense_cache, first, decode_steps);
  if (!dense.ok()) return dense.status();
  result.dense_decode_seconds = dense->seconds;
  if (static_cast<int64_t>(dense->steps.size()) != decode_steps) {
    return absl::InternalError("hfkv_int4: the dense decode stopped early");
  }

  const runtime::ModelConfig& config = model.config();
  // Numerical guard: a non-finite dense reference invalidates the rows of its steps; replay it to
  // name the step and layer where it first went non-finite.
  std::optional<runtime::NonFiniteAt> nonfinite;
  for (const runtime::DecodeStep& step : dense->steps) {
    if (torch::isfinite(step.logits).all().item<bool>()) continue;
    absl::StatusOr<std::optional<runtime::NonFiniteAt>> at =
        runtime::LocateNonFinite(model, prompt, dense->TokensIn());
    if (!at.ok()) return at.status();
    nonfinite = at->value_or(runtime::NonFiniteAt{0, config.num_hidden_layers + 1});
    result.reference_nonfinite = nonfinite->Describe(config.num_hidden_layers);
    if (progress) {
      progress("dense reference NON-FINITE from " + result.reference_nonfinite +
               ": the rows of those steps are invalid");
    }
    break;
  }
  for (const std::shared_ptr<const kernels::KvFormat>& format : formats) {
    runtime::KvCache cache = prefilled.Clone();
    runtime::DecodeOptions options;
    options.policy = runtime::KvRoundTripAttention(format);
    start = std::chrono::steady_clock::now();
    absl::StatusOr<runtime::DecodeResult> test =
        runtime::DecodeForced(model, cache, dense->TokensIn(), options);
    const double seconds = SecondsSince(start);
    if (!test.ok()) {
      result.failures.push_back(absl::StrCat(format->name(), ": ", test.status().ToString()));
      if (progress) progress(absl::StrCat(format->name(), ": FAILED ", test.status().ToString()));
      continue;
    }
    const double kv_ratio = kernels::KvBytesVsBf16(*format, static_cast<int64_t>(prompt.size()),
                                          config.num_key_value_heads, config.head_dim);
    for (int64_t i = 0; i < decode_steps; ++i) {
      const torch::Tensor ref = dense->steps[i].logits.to(torch::kFloat32).contiguous();
      const torch::Tensor got = test->steps[i].logits.to(torch::kFloat32).contiguous();
      HfkvRow row;
      row.format = format->name();
      row.step = i;
      absl::StatusOr<double> mse = gates::DecodeLogitMse(AsValues(ref), AsValues(got));
      absl::StatusOr<double> top10 = gates::TopKOverlap(AsValues(ref), AsValues(got), 10);
      absl::StatusOr<double> argmax = gates::ArgmaxAgreement(AsValues(ref), AsValues(got));
      absl::StatusOr<double> kl = gates::KlDivergence(AsValues(ref), AsValues(got));
      for (const absl::Status& s : {mse.status(), top10.status(), argmax.status(), kl.status()}) {
        if (!s.ok()) return s;
      }
      row.decode_logit_mse = *mse;
      row.top10_overlap = *top10;
      row.argmax_agreement = *argmax;
      row.kl_divergence = *kl;
      row.kv_ratio = kv_ratio;
      row.reference_finite = gates::AllFinite(AsValues(ref)) ? 1.0 : 0.0;
      if (row.reference_finite == 0.0 && nonfinite.has_value()) {
        row.nonfinite_step = nonfinite->step;
        row.nonfinite_layer = nonfinite->layer;
      }
      row.seconds = seconds;
      result.rows.push_back(row);
    }
    if (progress) {
      const HfkvRow& r0 = result.rows[result.rows.size() - decode_steps];
      progress(absl::StrFormat("%-44s step 0: mse %.4f top10 %.2f argmax %.0f kl %.5f (%.2f s)",
                               format->name(), r0.decode_logit_mse, r0.top10_overlap,
                               r0.argmax_agreement, r0.kl_divergence, seconds));
    }
  }
  return result;
}

std::string HfkvTable(const std::vector<HfkvRow>& rows, const std::vector<std::string>& verdicts) {
  const bool with_verdicts = verdicts.size() == rows.size() && !rows.empty();
  std::string out = absl::StrCat(
      "| format | step | decode_logit_mse | top10_overlap | argmax_agreement | kl_divergence | "
      "kv_ratio |",
      with_verdicts ? " verdict |" : "", "\n|---|---|---|---|---|---|---|",
      with_verdicts ? "---|" : "", "\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    const HfkvRow& r = rows[i];
    absl::StrAppendFormat(&out, "| %s | %d | %.4f | %.2f | %.0f | %.5f | %.4f |", r.format, r.step,
                          r.decode_logit_mse, r.top10_overlap, r.argmax_agreement,
                          r.kl_divergence, r.kv_ratio);
    if (with_verdicts) absl::StrAppend(&out, " ", verdicts[i], " |");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::vector<gates::Record> HfkvRecords(const std::vector<HfkvRow>& rows,
                                       const gates::Target& target, int64_t recorded_steps) {
  std::vector<gates::Record> records;
  for (const HfkvRow& r : rows) {
    if (r.step >= recorded_steps) continue;
    gates::Record record;
    record.experiment = kHfkvExperiment;
    record.variant = r.format;
    record.target = target;
    record.step = r.step;
    record.metrics = {{gates::kDecodeLogitMse, r.decode_logit_mse},
                      {gates::kTop10Overlap, r.top10_overlap},
                      {gates::kArgmaxAgreement, r.argmax_agreement},
                      {gates::kKlDivergence, r.kl_divergence},
                      {gates::kKvRatio, r.kv_ratio},
                      {gates::kReferenceFinite, r.reference_finite}};
    if (r.nonfinite_step.has_value()) {
      record.metrics[runtime::kReferenceNonfiniteStep] = static_cast<double>(*r.nonfinite_step);
      record.metrics[runtime::kReferenceNonfiniteLayer] = static_cast<double>(*r.nonfinite_layer);
    }
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace kvgate::experiments
