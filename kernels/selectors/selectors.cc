// The selectors of selectors.h: plain loops over float64 copies of their inputs, a spec parser
// and a dispatcher. Rankings use std::stable_sort over ascending indices, so ties keep the lower
// index first.

#include "kernels/selectors/selectors.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "kernels/common/tensor_checks.h"

namespace kvgate::kernels {
namespace {

// A float64 contiguous copy of probabilities or scores of the given rank, after checking they are
// a defined floating CPU tensor, finite and non-negative.
absl::StatusOr<torch::Tensor> Scores(const std::string& who, const char* name,
                                     const torch::Tensor& t, int64_t rank, const char* dims) {
  if (!t.defined() || !t.device().is_cpu() || !t.is_floating_point() || t.dim() != rank) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s must be a float tensor %s on cpu, got %s", who, name, dims, DescribeTensor(t)));
  }
  torch::Tensor t64 = t.to(torch::kFloat64).contiguous();
  const double* data = t64.data_ptr<double>();
  for (int64_t i = 0; i < t64.numel(); ++i) {
    if (!std::isfinite(data[i]) || data[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: %s holds %g at flat index %d; scores must be finite and >= 0", who,
                          name, data[i], i));
    }
  }
  return t64;
}

// f as a count of 1e-4: InvalidArgument unless 0 < f <= 1 with at most 4 decimals.
absl::StatusOr<int64_t> FractionUnits(const std::string& who, double f) {
  const double scaled = f * 1e4;
  const int64_t units = std::isfinite(scaled) ? std::llround(scaled) : -1;
  if (!(f > 0 && f <= 1) || std::fabs(scaled - static_cast<double>(units)) > 1e-6) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: f=%.10g must be a fraction of history in (0, 1] with at most 4 decimals", who, f));
  }
  return units;
}

// The indices of candidates (ascending) with the k highest scores; ties keep the lower index.
std::vector<int64_t> Top(const std::function<double(int64_t)>& score,
                         std::vector<int64_t> candidates, int64_t k) {
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](int64_t a, int64_t b) { return score(a) > score(b); });
  candidates.resize(std::min<int64_t>(std::max<int64_t>(k, 0), candidates.size()));
  return candidates;
}

std::vector<int64_t> Range(int64_t begin, int64_t end) {
  std::vector<int64_t> r;
  for (int64_t i = begin; i < end; ++i) r.push_back(i);
  return r;
}

// A Selection from its HistorySelection: counts what it keeps from the selection itself.
absl::StatusOr<Selection> Finish(const std::string& variant, HistorySelection history,
                                 int64_t tokens) {
  absl::StatusOr<std::vector<std::vector<int64_t>>> rows = SelectionRows(history, tokens);
  if (!rows.ok()) {
    return absl::Status(rows.status().code(), absl::StrCat(variant, ": ", rows.status().message()));
  }
  Selection s;
  s.variant = variant;
  s.history = std::move(history);
  s.tokens = tokens;
  s.rows = static_cast<int64_t>(rows->size());
  for (const std::vector<int64_t>& row : *rows) s.kept += static_cast<int64_t>(row.size());
  s.active_fraction =
      static_cast<double>(s.kept) / (static_cast<double>(s.rows) * static_cast<double>(tokens));
  return s;
}

// Token lists (one a row, equal lengths, sorted here) as a HistorySelection [rows, n].
HistorySelection TokenRows(std::vector<std::vector<int64_t>> rows) {
  const int64_t n = rows.empty() ? 0 : static_cast<int64_t>(rows[0].size());
  torch::Tensor t = torch::empty({static_cast<int64_t>(rows.size()), n}, torch::kInt64);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::sort(rows[r].begin(), rows[r].end());
    std::copy(rows[r].begin(), rows[r].end(), t.data_ptr<int64_t>() + r * n);
  }
  return HistorySelection::Tokens(t);
}

// The union of sorted-or-not token sets, deduplicated.
std::vector<int64_t> Union(std::vector<int64_t> a, const std::vector<int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  return a;
}

absl::Status CheckTokens(const std::string& who, int64_t tokens) {
  if (tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": history of ", tokens, " tokens"));
  }
  return absl::OkStatus();
}

