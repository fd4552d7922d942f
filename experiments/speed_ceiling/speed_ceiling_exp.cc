#include "experiments/speed_ceiling/speed_ceiling_exp.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/kv_cache.h"
#include "gates/metrics.h"
#include "gates/speed_ceiling/speed_ceiling.h"

namespace kvgate::experiments {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

void Sync(const runtime::Model& model) {
  // CPU ops are synchronous; a CUDA build would synchronize here (another issue).
  (void)model;
}

}  // namespace

double Median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

double BytesProjectionPAttn(const runtime::ModelConfig& c, int64_t element_bytes,
                            int64_t history) {
  const double nq = static_cast<double>(c.num_attention_heads) * c.head_dim;
  const double nkv = static_cast<double>(c.num_key_value_heads) * c.head_dim;
  double params = static_cast<double>(c.vocab_size) * c.hidden_size *
                      (c.tie_word_embeddings ? 1 : 2) +
                  c.hidden_size;
  params += c.num_hidden_layers * (2.0 * c.hidden_size + c.hidden_size * (2 * nq + 2 * nkv) +
                                   3.0 * c.hidden_size * c.intermediate_size);
  const double weight_bytes = params * element_bytes;
  const double kv_bytes = 2.0 * c.num_hidden_layers * nkv * element_bytes * history;
  return kv_bytes / (weight_bytes + kv_bytes);
}

absl::StatusOr<SpeedMeasurement> MeasureDenseDecode(
    const runtime::Model& model, const std::vector<int64_t>& prompt, int64_t steps,
    int64_t warmup, const std::function<void(const std::string&)>& progress) {
  if (prompt.empty()) return absl::InvalidArgumentError("speed_ceiling: the prompt is empty");
  if (steps < 1 || warmup < 0) {
    return absl::InvalidArgumentError("speed_ceiling: steps must be >= 1 and warmup >= 0");
  }
  torch::NoGradGuard no_grad;
  const int64_t context = static_cast<int64_t>(prompt.size());
  runtime::KvCache cache = model.NewCache(context + 1);
  absl::StatusOr<torch::Tensor> logits = runtime::Prefill(model, cache, prompt);
  if (!logits.ok()) return logits.status();
  const int64_t token = logits->argmax().item<int64_t>();

  // Attention time of the current step, summed over layers.
  auto attention_ms = std::make_shared<double>(0.0);
  runtime::AttentionPolicy dense = runtime::DenseAttention();
  runtime::AttentionPolicy timed = [dense, attention_ms, &model](
                                       const runtime::AttentionCall& call)
      -> absl::StatusOr<runtime::AttentionResult> {
    Sync(model);
    const Clock::time_point start = Clock::now();
    absl::StatusOr<runtime::AttentionResult> result = dense(call);
    Sync(model);
    *attention_ms += Ms(start);
    return result;
  };
  // The ablated step: attention reads only the newest token (everything else is unchanged).
  runtime::AttentionPolicy newest_only =
      [](const runtime::AttentionCall& call) -> absl::StatusOr<runtime::AttentionResult> {
    const int64_t s = call.k.size(0), t = call.q.size(0);
    return runtime::Attend(call.q, call.k.narrow(0, s - t, t), call.v.narrow(0, s - t, t),
                           torch::Tensor(), false);
  };

  SpeedMeasurement m;
  m.history = context + 1;
  m.steps = steps;
  auto one_step = [&](const runtime::AttentionPolicy& policy, double* ms) -> absl::Status {
    runtime::ForwardHooks hooks;
    hooks.policy = policy;
    hooks.step = 0;
    cache.length = context;  // the same history every step
    Sync(model);
    const Clock::time_point start = Clock::now();
    absl::StatusOr<torch::Tensor> out = runtime::DecodeOne(model, cache, token, hooks);
    if (!out.ok()) return out.status();
    (void)out->argmax().item<int64_t>();
    *ms = Ms(start);
    return absl::OkStatus();
  };
  for (int64_t i = 0; i < warmup + steps; ++i) {
    double step_ms = 0, ablated_ms = 0;
    *attention_ms = 0;
    if (absl::Status s = one_step(timed, &step_ms); !s.ok()) return s;
    const double attn = *attention_ms;
    if (absl::Status s = one_step(newest_only, &ablated_ms); !s.ok()) return s;
    if (i < warmup) continue;
    m.step_ms.push_back(step_ms);
    m.attention_ms.push_back(attn);
    m.ablated_step_ms.push_back(ablated_ms);
    if (progress) {
      progress(absl::StrFormat(
          "step %d/%d: dense %.2f ms (attention %.2f ms, %.3f), newest-token-only %.2f ms",
          i - warmup + 1, steps, step_ms, attn, attn / step_ms, ablated_ms));
    }
  }
  m.dense_decode_step_ms = Median(m.step_ms);
  m.dense_attention_ms = Median(m.attention_ms);
  m.ablated_step_ms_median = Median(m.ablated_step_ms);
  m.p_attn = m.dense_attention_ms / m.dense_decode_step_ms;
  m.p_attn_ablation = (m.dense_decode_step_ms - m.ablated_step_ms_median) / m.dense_decode_step_ms;
  m.p_attn_bytes =
      BytesProjectionPAttn(model.config(), torch::elementSize(model.dtype()), m.history);
  return m;
}

