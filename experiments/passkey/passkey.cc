#include "experiments/passkey/passkey.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "experiments/common/selector_policy.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/qwen_oracle/oracle.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/kv_cache.h"
#include "experiments/runtime/wall_clock.h"
#include "gates/distribution.h"
#include "gates/metrics.h"
#include "kernels/selectors/selectors.h"

namespace kvgate::experiments {
namespace {

using Clock = std::chrono::steady_clock;

// The policy with AttentionCall::step set to `step`: each step here is its own one-token
// DecodeForced call (whose step is 0), while selectors key their state by the step.
runtime::AttentionPolicy AtStep(const runtime::AttentionPolicy& inner, int64_t step) {
  return [inner, step](const runtime::AttentionCall& call) {
    runtime::AttentionCall at = call;
    at.step = step;
    return inner(at);
  };
}

// Feeds the tail teacher-forced, then the greedy answer, under `policy` (empty: dense). With
// step_probs, each step first runs densely on the same cache to record its attention
// probabilities, then rewinds the cache by that token.
absl::StatusOr<TrialAnswer> Answer(const runtime::Model& model, runtime::KvCache& cache,
                                   const std::vector<int64_t>& tail,
                                   const runtime::AttentionPolicy& policy,
                                   std::vector<torch::Tensor>* step_probs,
                                   const PasskeyOptions& options) {
  TrialAnswer answer;
  int64_t next = -1;
  const int64_t tail_steps = static_cast<int64_t>(tail.size());
  for (int64_t i = 0;; ++i) {
    int64_t token;
    if (i < tail_steps) {
      token = tail[i];
    } else {
      answer.tokens.push_back(next);
      if (next == options.stop_token) break;
      answer.text = options.detokenize(answer.tokens);
      if (static_cast<int64_t>(answer.tokens.size()) >= options.answer_tokens ||
          AnswerComplete(answer.text)) {
        break;
      }
      token = next;
    }
    if (step_probs != nullptr) {
      runtime::DecodeOptions shadow;
      shadow.capture_logits = false;
      shadow.capture_attention_probs = true;
      absl::StatusOr<runtime::DecodeResult> dense =
          runtime::DecodeForced(model, cache, {token}, shadow);
      if (!dense.ok()) return dense.status();
      cache.length -= 1;
      step_probs->push_back(torch::stack(dense->steps[0].attention_probs));
    }
    runtime::DecodeOptions run;
    run.capture_logits = false;
    if (policy) run.policy = AtStep(policy, i);
    absl::StatusOr<runtime::DecodeResult> step = runtime::DecodeForced(model, cache, {token}, run);
    if (!step.ok()) return step.status();
    next = step->steps[0].token_out;
  }
  answer.text = options.detokenize(answer.tokens);
  answer.number = FirstDigitRun(answer.text);
  return answer;
}

double MeanFraction(const SelectorState& st) {
  double sum = 0;
  int64_t n = 0;
  for (const auto& [step, f] : st.fraction) {
    if (f.second > 0) {
      sum += f.first / f.second;
      ++n;
    }
  }
  return n > 0 ? sum / n : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

runtime::AttentionPolicy PromptRoundTripAttention(std::shared_ptr<const kernels::KvFormat> format,
                                                  int64_t prompt_tokens) {
  struct Decoded {
    std::map<int64_t, std::pair<torch::Tensor, torch::Tensor>> by_layer;  // prompt K, V
  };
  auto decoded = std::make_shared<Decoded>();
  return [format, prompt_tokens, decoded](
             const runtime::AttentionCall& call) -> absl::StatusOr<runtime::AttentionResult> {
    const int64_t s = call.k.size(0);
    if (s <= prompt_tokens || call.position < prompt_tokens) {
      return absl::InvalidArgumentError(absl::StrCat(
          format->name(), ": a call over ", s, " positions from ", call.position,
          " does not come after the prompt of ", prompt_tokens));
    }
    auto it = decoded->by_layer.find(call.layer);
    if (it == decoded->by_layer.end()) {
      absl::StatusOr<torch::Tensor> k = runtime::KvRoundTrip(
          *format, call.k.narrow(0, 0, prompt_tokens), kernels::KvRole::kKey, call.q);
      if (!k.ok()) return k.status();
      absl::StatusOr<torch::Tensor> v = runtime::KvRoundTrip(
          *format, call.v.narrow(0, 0, prompt_tokens), kernels::KvRole::kValue, call.q);
      if (!v.ok()) return v.status();
      it = decoded->by_layer.emplace(call.layer, std::make_pair(*k, *v)).first;
    }
    const int64_t rest = s - prompt_tokens;
    absl::StatusOr<torch::Tensor> k = runtime::KvRoundTrip(
        *format, call.k.narrow(0, prompt_tokens, rest), kernels::KvRole::kKey, call.q);
    if (!k.ok()) return k.status();
    absl::StatusOr<torch::Tensor> v = runtime::KvRoundTrip(
        *format, call.v.narrow(0, prompt_tokens, rest), kernels::KvRole::kValue, call.q);
    if (!v.ok()) return v.status();
    return runtime::Attend(call.q, torch::cat({it->second.first, *k}),
                           torch::cat({it->second.second, *v}), /*keep=*/{}, call.want_probs);
  };
}

std::string DepthMetric(const std::string& base, double depth) {
  return absl::StrCat(base, "_depth_", std::llround(depth * 100));
}

absl::StatusOr<std::vector<ConfigAnswers>> RunPasskey(
    const runtime::Model& model, const std::vector<PasskeyTrial>& trials,
    const std::vector<std::shared_ptr<const kernels::KvFormat>>& formats,
    const std::vector<std::string>& selectors, const PasskeyOptions& options) {
  if (trials.empty()) return absl::InvalidArgumentError("passkey: no trials");
  for (const PasskeyTrial& t : trials) {
    if (t.prompt.empty() || t.tail.empty()) {
      return absl::InvalidArgumentError("passkey: a trial with an empty prompt or tail");
    }
  }
  if (options.answer_tokens < 1 || !options.detokenize) {
    return absl::InvalidArgumentError("passkey: answer_tokens >= 1 and detokenize are required");
  }
  const runtime::ModelConfig& config = model.config();
  std::vector<ConfigAnswers> configs(1 + formats.size());
  configs[0].variant = kDenseVariant;
  for (size_t f = 0; f < formats.size(); ++f) {
    configs[1 + f].variant = formats[f]->name();
    for (const PasskeyTrial& t : trials) {
      configs[1 + f].kv_ratio[t.context] =
          kernels::KvBytesVsBf16(*formats[f], t.context, config.num_key_value_heads, config.head_dim);
    }
  }
  bool wants_capture = false, wants_window = false;
  for (const std::string& spec : selectors) {
    absl::StatusOr<std::string> canonical = kernels::CanonicalSelectorName(spec);
    if (!canonical.ok()) return canonical.status();
    const std::string name = SelectorName(*canonical);
    wants_capture = wants_capture || name == "h2o" || name == "tova" || name == "snapkv";
    wants_window = wants_window || name == "snapkv";
    ConfigAnswers c;
    c.variant = *canonical;
    c.selector = true;
    configs.push_back(std::move(c));
  }
  for (const PasskeyTrial& t : trials) {
    const int64_t fed = static_cast<int64_t>(t.prompt.size() + t.tail.size()) +
                        options.answer_tokens;
    if (config.max_position_embeddings > 0 && fed > config.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrCat("passkey: a trial of ", fed, " positions exceeds the model's ",
                       config.max_position_embeddings));
    }
    if (wants_window && static_cast<int64_t>(t.prompt.size()) < kSnapKvCaptureWindow) {
      return absl::InvalidArgumentError(absl::StrCat("passkey: a prompt of ", t.prompt.size(),
                                                     " tokens is shorter than SnapKV's window"));
    }
  }

  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < trials.size(); ++i) {
    const PasskeyTrial& t = trials[i];
    const Clock::time_point trial_start = Clock::now();
    const int64_t p = static_cast<int64_t>(t.prompt.size());
    runtime::KvCache base =
        model.NewCache(p + static_cast<int64_t>(t.tail.size()) + options.answer_tokens);
    auto capture = std::make_shared<PromptCapture>();
    capture->prompt = p;
    capture->window = wants_window ? kSnapKvCaptureWindow : 0;
    if (wants_capture) {
      runtime::ForwardHooks hooks;
      hooks.policy = CapturingDense(capture, config.num_hidden_layers);
      const int64_t chunk = std::max<int64_t>(1, options.prefill_chunk);
      for (int64_t begin = 0; begin < p; begin += chunk) {
        const int64_t end = std::min(p, begin + chunk);
        absl::StatusOr<torch::Tensor> logits = runtime::Prefill(
            model, base, std::vector<int64_t>(t.prompt.begin() + begin, t.prompt.begin() + end),
            hooks);
        if (!logits.ok()) return logits.status();
      }
    } else {
      absl::StatusOr<torch::Tensor> logits = runtime::Prefill(model, base, t.prompt);
      if (!logits.ok()) return logits.status();
    }
    int64_t correct = 0;
    for (size_t c = 0; c < configs.size(); ++c) {
      ConfigAnswers& config_answers = configs[c];
      const Clock::time_point start = Clock::now();
      runtime::KvCache cache = base.Clone();
      runtime::AttentionPolicy policy;
      std::vector<torch::Tensor> step_probs;
      std::shared_ptr<SelectorState> state;
      const bool oracle =
          config_answers.selector && SelectorNeedsStepProbs(config_answers.variant);
      if (c >= 1 && c <= formats.size()) {
        policy = PromptRoundTripAttention(formats[c - 1], p);
      } else if (config_answers.selector) {
        state = NewSelectorState(config_answers.variant, step_probs, *capture);
        policy = SelectorPolicy(state);
      }
      absl::StatusOr<TrialAnswer> answer =
          Answer(model, cache, t.tail, policy, oracle ? &step_probs : nullptr, options);
      if (!answer.ok()) {
        return absl::Status(answer.status().code(), absl::StrCat(config_answers.variant, ": ",
                                                                 answer.status().message()));
      }
      answer->correct = answer->number.has_value() && *answer->number == absl::StrCat(t.key);
      if (state != nullptr) answer->active_fraction = MeanFraction(*state);
      correct += answer->correct ? 1 : 0;
      config_answers.answers.push_back(std::move(*answer));
      config_answers.seconds += SecondsSince(start);
    }
    if (options.progress) {
      const TrialAnswer& dense = configs[0].answers.back();
      options.progress(absl::StrFormat(
          "trial %d/%d: context %d, depth %.0f%%, trial %d, key %d (needle at token %d of %d): "
          "dense answered \"%s\" (%s); %d/%d configurations correct; %.1f s",
          i + 1, trials.size(), t.context, t.depth * 100, t.trial + 1, t.key, t.needle_at, p,
          absl::CEscape(dense.text), dense.correct ? "correct" : "wrong", correct,
          configs.size(), SecondsSince(trial_start)));
    }
  }
  return configs;
}

absl::StatusOr<std::vector<gates::Record>> PasskeyRecords(const std::vector<ConfigAnswers>& configs,
                                                          const std::vector<PasskeyTrial>& trials,
                                                          const gates::Target& target,
                                                          uint64_t seed) {
  if (configs.empty() || configs[0].variant != kDenseVariant) {
    return absl::InvalidArgumentError("passkey: the first configuration must be dense");
  }
  for (const ConfigAnswers& c : configs) {
    if (c.answers.size() != trials.size()) {
      return absl::InvalidArgumentError(absl::StrCat("passkey: ", c.variant, " has ",
                                                     c.answers.size(), " answers for ",
                                                     trials.size(), " trials"));
    }
  }
  std::vector<int64_t> contexts;
  for (const PasskeyTrial& t : trials) {
    if (std::find(contexts.begin(), contexts.end(), t.context) == contexts.end()) {
      contexts.push_back(t.context);
    }
  }
  const ConfigAnswers& dense = configs[0];
  std::vector<gates::Record> records;
  for (size_t c = 1; c < configs.size(); ++c) {
    const ConfigAnswers& config = configs[c];
    for (int64_t context : contexts) {
      std::vector<size_t> at;
      for (size_t i = 0; i < trials.size(); ++i) {
        if (trials[i].context == context) at.push_back(i);
      }
      const int64_t n = static_cast<int64_t>(at.size());
      int64_t ok = 0, dense_ok = 0, agree = 0;
      double fraction = 0;
      gates::Windows drops;  // one trial a window: the paired bootstrap resamples trials
      std::map<int64_t, std::pair<int64_t, int64_t>> by_depth;        // percent -> correct, n
      std::map<int64_t, int64_t> dense_by_depth;                      // percent -> correct
      std::map<int64_t, double> depth_of;
      for (size_t i : at) {
        const TrialAnswer& a = config.answers[i];
        const TrialAnswer& d = dense.answers[i];
        ok += a.correct;
        dense_ok += d.correct;
        agree += a.number == d.number;
        fraction += a.active_fraction;
        drops.push_back({static_cast<double>(d.correct) - static_cast<double>(a.correct)});
        const int64_t pct = std::llround(trials[i].depth * 100);
        by_depth[pct].first += a.correct;
        by_depth[pct].second += 1;
        dense_by_depth[pct] += d.correct;
        depth_of[pct] = trials[i].depth;
      }
      absl::StatusOr<gates::Interval> ci = WilsonInterval(ok, n);
      absl::StatusOr<gates::Interval> dense_ci = WilsonInterval(dense_ok, n);
      absl::StatusOr<gates::Interval> drop_ci = gates::BootstrapInterval(
          drops, gates::Mean, seed, gates::kBootstrapResamples, gates::kIntervalLevel);
      if (!ci.ok()) return ci.status();
      if (!dense_ci.ok()) return dense_ci.status();
      if (!drop_ci.ok()) return drop_ci.status();
      gates::Record r;
      r.experiment = kPasskeyExperiment;
      r.variant = config.variant;
      r.target = target;
      r.target.context = context;
      const double nn = static_cast<double>(n);
      std::map<std::string, double>& m = r.metrics;
      m[kTrials] = nn;
      m[kAccuracy] = ok / nn;
      m["accuracy_ci_low"] = ci->low;
      m["accuracy_ci_high"] = ci->high;
      m[kDenseAccuracy] = dense_ok / nn;
      m["dense_accuracy_ci_low"] = dense_ci->low;
      m["dense_accuracy_ci_high"] = dense_ci->high;
      m[kAccuracyDrop] = (dense_ok - ok) / nn;
      m["accuracy_drop_ci_low"] = drop_ci->low;
      m["accuracy_drop_ci_high"] = drop_ci->high;
      m[kAnswerAgreement] = agree / nn;
      for (const auto& [pct, counts] : by_depth) {
        const std::string name = DepthMetric(kAccuracy, depth_of[pct]);
        absl::StatusOr<gates::Interval> depth_ci = WilsonInterval(counts.first, counts.second);
        if (!depth_ci.ok()) return depth_ci.status();
        m[name] = static_cast<double>(counts.first) / static_cast<double>(counts.second);
        m[absl::StrCat(name, "_ci_low")] = depth_ci->low;
        m[absl::StrCat(name, "_ci_high")] = depth_ci->high;
        m[DepthMetric(kDenseAccuracy, depth_of[pct])] =
            static_cast<double>(dense_by_depth[pct]) / static_cast<double>(counts.second);
      }
      if (config.selector) {
        m[gates::kActiveHistoryFraction] = fraction / nn;
      } else if (auto it = config.kv_ratio.find(context); it != config.kv_ratio.end()) {
        m[gates::kKvRatio] = it->second;
      }
      records.push_back(std::move(r));
    }
  }
  return records;
}

std::string PasskeyTable(const std::vector<gates::Record>& records,
                         const std::vector<std::string>& verdicts) {
  const bool with_verdicts = verdicts.size() == records.size() && !records.empty();
  std::string out = absl::StrCat(
      "| configuration | context | trials | accuracy [95% Wilson] | dense | drop [95% bootstrap] "
      "| agreement | by depth (configuration / dense) |",
      with_verdicts ? " verdict |" : "", "\n|---|---|---|---|---|---|---|---|",
      with_verdicts ? "---|" : "", "\n");
  for (size_t i = 0; i < records.size(); ++i) {
    const std::map<std::string, double>& m = records[i].metrics;
    auto at = [&](const std::string& k) {
      auto it = m.find(k);
      return it == m.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
    };
    std::vector<std::string> depths;
    const std::string prefix = absl::StrCat(kAccuracy, "_depth_");
    for (const auto& [name, value] : m) {
      if (name.rfind(prefix, 0) != 0 || name.find("_ci_") != std::string::npos) continue;
      const std::string pct = name.substr(prefix.size());
      depths.push_back(absl::StrFormat("%s%%: %.2f/%.2f", pct, value,
                                       at(absl::StrCat(kDenseAccuracy, "_depth_", pct))));
    }
    absl::StrAppendFormat(
        &out, "| %s | %d | %.0f | %.3f [%.3f, %.3f] | %.3f | %+.3f [%+.3f, %+.3f] | %.3f | %s |",
        records[i].variant, records[i].target.context, at(kTrials), at(kAccuracy),
        at("accuracy_ci_low"), at("accuracy_ci_high"), at(kDenseAccuracy), at(kAccuracyDrop),
        at("accuracy_drop_ci_low"), at("accuracy_drop_ci_high"), at(kAnswerAgreement),
        absl::StrJoin(depths, ", "));
    if (with_verdicts) absl::StrAppend(&out, " ", verdicts[i], " |");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace kvgate::experiments
