#include "experiments/qwen_oracle/oracle.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/kv_cache.h"
#include "gates/metrics.h"
#include "kernels/attention/attention.h"
#include "kernels/selectors/selectors.h"

namespace kvgate::experiments {
namespace {

using Clock = std::chrono::steady_clock;
using runtime::AttentionCall;
using runtime::AttentionPolicy;
using runtime::AttentionResult;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// "h2o:heavy=256:recent=256" -> "h2o"; the value of one parameter of a canonical name.
std::string SelectorName(const std::string& canonical) {
  return std::string(canonical.substr(0, canonical.find(':')));
}
int64_t SelectorParam(const std::string& canonical, absl::string_view key, int64_t fallback) {
  for (absl::string_view part : absl::StrSplit(canonical, ':')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, '=');
    int64_t value;
    if (kv.first == key && absl::SimpleAtoi(kv.second, &value)) return value;
  }
  return fallback;
}

runtime::KvCache CloneCache(const runtime::KvCache& cache) {
  runtime::KvCache out;
  for (const torch::Tensor& k : cache.k) out.k.push_back(k.clone());
  for (const torch::Tensor& v : cache.v) out.v.push_back(v.clone());
  out.length = cache.length;
  return out;
}

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

// What the deployable selectors may see of the prompt, per layer (float32, CPU).
struct PromptCapture {
  int64_t prompt = 0;   // P
  int64_t window = 0;   // W: prompt queries kept for SnapKV (0: none)
  std::vector<torch::Tensor> accumulated;  // [heads, P]: attention each token received
  std::vector<torch::Tensor> last_probs;   // [heads, P]: the last prompt query's attention
  std::vector<torch::Tensor> window_probs;  // [heads, W, P]: the last W queries' attention
};

// Dense attention that also records PromptCapture from the probabilities of each prefill chunk.
AttentionPolicy CapturingDense(std::shared_ptr<PromptCapture> capture, int64_t layers) {
  capture->accumulated.resize(layers);
  capture->last_probs.resize(layers);
  capture->window_probs.resize(layers);
  AttentionPolicy dense = runtime::DenseAttention();
  return [capture, dense](const AttentionCall& call) -> absl::StatusOr<AttentionResult> {
    AttentionCall with_probs = call;
    with_probs.want_probs = true;
    absl::StatusOr<AttentionResult> result = dense(with_probs);
    if (!result.ok()) return result;
    const torch::Tensor probs = CpuFloat(result->probs);  // [Tc, heads, S]
    const int64_t tc = probs.size(0), heads = probs.size(1), s = probs.size(2);
    const int64_t p = capture->prompt, w = capture->window, pos = call.position;
    const int64_t l = call.layer;
    if (!capture->accumulated[l].defined()) {
      capture->accumulated[l] = torch::zeros({heads, p});
      if (w > 0) capture->window_probs[l] = torch::zeros({heads, w, p});
    }
    capture->accumulated[l].narrow(1, 0, s).add_(probs.sum(0));
    if (w > 0) {
      const int64_t first = std::max(p - w, pos);
      if (first < pos + tc) {
        const int64_t n = pos + tc - first;
        capture->window_probs[l].narrow(1, first - (p - w), n).narrow(2, 0, s).copy_(
            probs.narrow(0, first - pos, n).permute({1, 0, 2}));
      }
    }
    if (pos + tc == p) capture->last_probs[l] = probs[tc - 1].clone();
    if (!call.want_probs) result->probs = torch::Tensor();
    return result;
  };
}

// One selector configuration's state across the layers and steps of one decode run.
struct SelectorState {
  std::string spec;  // canonical
  std::string name;
  const std::vector<torch::Tensor>* step_probs = nullptr;  // per step [layers, heads, T]
  std::vector<torch::Tensor> accumulated;                  // h2o, per layer [heads, T']
  std::vector<torch::Tensor> last_probs;                   // tova, per layer [heads, T']
  const std::vector<torch::Tensor>* window_probs = nullptr;  // snapkv, per layer [heads, W, P]
  int64_t capture_window = 0;
  std::map<int64_t, std::pair<torch::Tensor, double>> shared;  // global_block_mass by step
  std::map<int64_t, std::pair<double, int64_t>> fraction;      // by step: sum over layers, count
};

// bool [rows, tokens] from a selection.
absl::StatusOr<torch::Tensor> KeepMask(const kernels::Selection& selection, int64_t tokens) {
  absl::StatusOr<std::vector<std::vector<int64_t>>> rows =
      kernels::SelectionRows(selection.history, tokens);
  if (!rows.ok()) return rows.status();
  torch::Tensor mask = torch::zeros({static_cast<int64_t>(rows->size()), tokens}, torch::kBool);
  auto a = mask.accessor<bool, 2>();
  for (size_t r = 0; r < rows->size(); ++r) {
    for (int64_t t : (*rows)[r]) a[r][t] = true;
  }
  return mask;
}

AttentionPolicy SelectorPolicy(std::shared_ptr<SelectorState> st) {
  return [st](const AttentionCall& call) -> absl::StatusOr<AttentionResult> {
    const int64_t s = call.k.size(0), layer = call.layer, step = call.step;
    if (call.q.size(0) != 1 || step < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(st->spec, ": selectors run on single-token decode steps only"));
    }
    torch::Tensor keep;
    double fraction = 0;
    auto cached = st->shared.find(step);
    if (st->name == "global_block_mass" && cached != st->shared.end()) {
      keep = cached->second.first;
      fraction = cached->second.second;
    } else {
      kernels::SelectorInputs in;
      in.tokens = s;
      kernels::QuestMetadata quest;
      if (st->name == "global_block_mass" || st->name == "layer_block_mass") {
        if (st->step_probs == nullptr || step >= static_cast<int64_t>(st->step_probs->size())) {
          return absl::InternalError(absl::StrCat(st->spec, ": no dense probabilities of step ",
                                                  step));
        }
        in.step_probs = (*st->step_probs)[step];
        in.layer = layer;
      } else if (st->name == "h2o") {
        in.accumulated = st->accumulated[layer];
      } else if (st->name == "tova") {
        in.last_probs = st->last_probs[layer];
      } else if (st->name == "snapkv") {
        const int64_t w = SelectorParam(st->spec, "window", 64);
        if (w > st->capture_window) {
          return absl::InvalidArgumentError(absl::StrCat(st->spec, ": window ", w, " > the ",
                                                         st->capture_window, " captured"));
        }
        const torch::Tensor& all = (*st->window_probs)[layer];
        in.window_probs = all.narrow(1, all.size(1) - w, w);
      } else if (st->name == "quest") {
        absl::StatusOr<kernels::QuestMetadata> md =
            kernels::BuildQuestMetadata(CpuFloat(call.k), SelectorParam(st->spec, "b", 16));
        if (!md.ok()) return md.status();
        quest = std::move(*md);
        in.q = CpuFloat(call.q[0]);
        in.quest = &quest;
      }
      absl::StatusOr<kernels::Selection> selection = kernels::Select(st->spec, in);
      if (!selection.ok()) return selection.status();
      absl::StatusOr<torch::Tensor> mask = KeepMask(*selection, s);
      if (!mask.ok()) return mask.status();
      keep = mask->to(call.q.device());
      fraction = selection->active_fraction;
      if (st->name == "global_block_mass") st->shared[step] = {keep, fraction};
    }
    std::pair<double, int64_t>& f = st->fraction[step];
    f.first += fraction;
    f.second += 1;
    const bool stateful = st->name == "h2o" || st->name == "tova";
    AttentionResult result =
        runtime::Attend(call.q, call.k, call.v, keep, call.want_probs || stateful);
    if (stateful) {
      const torch::Tensor probs = CpuFloat(result.probs[0]);  // [heads, S]
      if (st->name == "h2o") {
        torch::Tensor acc = probs.clone();
        const torch::Tensor& before = st->accumulated[layer];
        acc.narrow(1, 0, before.size(1)).add_(before);
        st->accumulated[layer] = acc;
      } else {
        st->last_probs[layer] = probs;
      }
      if (!call.want_probs) result.probs = torch::Tensor();
    }
    return result;
  };
}