absl::Status CheckScored(const std::string& who, const char* name, int64_t scored, int64_t tokens) {
  if (scored > tokens) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s scores %d tokens, more than the history of %d", who, name, scored, tokens));
  }
  return absl::OkStatus();
}

// Blocks of `masses` kept in rank order until ceil(units/1e4 * T) tokens are kept.
torch::Tensor MassMask(const std::vector<double>& masses, int64_t block_size, int64_t tokens,
                       int64_t units) {
  const int64_t blocks = static_cast<int64_t>(masses.size());
  const int64_t target = (units * tokens + 9999) / 10000;
  torch::Tensor mask = torch::zeros({blocks}, torch::kBool);
  bool* m = mask.data_ptr<bool>();
  int64_t kept = 0;
  for (int64_t j : Top([&](int64_t i) { return masses[i]; }, Range(0, blocks), blocks)) {
    m[j] = true;
    kept += std::min(tokens, (j + 1) * block_size) - j * block_size;
    if (kept >= target) break;
  }
  return mask;
}

absl::Status CheckBlockSize(const std::string& who, int64_t b) {
  if (b < 1) return absl::InvalidArgumentError(absl::StrCat(who, ": b=", b, " must be >= 1"));
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Oracles.

absl::StatusOr<std::vector<Selection>> SelectLayerBlockMass(const torch::Tensor& step_probs,
                                                            double f, int64_t block_size) {
  std::string who = "layer_block_mass";
  absl::StatusOr<int64_t> units = FractionUnits(who, f);
  if (!units.ok()) return units.status();
  if (absl::Status s = CheckBlockSize(who, block_size); !s.ok()) return s;
  who = absl::StrFormat("layer_block_mass:f=%.4f:b=%d", *units / 1e4, block_size);
  absl::StatusOr<torch::Tensor> p = Scores(who, "step_probs", step_probs, 3, "[layers, heads, T]");
  if (!p.ok()) return p.status();
  const int64_t layers = p->size(0), heads = p->size(1), tokens = p->size(2);
  if (absl::Status s = CheckTokens(who, tokens); !s.ok()) return s;
  const int64_t blocks = (tokens + block_size - 1) / block_size;
  const double* data = p->data_ptr<double>();
  std::vector<Selection> out;
  for (int64_t l = 0; l < layers; ++l) {
    std::vector<double> masses(blocks, 0.0);
    for (int64_t h = 0; h < heads; ++h) {
      const double* row = data + (l * heads + h) * tokens;
      for (int64_t t = 0; t < tokens; ++t) masses[t / block_size] += row[t];
    }
    absl::StatusOr<Selection> s = Finish(
        who, HistorySelection::Blocks(MassMask(masses, block_size, tokens, *units), block_size),
        tokens);
    if (!s.ok()) return s.status();
    out.push_back(*std::move(s));
  }
  return out;
}

absl::StatusOr<Selection> SelectGlobalBlockMass(const torch::Tensor& step_probs, double f,
                                                int64_t block_size) {
  std::string who = "global_block_mass";
  absl::StatusOr<int64_t> units = FractionUnits(who, f);
  if (!units.ok()) return units.status();
  if (absl::Status s = CheckBlockSize(who, block_size); !s.ok()) return s;
  who = absl::StrFormat("global_block_mass:f=%.4f:b=%d", *units / 1e4, block_size);
  absl::StatusOr<torch::Tensor> p = Scores(who, "step_probs", step_probs, 3, "[layers, heads, T]");
  if (!p.ok()) return p.status();
  const int64_t rows = p->size(0) * p->size(1), tokens = p->size(2);
  if (absl::Status s = CheckTokens(who, tokens); !s.ok()) return s;
  const int64_t blocks = (tokens + block_size - 1) / block_size;
  const double* data = p->data_ptr<double>();
  std::vector<double> masses(blocks, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < tokens; ++t) masses[t / block_size] += data[r * tokens + t];
  }
  return Finish(who,
                HistorySelection::Blocks(MassMask(masses, block_size, tokens, *units), block_size),
                tokens);
}

// ---------------------------------------------------------------------------------------------
// Recency.