absl::StatusOr<double> RelativeRange(const std::vector<double>& values) {
  if (values.empty()) return absl::InvalidArgumentError("relative range of no values");
  for (double v : values) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError("relative range of a non-finite value");
  }
  const double median = Median(values);
  if (!(median > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("relative range undefined: the median is ", median, " (must be > 0)"));
  }
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return (*hi - *lo) / median;
}

absl::StatusOr<RepeatedSpeed> CombineRuns(std::vector<SpeedMeasurement> runs) {
  if (runs.empty()) return absl::InvalidArgumentError("speed_ceiling: no runs to combine");
  std::vector<double> p, step, attention, ablated, ablation, bytes;
  for (const SpeedMeasurement& m : runs) {
    if (m.history != runs[0].history) {
      return absl::InvalidArgumentError(absl::StrCat("speed_ceiling: runs at histories ",
                                                     runs[0].history, " and ", m.history));
    }
    p.push_back(m.p_attn);
    step.push_back(m.dense_decode_step_ms);
    attention.push_back(m.dense_attention_ms);
    ablated.push_back(m.ablated_step_ms_median);
    ablation.push_back(m.p_attn_ablation);
    bytes.push_back(m.p_attn_bytes);
  }
  absl::StatusOr<double> range = RelativeRange(p);
  if (!range.ok()) return range.status();
  RepeatedSpeed r;
  r.median.history = runs[0].history;
  r.median.steps = runs[0].steps;
  r.median.p_attn = Median(p);
  r.median.dense_decode_step_ms = Median(step);
  r.median.dense_attention_ms = Median(attention);
  r.median.ablated_step_ms_median = Median(ablated);
  r.median.p_attn_ablation = Median(ablation);
  r.median.p_attn_bytes = Median(bytes);
  r.p_attn_min = *std::min_element(p.begin(), p.end());
  r.p_attn_max = *std::max_element(p.begin(), p.end());
  r.p_attn_relative_range = *range;
  r.runs = std::move(runs);
  return r;
}

absl::StatusOr<RepeatedSpeed> MeasureDenseDecodeRepeated(
    const runtime::Model& model, const std::vector<int64_t>& prompt, int64_t steps,
    int64_t warmup, int64_t repeats, const std::function<void(const std::string&)>& progress) {
  if (repeats < 1) return absl::InvalidArgumentError("speed_ceiling: repeats must be >= 1");
  std::vector<SpeedMeasurement> runs;
  for (int64_t i = 0; i < repeats; ++i) {
    if (progress) progress(absl::StrFormat("run %d/%d", i + 1, repeats));
    absl::StatusOr<SpeedMeasurement> m = MeasureDenseDecode(model, prompt, steps, warmup, progress);
    if (!m.ok()) return m.status();
    if (progress) {
      progress(absl::StrFormat("run %d/%d: p_attn %.4f (ablation %.4f)", i + 1, repeats, m->p_attn,
                               m->p_attn_ablation));
    }
    runs.push_back(*std::move(m));
  }
  return CombineRuns(std::move(runs));
}

