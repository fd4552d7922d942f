// The SVG plots of the summaries.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gates/metrics.h"
#include "gates/speed_ceiling/speed_ceiling.h"
#include "gates/speed_ceiling/speed_ceiling_spec.h"
#include "tools/report/generator.h"
#include "tools/report/svg_plot.h"

namespace kvgate::report::internal {

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

}  // namespace kvgate::report::internal