absl::StatusOr<Selection> SelectRecentSink(int64_t tokens, int64_t sink, int64_t recent) {
  const std::string who = absl::StrFormat("recent_sink:sink=%d:recent=%d", sink, recent);
  if (absl::Status s = CheckTokens(who, tokens); !s.ok()) return s;
  if (sink < 0 || recent < 0) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": sink and recent must be >= 0"));
  }
  const std::vector<int64_t> kept =
      Union(Range(0, std::min(sink, tokens)), Range(std::max<int64_t>(0, tokens - recent), tokens));
  return Finish(who, TokenRows({kept}), tokens);
}

absl::StatusOr<Selection> SelectStreamingLlm(int64_t tokens, int64_t sink, int64_t window) {
  absl::StatusOr<Selection> s = SelectRecentSink(tokens, sink, window);
  const std::string name = absl::StrFormat("streaming_llm:sink=%d:window=%d", sink, window);
  if (!s.ok()) {
    return absl::Status(s.status().code(), absl::StrCat(name, " (as ", s.status().message(), ")"));
  }
  s->variant = name;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Deployable, from attention seen earlier.

absl::StatusOr<Selection> SelectH2o(const torch::Tensor& accumulated, int64_t tokens, int64_t heavy,
                                    int64_t recent) {
  const std::string who = absl::StrFormat("h2o:heavy=%d:recent=%d", heavy, recent);
  if (absl::Status s = CheckTokens(who, tokens); !s.ok()) return s;
  if (heavy < 0 || recent < 0) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": heavy and recent must be >= 0"));
  }
  absl::StatusOr<torch::Tensor> acc = Scores(who, "accumulated", accumulated, 2, "[rows, T']");
  if (!acc.ok()) return acc.status();
  const int64_t rows = acc->size(0), scored = acc->size(1);
  if (absl::Status s = CheckScored(who, "accumulated", scored, tokens); !s.ok()) return s;
  const int64_t recent_begin = std::max<int64_t>(0, tokens - recent);
  const int64_t candidates_end = std::min(recent_begin, scored);  // scored and not recent
  std::vector<std::vector<int64_t>> out;
  for (int64_t r = 0; r < rows; ++r) {
    const double* score = acc->data_ptr<double>() + r * scored;
    const std::vector<int64_t> heavy_hitters =
        Top([&](int64_t t) { return score[t]; }, Range(0, candidates_end), heavy);
    out.push_back(Union(heavy_hitters, Range(candidates_end, tokens)));
  }
  return Finish(who, TokenRows(std::move(out)), tokens);
}

absl::StatusOr<Selection> SelectTova(const torch::Tensor& last_probs, int64_t tokens,
                                     int64_t budget) {
  const std::string who = absl::StrFormat("tova:budget=%d", budget);
  if (absl::Status s = CheckTokens(who, tokens); !s.ok()) return s;
  if (budget < 1) return absl::InvalidArgumentError(absl::StrCat(who, ": budget must be >= 1"));
  absl::StatusOr<torch::Tensor> p = Scores(who, "last_probs", last_probs, 2, "[rows, T']");
  if (!p.ok()) return p.status();
  const int64_t rows = p->size(0), scored = p->size(1);
  if (absl::Status s = CheckScored(who, "last_probs", scored, tokens); !s.ok()) return s;
  if (rows < 1) return absl::InvalidArgumentError(absl::StrCat(who, ": last_probs has no rows"));
  std::vector<double> mean(scored, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < scored; ++t) mean[t] += p->data_ptr<double>()[r * scored + t];
  }
  for (double& m : mean) m /= static_cast<double>(rows);
  const int64_t unscored = tokens - scored;
  std::vector<int64_t> kept = Range(tokens - std::min(unscored, budget), tokens);
  const int64_t room = budget - static_cast<int64_t>(kept.size());
  kept = Union(kept, Top([&](int64_t t) { return mean[t]; }, Range(0, scored), room));
  return Finish(who, TokenRows({kept}), tokens);
}

