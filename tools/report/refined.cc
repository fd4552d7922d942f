// Gates judged over windows beside the gates they refine (gates/paths.json "refines"): the
// ledger's table of verdicts that changed (one prompt against many windows and positions) and,
// in the study's tables, our figures over windows with their 95% bootstrap intervals.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "tools/report/generator.h"
#include "tools/report/ledger_text.h"

namespace kvgate::report::internal {
namespace {

// How a refining gate reads an aggregate: "upper 95% bound" for "<metric>_mean_ci_high".
std::string AggregateWords(const std::string& name) {
  if (absl::EndsWith(name, "_mean_ci_high")) return "upper 95% bound";
  if (absl::EndsWith(name, "_mean_ci_low")) return "lower 95% bound";
  if (absl::EndsWith(name, "_mean")) return "mean";
  return name;
}

// "2048 tokens, 1 decode step" or "512 tokens, 32 windows x 64 positions".
std::string Extent(const ConfigurationJudgement& c, const std::vector<const RecordAt*>& rows) {
  const std::optional<double> windows = Extreme(rows, "windows", false);
  const std::optional<double> positions = Extreme(rows, "positions_per_window", false);
  if (windows.has_value() && positions.has_value()) {
    return absl::StrCat(c.target.context, " tokens, ", Short(*windows), " windows x ",
                        Short(*positions), " positions");
  }
  int steps = 0;
  for (const RecordAt* r : rows) steps += r->record.step.has_value();
  return absl::StrCat(c.target.context, " tokens, ", steps == 0 ? 1 : steps,
                      steps > 1 ? " decode steps" : " decode step");
}

// "`kivi:bits=2`, SmolLM2-135M-Instruct, cpu": the device tells two runs of one configuration
// apart.
std::string Label(const ConfigurationJudgement& c) {
  return absl::StrCat(Code(c.variant), ", ", c.target.model, ", ", DeviceText(c.target.device));
}

}  // namespace

const Condition* Generator::DecidingCondition(const GateSpec& spec,
                                              const ConfigurationJudgement& c) const {
  const std::vector<Decision> decisions = Decide(spec, RowsOf(c));
  if (decisions.empty()) return nullptr;
  for (const Decision& d : decisions) {
    if (c.judgement.verdict == Verdict::kFail && d.failing > 0) return d.condition;
  }
  return decisions.front().condition;
}

std::string Generator::WindowsValue(const ConfigurationJudgement& c,
                                    const std::string& metric) const {
  const std::string base = BaseMetric(metric);
  const std::vector<const RecordAt*> rows = RowsOf(c);
  const std::optional<double> mean = Extreme(rows, absl::StrCat(base, "_mean"), true);
  if (!mean.has_value()) return "";
  const std::optional<double> low = Extreme(rows, absl::StrCat(base, "_mean_ci_low"), false);
  const std::optional<double> high = Extreme(rows, absl::StrCat(base, "_mean_ci_high"), true);
  std::string out = Fixed(*mean, 4);
  if (low.has_value() && high.has_value()) {
    absl::StrAppend(&out, " [", Fixed(*low, 4), ", ", Fixed(*high, 4), "]");
  }
  return out;
}

std::string Generator::WindowsFigure(const ConfigurationJudgement& c,
                                     const std::string& metric) const {
  std::string out = WindowsValue(c, metric);
  const std::optional<double> windows = Extreme(RowsOf(c), "windows", false);
  if (!out.empty() && windows.has_value()) {
    absl::StrAppend(&out, " over ", Short(*windows), " windows");
  }
  return out;
}

std::string Generator::RefinedBlock() const {
  std::string table, unchanged;  // the rows whose verdict changed come first
  int pairs = 0, changed = 0;
  for (const auto& [id, entry] : in_.paths.gates) {
    if (entry.refines.empty()) continue;
    const RegisteredSpec* spec = gates::LatestSpec(in_.specs, id);
    const RegisteredSpec* old_spec = gates::LatestSpec(in_.specs, entry.refines);
    if (spec == nullptr || old_spec == nullptr) continue;
    for (const ConfigurationJudgement& c : configs_) {
      if (c.gate_id != id || c.gate_version != spec->spec.version ||
          in_.paths.ControlOf(c.variant) != nullptr) {
        continue;
      }
      const std::vector<const RecordAt*> rows = RowsOf(c);
      const Condition* deciding = DecidingCondition(spec->spec, c);
      const std::string base = deciding == nullptr ? "" : BaseMetric(deciding->metric);
      const std::string now =
          absl::StrCat(Code(absl::StrCat(id, " v", c.gate_version)), ": **",
                       VerdictText(c.judgement.verdict), "** (", Extent(c, rows), ")");
      std::string figure = "—";
      if (deciding != nullptr) {
        const std::string value = WindowsValue(c, base);
        figure =
            absl::StrCat(base, ": over windows ", value, ", bar ", gates::OpSymbol(deciding->op),
                         " ", Short(deciding->value), " on the ", AggregateWords(deciding->metric));
      }
      bool any = false;
      for (const ConfigurationJudgement& old : configs_) {
        if (old.gate_id != entry.refines || old.gate_version != old_spec->spec.version ||
            old.variant != c.variant || old.target.model != c.target.model) {
          continue;
        }
        any = true;
        ++pairs;
        const bool flipped = old.judgement.verdict != c.judgement.verdict;
        changed += flipped;
        const std::vector<const RecordAt*> old_rows = RowsOf(old);
        std::string old_figure;
        for (const Decision& d : Decide(old_spec->spec, old_rows)) {
          if (d.condition->kind == Condition::Kind::kMetric && d.condition->metric == base &&
              d.worst.has_value()) {
            old_figure =
                absl::StrCat("; one prompt ", Fixed(*d.worst, 6), " (worst step, bar ",
                             gates::OpSymbol(d.condition->op), " ", Short(d.condition->value), ")");
          }
        }
        (flipped ? table : unchanged) += MdRow(
            {Label(c),
             absl::StrCat(Code(absl::StrCat(old.gate_id, " v", old.gate_version)), ": **",
                          VerdictText(old.judgement.verdict), "** (", Extent(old, old_rows), ")"),
             now,
             flipped ? absl::StrCat("**yes**: ", VerdictText(old.judgement.verdict), " to ",
                                    VerdictText(c.judgement.verdict))
                     : "no",
             absl::StrCat(figure, old_figure)});
      }
      if (!any) {
        unchanged += MdRow(
            {Label(c), absl::StrCat("no record of ", Code(entry.refines)), now, "new", figure});
      }
    }
  }
  table += unchanged;
  if (table.empty()) return "No records of a gate judged over windows yet.\n";
  return absl::StrCat(changed, " of ", pairs,
                      " one-prompt verdicts changed under the gate judged over windows (one pair "
                      "for each device the windows ran on).\n\n",
                      MdHeader({"configuration", "one-prompt gate (v1)", "over-windows gate (v2)",
                                "changed", "the figure"}),
                      table);
}

std::string Generator::RefinedSection(const PublishedSection& s, const std::string& refiner) const {
  // The study's columns that the refining gate's records aggregate (<key>_mean).
  std::vector<const PublishedColumn*> columns;
  std::vector<std::vector<const ConfigurationJudgement*>> matches(s.rows.size());
  for (size_t i = 0; i < s.rows.size(); ++i) matches[i] = Matching(s, i, refiner);
  for (const PublishedColumn& col : s.columns) {
    bool found = false;
    for (const auto& m : matches) {
      for (const ConfigurationJudgement* c : m) found = found || !WindowsValue(*c, col.key).empty();
    }
    if (found) columns.push_back(&col);
  }
  std::vector<std::string> header = {"study row", "our variant", "target"};
  // Our statistic is the mean, whatever the study's column holds (a maximum, one step).
  for (const PublishedColumn* col : columns) header.push_back(absl::StrCat(col->key, " mean"));
  header.push_back("extent");
  header.push_back("gate");
  std::string out =
      absl::StrCat("\nOurs over windows (", Code(refiner),
                   "; mean [95% bootstrap interval over windows]):\n\n", MdHeader(header));
  // Study rows matching the same variants share one row of ours (their labels joined).
  std::set<std::string> done;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    if (i >= s.matches.size() || !done.insert(s.matches[i]).second) continue;
    std::vector<std::string> labels;
    for (size_t j = i; j < s.rows.size(); ++j) {
      if (j < s.matches.size() && s.matches[j] == s.matches[i]) {
        labels.push_back(s.Format(s.columns.front(), s.rows[j].at(s.columns.front().key)));
      }
    }
    for (const ConfigurationJudgement* c : matches[i]) {
      std::vector<std::string> cells = {absl::StrJoin(labels, ", "), Code(c->variant),
                                        ShortTarget(c->target)};
      for (const PublishedColumn* col : columns) {
        const std::string figure = WindowsValue(*c, col->key);
        cells.push_back(figure.empty() ? "not recorded" : figure);
      }
      cells.push_back(Extent(*c, RowsOf(*c)));
      cells.push_back(VerdictText(c->judgement.verdict));
      out += MdRow(cells);
    }
  }
  return out;
}

}  // namespace kvgate::report::internal
