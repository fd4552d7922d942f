#include "tools/report/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gates/gate_spec.h"
#include "gates/judge_tables.h"
#include "gates/metrics.h"
#include "gates/speed_ceiling/speed_ceiling.h"
#include "gates/speed_ceiling/speed_ceiling_spec.h"
#include "gates/verdict.h"
#include "tools/report/svg_plot.h"

namespace kvgate::report {
namespace {

using gates::Condition;
using gates::ConfigurationJudgement;
using gates::GateSpec;
using gates::Op;
using gates::Record;
using gates::RecordAt;
using gates::RegisteredSpec;
using gates::RunJudgement;
using gates::Target;
using gates::Verdict;

// The reports.
constexpr char kLedger[] = "results-ledger";
constexpr char kSpeedCeilingDoc[] = "speed-ceiling-summary";
constexpr char kOracleDoc[] = "work-reduction-oracle-summary";
constexpr char kHfkvDoc[] = "hfkv-quality-k0-prep-summary";
constexpr char kEagerDoc[] = "eager-value-path-summary";
constexpr char kFusedDoc[] = "fused-codebook-summary";

constexpr char kSpeedCeilingPlot[] = "plots/speed-ceiling.svg";
constexpr char kOraclePlot[] = "plots/work-reduction-oracle.svg";
constexpr char kKvQualityPlot[] = "plots/kv-quality-vs-bytes.svg";

// The gates of gates/specs/ the summaries are built around.
constexpr char kSpeedCeilingGate[] = "speed_ceiling";
constexpr char kOracleGate[] = "work_reduction_oracle";
constexpr char kHfkvGate[] = "hfkv_real_kv_quality";
constexpr char kEagerGate[] = "eager_value_path_latency";
constexpr char kFusedGate[] = "fused_codebook_latency";

// Study columns and metrics the summaries read beyond metrics.h's names.
constexpr char kDenseStepMs[] = "dense_decode_step_ms";
constexpr char kCompressedStepMs[] = "compressed_decode_step_ms";
constexpr char kDenseAttentionMs[] = "dense_attention_ms";
constexpr char kCompressedAttentionMs[] = "compressed_attention_ms";
constexpr char kPublishedKvRatioVsBf16[] = "kv_ratio_vs_bf16";

// A path of the study: the hypothesis, the experiments that test it, and the gates a
// configuration must all pass (on one target, with one variant) for the path to stay open.
struct Hypothesis {
  std::string title;
  std::vector<std::string> experiments;
  std::vector<std::string> gates;
  std::vector<std::string> summaries;
};

const std::vector<Hypothesis>& Hypotheses() {
  static const auto* const kHypotheses = new std::vector<Hypothesis>{
      {"Hardware-friendly int4 K/V", {"hfkv_int4"}, {kHfkvGate}, {kHfkvDoc}},
      {"Long-context work reduction",
       {"speed_ceiling", "qwen_oracle"},
       {kSpeedCeilingGate, kOracleGate},
       {kSpeedCeilingDoc, kOracleDoc}},
      {"Eager value path", {"eager_value_path"}, {kEagerGate}, {kEagerDoc}},
      {"Fused packed codebook", {"fused_codebook"}, {kFusedGate}, {kFusedDoc}},
  };
  return *kHypotheses;
}

constexpr int kOtherHypothesis = -1;

// The path a run belongs to: by its experiment, else by its gate; kOtherHypothesis if neither.
int HypothesisOf(const RunJudgement& run) {
  const std::vector<Hypothesis>& all = Hypotheses();
  for (size_t i = 0; i < all.size(); ++i) {
    for (const std::string& e : all[i].experiments) {
      if (e == run.experiment) return static_cast<int>(i);
    }
  }
  for (size_t i = 0; i < all.size(); ++i) {
    for (const std::string& g : all[i].gates) {
      if (g == run.gate_id) return static_cast<int>(i);
    }
  }
  return kOtherHypothesis;
}

// ---- Text ----------------------------------------------------------------------------------

std::string Fixed(double v, int decimals) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  std::string s = absl::StrFormat("%.*f", decimals, v);
  if (s.size() > 1 && s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

std::string Short(double v) { return absl::StrFormat("%g", v); }

std::string Code(const std::string& s) { return absl::StrCat("`", s, "`"); }

std::string Cell(const std::string& text) {
  return absl::StrReplaceAll(text, {{"|", "\\|"}, {"\n", " "}});
}

std::string MdRow(const std::vector<std::string>& cells) {
  std::vector<std::string> escaped;
  for (const std::string& c : cells) escaped.push_back(Cell(c));
  return absl::StrCat("| ", absl::StrJoin(escaped, " | "), " |\n");
}

std::string MdHeader(const std::vector<std::string>& cells) {
  return absl::StrCat(MdRow(cells), "|",
                      absl::StrJoin(std::vector<std::string>(cells.size(), "---"), "|"), "|\n");
}

std::string VerdictText(Verdict v) { return std::string(gates::VerdictName(v)); }

std::string TargetText(const Target& t) {
  return absl::StrCat(t.model, ", ", t.context, " tokens, ", t.dtype);
}

std::string WeightsText(const std::string& weights) {
  return weights.size() == 64 ? absl::StrCat(weights.substr(0, 12), "...") : weights;
}

std::string ProvenanceText(const RunJudgement& run) {
  const gates::Provenance& p = run.provenance;
  return absl::StrCat(Code(p.git_commit), p.dirty ? " (dirty)" : "", ", ", run.target.device,
                      ", weights ", Code(WeightsText(run.target.weights_sha256)), ", ",
                      p.start_time);
}

std::string PlotLink(const std::string& alt, const std::string& from_dir,
                     const std::string& out_dir, const std::string& plot) {
  const std::string rel = RelativePath(from_dir, absl::StrCat(out_dir, "/", plot));
  return absl::StrCat("![", alt, "](", rel, ")\n\nThe plot as a file: [", plot, "](", rel, ").\n");
}

// ---- Metrics and conditions ------------------------------------------------------------------

std::optional<double> MetricOf(const Record& r, const std::string& name) {
  auto it = r.metrics.find(name);
  if (it == r.metrics.end()) return std::nullopt;
  return it->second;
}

// The largest (or smallest) value of a metric over rows; nullopt when no row has it. NaN wins.
std::optional<double> Extreme(const std::vector<const RecordAt*>& rows, const std::string& name,
                              bool largest) {
  std::optional<double> out;
  for (const RecordAt* row : rows) {
    std::optional<double> v = MetricOf(row->record, name);
    if (!v.has_value()) continue;
    if (!out.has_value() || std::isnan(*v) ||
        (!std::isnan(*out) && (largest ? *v > *out : *v < *out))) {
      out = v;
    }
  }
  return out;
}

std::string MaybeFixed(std::optional<double> v, int decimals) {
  return v.has_value() ? Fixed(*v, decimals) : "not recorded";
}

// How a condition fared over rows: its worst value and how many rows fail it.
struct Decision {
  const Condition* condition = nullptr;
  std::optional<double> worst;
  int failing = 0;
  int judged = 0;
};

std::vector<Decision> Decide(const GateSpec& spec, const std::vector<const RecordAt*>& rows) {
  std::vector<Decision> out;
  for (const Condition& c : spec.thresholds) {
    Decision d;
    d.condition = &c;
    for (const RecordAt* row : rows) {
      absl::StatusOr<double> q = gates::ConditionQuantity(c, row->record.metrics);
      if (!q.ok() || !std::isfinite(*q)) continue;
      ++d.judged;
      if (!gates::Satisfies(c, *q)) ++d.failing;
      bool worse = !d.worst.has_value();
      if (!worse) {
        switch (c.op) {
          case Op::kLessEqual:
          case Op::kLess:
            worse = *q > *d.worst;
            break;
          case Op::kGreaterEqual:
          case Op::kGreater:
            worse = *q < *d.worst;
            break;
          case Op::kEqual:
            worse = std::fabs(*q - c.value) > std::fabs(*d.worst - c.value);
            break;
        }
      }
      if (worse) d.worst = *q;
    }
    out.push_back(d);
  }
  return out;
}

// "decode_logit_mse 1.7400 fails <= 0.25" (with "on 2 of 4 rows" when several rows were judged).
std::string DecisionText(const Decision& d, const std::string& rows_word = "steps") {
  const Condition& c = *d.condition;
  if (!d.worst.has_value()) {
    return absl::StrCat(gates::QuantityName(c), " not judged (", gates::OpSymbol(c.op), " ",
                        Short(c.value), ")");
  }
  std::string out = absl::StrCat(gates::QuantityName(c), " ", Fixed(*d.worst, 4),
                                 d.failing > 0 ? " fails " : " meets ", gates::OpSymbol(c.op), " ",
                                 Short(c.value));
  if (d.failing > 0 && d.judged > 1) {
    absl::StrAppend(&out, " on ", d.failing, " of ", d.judged, " ", rows_word);
  }
  return out;
}

// The deciding numbers of a verdict: the failing conditions of a failure, every condition of a
// pass, the reasons of an invalid verdict.
std::string DecidingNumbers(const GateSpec* spec, const gates::Judgement& judgement,
                            const std::vector<const RecordAt*>& rows) {
  if (judgement.verdict == Verdict::kInvalid || spec == nullptr) {
    return absl::StrCat("invalid: ", absl::StrJoin(judgement.failed, "; "));
  }
  std::vector<std::string> parts;
  for (const Decision& d : Decide(*spec, rows)) {
    if (judgement.verdict == Verdict::kFail && d.failing == 0) continue;
    parts.push_back(DecisionText(d));
  }
  return absl::StrJoin(parts, "; ");
}

// The thresholds of `spec` on metric `name`, in words: "<= 0.25".
std::string RequiredOn(const GateSpec* spec, const std::string& name) {
  if (spec == nullptr) return "unknown spec";
  std::vector<std::string> parts;
  for (const Condition& c : spec->thresholds) {
    if (c.kind == Condition::Kind::kMetric && c.metric == name) {
      parts.push_back(absl::StrCat(gates::OpSymbol(c.op), " ", Short(c.value)));
    }
  }
  return parts.empty() ? "no threshold" : absl::StrJoin(parts, ", ");
}

// The ratio thresholds of `spec`, in words: ">= 1.1".
std::string RequiredRatio(const GateSpec* spec) {
  if (spec == nullptr) return "unknown spec";
  std::vector<std::string> parts;
  for (const Condition& c : spec->thresholds) {
    if (c.kind == Condition::Kind::kRatio) {
      parts.push_back(absl::StrCat(gates::OpSymbol(c.op), " ", Short(c.value)));
    }
  }
  return parts.empty() ? "no threshold" : absl::StrJoin(parts, ", ");
}

// Metrics of the rows not shown in other columns: "name = 0.1234" (one row) or
// "name max 0.1234" (several rows). "—" when there are none.
std::string OtherMetrics(const std::vector<const RecordAt*>& rows,
                         const std::set<std::string>& shown) {
  std::set<std::string> names;
  for (const RecordAt* row : rows) {
    for (const auto& [name, value] : row->record.metrics) {
      if (shown.count(name) == 0) names.insert(name);
    }
  }
  std::vector<std::string> parts;
  for (const std::string& name : names) {
    const std::optional<double> v = Extreme(rows, name, true);
    parts.push_back(
        absl::StrCat(name, rows.size() == 1 ? " = " : " max ", absl::StrFormat("%.4g", *v)));
  }
  return parts.empty() ? "—" : absl::StrJoin(parts, ", ");
}

// ---- Generation ------------------------------------------------------------------------------

class Generator {
 public:
  explicit Generator(const ReportInputs& in) : in_(in) {
    runs_ = gates::JudgeRuns(in.specs, in.rows);
    for (const RunJudgement& run : runs_) {
      runs_by_hypothesis_[HypothesisOf(run)].push_back(run);
    }
  }

  absl::StatusOr<std::map<std::string, std::string>> Generate();

 private:
  const GateSpec* SpecOf(const std::string& id, int version) const {
    const RegisteredSpec* s = gates::FindSpec(in_.specs, id, version);
    return s == nullptr ? nullptr : &s->spec;
  }
  const GateSpec* SpecOf(const RunJudgement& run) const {
    return SpecOf(run.gate_id, run.gate_version);
  }
  std::vector<const RunJudgement*> RunsOfGate(const std::string& gate_id) const {
    std::vector<const RunJudgement*> out;
    for (const RunJudgement& run : runs_) {
      if (run.gate_id == gate_id) out.push_back(&run);
    }
    return out;
  }
  std::string SummaryDir() const { return absl::StrCat(in_.out_dir, "/summaries"); }
  std::string SpecLink(const std::string& from_dir, const std::string& id, int version) const {
    const std::string file = gates::SpecFileName(id, version);
    return absl::StrCat("[", Code(absl::StrCat(id, " v", version)), "](",
                        RelativePath(from_dir, absl::StrCat(in_.specs_dir, "/", file)), ")");
  }
  std::string RecordLinks(const std::vector<const RecordAt*>& rows,
                          const std::string& from_dir) const;
  std::string NoRecords(const std::string& gate_id) const {
    return absl::StrCat("No records yet: no row in `", in_.records_dir, "/` is judged by `",
                        gate_id, "`.\n");
  }

  std::string GateBlock(const std::string& gate_id) const;
  std::string PublishedBlock(const std::string& gate_id) const;
  std::string QualityTable(const std::vector<const RunJudgement*>& runs) const;
  std::string LatencyTable(const std::vector<const RunJudgement*>& runs, const std::string& gate_id,
                           const std::string& dense, const std::string& compressed,
                           const std::string& dense_title, const std::string& compressed_title,
                           const std::string& ratio_title) const;

  std::map<std::string, std::string> LedgerBlocks() const;
  std::string PathsBlock() const;
  std::string LedgerTable() const;
  std::string LedgerPublished() const;
  std::string InputsBlock() const;

  absl::StatusOr<std::map<std::string, std::string>> SpeedCeilingBlocks() const;
  std::map<std::string, std::string> OracleBlocks() const;
  std::map<std::string, std::string> HfkvBlocks() const;
  std::map<std::string, std::string> EagerBlocks() const;
  std::map<std::string, std::string> FusedBlocks() const;

  std::vector<double> PublishedOverheads() const;
  absl::StatusOr<std::string> SpeedCeilingPlot() const;
  std::string OraclePlot() const;
  std::string KvQualityPlot() const;

  const ReportInputs& in_;
  std::vector<RunJudgement> runs_;
  std::map<int, std::vector<RunJudgement>> runs_by_hypothesis_;
};

std::string Generator::RecordLinks(const std::vector<const RecordAt*>& rows,
                                   const std::string& from_dir) const {
  std::map<std::string, std::set<int>> lines;
  for (const RecordAt* row : rows) lines[row->file].insert(row->line);
  std::vector<std::string> links;
  for (const auto& [file, numbers] : lines) {
    const std::string rel = RelativePath(from_dir, file);
    const std::string name = file.substr(file.rfind('/') + 1);
    std::vector<int> sorted(numbers.begin(), numbers.end());
    for (size_t i = 0; i < sorted.size();) {
      size_t j = i;
      while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
      if (i == j) {
        links.push_back(absl::StrCat("[", name, ":", sorted[i], "](", rel, "#L", sorted[i], ")"));
      } else {
        links.push_back(absl::StrCat("[", name, ":", sorted[i], "-", sorted[j], "](", rel, "#L",
                                     sorted[i], "-L", sorted[j], ")"));
      }
      i = j + 1;
    }
  }
  return absl::StrJoin(links, ", ");
}

std::string Generator::GateBlock(const std::string& gate_id) const {
  std::string out;
  for (const auto& [key, registered] : in_.specs) {
    if (key.first != gate_id) continue;
    const GateSpec& s = registered.spec;
    std::vector<std::string> passes, valid;
    for (const Condition& c : s.thresholds) passes.push_back(gates::DescribeCondition(c));
    for (const Condition& c : s.validity) valid.push_back(gates::DescribeCondition(c));
    absl::StrAppend(&out, "- ", SpecLink(SummaryDir(), s.id, s.version), ", registered ", s.created,
                    ", sha256 `", registered.sha256, "`: ", s.summary, "\n",
                    "  - target: ", s.target.model.value_or("any model"), ", ",
                    s.target.dtype.value_or("any dtype"), ", context ",
                    s.target.context.has_value() ? absl::StrCat(*s.target.context, " tokens")
                                                 : "named by each record",
                    ", ",
                    s.target.decode_steps.has_value()
                        ? absl::StrCat(*s.target.decode_steps, " decode steps, every one must pass")
                        : "one measurement a run",
                    "\n", "  - passes when: ", absl::StrJoin(passes, "; "), "\n");
    if (!valid.empty()) {
      absl::StrAppend(&out, "  - judged only when: ", absl::StrJoin(valid, "; "), "\n");
    }
  }
  if (out.empty()) {
    out = absl::StrCat("No spec `", gate_id, "` is registered in `", in_.specs_dir, "/`.\n");
  }
  return out;
}

std::string Generator::PublishedBlock(const std::string& gate_id) const {
  const PublishedSection* s = in_.published.Find(gate_id);
  if (s == nullptr) {
    return absl::StrCat("No published figures: `", in_.published.file, "` has no section for `",
                        gate_id, "`.\n");
  }
  std::string out = absl::StrCat("**", s->title,
                                 ".** Published figures, not measured by kvgate. "
                                 "Source: ",
                                 s->source, " A dash marks a figure not published.\n\n");
  if (!s->inputs.empty()) {
    std::vector<std::string> inputs;
    for (const auto& [name, cell] : s->inputs) {
      inputs.push_back(absl::StrCat(name, " = ", s->Format(PublishedColumn{}, cell)));
    }
    absl::StrAppend(&out, "Given with the figures: ", absl::StrJoin(inputs, ", "), ".\n\n");
  }
  if (s->rows.empty()) {
    absl::StrAppend(&out, "No rows published.\n");
    return out;
  }
  std::vector<std::string> header;
  for (const PublishedColumn& c : s->columns) header.push_back(c.title);
  absl::StrAppend(&out, MdHeader(header));
  for (const auto& row : s->rows) {
    std::vector<std::string> cells;
    for (const PublishedColumn& c : s->columns) cells.push_back(s->Format(c, row.at(c.key)));
    absl::StrAppend(&out, MdRow(cells));
  }
  return out;
}

// format / experiment / target / top-k / argmax / MSE / required MSE / KV ratio / gate.
std::string Generator::QualityTable(const std::vector<const RunJudgement*>& runs) const {
  std::string out =
      MdHeader({"format", "experiment", "target", "top-10 overlap (min)", "argmax agreement (min)",
                "decode-logit MSE (max)", "required MSE", "KV ratio (compressed / dense)", "gate",
                "other metrics", "provenance", "records"});
  for (const RunJudgement* run : runs) {
    const std::optional<double> kv = Extreme(run->rows, gates::kKvRatio, true);
    std::string kv_text = MaybeFixed(kv, 4);
    if (kv.has_value() && *kv > 0 && std::isfinite(*kv)) {
      absl::StrAppend(&kv_text, " (", Fixed(1.0 / *kv, 2), "x smaller)");
    }
    std::string gate =
        absl::StrCat(VerdictText(run->judgement.verdict), " (v", run->gate_version, ")");
    if (!run->judgement.failed.empty()) {
      absl::StrAppend(&gate, ": ", absl::StrJoin(run->judgement.failed, "; "));
    }
    out += MdRow({Code(run->variant), Code(run->experiment), TargetText(run->target),
                  MaybeFixed(Extreme(run->rows, gates::kTop10Overlap, false), 4),
                  MaybeFixed(Extreme(run->rows, gates::kArgmaxAgreement, false), 0),
                  MaybeFixed(Extreme(run->rows, gates::kDecodeLogitMse, true), 4),
                  RequiredOn(SpecOf(*run), gates::kDecodeLogitMse), kv_text, gate,
                  OtherMetrics(run->rows, {gates::kTop10Overlap, gates::kArgmaxAgreement,
                                           gates::kDecodeLogitMse, gates::kKvRatio}),
                  ProvenanceText(*run), RecordLinks(run->rows, SummaryDir())});
  }
  return out;
}

std::string Generator::LatencyTable(const std::vector<const RunJudgement*>& runs,
                                    const std::string& gate_id, const std::string& dense,
                                    const std::string& compressed, const std::string& dense_title,
                                    const std::string& compressed_title,
                                    const std::string& ratio_title) const {
  if (runs.empty()) return NoRecords(gate_id);
  std::string out = MdHeader({"format", "target", dense_title, compressed_title, ratio_title,
                              "required", "gate", "other metrics", "provenance", "records"});
  for (const RunJudgement* run : runs) {
    const std::optional<double> d = Extreme(run->rows, dense, true);
    const std::optional<double> c = Extreme(run->rows, compressed, true);
    std::string ratio = "undefined";
    if (d.has_value() && c.has_value() && *c > 0) ratio = Fixed(*d / *c, 3);
    std::string gate =
        absl::StrCat(VerdictText(run->judgement.verdict), " (v", run->gate_version, ")");
    if (!run->judgement.failed.empty()) {
      absl::StrAppend(&gate, ": ", absl::StrJoin(run->judgement.failed, "; "));
    }
    out += MdRow({Code(run->variant), TargetText(run->target), MaybeFixed(d, 3), MaybeFixed(c, 3),
                  ratio, RequiredRatio(SpecOf(*run)), gate,
                  OtherMetrics(run->rows, {dense, compressed}), ProvenanceText(*run),
                  RecordLinks(run->rows, SummaryDir())});
  }
  return out;
}

// ---- The ledger ------------------------------------------------------------------------------

std::string Generator::PathsBlock() const {
  std::vector<std::string> closed, open;
  const std::vector<Hypothesis>& all = Hypotheses();
  for (size_t h = 0; h < all.size(); ++h) {
    const Hypothesis& hyp = all[h];
    std::vector<std::string> links;
    for (const std::string& s : hyp.summaries) {
      links.push_back(absl::StrCat(
          "[", s, "](", RelativePath(in_.out_dir, absl::StrCat(SummaryDir(), "/", s, ".md")), ")"));
    }
    const std::string title = absl::StrCat(
        "**", hyp.title, "** (", hyp.gates.size() == 1 ? "gate " : "gates ",
        absl::StrJoin(hyp.gates, " + ",
                      [](std::string* o, const std::string& g) { absl::StrAppend(o, Code(g)); }),
        "; ", absl::StrJoin(links, ", "), ")");
    auto it = runs_by_hypothesis_.find(static_cast<int>(h));
    if (it == runs_by_hypothesis_.end()) {
      open.push_back(absl::StrCat("- ", title, ": untested, no records yet.\n"));
      continue;
    }
    const std::vector<ConfigurationJudgement> configs = gates::JudgeConfigurations(it->second);
    // (target, variant) pairs, in the order the configurations come.
    std::vector<std::pair<Target, std::string>> keys;
    for (const ConfigurationJudgement& c : configs) {
      if (std::find(hyp.gates.begin(), hyp.gates.end(), c.gate_id) == hyp.gates.end()) continue;
      const std::pair<Target, std::string> key{c.target, c.variant};
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
    std::vector<std::string> passed, pending, failed;
    for (const auto& [target, variant] : keys) {
      const std::string what =
          absl::StrCat(Code(variant), " on ", TargetText(target), ", ", target.device);
      std::vector<std::string> fails, states;
      int passes = 0;
      for (const std::string& g : hyp.gates) {
        const RegisteredSpec* latest = gates::LatestSpec(in_.specs, g);
        const ConfigurationJudgement* found = nullptr;
        for (const ConfigurationJudgement& c : configs) {
          if (latest != nullptr && c.gate_id == g && c.gate_version == latest->spec.version &&
              c.target == target && c.variant == variant) {
            found = &c;
          }
        }
        const std::string gate_name =
            latest == nullptr ? Code(g) : Code(absl::StrCat(g, " v", latest->spec.version));
        if (found == nullptr) {
          states.push_back(absl::StrCat(gate_name, " not yet judged"));
        } else if (found->judgement.verdict == Verdict::kPass) {
          ++passes;
          states.push_back(absl::StrCat(gate_name, " pass"));
        } else if (found->judgement.verdict == Verdict::kFail) {
          fails.push_back(
              absl::StrCat(gate_name, " fails: ", absl::StrJoin(found->judgement.failed, "; ")));
        } else {
          states.push_back(absl::StrCat(gate_name, " invalid"));
        }
      }
      if (!fails.empty()) {
        failed.push_back(absl::StrCat("  - ", what, ": ", absl::StrJoin(fails, "; "), "\n"));
      } else if (passes == static_cast<int>(hyp.gates.size())) {
        passed.push_back(absl::StrCat("  - ", what, ": ", absl::StrJoin(states, ", "), "\n"));
      } else {
        pending.push_back(absl::StrCat("  - ", what, ": ", absl::StrJoin(states, ", "), "\n"));
      }
    }
    if (!passed.empty()) {
      open.push_back(absl::StrCat("- ", title,
                                  ": open, passed every gate of the path on one "
                                  "target:\n",
                                  absl::StrJoin(passed, "")));
    } else if (!pending.empty()) {
      open.push_back(
          absl::StrCat("- ", title, ": open, waiting for a verdict:\n", absl::StrJoin(pending, ""),
                       failed.empty() ? "" : "  - and failed:\n", absl::StrJoin(failed, "")));
    } else if (!failed.empty()) {
      closed.push_back(absl::StrCat("- ", title, ": every configuration failed a gate:\n",
                                    absl::StrJoin(failed, "")));
    } else {
      open.push_back(absl::StrCat("- ", title, ": untested, no records judged by its gates.\n"));
    }
  }
  return absl::StrCat("### Closed paths\n\n",
                      closed.empty() ? "None yet.\n" : absl::StrJoin(closed, ""),
                      "\n### Still open\n\n", open.empty() ? "None.\n" : absl::StrJoin(open, ""));
}

std::string Generator::LedgerTable() const {
  std::string out = MdHeader({"path", "what was tested", "target", "gate", "verdict",
                              "deciding numbers", "summary", "records"});
  int rows = 0;
  std::vector<int> order;
  for (size_t h = 0; h < Hypotheses().size(); ++h) order.push_back(static_cast<int>(h));
  order.push_back(kOtherHypothesis);
  for (int h : order) {
    auto it = runs_by_hypothesis_.find(h);
    if (it == runs_by_hypothesis_.end()) continue;
    const std::vector<RunJudgement>& runs = it->second;
    const std::vector<ConfigurationJudgement> configs = gates::JudgeConfigurations(runs);
    // One ledger row per gate version and target; configurations come grouped that way.
    for (size_t i = 0; i < configs.size();) {
      size_t j = i;
      while (j + 1 < configs.size() && configs[j + 1].gate_id == configs[i].gate_id &&
             configs[j + 1].gate_version == configs[i].gate_version &&
             configs[j + 1].target == configs[i].target) {
        ++j;
      }
      std::set<std::string> experiments;
      std::vector<std::string> variants, deciding;
      std::vector<const RecordAt*> rows_of_group;
      int pass = 0, fail = 0, invalid = 0;
      const GateSpec* spec = SpecOf(configs[i].gate_id, configs[i].gate_version);
      for (size_t k = i; k <= j; ++k) {
        const ConfigurationJudgement& c = configs[k];
        variants.push_back(Code(c.variant));
        // The deciding numbers come from the valid runs; the links name every row.
        std::vector<const RecordAt*> rows_of_valid_runs;
        for (const RunJudgement& run : runs) {
          if (run.gate_id == c.gate_id && run.gate_version == c.gate_version &&
              run.target == c.target && run.variant == c.variant) {
            experiments.insert(run.experiment);
            rows_of_group.insert(rows_of_group.end(), run.rows.begin(), run.rows.end());
            if (run.judgement.verdict != Verdict::kInvalid) {
              rows_of_valid_runs.insert(rows_of_valid_runs.end(), run.rows.begin(), run.rows.end());
            }
          }
        }
        switch (c.judgement.verdict) {
          case Verdict::kPass:
            ++pass;
            break;
          case Verdict::kFail:
            ++fail;
            break;
          case Verdict::kInvalid:
            ++invalid;
            break;
        }
        deciding.push_back(
            absl::StrCat(Code(c.variant), ": **", VerdictText(c.judgement.verdict), "** ",
                         DecidingNumbers(spec, c.judgement, rows_of_valid_runs),
                         c.runs == 1 ? ""
                         : c.valid_runs == c.runs
                             ? absl::StrCat(" (", c.runs, " runs)")
                             : absl::StrCat(" (", c.runs, " runs, ", c.valid_runs, " valid)")));
      }
      std::vector<std::string> counts;
      if (pass > 0) counts.push_back(absl::StrCat(pass, " pass"));
      if (fail > 0) counts.push_back(absl::StrCat(fail, " fail"));
      if (invalid > 0) counts.push_back(absl::StrCat(invalid, " invalid"));
      const int total = static_cast<int>(j - i + 1);
      const std::string verdict = counts.size() == 1 ? absl::StrCat(pass > 0   ? "pass"
                                                                    : fail > 0 ? "fail"
                                                                               : "invalid",
                                                                    " (", total, " of ", total, ")")
                                                     : absl::StrJoin(counts, ", ");
      std::vector<std::string> summaries;
      if (h != kOtherHypothesis) {
        for (const std::string& s : Hypotheses()[h].summaries) {
          summaries.push_back(absl::StrCat(
              "[", s, "](", RelativePath(in_.out_dir, absl::StrCat(SummaryDir(), "/", s, ".md")),
              ")"));
        }
      }
      std::vector<std::string> experiment_names;
      for (const std::string& e : experiments) experiment_names.push_back(Code(e));
      out += MdRow(
          {h == kOtherHypothesis ? "other (no known path)" : Hypotheses()[h].title,
           absl::StrCat(absl::StrJoin(experiment_names, ", "), ": ", absl::StrJoin(variants, ", ")),
           absl::StrCat(TargetText(configs[i].target), ", ", configs[i].target.device, ", weights ",
                        Code(WeightsText(configs[i].target.weights_sha256))),
           SpecLink(in_.out_dir, configs[i].gate_id, configs[i].gate_version), verdict,
           absl::StrJoin(deciding, "<br>"),
           summaries.empty() ? "—" : absl::StrJoin(summaries, ", "),
           RecordLinks(rows_of_group, in_.out_dir)});
      ++rows;
      i = j + 1;
    }
  }
  if (rows == 0) {
    return absl::StrCat("No records yet: `", in_.records_dir,
                        "/` holds no rows, so no hypothesis has a verdict of ours.\n");
  }
  return out;
}

std::string Generator::LedgerPublished() const {
  std::string out =
      absl::StrCat("Source: ", in_.published.source, " (`", in_.published.file, "`).\n\n");
  std::vector<std::string> order;
  for (const Hypothesis& h : Hypotheses()) {
    for (const std::string& g : h.gates) order.push_back(g);
  }
  for (const auto& [gate_id, section] : in_.published.sections) {
    if (std::find(order.begin(), order.end(), gate_id) == order.end()) order.push_back(gate_id);
  }
  int sections = 0;
  for (const std::string& gate_id : order) {
    const PublishedSection* s = in_.published.Find(gate_id);
    if (s == nullptr) continue;
    ++sections;
    std::vector<std::string> rows;
    const PublishedColumn* label = &s->columns.front();
    const PublishedColumn* verdict = nullptr;
    for (const PublishedColumn& c : s->columns) {
      if (c.key == "verdict") verdict = &c;
    }
    for (const auto& row : s->rows) {
      rows.push_back(absl::StrCat(label->title, " ", s->Format(*label, row.at(label->key)), ": ",
                                  s->Format(*verdict, row.at(verdict->key))));
    }
    absl::StrAppend(&out, "- **", s->title, "** (gate ", Code(gate_id),
                    "): ", rows.empty() ? "no rows published" : absl::StrJoin(rows, "; "), ".\n");
  }
  if (sections == 0) absl::StrAppend(&out, "No published figures.\n");
  return out;
}

std::string Generator::InputsBlock() const {
  std::map<std::string, int> per_file;
  for (const RecordAt& row : in_.rows) ++per_file[row.file];
  std::string out =
      absl::StrCat(in_.rows.size(), " records in ", per_file.size(), " files of `", in_.records_dir,
                   "/`, judged against ", in_.specs.size(), " gate specs of `", in_.specs_dir,
                   "/`; the study's figures from `", in_.published.file, "`.\n");
  if (!per_file.empty()) out += "\n";
  for (const auto& [file, count] : per_file) {
    absl::StrAppend(&out, "- [", file, "](", RelativePath(in_.out_dir, file), "): ", count,
                    count == 1 ? " row\n" : " rows\n");
  }
  return out;
}

std::map<std::string, std::string> Generator::LedgerBlocks() const {
  return {
      {"paths", PathsBlock()},
      {"ledger", LedgerTable()},
      {"published", LedgerPublished()},
      {"configurations", gates::ConfigurationTables(gates::JudgeConfigurations(runs_))},
      {"inputs", InputsBlock()},
  };
}

// ---- Speed ceiling ---------------------------------------------------------------------------

std::vector<double> Generator::PublishedOverheads() const {
  std::vector<double> out;
  if (const PublishedSection* s = in_.published.Find(kSpeedCeilingGate)) {
    for (const PublishedColumn& c : s->columns) {
      if (c.overhead.has_value()) out.push_back(*c.overhead);
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> Generator::SpeedCeilingBlocks() const {
  std::map<std::string, std::string> blocks;
  blocks["gate"] = GateBlock(kSpeedCeilingGate);
  blocks["published"] = PublishedBlock(kSpeedCeilingGate);

  std::vector<double> overheads = PublishedOverheads();
  const std::vector<const RunJudgement*> runs = RunsOfGate(kSpeedCeilingGate);
  if (runs.empty()) {
    blocks["ours"] = NoRecords(kSpeedCeilingGate);
  } else {
    std::vector<std::string> header = {"target", "variant", "p_attn", "active fraction f"};
    for (double h : overheads) header.push_back(absl::StrCat("speedup at h = ", Short(h)));
    for (const char* c : {"gate", "other metrics", "provenance", "records"}) {
      header.push_back(c);
    }
    std::string out = MdHeader(header);
    for (const RunJudgement* run : runs) {
      const std::optional<double> p = Extreme(run->rows, gates::kPAttn, true);
      const std::optional<double> f = Extreme(run->rows, gates::kActiveHistoryFraction, true);
      std::vector<std::string> row = {TargetText(run->target), Code(run->variant), MaybeFixed(p, 3),
                                      MaybeFixed(f, 4)};
      for (double h : overheads) {
        absl::StatusOr<double> s = p.has_value() && f.has_value()
                                       ? gates::ProjectedSpeedup(*p, *f, h)
                                       : absl::NotFoundError("missing");
        row.push_back(s.ok() ? absl::StrCat(Fixed(*s, 3), "x") : "undefined");
      }
      row.push_back(absl::StrCat(VerdictText(run->judgement.verdict), " (v", run->gate_version,
                                 "): ", DecidingNumbers(SpecOf(*run), run->judgement, run->rows)));
      row.push_back(OtherMetrics(run->rows, {gates::kPAttn, gates::kActiveHistoryFraction}));
      row.push_back(ProvenanceText(*run));
      row.push_back(RecordLinks(run->rows, SummaryDir()));
      out += MdRow(row);
    }
    blocks["ours"] = out;
  }

  // The study's table, recomputed by gates/speed_ceiling from the study's own inputs.
  const PublishedSection* published = in_.published.Find(kSpeedCeilingGate);
  const RegisteredSpec* spec = gates::LatestSpec(in_.specs, kSpeedCeilingGate);
  std::vector<double> fractions;
  std::optional<double> study_p;
  if (published != nullptr) {
    study_p = published->NumberInput(gates::kPAttn);
    for (const auto& row : published->rows) {
      if (std::optional<double> f = PublishedSection::Number(row, "f")) fractions.push_back(*f);
    }
  }
  if (spec == nullptr || !study_p.has_value() || fractions.empty()) {
    blocks["recomputed"] =
        "Nothing to recompute: the published section needs the input `p_attn`, rows with `f`, "
        "and a registered `speed_ceiling` spec.\n";
  } else {
    absl::StatusOr<gates::SpeedCeilingGate> gate = gates::SpeedCeilingGateFromSpec(spec->spec);
    if (!gate.ok()) return gate.status();
    absl::StatusOr<std::string> table = gates::SpeedCeilingTable(
        {*study_p}, fractions, overheads.empty() ? std::vector<double>{gate->overhead} : overheads,
        *gate, absl::StrCat(kSpeedCeilingGate, " v", spec->spec.version));
    if (!table.ok()) return table.status();
    blocks["recomputed"] = *table;
  }
  blocks["plot"] = PlotLink("Projected speedup against active fraction", SummaryDir(), in_.out_dir,
                            kSpeedCeilingPlot);
  return blocks;
}

absl::StatusOr<std::string> Generator::SpeedCeilingPlot() const {
  Figure fig;
  fig.title = "Speed ceiling: projected speedup 1 / ((1 - p_attn) + p_attn * f + h)";
  fig.panel_width = 900;
  fig.panel_height = 420;
  Panel& panel = fig.panels.emplace_back();
  panel.title = "projected decode-step speedup against the active history fraction f";
  panel.x = {"active history fraction f (share of the history attention reads)", 0, 1, false};

  const RegisteredSpec* spec = gates::LatestSpec(in_.specs, kSpeedCeilingGate);
  std::optional<gates::SpeedCeilingGate> gate;
  if (spec != nullptr) {
    absl::StatusOr<gates::SpeedCeilingGate> g = gates::SpeedCeilingGateFromSpec(spec->spec);
    if (!g.ok()) return g.status();
    gate = *g;
  }
  std::vector<double> overheads = PublishedOverheads();
  if (overheads.empty()) overheads.push_back(gate.has_value() ? gate->overhead : 0.0);

  // p_attn values: the study's, then each recorded one (by its printed value).
  std::vector<std::pair<double, std::string>> p_attns;
  std::set<std::string> seen;
  const PublishedSection* published = in_.published.Find(kSpeedCeilingGate);
  if (published != nullptr) {
    if (std::optional<double> p = published->NumberInput(gates::kPAttn)) {
      p_attns.push_back({*p, absl::StrCat("p_attn = ", Fixed(*p, 3), " (study)")});
      seen.insert(Fixed(*p, 3));
    }
  }
  const std::vector<const RunJudgement*> runs = RunsOfGate(kSpeedCeilingGate);
  for (const RunJudgement* run : runs) {
    std::optional<double> p = Extreme(run->rows, gates::kPAttn, true);
    if (!p.has_value() || !(*p >= 0 && *p <= 1)) continue;
    if (seen.insert(Fixed(*p, 3)).second) {
      p_attns.push_back({*p, absl::StrCat("p_attn = ", Fixed(*p, 3), " (records)")});
    }
  }
  static const char* const kDashes[] = {"", "7 4", "2 3", "10 3 2 3"};
  std::vector<double> ys;
  for (size_t i = 0; i < p_attns.size(); ++i) {
    for (size_t k = 0; k < overheads.size(); ++k) {
      Series s;
      s.label = absl::StrCat(p_attns[i].second, ", h = ", Short(overheads[k]));
      s.color = PaletteColor(static_cast<int>(i));
      s.dash = kDashes[k % 4];
      for (int step = 0; step <= 100; ++step) {
        const double f = step / 100.0;
        absl::StatusOr<double> y = gates::ProjectedSpeedup(p_attns[i].first, f, overheads[k]);
        if (!y.ok()) continue;
        s.points.push_back({f, *y});
        ys.push_back(*y);
      }
      panel.series.push_back(std::move(s));
    }
  }
  if (published != nullptr) {
    for (const PublishedColumn& c : published->columns) {
      if (!c.overhead.has_value()) continue;
      Series s;
      s.label = "study's published speedups (reports/templates/published.json)";
      s.color = "#000000";
      s.line = false;
      s.marker = MarkerShape::kHollowDiamond;
      for (const auto& row : published->rows) {
        std::optional<double> f = PublishedSection::Number(row, "f");
        std::optional<double> y = PublishedSection::Number(row, c.key);
        if (f.has_value() && y.has_value()) {
          s.points.push_back({*f, *y});
          ys.push_back(*y);
        }
      }
      panel.series.push_back(std::move(s));
    }
  }
  if (gate.has_value()) {
    std::map<Verdict, Series> recorded;
    for (const RunJudgement* run : runs) {
      std::optional<double> p = Extreme(run->rows, gates::kPAttn, true);
      std::optional<double> f = Extreme(run->rows, gates::kActiveHistoryFraction, true);
      if (!p.has_value() || !f.has_value()) continue;
      absl::StatusOr<double> y = gates::ProjectedSpeedup(*p, *f, gate->overhead);
      if (!y.ok()) continue;
      Series& s = recorded[run->judgement.verdict];
      s.points.push_back({*f, *y});
      ys.push_back(*y);
    }
    for (auto& [verdict, s] : recorded) {
      s.label =
          absl::StrCat("records, ", VerdictText(verdict), " (at h = ", Short(gate->overhead), ")");
      s.color = verdict == Verdict::kPass   ? "#2ca02c"
                : verdict == Verdict::kFail ? "#d62728"
                                            : "#7f7f7f";
      s.line = false;
      s.marker = MarkerShape::kCircle;
      panel.series.push_back(std::move(s));
    }
    panel.hlines.push_back(
        {gate->min_speedup,
         absl::StrCat("gate: >= ", Fixed(gate->min_speedup, 2), "x at h = ", Short(gate->overhead),
                      " (", kSpeedCeilingGate, " v", spec->spec.version, ")"),
         "#d62728", "8 4"});
    ys.push_back(gate->min_speedup);
  }
  const auto [lo, hi] = AutoRange(ys, false, 0.8, 1.6);
  panel.y = {"projected speedup (x)", lo, hi, false};
  if (p_attns.empty()) panel.empty_note = "no p_attn: no records and no published p_attn";
  fig.caption = {
      "Curves: gates/speed_ceiling's formula at the study's p_attn and at every p_attn found in "
      "the records; colour: p_attn, dash: overhead h.",
      absl::StrCat("Records: ", runs.size(), " speed_ceiling runs in ", in_.records_dir,
                   "/ (none yet when none are drawn)."),
      "A speed ceiling is only permission to run the oracle quality gate, not a measured speedup.",
  };
  return RenderSvg(fig);
}

// ---- Work-reduction oracle -------------------------------------------------------------------

std::map<std::string, std::string> Generator::OracleBlocks() const {
  std::map<std::string, std::string> blocks;
  blocks["gate"] = GateBlock(kOracleGate);
  blocks["published"] = PublishedBlock(kOracleGate);
  blocks["plot"] = PlotLink("Per-step decode-logit MSE and layer-local L2 per selector",
                            SummaryDir(), in_.out_dir, kOraclePlot);
  const std::vector<const RunJudgement*> runs = RunsOfGate(kOracleGate);
  if (runs.empty()) {
    blocks["ours"] = NoRecords(kOracleGate);
    blocks["steps"] = NoRecords(kOracleGate);
    return blocks;
  }
  std::string ours = MdHeader({"target", "selector", "active fraction", "passed steps",
                               "failed steps", "max decode-logit MSE", "max layer-local L2",
                               "main failure", "gate", "provenance", "records"});
  std::string steps =
      MdHeader({"selector", "run started", "step", "decode-logit MSE", "top-10 overlap",
                "argmax agreement", "layer-local L2", "verdict", "failed conditions"});
  for (const RunJudgement* run : runs) {
    const GateSpec* spec = SpecOf(*run);
    int passed = 0;
    std::vector<std::string> failed_steps, invalid_steps;
    for (const RecordAt* row : run->rows) {
      const std::string step =
          row->record.step.has_value() ? absl::StrCat(*row->record.step) : "null";
      gates::Judgement j;
      if (spec != nullptr) j = gates::JudgeRow(*spec, row->record);
      if (j.verdict == Verdict::kPass) ++passed;
      if (j.verdict == Verdict::kFail) failed_steps.push_back(step);
      if (j.verdict == Verdict::kInvalid) invalid_steps.push_back(step);
      steps +=
          MdRow({Code(run->variant), run->provenance.start_time, step,
                 MaybeFixed(MetricOf(row->record, gates::kDecodeLogitMse), 4),
                 MaybeFixed(MetricOf(row->record, gates::kTop10Overlap), 4),
                 MaybeFixed(MetricOf(row->record, gates::kArgmaxAgreement), 0),
                 MaybeFixed(MetricOf(row->record, gates::kLayerMedianOProjRelL2), 4),
                 VerdictText(j.verdict), j.failed.empty() ? "—" : absl::StrJoin(j.failed, "; ")});
    }
    const int expected = spec != nullptr && spec->target.decode_steps.has_value()
                             ? *spec->target.decode_steps
                             : static_cast<int>(run->rows.size());
    std::vector<std::string> failed_parts;
    if (!failed_steps.empty()) failed_parts.push_back(absl::StrJoin(failed_steps, ", "));
    if (!invalid_steps.empty()) {
      failed_parts.push_back(absl::StrCat("invalid: ", absl::StrJoin(invalid_steps, ", ")));
    }
    const std::string failed_text = failed_parts.empty() ? "—" : absl::StrJoin(failed_parts, "; ");
    // The main failure: the threshold failed on the most steps (the first in the spec on a tie).
    std::string main_failure = "—";
    if (run->judgement.verdict == Verdict::kInvalid) {
      main_failure = absl::StrCat("invalid: ", absl::StrJoin(run->judgement.failed, "; "));
    } else if (spec != nullptr) {
      const Decision* worst = nullptr;
      const std::vector<Decision> decisions = Decide(*spec, run->rows);
      for (const Decision& d : decisions) {
        if (d.failing > 0 && (worst == nullptr || d.failing > worst->failing)) worst = &d;
      }
      if (worst != nullptr) main_failure = DecisionText(*worst);
    }
    ours +=
        MdRow({TargetText(run->target), Code(run->variant),
               MaybeFixed(Extreme(run->rows, gates::kActiveHistoryFraction, true), 4),
               absl::StrCat(passed, " of ", expected), failed_text,
               MaybeFixed(Extreme(run->rows, gates::kDecodeLogitMse, true), 4),
               MaybeFixed(Extreme(run->rows, gates::kLayerMedianOProjRelL2, true), 4), main_failure,
               absl::StrCat(VerdictText(run->judgement.verdict), " (v", run->gate_version, ")"),
               ProvenanceText(*run), RecordLinks(run->rows, SummaryDir())});
  }
  blocks["ours"] = ours;
  blocks["steps"] = steps;
  return blocks;
}

std::string Generator::OraclePlot() const {
  Figure fig;
  fig.title = "Work-reduction oracle: per-step quality of each selector against the gate";
  const RegisteredSpec* spec = gates::LatestSpec(in_.specs, kOracleGate);
  const std::vector<const RunJudgement*> runs = RunsOfGate(kOracleGate);
  int steps = 1;
  if (spec != nullptr && spec->spec.target.decode_steps.has_value()) {
    steps = *spec->spec.target.decode_steps;
  }
  for (const RunJudgement* run : runs) {
    for (const RecordAt* row : run->rows) {
      if (row->record.step.has_value()) {
        steps = std::max<int>(steps, static_cast<int>(*row->record.step) + 1);
      }
    }
  }
  // Runs of one variant are told apart by their start time.
  std::map<std::string, int> runs_of_variant;
  for (const RunJudgement* run : runs) ++runs_of_variant[run->variant];
  const PublishedSection* published = in_.published.Find(kOracleGate);
  const std::vector<std::pair<std::string, std::string>> metrics = {
      {gates::kDecodeLogitMse, "decode-logit MSE"},
      {gates::kLayerMedianOProjRelL2, "layer-local L2 (median over layers, post-o_proj)"}};
  for (const auto& [metric, title] : metrics) {
    Panel& panel = fig.panels.emplace_back();
    panel.title = title;
    panel.x = {"decode step", -0.25, steps - 1 + 0.25, false};
    std::vector<double> ys = {0.0};
    for (size_t i = 0; i < runs.size(); ++i) {
      const RunJudgement& run = *runs[i];
      Series s;
      s.label = absl::StrCat(run.variant,
                             runs_of_variant[run.variant] > 1
                                 ? absl::StrCat(" (run ", run.provenance.start_time, ")")
                                 : "",
                             ": ", VerdictText(run.judgement.verdict));
      s.color = PaletteColor(static_cast<int>(i));
      s.marker = MarkerShape::kCircle;
      for (const RecordAt* row : run.rows) {
        std::optional<double> v = MetricOf(row->record, metric);
        if (!row->record.step.has_value() || !v.has_value()) continue;
        s.points.push_back({static_cast<double>(*row->record.step), *v});
        ys.push_back(*v);
      }
      panel.series.push_back(std::move(s));
    }
    if (spec != nullptr) {
      for (const Condition& c : spec->spec.thresholds) {
        if (c.kind != Condition::Kind::kMetric || c.metric != metric) continue;
        panel.hlines.push_back(
            {c.value,
             absl::StrCat("gate: ", metric, " ", gates::OpSymbol(c.op), " ", Short(c.value), " (",
                          kOracleGate, " v", spec->spec.version, ")"),
             "#d62728", "8 4"});
        ys.push_back(c.value);
      }
    }
    if (published != nullptr) {
      const PublishedColumn* label = &published->columns.front();
      for (const auto& row : published->rows) {
        std::optional<double> v = PublishedSection::Number(row, metric);
        if (!v.has_value()) continue;
        panel.hlines.push_back(
            {*v,
             absl::StrCat("study: ", published->Format(*label, row.at(label->key)), " ", metric,
                          " ", Short(*v), " (published, step not given)"),
             "#555555", "2 3"});
        ys.push_back(*v);
      }
    }
    const auto [lo, hi] = AutoRange(ys, false, 0.0, 1.0);
    panel.y = {metric, std::max(0.0, lo), hi, false};
    if (runs.empty()) panel.empty_note = "no records yet";
  }
  fig.caption = {
      absl::StrCat("One line per selector run (", runs.size(), " runs of ", kOracleGate, " in ",
                   in_.records_dir, "/); a configuration passes only if every step passes."),
      "Dashed red: the gate's threshold from its spec; dotted grey: the study's published "
      "figures (reports/templates/published.json).",
  };
  return RenderSvg(fig);
}

// ---- KV formats: quality against bytes ---------------------------------------------------------

std::map<std::string, std::string> Generator::HfkvBlocks() const {
  std::map<std::string, std::string> blocks;
  blocks["gate"] = GateBlock(kHfkvGate);
  blocks["published"] = PublishedBlock(kHfkvGate);
  blocks["plot"] = PlotLink("Decode-logit MSE against KV bytes for every KV format", SummaryDir(),
                            in_.out_dir, kKvQualityPlot);
  const std::vector<const RunJudgement*> runs = RunsOfGate(kHfkvGate);
  blocks["ours"] = runs.empty() ? NoRecords(kHfkvGate) : QualityTable(runs);
  return blocks;
}

std::string Generator::KvQualityPlot() const {
  Figure fig;
  fig.title = "Quality against bytes: decode-logit MSE of every KV format";
  fig.panel_width = 900;
  fig.panel_height = 420;
  Panel& panel = fig.panels.emplace_back();
  panel.title = "decode-logit MSE against KV bytes per token relative to dense";
  panel.x = {"KV bytes per token / dense KV bytes per token (kv_ratio)", 0, 1, false};
  std::vector<double> ys;
  int not_drawn = 0;
  // One series per (experiment, variant), over every record carrying both metrics.
  std::vector<std::string> labels;
  std::map<std::string, Series> by_label;
  for (const RunJudgement& run : runs_) {
    for (const RecordAt* row : run.rows) {
      std::optional<double> x = MetricOf(row->record, gates::kKvRatio);
      std::optional<double> y = MetricOf(row->record, gates::kDecodeLogitMse);
      if (!x.has_value() || !y.has_value()) continue;
      if (!(*y > 0) || !std::isfinite(*y) || !std::isfinite(*x)) {
        ++not_drawn;
        continue;
      }
      const std::string label =
          absl::StrCat(run.variant, " (", run.experiment, ", ", run.target.model, ")");
      if (by_label.count(label) == 0) labels.push_back(label);
      Series& s = by_label[label];
      s.points.push_back({*x, *y});
      ys.push_back(*y);
    }
  }
  if (const PublishedSection* published = in_.published.Find(kHfkvGate)) {
    const PublishedColumn* label = &published->columns.front();
    Series s;
    s.label = "study's published figures (kv_ratio = 1 / ratio vs bf16)";
    s.color = "#000000";
    s.line = false;
    s.marker = MarkerShape::kHollowDiamond;
    for (const auto& row : published->rows) {
      std::optional<double> ratio = PublishedSection::Number(row, kPublishedKvRatioVsBf16);
      std::optional<double> y = PublishedSection::Number(row, gates::kDecodeLogitMse);
      if (!ratio.has_value() || !y.has_value() || !(*ratio > 0) || !(*y > 0)) continue;
      s.points.push_back({1.0 / *ratio, *y});
      s.point_labels.push_back(published->Format(*label, row.at(label->key)));
      ys.push_back(*y);
    }
    panel.series.push_back(std::move(s));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    Series s = by_label[labels[i]];
    s.label = labels[i];
    s.color = PaletteColor(static_cast<int>(i));
    s.line = false;
    s.marker = MarkerShape::kCircle;
    panel.series.push_back(std::move(s));
  }
  if (const RegisteredSpec* spec = gates::LatestSpec(in_.specs, kHfkvGate)) {
    for (const Condition& c : spec->spec.thresholds) {
      if (c.kind != Condition::Kind::kMetric || c.metric != gates::kDecodeLogitMse) continue;
      panel.hlines.push_back(
          {c.value,
           absl::StrCat("gate: decode_logit_mse ", gates::OpSymbol(c.op), " ", Short(c.value), " (",
                        kHfkvGate, " v", spec->spec.version, ")"),
           "#d62728", "8 4"});
      ys.push_back(c.value);
    }
  }
  const auto [lo, hi] = AutoRange(ys, true, 0.01, 10);
  panel.y = {"decode-logit MSE (log scale)", lo, hi, true};
  if (labels.empty()) panel.empty_note = "no records with kv_ratio and decode_logit_mse yet";
  fig.caption = {
      absl::StrCat("Points: every record (any experiment, any gate) with both kv_ratio and "
                   "decode_logit_mse. Records with an MSE of 0 or a non-finite value cannot be "
                   "drawn on the log axis (the tables list them): ",
                   not_drawn, "."),
      "kv_ratio is compressed KV bytes / dense KV bytes of the record's target dtype (RECORDS.md); "
      "the study quotes its ratios against bf16.",
  };
  return RenderSvg(fig);
}

// ---- Eager value path, fused codebook ----------------------------------------------------------

std::map<std::string, std::string> Generator::EagerBlocks() const {
  std::map<std::string, std::string> blocks;
  blocks["gate"] = GateBlock(kEagerGate);
  blocks["published"] = PublishedBlock(kEagerGate);
  blocks["ours"] = LatencyTable(RunsOfGate(kEagerGate), kEagerGate, kDenseStepMs, kCompressedStepMs,
                                "dense step (ms)", "eager step (ms)", "dense / eager");
  // Quality rows the eager experiment recorded under other gates.
  std::vector<const RunJudgement*> quality;
  for (const RunJudgement& run : runs_) {
    if (run.experiment == "eager_value_path" && run.gate_id != kEagerGate) quality.push_back(&run);
  }
  blocks["quality"] =
      quality.empty()
          ? "No records yet: no row of experiment `eager_value_path` is judged by a quality gate.\n"
          : QualityTable(quality);
  return blocks;
}

std::map<std::string, std::string> Generator::FusedBlocks() const {
  std::map<std::string, std::string> blocks;
  blocks["gate"] = GateBlock(kFusedGate);
  blocks["published"] = PublishedBlock(kFusedGate);
  blocks["ours"] =
      LatencyTable(RunsOfGate(kFusedGate), kFusedGate, kDenseAttentionMs, kCompressedAttentionMs,
                   "dense attention (ms)", "fused attention (ms)", "dense / fused");
  return blocks;
}

absl::StatusOr<std::map<std::string, std::string>> Generator::Generate() {
  std::map<std::string, std::map<std::string, std::string>> blocks;
  blocks[kLedger] = LedgerBlocks();
  absl::StatusOr<std::map<std::string, std::string>> speed = SpeedCeilingBlocks();
  if (!speed.ok()) return speed.status();
  blocks[kSpeedCeilingDoc] = *speed;
  blocks[kOracleDoc] = OracleBlocks();
  blocks[kHfkvDoc] = HfkvBlocks();
  blocks[kEagerDoc] = EagerBlocks();
  blocks[kFusedDoc] = FusedBlocks();

  std::map<std::string, std::string> files;
  for (const std::string& name : ReportNames()) {
    auto t = in_.templates.find(name);
    if (t == in_.templates.end()) {
      return absl::NotFoundError(absl::StrCat("no template ", in_.templates_dir, "/", name, ".md"));
    }
    const std::string header = absl::StrCat(
        "<!-- Generated by `tools/bazel run //tools/report` from ", in_.templates_dir, "/", name,
        ".md and the records in ", in_.records_dir,
        "/. Edit the template (the words outside the report:begin/end blocks), not this file. -->");
    absl::StatusOr<std::string> filled = FillTemplate(t->second, blocks[name], header);
    if (!filled.ok()) return filled.status();
    files[name == kLedger ? absl::StrCat(name, ".md") : absl::StrCat("summaries/", name, ".md")] =
        *filled;
  }
  absl::StatusOr<std::string> speed_plot = SpeedCeilingPlot();
  if (!speed_plot.ok()) return speed_plot.status();
  files[kSpeedCeilingPlot] = *speed_plot;
  files[kOraclePlot] = OraclePlot();
  files[kKvQualityPlot] = KvQualityPlot();
  return files;
}

}  // namespace

std::vector<std::string> ReportNames() {
  return {kLedger, kSpeedCeilingDoc, kOracleDoc, kHfkvDoc, kEagerDoc, kFusedDoc};
}

std::string RelativePath(const std::string& from_dir, const std::string& to) {
  std::vector<std::string> from = absl::StrSplit(from_dir, '/', absl::SkipEmpty());
  std::vector<std::string> target = absl::StrSplit(to, '/', absl::SkipEmpty());
  size_t common = 0;
  while (common < from.size() && common + 1 < target.size() && from[common] == target[common]) {
    ++common;
  }
  std::vector<std::string> parts;
  for (size_t i = common; i < from.size(); ++i) parts.push_back("..");
  for (size_t i = common; i < target.size(); ++i) parts.push_back(target[i]);
  return absl::StrJoin(parts, "/");
}

absl::StatusOr<std::map<std::string, std::string>> GenerateReports(const ReportInputs& inputs) {
  return Generator(inputs).Generate();
}

}  // namespace kvgate::report