absl::StatusOr<Selection> SelectSnapKv(const torch::Tensor& window_probs, int64_t tokens,
                                       int64_t budget, int64_t kernel, SnapKvPool pool) {
  const int64_t window =
      window_probs.defined() && window_probs.dim() == 3 ? window_probs.size(1) : -1;
  const std::string who = absl::StrFormat("snapkv:budget=%d:window=%d:kernel=%d:pool=%s", budget,
                                          window, kernel, pool == SnapKvPool::kAvg ? "avg" : "max");
  if (absl::Status s = CheckTokens(who, tokens); !s.ok()) return s;
  absl::StatusOr<torch::Tensor> p = Scores(who, "window_probs", window_probs, 3, "[rows, W, P]");
  if (!p.ok()) return p.status();
  const int64_t rows = p->size(0), prompt = p->size(2);
  if (absl::Status s = CheckScored(who, "window_probs", prompt, tokens); !s.ok()) return s;
  if (window < 1 || window > prompt) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: the observation window (%d queries) must be within the prompt of %d tokens", who,
        window, prompt));
  }
  if (budget <= window) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: budget %d must exceed the window %d (SnapKV keeps the window itself)",
                        who, budget, window));
  }
  if (kernel < 1 || kernel % 2 == 0) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": kernel must be odd and >= 1"));
  }
  const int64_t prefix = prompt - window;  // scored tokens
  std::vector<std::vector<int64_t>> out;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> sum(prefix, 0.0), pooled(prefix, 0.0);
    for (int64_t w = 0; w < window; ++w) {
      const double* row = p->data_ptr<double>() + (r * window + w) * prompt;
      for (int64_t t = 0; t < prefix; ++t) sum[t] += row[t];
    }
    for (int64_t t = 0; t < prefix; ++t) {
      double acc = pool == SnapKvPool::kAvg ? 0.0 : -1.0;
      for (int64_t u = t - kernel / 2; u <= t + kernel / 2; ++u) {
        const double value = (u >= 0 && u < prefix) ? sum[u] : 0.0;  // zero padding
        if (pool == SnapKvPool::kAvg) {
          acc += value;
        } else if (u >= 0 && u < prefix) {
          acc = std::max(acc, value);
        }
      }
      pooled[t] = pool == SnapKvPool::kAvg ? acc / static_cast<double>(kernel) : acc;
    }
    out.push_back(
        Union(Top([&](int64_t t) { return pooled[t]; }, Range(0, prefix), budget - window),
              Range(prefix, tokens)));
  }
  return Finish(who, TokenRows(std::move(out)), tokens);
}

// ---------------------------------------------------------------------------------------------
// Quest.

absl::StatusOr<QuestMetadata> BuildQuestMetadata(const torch::Tensor& k, int64_t block_size) {
  const std::string who = "BuildQuestMetadata";
  if (!k.defined() || !k.device().is_cpu() || !k.is_floating_point() || k.dim() != 3 ||
      k.size(0) < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": k must be a float tensor [T >= 1, kv_heads, head_dim] on cpu, got ",
                     DescribeTensor(k)));
  }
  if (block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": block size ", block_size, " < 1"));
  }
  const torch::Tensor kf = k.to(torch::kFloat32).contiguous();
  const int64_t tokens = kf.size(0), row = kf.size(1) * kf.size(2);
  const int64_t blocks = (tokens + block_size - 1) / block_size;
  QuestMetadata m;
  m.block_size = block_size;
  m.tokens = tokens;
  m.min = torch::empty({blocks, kf.size(1), kf.size(2)}, torch::kFloat32);
  m.max = torch::empty_like(m.min);
  const float* data = kf.data_ptr<float>();
  float* mn = m.min.data_ptr<float>();
  float* mx = m.max.data_ptr<float>();
  for (int64_t j = 0; j < blocks; ++j) {
    std::copy(data + j * block_size * row, data + (j * block_size + 1) * row, mn + j * row);
    std::copy(data + j * block_size * row, data + (j * block_size + 1) * row, mx + j * row);
    for (int64_t t = j * block_size + 1; t < std::min(tokens, (j + 1) * block_size); ++t) {
      for (int64_t c = 0; c < row; ++c) {
        mn[j * row + c] = std::min(mn[j * row + c], data[t * row + c]);
        mx[j * row + c] = std::max(mx[j * row + c], data[t * row + c]);
      }
    }
  }
  return m;
}