std::shared_ptr<SelectorState> NewState(const std::string& spec,
                                        const std::vector<torch::Tensor>& step_probs,
                                        const PromptCapture& capture) {
  auto st = std::make_shared<SelectorState>();
  st->spec = spec;
  st->name = SelectorName(spec);
  st->step_probs = &step_probs;
  st->accumulated = capture.accumulated;
  st->last_probs = capture.last_probs;
  st->window_probs = &capture.window_probs;
  st->capture_window = capture.window;
  return st;
}

int64_t Scaled(int64_t value, int64_t context) {
  if (context >= 8192) return value;
  return std::max<int64_t>(1, static_cast<int64_t>(std::llround(
                                  static_cast<double>(value) * context / 8192.0)));
}

}  // namespace

std::vector<std::string> DefaultSelectorSpecs(int64_t context, std::string* note) {
  const int64_t b = Scaled(3072, context);
  const int64_t snap = std::max<int64_t>(b, 2 * kSnapKvCaptureWindow);
  if (note != nullptr) {
    *note = context >= 8192
                ? "budgets: recent_sink recent=3072 (as the study), other selectors B=3072"
                : absl::StrCat("budgets scaled to the context: recent_sink recent=", b,
                               " (3072 * ", context, " / 8192), other selectors B=", b,
                               " (snapkv ", snap, ")");
  }
  return {
      "global_block_mass:f=0.376:b=16",
      "global_block_mass:f=0.350:b=16",
      "global_block_mass:f=0.337:b=16",
      absl::StrCat("recent_sink:sink=4:recent=", b),
      "layer_block_mass:f=0.376:b=16",
      absl::StrCat("streaming_llm:sink=4:window=", b),
      absl::StrCat("h2o:heavy=", std::max<int64_t>(1, b / 2), ":recent=", b - b / 2),
      absl::StrCat("tova:budget=", b),
      absl::StrCat("snapkv:budget=", snap, ":window=", kSnapKvCaptureWindow, ":kernel=5:pool=avg"),
      absl::StrCat("quest:budget=", b, ":b=16"),
  };
}

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
  bool wants_window = false;
  for (const std::string& spec : options.selectors) {
    absl::StatusOr<std::string> canonical = kernels::CanonicalSelectorName(spec);
    if (!canonical.ok()) return canonical.status();
    if (SelectorName(*canonical) == "snapkv") {
      wants_window = true;
      if (SelectorParam(*canonical, "window", 64) > kSnapKvCaptureWindow) {
        return absl::InvalidArgumentError(absl::StrCat(*canonical, ": window above ",
                                                       kSnapKvCaptureWindow, " is not captured"));
      }
    }
    result.variants.push_back(*canonical);
  }
  const int64_t p = static_cast<int64_t>(prompt.size());
  const int64_t layers = model.config().num_hidden_layers;
  if (wants_window && p < kSnapKvCaptureWindow) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt of ", p, " tokens is shorter than SnapKV's window ",
                     kSnapKvCaptureWindow));
  }

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
  runtime::KvCache dense_cache = CloneCache(base);
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
      std::shared_ptr<SelectorState> driven = NewState(variant, step_probs, *capture);
      runtime::DecodeOptions driven_options;
      driven_options.policy = SelectorPolicy(driven);
      runtime::KvCache cache = CloneCache(base);
      absl::StatusOr<runtime::DecodeResult> run =
          runtime::DecodeForced(model, cache, result.dense_tokens, driven_options);
      if (!run.ok()) return run.status();
      // Layer-local: dense-driven, the selector evaluated on each layer's dense input.
      std::shared_ptr<SelectorState> local = NewState(variant, step_probs, *capture);
      runtime::DecodeOptions local_options;
      local_options.local_policy = SelectorPolicy(local);
      local_options.capture_layer_outputs = true;
      cache = CloneCache(base);
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
