// The answers of the ledger's first page: a path's verdict from the path table's decision, and
// our verdict on each table of the study (by the gate refining the table's gate where it has
// records), with the one figure that decides.
#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/report/generator.h"
#include "tools/report/ledger_text.h"

namespace kvgate::report::internal {

using gates::GateRole;
using gates::PathCell;
using gates::PathDecision;

PathAnswer Generator::Answer(const PathDecision& d) const {
  const std::vector<const gates::GateRoleEntry*> gates = in_.paths.GatesOf(d.path->id);
  if (gates.empty()) return {"untested", "untested: no gate is registered for it yet", "—"};
  auto cells = [&](std::initializer_list<GateRole> roles) {
    std::vector<PathCell> out;
    for (GateRole r : roles) {
      auto it = d.by_role.find(r);
      if (it == d.by_role.end()) continue;
      for (const PathCell& c : it->second) {
        if (in_.paths.ControlOf(c.config->variant) == nullptr) out.push_back(c);
      }
    }
    return out;
  };
  auto passing = [](const std::vector<PathCell>& v) {
    int n = 0;
    for (const PathCell& c : v) n += c.config->judgement.verdict == Verdict::kPass;
    return n;
  };
  // The cell closest to passing its first failing threshold, in words.
  auto nearest = [&](const std::vector<PathCell>& v) -> std::string {
    std::string best;
    double best_gap = 0;
    for (const PathCell& c : v) {
      const GateSpec* spec = SpecOf(c.config->gate_id, c.config->gate_version);
      if (spec == nullptr) continue;
      for (const Decision& dec : Decide(*spec, RowsOf(*c.config))) {
        if (dec.failing == 0 || !dec.worst.has_value()) continue;
        const double v0 = dec.condition->value;
        const double gap = std::fabs(*dec.worst - v0) / std::max(std::fabs(v0), 1e-12);
        if (best.empty() || gap < best_gap) {
          best_gap = gap;
          best = absl::StrCat("closest: ", Code(c.config->variant), " on ",
                              ShortTarget(c.config->target), ": ", DecisionText(dec));
        }
        break;
      }
    }
    return best.empty() ? "—" : best;
  };
  auto where = [](const std::vector<PathCell>& v) {
    std::set<std::string> out;
    for (const PathCell& c : v) {
      if (c.config->judgement.verdict == Verdict::kPass) {
        out.insert(
            absl::StrCat(c.config->target.model, " (", DeviceText(c.config->target.device), ")"));
      }
    }
    return JoinSet(out);
  };

  const std::vector<PathCell> baseline = cells({GateRole::kBaseline});
  const std::vector<PathCell> quality = cells({GateRole::kQuality});
  const std::vector<PathCell> speed = cells({GateRole::kLatency, GateRole::kCapacity});
  if (quality.empty() && speed.empty() && !baseline.empty()) {
    return {"baseline",
            absl::StrCat("a baseline, never a path: its bar is met on ", passing(baseline), " of ",
                         baseline.size(), " configurations"),
            nearest(baseline)};
  }
  if (quality.empty() && speed.empty()) return {"untested", "untested: no records yet", "—"};
  if (d.open()) {
    const auto& [q, s] = d.openers.front();
    return {"open",
            absl::StrCat("open: ", Code(q.config->variant), " on ", ShortTarget(q.config->target),
                         " passes ", Code(q.gate->gate), " and ", Code(s.gate->gate)),
            absl::StrCat("passing quality and latency pairs: ", d.openers.size())};
  }
  std::set<std::string> timed;
  for (const PathCell& c : speed) timed.insert(c.config->variant);
  std::vector<PathCell> relevant;
  // A quality variant counts when it was timed, alone or as the prefix of a timed variant
  // ("symmetric_int4:block=32" of "symmetric_int4:block=32:fused:cuda_graph_step:...").
  for (const PathCell& c : quality) {
    auto after = timed.lower_bound(c.config->variant);
    if (after != timed.end() && (*after == c.config->variant ||
                                 absl::StartsWith(*after, absl::StrCat(c.config->variant, ":")))) {
      relevant.push_back(c);
    }
  }
  const bool formats_timed = !relevant.empty();
  if (!formats_timed) relevant = quality;
  const bool speed_closed = !speed.empty() && passing(speed) == 0;
  const bool quality_closed = !relevant.empty() && passing(relevant) == 0;
  const std::string quality_words =
      absl::StrCat("none of its ", relevant.size(), " quality configurations",
                   formats_timed ? " of the formats it timed" : "", " passes");
  if (speed_closed) {
    return {"closed",
            absl::StrCat("closed on speed", quality_closed ? " and quality" : "", ": none of its ",
                         speed.size(), " latency configurations passes",
                         quality_closed ? absl::StrCat("; ", quality_words) : ""),
            nearest(speed)};
  }
  if (quality_closed) {
    return {"closed", absl::StrCat("closed on quality: ", quality_words), nearest(relevant)};
  }
  if (speed.empty()) return {"untested", "not open: no latency or capacity records yet", "—"};
  if (quality.empty()) return {"untested", "not open: no quality records yet", "—"};
  return {"not open", "not open: quality and speed each pass, never for one variant on one target",
          absl::StrCat("quality passes on ", where(quality), "; speed on ", where(speed))};
}

std::vector<const ConfigurationJudgement*> Generator::Matching(const PublishedSection& s,
                                                               size_t row,
                                                               const std::string& gate_id) const {
  std::vector<const ConfigurationJudgement*> out;
  const std::string& gate = gate_id.empty() ? s.gate_id : gate_id;
  const RegisteredSpec* latest = gates::LatestSpec(in_.specs, gate);
  if (latest == nullptr || row >= s.matches.size() || s.matches[row].empty()) return out;
  std::string model;
  for (const auto& [key, value] : s.setup) {
    if (key == "model") model = value;
  }
  bool on_model = false;
  for (const ConfigurationJudgement& c : configs_) {
    if (c.gate_id != gate || c.gate_version != latest->spec.version ||
        !absl::StrContains(c.variant, s.matches[row]) ||
        in_.paths.ControlOf(c.variant) != nullptr) {
      continue;
    }
    out.push_back(&c);
    on_model = on_model || c.target.model == model;
  }
  if (on_model) {
    out.erase(
        std::remove_if(out.begin(), out.end(),
                       [&](const ConfigurationJudgement* c) { return c->target.model != model; }),
        out.end());
  }
  return out;
}

std::string Generator::RefinerWithRecords(const PublishedSection& s) const {
  for (const gates::GateRoleEntry* g : in_.paths.RefinersOf(s.gate_id)) {
    for (size_t i = 0; i < s.rows.size(); ++i) {
      if (!Matching(s, i, g->gate).empty()) return g->gate;
    }
  }
  return "";
}

Generator::SectionTally Generator::TallySection(const PublishedSection& s,
                                                const std::string& gate_id) const {
  SectionTally t;
  std::set<const ConfigurationJudgement*> counted;  // several study rows may match one of ours
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const std::vector<const ConfigurationJudgement*> ours = Matching(s, i, gate_id);
    if (ours.empty()) continue;
    const std::string study = StudyVerdictOf(s, s.rows[i]);
    int same = 0;
    for (const ConfigurationJudgement* c : ours) {
      same += VerdictText(c->judgement.verdict) == study;
      t.models.insert(c->target.model);
      if (!counted.insert(c).second) continue;
      ++t.total;
      t.pass += c->judgement.verdict == Verdict::kPass;
    }
    if (same == static_cast<int>(ours.size())) {
      ++t.agree;
    } else if (same == 0) {
      ++t.differ;
    } else {
      ++t.mixed;
    }
  }
  return t;
}