absl::StatusOr<Selection> SelectQuest(const torch::Tensor& q, const QuestMetadata& metadata,
                                      int64_t budget) {
  const int64_t b = metadata.block_size;
  const std::string who = absl::StrFormat("quest:budget=%d:b=%d", budget, b);
  if (budget < 1) return absl::InvalidArgumentError(absl::StrCat(who, ": budget must be >= 1"));
  if (b < 1 || metadata.tokens < 1 || !metadata.min.defined() || !metadata.max.defined() ||
      metadata.min.dim() != 3 || metadata.min.sizes() != metadata.max.sizes() ||
      metadata.min.size(0) != (metadata.tokens + b - 1) / b) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": metadata is not BuildQuestMetadata's: min ",
                     DescribeTensor(metadata.min), ", max ", DescribeTensor(metadata.max)));
  }
  const int64_t blocks = metadata.min.size(0), kv_heads = metadata.min.size(1),
                head_dim = metadata.min.size(2);
  if (!q.defined() || !q.device().is_cpu() || !q.is_floating_point() || q.dim() != 2 ||
      q.size(1) != head_dim || q.size(0) % kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: q must be a float tensor [heads, %d] on cpu with heads a multiple of %d, got %s", who,
        head_dim, kv_heads, DescribeTensor(q)));
  }
  const int64_t heads = q.size(0), group = heads / kv_heads;
  const torch::Tensor q64 = q.to(torch::kFloat64).contiguous();
  const torch::Tensor mn = metadata.min.to(torch::kFloat64).contiguous();
  const torch::Tensor mx = metadata.max.to(torch::kFloat64).contiguous();
  const int64_t keep = std::min(blocks, (budget + b - 1) / b);
  torch::Tensor mask = torch::zeros({heads, blocks}, torch::kBool);
  bool* m = mask.data_ptr<bool>();
  std::vector<double> bound(blocks);
  for (int64_t h = 0; h < heads; ++h) {
    const double* qh = q64.data_ptr<double>() + h * head_dim;
    const int64_t g = h / group;
    for (int64_t j = 0; j < blocks; ++j) {
      const double* lo = mn.data_ptr<double>() + (j * kv_heads + g) * head_dim;
      const double* hi = mx.data_ptr<double>() + (j * kv_heads + g) * head_dim;
      double u = 0.0;
      for (int64_t d = 0; d < head_dim; ++d) u += std::max(qh[d] * lo[d], qh[d] * hi[d]);
      bound[j] = u;
    }
    for (int64_t j : Top([&](int64_t i) { return bound[i]; }, Range(0, blocks), keep)) {
      m[h * blocks + j] = true;
    }
  }
  return Finish(who, HistorySelection::Blocks(mask, b), metadata.tokens);
}

// ---------------------------------------------------------------------------------------------
// Specs.

namespace {

// A parsed spec with the selector's parameters checked and defaults filled in.
struct ParsedSpec {
  std::string name;
  std::map<std::string, std::string> params;
};

struct ParamRule {
  const char* key;
  const char* fallback;  // nullptr: required
};

const std::map<std::string, std::vector<ParamRule>>& Rules() {
  static const auto* rules = new std::map<std::string, std::vector<ParamRule>>{
      {"global_block_mass", {{"f", nullptr}, {"b", "16"}}},
      {"layer_block_mass", {{"f", nullptr}, {"b", "16"}}},
      {"recent_sink", {{"sink", "4"}, {"recent", nullptr}}},
      {"streaming_llm", {{"sink", "4"}, {"window", nullptr}}},
      {"h2o", {{"heavy", nullptr}, {"recent", nullptr}}},
      {"tova", {{"budget", nullptr}}},
      {"snapkv", {{"budget", nullptr}, {"window", "64"}, {"kernel", "5"}, {"pool", "avg"}}},
      {"quest", {{"budget", nullptr}, {"b", "16"}}},
  };
  return *rules;
}

absl::StatusOr<ParsedSpec> Parse(absl::string_view spec) {
  std::vector<absl::string_view> items = absl::StrSplit(spec, ':');
  ParsedSpec parsed;
  parsed.name = std::string(items[0]);
  auto rule = Rules().find(parsed.name);
  if (rule == Rules().end()) {
    std::vector<std::string> names;
    for (const auto& [name, unused] : Rules()) names.push_back(name);
    return absl::InvalidArgumentError(absl::StrCat("unknown selector '", parsed.name, "' in '",
                                                   spec, "'; known: ", absl::StrJoin(names, ", ")));
  }
  std::map<std::string, std::string> given;
  for (size_t i = 1; i < items.size(); ++i) {
    const size_t eq = items[i].find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("selector spec '", spec, "': item '", items[i], "' is not key=value"));
    }
    const std::string key(items[i].substr(0, eq));
    const bool known = std::any_of(rule->second.begin(), rule->second.end(),
                                   [&](const ParamRule& r) { return key == r.key; });
    if (!known) {
      std::vector<std::string> keys;
      for (const ParamRule& r : rule->second) keys.push_back(r.key);
      return absl::InvalidArgumentError(
          absl::StrCat("selector '", parsed.name, "' has no parameter '", key,
                       "' (it takes: ", absl::StrJoin(keys, ", "), ")"));
    }
    if (!given.emplace(key, std::string(items[i].substr(eq + 1))).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("selector spec '", spec, "' repeats '", key, "'"));
    }
  }
  for (const ParamRule& r : rule->second) {
    if (given.count(r.key)) {
      parsed.params[r.key] = given[r.key];
    } else if (r.fallback != nullptr) {
      parsed.params[r.key] = r.fallback;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("selector spec '", spec, "' lacks required parameter '", r.key, "'"));
    }
  }
  return parsed;
}