absl::StatusOr<std::vector<ProjectionRow>> ProjectionTable(double p_attn,
                                                           const std::vector<double>& fractions,
                                                           const std::vector<double>& overheads) {
  std::vector<ProjectionRow> rows;
  for (double f : fractions) {
    for (double h : overheads) {
      absl::StatusOr<double> s = gates::ProjectedSpeedup(p_attn, f, h);
      if (!s.ok()) return s.status();
      rows.push_back({f, h, *s});
    }
  }
  return rows;
}

std::string ProjectionMarkdown(const std::vector<ProjectionRow>& rows) {
  std::vector<double> overheads;
  std::map<double, std::map<double, double>> by_f;
  std::vector<double> fractions;
  for (const ProjectionRow& r : rows) {
    if (std::find(overheads.begin(), overheads.end(), r.overhead) == overheads.end()) {
      overheads.push_back(r.overhead);
    }
    if (std::find(fractions.begin(), fractions.end(), r.active_fraction) == fractions.end()) {
      fractions.push_back(r.active_fraction);
    }
    by_f[r.active_fraction][r.overhead] = r.speedup;
  }
  std::string out = "| active fraction f |";
  for (double h : overheads) absl::StrAppendFormat(&out, " h = %.0f%% |", 100 * h);
  absl::StrAppend(&out, "\n|---|");
  for (size_t i = 0; i < overheads.size(); ++i) absl::StrAppend(&out, "---|");
  absl::StrAppend(&out, "\n");
  for (double f : fractions) {
    absl::StrAppendFormat(&out, "| %.3f |", f);
    for (double h : overheads) absl::StrAppendFormat(&out, " %.4fx |", by_f[f][h]);
    absl::StrAppend(&out, "\n");
  }
  return out;
}

absl::StatusOr<std::vector<gates::Record>> SpeedCeilingRecords(
    const SpeedMeasurement& m, const std::vector<double>& fractions,
    const gates::Target& target) {
  absl::StatusOr<RepeatedSpeed> one = CombineRuns({m});
  if (!one.ok()) return one.status();
  return SpeedCeilingRecords(*one, fractions, target);
}

absl::StatusOr<std::vector<gates::Record>> SpeedCeilingRecords(
    const RepeatedSpeed& repeated, const std::vector<double>& fractions,
    const gates::Target& target) {
  const SpeedMeasurement& m = repeated.median;
  std::vector<gates::Record> records;
  for (double f : fractions) {
    gates::Record r;
    r.experiment = kSpeedCeilingExperiment;
    r.variant = absl::StrFormat("dense_decode_p_attn_per_op:f=%.4f", f);
    r.target = target;
    r.step = std::nullopt;
    r.metrics = {{gates::kPAttn, m.p_attn},
                 {gates::kActiveHistoryFraction, f},
                 {"dense_decode_step_ms", m.dense_decode_step_ms},
                 {"dense_attention_ms", m.dense_attention_ms},
                 {"p_attn_ablation", m.p_attn_ablation},
                 {"p_attn_bytes_projection", m.p_attn_bytes},
                 {"timed_steps", static_cast<double>(m.steps)},
                 {"repeats", static_cast<double>(repeated.runs.size())},
                 {"p_attn_min", repeated.p_attn_min},
                 {"p_attn_max", repeated.p_attn_max},
                 {"p_attn_relative_range", repeated.p_attn_relative_range}};
    for (size_t i = 0; i < repeated.runs.size(); ++i) {
      r.metrics[absl::StrCat("p_attn_run_", i + 1)] = repeated.runs[i].p_attn;
    }
    for (double h : TableOverheads()) {
      absl::StatusOr<double> s = gates::ProjectedSpeedup(m.p_attn, f, h);
      if (!s.ok()) return s.status();
      r.metrics[absl::StrFormat("projected_speedup_h%d", static_cast<int>(100 * h + 0.5))] = *s;
    }
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace kvgate::experiments