SectionAnswer Generator::AnswerSection(const PublishedSection& s) const {
  SectionAnswer a;
  const GateSpec* spec = nullptr;
  if (const RegisteredSpec* latest = gates::LatestSpec(in_.specs, s.gate_id)) spec = &latest->spec;
  const std::string refiner = RefinerWithRecords(s);
  const SectionTally v1 = TallySection(s, s.gate_id);
  const SectionTally decided = refiner.empty() ? v1 : TallySection(s, refiner);
  if (decided.total == 0) return {"no records of what the study measured", "no records", "—"};
  auto pass_text = [](const SectionTally& t) {
    return absl::StrCat("pass on ", t.pass, " of ", t.total, " matching configurations (",
                        absl::StrJoin(t.models, ", "), ")");
  };
  a.ours = pass_text(decided);
  if (!refiner.empty()) {
    a.ours = absl::StrCat("over windows (", Code(refiner), "): ", pass_text(decided),
                          v1.total > 0 ? absl::StrCat("; one prompt (", Code(s.gate_id),
                                                      "): ", v1.pass, " of ", v1.total)
                                       : "");
  }
  a.agree = decided.differ == 0 && decided.mixed == 0  ? "agree"
            : decided.agree == 0 && decided.mixed == 0 ? "differ"
                                                       : "mixed";
  // The deciding figure: the first study row with ours, on the first threshold the study gives a
  // figure for; over windows (mean and 95% interval) where a refining gate has records.
  for (size_t i = 0; i < s.rows.size() && a.deciding.empty() && spec != nullptr; ++i) {
    const std::vector<const ConfigurationJudgement*> ours = Matching(s, i, s.gate_id);
    const std::vector<const ConfigurationJudgement*> refined =
        refiner.empty() ? std::vector<const ConfigurationJudgement*>() : Matching(s, i, refiner);
    if (ours.empty() && refined.empty()) continue;
    std::vector<const RecordAt*> rows;
    for (const ConfigurationJudgement* c : ours) {
      for (const RecordAt* r : RowsOf(*c)) rows.push_back(r);
    }
    const PublishedColumn& label = s.columns.front();
    for (const Condition& cond : spec->thresholds) {
      const std::optional<double> theirs = StudyValue(s, s.rows[i], cond);
      const PublishedColumn* col = StudyColumn(s, cond);
      if (!theirs.has_value() || col == nullptr) continue;
      GateSpec one;
      one.thresholds = {cond};
      const std::vector<Decision> d = Decide(one, rows);
      std::string v1_text;
      if (!d.empty() && d[0].worst.has_value()) {
        v1_text = absl::StrCat(ours.size() > 1 ? "worst " : "", Fixed(*d[0].worst, Decimals(col)));
      }
      std::string v2_text;
      if (!refined.empty()) v2_text = WindowsFigure(*refined.front(), cond.metric);
      if (v1_text.empty() && v2_text.empty()) continue;
      // A numeric row label says what it is: "active fraction f = 0.337", not "0.337".
      const PublishedCell& cell = s.rows[i].at(label.key);
      const std::string row_label = std::holds_alternative<double>(cell)
                                        ? absl::StrCat(label.title, " = ", s.Format(label, cell))
                                        : s.Format(label, cell);
      a.deciding = absl::StrCat(row_label, ", ", gates::QuantityName(cond), " (",
                                gates::OpSymbol(cond.op), " ", Short(cond.value), "): study ",
                                FormatPublishedNumber(*theirs, col->decimals));
      if (!v2_text.empty()) {
        absl::StrAppend(&a.deciding, "; ours over windows ", v2_text,
                        v1_text.empty() ? "" : absl::StrCat("; one prompt ", v1_text));
      } else {
        absl::StrAppend(&a.deciding, ", ours ", v1_text);
      }
      break;
    }
  }
  if (a.deciding.empty()) a.deciding = "—";
  return a;
}

}  // namespace kvgate::report::internal