absl::StatusOr<int64_t> Int(const ParsedSpec& spec, const char* key) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(spec.params.at(key), &value)) {
    return absl::InvalidArgumentError(absl::StrCat("selector '", spec.name, "': ", key, "=",
                                                   spec.params.at(key), " is not an integer"));
  }
  return value;
}

absl::StatusOr<double> Fraction(const ParsedSpec& spec) {
  double f = 0;
  if (!absl::SimpleAtod(spec.params.at("f"), &f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("selector '", spec.name, "': f=", spec.params.at("f"), " is not a number"));
  }
  return f;
}

absl::StatusOr<SnapKvPool> Pool(const ParsedSpec& spec) {
  const std::string& pool = spec.params.at("pool");
  if (pool == "avg") return SnapKvPool::kAvg;
  if (pool == "max") return SnapKvPool::kMax;
  return absl::InvalidArgumentError(
      absl::StrCat("selector 'snapkv': pool=", pool, " is not avg or max"));
}

// The canonical name of a parsed spec (values checked for type and range).
absl::StatusOr<std::string> Canonical(const ParsedSpec& spec) {
  std::vector<std::string> items = {spec.name};
  for (const ParamRule& r : Rules().at(spec.name)) {
    std::string value = spec.params.at(r.key);
    if (std::string(r.key) == "f") {
      absl::StatusOr<double> f = Fraction(spec);
      if (!f.ok()) return f.status();
      absl::StatusOr<int64_t> units = FractionUnits(spec.name, *f);
      if (!units.ok()) return units.status();
      value = absl::StrFormat("%.4f", *units / 1e4);
    } else if (std::string(r.key) == "pool") {
      if (absl::StatusOr<SnapKvPool> p = Pool(spec); !p.ok()) return p.status();
    } else {
      absl::StatusOr<int64_t> v = Int(spec, r.key);
      if (!v.ok()) return v.status();
      value = absl::StrCat(*v);
    }
    items.push_back(absl::StrCat(r.key, "=", value));
  }
  return absl::StrJoin(items, ":");
}

