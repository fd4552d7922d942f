// The SVG plots of the summaries. Each names its model and context in the title, gives one colour
// to a family of variants (at most eight families a figure), uses log axes where values span
// decades, shows the study's published figures, and sizes its axes to hold every point drawn.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "gates/metrics.h"
#include "gates/speed_ceiling/speed_ceiling.h"
#include "gates/speed_ceiling/speed_ceiling_spec.h"
#include "tools/report/generator.h"
#include "tools/report/ledger_text.h"
#include "tools/report/svg_plot.h"

namespace kvgate::report::internal {
namespace {

constexpr char kGrey[] = "#555555";
constexpr char kGateRed[] = "#d62728";

// The family of a variant, for its colour: the name before the first ':', without "_split", with
// int4's symmetric_/affine_ folded into one ("int4").
std::string Family(const std::string& variant) {
  absl::string_view f = variant;
  f = f.substr(0, f.find(':'));
  absl::ConsumeSuffix(&f, "_split");
  if (!absl::ConsumePrefix(&f, "symmetric_")) absl::ConsumePrefix(&f, "affine_");
  return std::string(f);
}

// One colour a family, in the families' sorted order.
std::map<std::string, std::string> FamilyColors(const std::set<std::string>& families) {
  std::map<std::string, std::string> out;
  int i = 0;
  for (const std::string& f : families) out[f] = PaletteColor(i++);
  return out;
}

// A log axis where the positive values span two decades or more, else a linear one.
Axis AxisFor(const std::string& label, const std::vector<double>& values, bool from_zero) {
  double lo = INFINITY, hi = 0;
  for (double v : values) {
    if (std::isfinite(v) && v > 0) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  const bool log = std::isfinite(lo) && hi / lo >= 100;
  auto [min, max] = AutoRange(values, log, 0.0, 1.0);
  if (from_zero && !log) min = std::min(0.0, min);
  return {absl::StrCat(label, log ? " (log scale)" : ""), min, max, log};
}

// "Qwen2.5-7B-Instruct (H100 80GB HBM3); SmolLM2-135M-Instruct (cpu)".
std::string ModelsOn(const std::vector<const RunJudgement*>& runs) {
  std::set<std::string> out;
  for (const RunJudgement* r : runs) {
    out.insert(absl::StrCat(r->target.model, " (", DeviceText(r->target.device), ")"));
  }
  return out.empty() ? "no records" : absl::StrJoin(out, "; ");
}

// A series drawn only in the legend.
Series LegendOnly(const std::string& label, const std::string& color, bool line, MarkerShape marker,
                  const std::string& dash = "") {
  Series s;
  s.label = label;
  s.color = color;
  s.line = line;
  s.marker = marker;
  s.dash = dash;
  return s;
}

}  // namespace

absl::StatusOr<std::string> Generator::SpeedCeilingPlot() const {
  const RegisteredSpec* spec = gates::LatestSpec(in_.specs, kSpeedCeilingGate);
  std::optional<gates::SpeedCeilingGate> gate;
  if (spec != nullptr) {
    absl::StatusOr<gates::SpeedCeilingGate> g = gates::SpeedCeilingGateFromSpec(spec->spec);
    if (!g.ok()) return g.status();
    gate = *g;
  }
  const double h = gate.has_value() ? gate->overhead : 0.05;
  const std::vector<const RunJudgement*> runs = RunsOfGate(kSpeedCeilingGate);
  Figure fig;
  fig.title = absl::StrCat("Speed ceiling at h = ", Short(h), " by context: ", ModelsOn(runs));
  fig.panel_width = 1000;
  fig.panel_height = 420;
  Panel& panel = fig.panels.emplace_back();
  panel.title = "projected decode-step speedup 1 / ((1 - p_attn) + p_attn * f + h)";

  // One series a timing family on one model and card; a marker a record.
  std::set<std::string> families;
  for (const RunJudgement* run : runs) families.insert(Family(run->variant));
  const std::map<std::string, std::string> colors = FamilyColors(families);
  std::map<std::string, Series> by_label;
  std::vector<double> xs, ys;
  for (const RunJudgement* run : runs) {
    const std::optional<double> p = Extreme(run->rows, gates::kPAttn, true);
    const std::optional<double> f = Extreme(run->rows, gates::kActiveHistoryFraction, true);
    if (!p.has_value() || !f.has_value()) continue;
    absl::StatusOr<double> y = gates::ProjectedSpeedup(*p, *f, h);
    if (!y.ok()) continue;
    const std::string family = Family(run->variant);
    const std::string label =
        absl::StrCat(family, ": ", run->target.model, " on ", DeviceText(run->target.device));
    Series& s = by_label[label];
    s.label = label;
    s.color = colors.at(family);
    s.line = false;
    s.marker = MarkerShape::kCircle;
    s.points.push_back({static_cast<double>(run->target.context), *y});
    xs.push_back(run->target.context);
    ys.push_back(*y);
  }
  for (auto& [label, s] : by_label) panel.series.push_back(std::move(s));
  // The study's rows at the gate's overhead: its context is not given, so lines across.
  if (const PublishedSection* published = in_.published.Find(kSpeedCeilingGate)) {
    std::vector<std::string> parts;
    for (const PublishedColumn& c : published->columns) {
      if (!c.overhead.has_value() || std::fabs(*c.overhead - h) > 1e-12) continue;
      for (const auto& row : published->rows) {
        const std::optional<double> f = PublishedSection::Number(row, "f");
        const std::optional<double> y = PublishedSection::Number(row, c.key);
        if (!f.has_value() || !y.has_value()) continue;
        parts.push_back(absl::StrCat(published->Format(c, row.at(c.key)), " at f = ", Short(*f)));
        panel.hlines.push_back({*y, "", kGrey, "2 3", "", false});
        ys.push_back(*y);
      }
    }
    const std::string legend =
        absl::StrCat("the study (context not given): ", absl::StrJoin(parts, ", "));
    for (HLine& line : panel.hlines) line.legend = legend;
  }
  if (gate.has_value()) {
    panel.hlines.push_back({gate->min_speedup,
                            absl::StrCat("gate: >= ", Fixed(gate->min_speedup, 2), "x (",
                                         kSpeedCeilingGate, " v", spec->spec.version, ")"),
                            kGateRed, "8 4", "", true});
    ys.push_back(gate->min_speedup);
  }
  // Ticks at the contexts measured; the axis half a tick step beyond them.
  std::set<double> measured(xs.begin(), xs.end());
  const double xlo = measured.empty() ? 1000 : *measured.begin() / 1.6;
  const double xhi = measured.empty() ? 1000000 : *measured.rbegin() * 1.6;
  panel.x = {"context (tokens, log scale)", xlo, xhi, true,
             std::vector<double>(measured.begin(), measured.end())};
  panel.y = AxisFor("projected speedup (x)", ys, false);
  if (runs.empty()) panel.empty_note = "no speed_ceiling records yet";
  fig.caption = {
      absl::StrCat("A marker a record (", runs.size(), " runs of ", kSpeedCeilingGate, " in ",
                   in_.records_dir, "/): the projection from its measured p_attn at its active ",
                   "fraction f; the study's three fractions sit on nearly one point a context, ",
                   "repeated runs at one context show the spread. Colour: how the step was timed."),
      "A speed ceiling is only permission to run the oracle quality gate, not a measured speedup.",
  };
  return RenderSvg(fig);
}

std::string Generator::OraclePlot() const {
  const RegisteredSpec* spec = gates::LatestSpec(in_.specs, kOracleGate);
  const std::vector<const RunJudgement*> runs = RunsOfGate(kOracleGate);
  int steps = 1;
  if (spec != nullptr && spec->spec.target.decode_steps.has_value()) {
    steps = *spec->spec.target.decode_steps;
  }
  std::set<std::string> families;
  std::set<int64_t> contexts;
  std::set<std::string> dtypes;
  for (const RunJudgement* run : runs) {
    families.insert(Family(run->variant));
    contexts.insert(run->target.context);
    dtypes.insert(run->target.dtype);
    for (const RecordAt* row : run->rows) {
      if (row->record.step.has_value()) {
        steps = std::max<int>(steps, static_cast<int>(*row->record.step) + 1);
      }
    }
  }
  if (contexts.empty()) contexts.insert(0);
  const std::map<std::string, std::string> colors = FamilyColors(families);
  Figure fig;
  fig.title = absl::StrCat("Work-reduction oracle, per decode step: ", ModelsOn(runs),
                           dtypes.empty() ? "" : ", " + absl::StrJoin(dtypes, ", "));
  fig.columns = 2;
  const PublishedSection* published = in_.published.Find(kOracleGate);
  const std::vector<std::pair<std::string, std::string>> metrics = {
      {gates::kDecodeLogitMse, "decode-logit MSE"},
      {gates::kLayerMedianOProjRelL2, "layer-local L2"}};
  int not_drawn = 0;
  std::vector<std::string> study_words;
  for (int64_t context : contexts) {
    for (const auto& [metric, title] : metrics) {
      Panel& panel = fig.panels.emplace_back();
      panel.title = absl::StrCat(title, ", context ", context);
      panel.x = {"decode step", -0.25, steps - 1 + 0.25, false};
      std::vector<double> ys;
      for (const RunJudgement* run : runs) {
        if (run->target.context != context) continue;
        Series s;  // drawn without a label: the legend has one entry a family
        s.color = colors.at(Family(run->variant));
        s.marker = MarkerShape::kCircle;
        s.dash = run->judgement.verdict == Verdict::kPass ? "" : "6 3";
        for (const RecordAt* row : run->rows) {
          std::optional<double> v = MetricOf(row->record, metric);
          if (!row->record.step.has_value() || !v.has_value()) continue;
          if (!(*v > 0) || !std::isfinite(*v)) {
            ++not_drawn;
            continue;
          }
          s.points.push_back({static_cast<double>(*row->record.step), *v});
          ys.push_back(*v);
        }
        panel.series.push_back(std::move(s));
      }
      if (spec != nullptr) {
        for (const Condition& c : spec->spec.thresholds) {
          if (c.kind != Condition::Kind::kMetric || c.metric != metric) continue;
          panel.hlines.push_back({c.value,
                                  absl::StrCat("gate: ", gates::OpSymbol(c.op), " ", Short(c.value),
                                               " (", kOracleGate, " v", spec->spec.version, ")"),
                                  kGateRed, "8 4", "gate thresholds (work_reduction_oracle)",
                                  false});
          ys.push_back(c.value);
        }
      }
      if (published != nullptr) {
        const PublishedColumn* label = &published->columns.front();
        for (const auto& row : published->rows) {
          const std::optional<double> v = PublishedSection::Number(row, metric);
          if (!v.has_value()) continue;
          panel.hlines.push_back(
              {*v, "", kGrey, "2 3", "the study's published maxima (step not given)", false});
          ys.push_back(*v);
          if (context == *contexts.begin()) {
            study_words.push_back(absl::StrCat(published->Format(*label, row.at(label->key)), " ",
                                               title, " ", Short(*v)));
          }
        }
      }
      panel.y = AxisFor(metric, ys, true);
      if (runs.empty()) panel.empty_note = "no records yet";
    }
  }
  // The legend: one entry a family, then the line styles.
  std::vector<Series> legend;
  for (const auto& [family, color] : colors) {
    legend.push_back(LegendOnly(family, color, true, MarkerShape::kCircle));
  }
  fig.panels.front().series.insert(fig.panels.front().series.begin(), legend.begin(), legend.end());
  fig.caption = {
      absl::StrCat("One line a selector run (", runs.size(), " runs of ", kOracleGate, " in ",
                   in_.records_dir, "/), in its family's colour: solid when the configuration ",
                   "passes, dashed when it fails (it passes only if every step passes). ",
                   "Values of 0 or non-finite, not drawable on a log axis: ", not_drawn, "."),
      absl::StrCat("Dotted grey, the study's published maxima: ",
                   study_words.empty() ? "none" : absl::StrJoin(study_words, "; "), "."),
  };
  return RenderSvg(fig);
}

std::string Generator::KvQualityPlot() const {
  // The quality gate of the formats and the gates refining it (judged over windows).
  std::vector<std::string> gate_ids = {kHfkvGate};
  for (const gates::GateRoleEntry* g : in_.paths.RefinersOf(kHfkvGate)) gate_ids.push_back(g->gate);
  std::set<std::string> families;
  std::set<std::string> models, one_prompt_contexts, window_contexts;
  int controls = 0, not_drawn = 0;
  struct Point {
    std::string family;
    double x, y;
    std::optional<std::pair<double, double>> bar;  // over windows: the 95% interval
  };
  std::vector<Point> points;
  for (const RunJudgement& run : runs_) {
    // KV formats only: records of the formats' quality gates (a selector's records over windows
    // carry the same metric names under another gate).
    if (std::find(gate_ids.begin(), gate_ids.end(), run.gate_id) == gate_ids.end()) continue;
    for (const RecordAt* row : run.rows) {
      const std::optional<double> x = MetricOf(row->record, gates::kKvRatio);
      std::optional<double> y = MetricOf(row->record, gates::kDecodeLogitMse);
      const bool windows = !y.has_value();
      const std::string mean = absl::StrCat(gates::kDecodeLogitMse, "_mean");
      if (windows) y = MetricOf(row->record, mean);
      if (!x.has_value() || !y.has_value()) continue;
      if (in_.paths.ControlOf(run.variant) != nullptr) {
        ++controls;
        continue;
      }
      if (!(*y > 0) || !std::isfinite(*y) || !std::isfinite(*x)) {
        ++not_drawn;
        continue;
      }
      Point p{Family(run.variant), *x, *y, std::nullopt};
      if (windows) {
        const std::optional<double> lo = MetricOf(row->record, mean + "_ci_low");
        const std::optional<double> hi = MetricOf(row->record, mean + "_ci_high");
        if (lo.has_value() && hi.has_value()) p.bar = std::make_pair(*lo, *hi);
      }
      points.push_back(p);
      families.insert(p.family);
      models.insert(run.target.model);
      (windows ? window_contexts : one_prompt_contexts).insert(absl::StrCat(run.target.context));
    }
  }
  const std::map<std::string, std::string> colors = FamilyColors(families);
  Figure fig;
  std::vector<std::string> where;
  if (!one_prompt_contexts.empty()) {
    where.push_back(absl::StrCat(absl::StrJoin(one_prompt_contexts, ", "), " (one prompt)"));
  }
  if (!window_contexts.empty()) {
    where.push_back(absl::StrCat(absl::StrJoin(window_contexts, ", "), " (over windows)"));
  }
  fig.title = absl::StrCat("KV formats, quality against bytes: ",
                           models.empty() ? "no records" : absl::StrJoin(models, ", "),
                           where.empty() ? "" : ", context " + absl::StrJoin(where, " and "));
  fig.panel_width = 1000;
  fig.panel_height = 420;
  Panel& panel = fig.panels.emplace_back();
  panel.title = "decode-logit MSE against KV bytes per token relative to dense";
  std::vector<double> xs, ys;
  for (const auto& [family, color] : colors) {
    Series one = LegendOnly(family, color, false, MarkerShape::kCircle);
    Series over = LegendOnly("", color, false, MarkerShape::kSquare);
    for (const Point& p : points) {
      if (p.family != family) continue;
      xs.push_back(p.x);
      ys.push_back(p.y);
      if (!p.bar.has_value()) {
        one.points.push_back({p.x, p.y});
        continue;
      }
      over.points.push_back({p.x, p.y});
      over.y_bars.push_back(*p.bar);
      ys.push_back(p.bar->first);
      ys.push_back(p.bar->second);
    }
    panel.series.push_back(std::move(one));
    panel.series.push_back(std::move(over));
  }
  if (!window_contexts.empty()) {
    panel.series.push_back(LegendOnly("square and bar: mean over windows, 95% interval", kGrey,
                                      false, MarkerShape::kSquare));
  }
  if (const PublishedSection* published = in_.published.Find(kHfkvGate)) {
    const PublishedColumn* label = &published->columns.front();
    std::vector<std::string> parts;
    Series s = LegendOnly("", "#000000", false, MarkerShape::kHollowDiamond);
    for (const auto& row : published->rows) {
      std::optional<double> ratio = PublishedSection::Number(row, kPublishedKvRatioVsBf16);
      std::optional<double> y = PublishedSection::Number(row, gates::kDecodeLogitMse);
      if (!ratio.has_value() || !y.has_value() || !(*ratio > 0) || !(*y > 0)) continue;
      s.points.push_back({1.0 / *ratio, *y});
      xs.push_back(1.0 / *ratio);
      ys.push_back(*y);
      const PublishedColumn* mse = nullptr;
      for (const PublishedColumn& c : published->columns) {
        if (c.key == gates::kDecodeLogitMse) mse = &c;
      }
      parts.push_back(absl::StrCat(published->Format(*label, row.at(label->key)), " ",
                                   published->Format(*mse, row.at(mse->key))));
    }
    s.label =
        absl::StrCat("the study (kv_ratio = 1 / its ratio vs bf16): ", absl::StrJoin(parts, ", "));
    panel.series.push_back(std::move(s));
  }
  // The gates' bars on the MSE, one line a value.
  std::map<double, std::vector<std::string>> bars;
  for (const std::string& id : gate_ids) {
    const RegisteredSpec* spec = gates::LatestSpec(in_.specs, id);
    if (spec == nullptr) continue;
    for (const Condition& c : spec->spec.thresholds) {
      if (c.kind != Condition::Kind::kMetric || BaseMetric(c.metric) != gates::kDecodeLogitMse) {
        continue;
      }
      bars[c.value].push_back(absl::StrCat(gates::OpSymbol(c.op), " ", Short(c.value), " on ",
                                           c.metric, " (", id, " v", spec->spec.version, ")"));
    }
  }
  for (const auto& [value, names] : bars) {
    panel.hlines.push_back({value, absl::StrCat("gate ", Short(value)), kGateRed, "8 4",
                            absl::StrCat("gate: ", absl::StrJoin(names, "; ")), false});
    ys.push_back(value);
  }
  const auto [xlo, xhi] = AutoRange(xs, false, 0, 1);
  panel.x = {"KV bytes per token / dense KV bytes per token (kv_ratio)", std::max(0.0, xlo), xhi,
             false};
  panel.y = AxisFor("decode-logit MSE", ys, false);
  if (points.empty()) panel.empty_note = "no records with kv_ratio and decode_logit_mse yet";
  fig.caption = {
      absl::StrCat(
          "Circles: a record of one prompt (each decode step); squares: a record over ",
          "windows. Colour: the format family. Controls (not compressed, not drawn): ", controls,
          "; values of 0 or non-finite, not drawable on the log axis: ", not_drawn, "."),
      "kv_ratio is compressed KV bytes / dense KV bytes of the record's target dtype (RECORDS.md); "
      "the study quotes its ratios against bf16.",
  };
  return RenderSvg(fig);
}

}  // namespace kvgate::report::internal
