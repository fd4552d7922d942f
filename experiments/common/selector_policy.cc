#include "experiments/common/selector_policy.h"

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kernels/selectors/selectors.h"

namespace kvgate::experiments {
namespace {

using runtime::AttentionCall;
using runtime::AttentionPolicy;
using runtime::AttentionResult;

torch::Tensor CpuFloat(const torch::Tensor& t) {
  return t.to(torch::kCPU, torch::kFloat32).contiguous();
}

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

int64_t Scaled(int64_t value, int64_t context) {
  if (context >= 8192) return value;
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::llround(static_cast<double>(value) * context / 8192.0)));
}

}  // namespace

std::vector<std::string> DefaultSelectorSpecs(int64_t context, std::string* note) {
  const int64_t b = Scaled(3072, context);
  const int64_t snap = std::max<int64_t>(b, 2 * kSnapKvCaptureWindow);
  if (note != nullptr) {
    *note = context >= 8192
                ? "budgets: recent_sink recent=3072 (as the study), other selectors B=3072"
                : absl::StrCat("budgets scaled to the context: recent_sink recent=", b, " (3072 * ",
                               context, " / 8192), other selectors B=", b, " (snapkv ", snap, ")");
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

bool SelectorNeedsStepProbs(const std::string& canonical) {
  const std::string name = SelectorName(canonical);
  return name == "global_block_mass" || name == "layer_block_mass";
}

absl::StatusOr<SelectorSpecs> CheckSelectorSpecs(const std::vector<std::string>& specs,
                                                 int64_t prompt_tokens) {
  SelectorSpecs out;
  for (const std::string& spec : specs) {
    absl::StatusOr<std::string> canonical = kernels::CanonicalSelectorName(spec);
    if (!canonical.ok()) return canonical.status();
    const std::string name = SelectorName(*canonical);
    if (name == "snapkv") {
      out.wants_window = true;
      if (SelectorParam(*canonical, "window", 64) > kSnapKvCaptureWindow) {
        return absl::InvalidArgumentError(
            absl::StrCat(*canonical, ": window above ", kSnapKvCaptureWindow, " is not captured"));
      }
    }
    out.wants_prompt = out.wants_prompt || name == "h2o" || name == "tova" || name == "snapkv";
    out.wants_step_probs =
        out.wants_step_probs || name == "global_block_mass" || name == "layer_block_mass";
    out.canonical.push_back(*canonical);
  }
  if (out.wants_window && prompt_tokens >= 0 && prompt_tokens < kSnapKvCaptureWindow) {
    return absl::InvalidArgumentError(absl::StrCat("prompt of ", prompt_tokens,
                                                   " tokens is shorter than SnapKV's window ",
                                                   kSnapKvCaptureWindow));
  }
  return out;
}

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
    // float32 [Tc, heads, S] on the model's device: reduced there, so only [heads, S] rows (and
    // the SnapKV window's queries) cross to the CPU, not the whole chunk.
    const torch::Tensor probs = result->probs;
    const int64_t tc = probs.size(0), heads = probs.size(1), s = probs.size(2);
    const int64_t p = capture->prompt, w = capture->window, pos = call.position;
    const int64_t l = call.layer;
    if (!capture->accumulated[l].defined()) {
      capture->accumulated[l] = torch::zeros({heads, p});
      if (w > 0) capture->window_probs[l] = torch::zeros({heads, w, p});
    }
    capture->accumulated[l].narrow(1, 0, s).add_(CpuFloat(probs.sum(0)));
    if (w > 0) {
      const int64_t first = std::max(p - w, pos);
      if (first < pos + tc) {
        const int64_t n = pos + tc - first;
        capture->window_probs[l].narrow(1, first - (p - w), n).narrow(2, 0, s).copy_(
            CpuFloat(probs.narrow(0, first - pos, n)).permute({1, 0, 2}));
      }
    }
    if (pos + tc == p) capture->last_probs[l] = CpuFloat(probs[tc - 1]).clone();
    if (!call.want_probs) result->probs = torch::Tensor();
    return result;
  };
}

double SelectorState::MeanFraction(int64_t step) const {
  auto it = fraction.find(step);
  if (it == fraction.end() || it->second.second == 0) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return it->second.first / it->second.second;
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
          return absl::InternalError(
              absl::StrCat(st->spec, ": no dense probabilities of step ", step));
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
          return absl::InvalidArgumentError(
              absl::StrCat(st->spec, ": window ", w, " > the ", st->capture_window, " captured"));
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

std::shared_ptr<SelectorState> NewSelectorState(const std::string& canonical,
                                                const std::vector<torch::Tensor>& step_probs,
                                                const PromptCapture& capture) {
  auto st = std::make_shared<SelectorState>();
  st->spec = canonical;
  st->name = SelectorName(canonical);
  st->step_probs = &step_probs;
  st->accumulated = capture.accumulated;
  st->last_probs = capture.last_probs;
  st->window_probs = &capture.window_probs;
  st->capture_window = capture.window;
  return st;
}

}  // namespace kvgate::experiments