absl::Status Need(const ParsedSpec& spec, bool has, const char* what) {
  if (!has) {
    return absl::InvalidArgumentError(
        absl::StrCat("selector '", spec.name, "' needs inputs.", what));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> CanonicalSelectorName(absl::string_view spec) {
  absl::StatusOr<ParsedSpec> parsed = Parse(spec);
  if (!parsed.ok()) return parsed.status();
  return Canonical(*parsed);
}

absl::StatusOr<Selection> Select(absl::string_view spec, const SelectorInputs& in) {
  absl::StatusOr<ParsedSpec> parsed = Parse(spec);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<std::string> canonical = Canonical(*parsed);
  if (!canonical.ok()) return canonical.status();
  const ParsedSpec& p = *parsed;
  const auto ints = [&](std::vector<const char*> keys) -> absl::StatusOr<std::vector<int64_t>> {
    std::vector<int64_t> values;
    for (const char* key : keys) {
      absl::StatusOr<int64_t> v = Int(p, key);
      if (!v.ok()) return v.status();
      values.push_back(*v);
    }
    return values;
  };
  absl::StatusOr<Selection> result;
  if (p.name == "global_block_mass" || p.name == "layer_block_mass") {
    if (absl::Status s = Need(p, in.step_probs.defined(), "step_probs"); !s.ok()) return s;
    const double f = *Fraction(p);
    const int64_t b = *Int(p, "b");
    if (in.step_probs.dim() == 3 && in.step_probs.size(2) != in.tokens) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: step_probs covers %d tokens, inputs.tokens is %d", *canonical,
                          in.step_probs.size(2), in.tokens));
    }
    if (p.name == "global_block_mass") {
      result = SelectGlobalBlockMass(in.step_probs, f, b);
    } else {
      if (in.layer < 0 || (in.step_probs.dim() == 3 && in.layer >= in.step_probs.size(0))) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: inputs.layer %d is not a layer of step_probs %s", *canonical,
                            in.layer, DescribeTensor(in.step_probs)));
      }
      absl::StatusOr<std::vector<Selection>> all =
          SelectLayerBlockMass(in.step_probs.slice(0, in.layer, in.layer + 1), f, b);
      if (!all.ok()) return all.status();
      result = (*all)[0];
    }
  } else if (p.name == "recent_sink" || p.name == "streaming_llm") {
    absl::StatusOr<std::vector<int64_t>> v =
        ints({"sink", p.name == "recent_sink" ? "recent" : "window"});
    if (!v.ok()) return v.status();
    result = p.name == "recent_sink" ? SelectRecentSink(in.tokens, (*v)[0], (*v)[1])
                                     : SelectStreamingLlm(in.tokens, (*v)[0], (*v)[1]);
  } else if (p.name == "h2o") {
    if (absl::Status s = Need(p, in.accumulated.defined(), "accumulated"); !s.ok()) return s;
    absl::StatusOr<std::vector<int64_t>> v = ints({"heavy", "recent"});
    if (!v.ok()) return v.status();
    result = SelectH2o(in.accumulated, in.tokens, (*v)[0], (*v)[1]);
  } else if (p.name == "tova") {
    if (absl::Status s = Need(p, in.last_probs.defined(), "last_probs"); !s.ok()) return s;
    absl::StatusOr<std::vector<int64_t>> v = ints({"budget"});
    if (!v.ok()) return v.status();
    result = SelectTova(in.last_probs, in.tokens, (*v)[0]);
  } else if (p.name == "snapkv") {
    if (absl::Status s = Need(p, in.window_probs.defined(), "window_probs"); !s.ok()) return s;
    absl::StatusOr<std::vector<int64_t>> v = ints({"budget", "window", "kernel"});
    if (!v.ok()) return v.status();
    if (in.window_probs.dim() == 3 && in.window_probs.size(1) != (*v)[1]) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: window_probs holds %d window queries, the spec says window=%d",
                          *canonical, in.window_probs.size(1), (*v)[1]));
    }
    result = SelectSnapKv(in.window_probs, in.tokens, (*v)[0], (*v)[2], *Pool(p));
  } else if (p.name == "quest") {
    if (absl::Status s = Need(p, in.q.defined(), "q"); !s.ok()) return s;
    if (absl::Status s = Need(p, in.quest != nullptr, "quest"); !s.ok()) return s;
    absl::StatusOr<std::vector<int64_t>> v = ints({"budget", "b"});
    if (!v.ok()) return v.status();
    if (in.quest->block_size != (*v)[1] || in.quest->tokens != in.tokens) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: the metadata has blocks of %d over %d tokens; the spec says b=%d, inputs.tokens %d",
          *canonical, in.quest->block_size, in.quest->tokens, (*v)[1], in.tokens));
    }
    result = SelectQuest(in.q, *in.quest, (*v)[0]);
  }
  if (!result.ok()) return result.status();
  if (result->variant != *canonical) {
    return absl::InternalError(absl::StrCat("selector named itself '", result->variant,
                                            "', its spec is '", *canonical, "'"));
  }
  return result;
}

}  // namespace kvgate::kernels
