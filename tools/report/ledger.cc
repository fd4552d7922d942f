// The results ledger: its first page (a five-line verdict, the study's questions with ours, the
// study's tables beside ours with their setups) and its appendix (every configuration's verdict,
// the inputs). Paths come from the path table (gates/paths.json), never from a list in code.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gates/speed_ceiling/speed_ceiling.h"
#include "tools/report/generator.h"

namespace kvgate::report::internal {
namespace {

using gates::GateRole;
using gates::PathCell;
using gates::PathDecision;

using Row = std::map<std::string, PublishedCell>;

std::string DeviceText(const std::string& device) {
  return absl::StartsWith(device, "NVIDIA ") ? device.substr(7) : device;
}

// "Qwen2.5-7B-Instruct, 8192, bfloat16, H100 80GB HBM3".
std::string ShortTarget(const Target& t) {
  return absl::StrCat(t.model, ", ", t.context, ", ", t.dtype, ", ", DeviceText(t.device));
}

std::string JoinSet(const std::set<std::string>& values) {
  return values.empty() ? "none" : absl::StrJoin(values, "; ");
}

// The study row's figure for a condition: the column of the condition's metric, or the
// projected-speedup column at the condition's overhead.
std::optional<double> StudyValue(const PublishedSection& s, const Row& row, const Condition& c) {
  if (c.kind == Condition::Kind::kMetric) return PublishedSection::Number(row, c.metric);
  if (c.kind == Condition::Kind::kProjectedSpeedup) {
    for (const PublishedColumn& col : s.columns) {
      if (col.overhead.has_value() && std::fabs(*col.overhead - c.overhead) < 1e-12) {
        return PublishedSection::Number(row, col.key);
      }
    }
  }
  return std::nullopt;
}

const PublishedColumn* StudyColumn(const PublishedSection& s, const Condition& c) {
  for (const PublishedColumn& col : s.columns) {
    if (c.kind == Condition::Kind::kMetric && col.key == c.metric) return &col;
    if (c.kind == Condition::Kind::kProjectedSpeedup && col.overhead.has_value() &&
        std::fabs(*col.overhead - c.overhead) < 1e-12) {
      return &col;
    }
  }
  return nullptr;
}

std::string StudyVerdictOf(const PublishedSection& s, const Row& row) {
  auto it = row.find("verdict");
  if (it == row.end()) return "";
  const std::string* v = std::get_if<std::string>(&it->second);
  return v == nullptr ? "" : *v;
}

int Decimals(const PublishedColumn* col) {
  return col != nullptr && col->decimals.has_value() ? std::max(*col->decimals, 3) : 4;
}

}  // namespace

std::vector<const RecordAt*> Generator::RowsOf(const ConfigurationJudgement& c) const {
  std::vector<const RecordAt*> valid, all;
  for (const RunJudgement& run : runs_) {
    if (run.gate_id != c.gate_id || run.gate_version != c.gate_version || !(run.target == c.target) ||
        run.variant != c.variant) {
      continue;
    }
    all.insert(all.end(), run.rows.begin(), run.rows.end());
    if (run.judgement.verdict != Verdict::kInvalid) {
      valid.insert(valid.end(), run.rows.begin(), run.rows.end());
    }
  }
  return valid.empty() ? all : valid;
}

std::string Generator::SummaryLink(const std::string& gate_id, const std::string& from_dir) const {
  auto it = SummaryOfGate().find(gate_id);
  if (it == SummaryOfGate().end()) return "";
  return absl::StrCat("[", it->second, "](",
                      RelativePath(from_dir, absl::StrCat(SummaryDir(), "/", it->second, ".md")),
                      ")");
}

std::string Generator::PathLinks(const std::string& path_id, const std::string& from_dir) const {
  std::vector<std::string> links;
  for (const gates::GateRoleEntry* g : in_.paths.GatesOf(path_id)) {
    const std::string link = SummaryLink(g->gate, from_dir);
    if (!link.empty()) links.push_back(link);
  }
  links.push_back(absl::StrCat("[appendix](", RelativePath(from_dir, absl::StrCat(in_.out_dir, "/",
                                                                                  kAppendix, ".md")),
                               "#", path_id, ")"));
  return absl::StrJoin(links, ", ");
}

PathAnswer Generator::Answer(const PathDecision& d) const {
  const std::vector<const gates::GateRoleEntry*> gates = in_.paths.GatesOf(d.path->id);
  if (gates.empty()) return {"untested", "untested: no gate is registered for it yet", "—"};
  auto cells = [&](std::initializer_list<GateRole> roles) {
    std::vector<PathCell> out;
    for (GateRole r : roles) {
      auto it = d.by_role.find(r);
      if (it == d.by_role.end()) continue;
      for (const PathCell& c : it->second) {
        if (in_.paths.ControlOf(c.config->variant) == nullptr && !Refined(*c.config)) {
          out.push_back(c);
        }
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
        out.insert(absl::StrCat(c.config->target.model, " (", DeviceText(c.config->target.device),
                                ")"));
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
  return {"not open",
          "not open: quality and speed each pass, never for one variant on one target",
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
        !absl::StrContains(c.variant, s.matches[row]) || in_.paths.ControlOf(c.variant) != nullptr) {
      continue;
    }
    out.push_back(&c);
    on_model = on_model || c.target.model == model;
  }
  if (on_model) {
    out.erase(std::remove_if(out.begin(), out.end(),
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
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const std::vector<const ConfigurationJudgement*> ours = Matching(s, i, gate_id);
    if (ours.empty()) continue;
    const std::string study = StudyVerdictOf(s, s.rows[i]);
    int same = 0;
    for (const ConfigurationJudgement* c : ours) {
      ++t.total;
      t.pass += c->judgement.verdict == Verdict::kPass;
      same += VerdictText(c->judgement.verdict) == study;
      t.models.insert(c->target.model);
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
                          v1.total > 0 ? absl::StrCat("; one prompt (", Code(s.gate_id), "): ",
                                                      v1.pass, " of ", v1.total)
                                       : "");
  }
  a.agree = decided.differ == 0 && decided.mixed == 0                   ? "agree"
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
      const std::string row_label =
          std::holds_alternative<double>(cell)
              ? absl::StrCat(label.title, " = ", s.Format(label, cell))
              : s.Format(label, cell);
      a.deciding = absl::StrCat(row_label, ", ",
                                gates::QuantityName(cond), " (", gates::OpSymbol(cond.op), " ",
                                Short(cond.value), "): study ",
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

std::string Generator::VerdictBlock() const {
  std::vector<std::string> open, closed, not_open, untested, baseline;
  for (const PathDecision& d : decisions_) {
    const PathAnswer a = Answer(d);
    const std::string& title = d.path->title;
    if (a.verdict == "open") open.push_back(absl::StrCat(title, " (", a.words.substr(6), ")"));
    if (a.verdict == "closed") {
      const std::string on = a.words.substr(0, a.words.find(':'));
      closed.push_back(absl::StrCat(title, " (", absl::StripPrefix(on, "closed on "), ")"));
    }
    if (a.verdict == "not open") not_open.push_back(title);
    if (a.verdict == "untested") untested.push_back(title);
    if (a.verdict == "baseline") {
      baseline.push_back(absl::StrCat(title, ", ", a.words.substr(a.words.find("its bar"))));
    }
  }
  int agree = 0, answered = 0;
  std::vector<std::string> differ;
  for (const auto& [id, s] : in_.published.sections) {
    const SectionAnswer a = AnswerSection(s);
    if (a.agree == "no records") continue;
    ++answered;
    if (a.agree == "agree") {
      ++agree;
    } else {
      differ.push_back(absl::StrCat(s.title, " (", a.agree, ")"));
    }
  }
  auto list = [](const std::vector<std::string>& v) {
    return v.empty() ? std::string("none") : absl::StrJoin(v, "; ");
  };
  return absl::StrCat(
      "- **Open paths: ", open.empty() ? "none" : list(open), "** (of ", decisions_.size(),
      " in `gates/paths.json`).\n", "- Closed, a gate fails wherever it was measured: ",
      list(closed), ".\n", "- Not open, quality and speed never pass for one variant on one target: ",
      list(not_open), ".\n", "- Untested: ", list(untested), ". ",
      baseline.empty() ? "" : absl::StrCat("Baselines: ", list(baseline), "."), "\n",
      "- Against the study's tables: agree on ", agree, " of ", answered,
      differ.empty() ? "" : absl::StrCat("; not on ", list(differ)), ".\n");
}

std::string Generator::QuestionsBlock() const {
  std::string out = MdHeader(
      {"question", "study's verdict", "kvgate's verdict", "agree or differ", "deciding figure",
       "link"});
  std::set<std::string> shown;
  for (const PathDecision& d : decisions_) {
    const PathAnswer a = Answer(d);
    std::vector<const PublishedSection*> sections;
    for (const auto& [id, s] : in_.published.sections) {
      if (s.path == d.path->id) sections.push_back(&s);
    }
    std::string study = "not quoted";
    std::string agree = "no study verdict";
    if (!sections.empty()) {
      bool closed = false;
      for (const PublishedSection* s : sections) {
        bool any_pass = false;
        for (const Row& row : s->rows) any_pass = any_pass || StudyVerdictOf(*s, row) == "pass";
        closed = closed || !any_pass;
      }
      study = closed ? "closed" : "open";
      if (a.verdict == "untested" || a.verdict == "baseline") {
        agree = "not measured";
      } else {
        agree = (closed != (a.verdict == "open")) ? "agree" : "differ";
      }
    }
    out += MdRow({absl::StrCat("**", d.path->title, "**: ", d.path->question), study, a.words,
                  agree, a.deciding, PathLinks(d.path->id, in_.out_dir)});
    for (const PublishedSection* s : sections) {
      const SectionAnswer sa = AnswerSection(*s);
      shown.insert(s->gate_id);
      out += MdRow({absl::StrCat("↳ the study's table: [", s->title, "](#", s->gate_id, ")"),
                    s->verdict.empty() ? "—" : s->verdict, sa.ours, sa.agree, sa.deciding,
                    SummaryLink(s->gate_id, in_.out_dir)});
    }
  }
  for (const auto& [id, s] : in_.published.sections) {
    if (shown.count(id) > 0) continue;
    const SectionAnswer sa = AnswerSection(s);
    out += MdRow({absl::StrCat("the study's table: [", s.title, "](#", id, ")"),
                  s.verdict.empty() ? "—" : s.verdict, sa.ours, sa.agree, sa.deciding,
                  SummaryLink(id, in_.out_dir)});
  }
  if (!in_.published.final_verdict.empty()) {
    absl::StrAppend(&out, "\nThe study's conclusion (",
                    absl::StripSuffix(in_.published.final_verdict_source, "."), "):\n\n> ",
                    in_.published.final_verdict, "\n");
  }
  return out;
}

std::string Generator::SetupTable(const PublishedSection& s) const {
  const std::string refiner = RefinerWithRecords(s);
  std::vector<std::string> gates_shown = {s.gate_id};
  if (!refiner.empty()) gates_shown.push_back(refiner);
  std::vector<std::map<std::string, std::set<std::string>>> columns;
  for (const std::string& gate : gates_shown) {
    std::vector<const ConfigurationJudgement*> ours;
    for (size_t i = 0; i < s.rows.size(); ++i) {
      for (const ConfigurationJudgement* c : Matching(s, i, gate)) {
        if (std::find(ours.begin(), ours.end(), c) == ours.end()) ours.push_back(c);
      }
    }
    columns.push_back(SetupValues(ours));
  }
  std::vector<std::string> header = {"setup", "study", "kvgate"};
  if (!refiner.empty()) {
    header = {"setup", "study", absl::StrCat("kvgate, one prompt (", Code(s.gate_id), ")"),
              absl::StrCat("kvgate, over windows (", Code(refiner), ")")};
  }
  std::string out = MdHeader(header);
  for (const auto& [key, study] : s.setup) {
    std::vector<std::string> cells = {key, study.empty() ? "not given" : study};
    for (auto& values : columns) cells.push_back(JoinSet(values[key]));
    out += MdRow(cells);
  }
  return out;
}

std::map<std::string, std::set<std::string>> Generator::SetupValues(
    const std::vector<const ConfigurationJudgement*>& ours) const {
  std::map<std::string, std::set<std::string>> values;
  for (const ConfigurationJudgement* c : ours) {
    values["model"].insert(c->target.model);
    values["weights"].insert(absl::StartsWith(c->target.weights_sha256, "random")
                                 ? absl::StrCat("random (", c->target.weights_sha256.substr(7), ")")
                                 : absl::StrCat("real, sha256 ", WeightsText(c->target.weights_sha256)));
    values["context"].insert(absl::StrCat(c->target.context));
    values["dtype"].insert(c->target.dtype);
    values["card"].insert(DeviceText(c->target.device));
    values["repeats"].insert(absl::StrCat(c->runs, c->runs == 1 ? " run" : " runs"));
    for (const RunJudgement& run : runs_) {
      if (run.gate_id != c->gate_id || run.gate_version != c->gate_version ||
          !(run.target == c->target) || run.variant != c->variant) {
        continue;
      }
      const gates::Provenance& p = run.provenance;
      values["software"].insert(absl::StrCat("torch ", p.torch_version,
                                             p.cuda_version.empty() ? "" : ", CUDA " + p.cuda_version,
                                             ", host ", p.host));
      values["commit"].insert(p.git_commit.substr(0, 7));
      const std::optional<double> windows = Extreme(run.rows, "windows", false);
      const std::optional<double> positions = Extreme(run.rows, "positions_per_window", false);
      if (windows.has_value() && positions.has_value()) {
        values["prompts"].insert(absl::StrCat(Short(*windows), " windows of distinct texts"));
        values["steps"].insert(
            absl::StrCat(Short(*positions), " teacher-forced positions a window"));
        continue;
      }
      values["prompts"].insert("not recorded");
      values["steps"].insert(
          run.rows.front()->record.step.has_value()
              ? absl::StrCat(run.rows.size(), " decode step", run.rows.size() == 1 ? "" : "s")
              : "one measurement");
    }
  }
  return values;
}

std::string Generator::BesideSection(const PublishedSection& s) const {
  std::string out = absl::StrCat("### ", s.title, " (", Code(s.gate_id), ")\n\n",
                                 Wrapped(absl::StrCat("<a id=\"", s.gate_id, "\"></a>Source: ",
                                                      s.source)),
                                 "\n\n", SetupTable(s), "\n");
  // The study's table at the precision it was published.
  std::vector<std::string> header;
  for (const PublishedColumn& c : s.columns) header.push_back(c.title);
  absl::StrAppend(&out, "The study's figures (a dash: not published):\n\n", MdHeader(header));
  for (const Row& row : s.rows) {
    std::vector<std::string> cells;
    for (const PublishedColumn& c : s.columns) cells.push_back(s.Format(c, row.at(c.key)));
    absl::StrAppend(&out, MdRow(cells));
  }
  if (!s.inputs.empty()) {
    std::vector<std::string> inputs;
    for (const auto& [name, cell] : s.inputs) {
      inputs.push_back(absl::StrCat(name, " = ", s.Format(PublishedColumn{}, cell)));
    }
    absl::StrAppend(&out, "\nGiven with them: ", absl::StrJoin(inputs, ", "), ".\n");
  }
  // Ours, one row per matching configuration, under the same columns.
  const GateSpec* spec = nullptr;
  if (const RegisteredSpec* latest = gates::LatestSpec(in_.specs, s.gate_id)) spec = &latest->spec;
  std::vector<const Condition*> conditions;
  if (spec != nullptr) {
    for (const Condition& c : spec->thresholds) {
      if (StudyColumn(s, c) != nullptr) conditions.push_back(&c);
    }
  }
  std::vector<std::string> ours_header = {"study row", "our variant", "target"};
  for (const Condition* c : conditions) ours_header.push_back(StudyColumn(s, *c)->title);
  ours_header.push_back("gate");
  std::string ours;
  std::set<std::string> done;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    if (i >= s.matches.size() || s.matches[i].empty() || !done.insert(s.matches[i]).second) continue;
    std::vector<std::string> labels;
    for (size_t j = i; j < s.rows.size(); ++j) {
      if (s.matches[j] == s.matches[i]) {
        labels.push_back(s.Format(s.columns.front(), s.rows[j].at(s.columns.front().key)));
      }
    }
    for (const ConfigurationJudgement* c : Matching(s, i)) {
      std::vector<std::string> cells = {absl::StrJoin(labels, ", "), Code(c->variant),
                                        ShortTarget(c->target)};
      for (const Condition* cond : conditions) {
        GateSpec one;
        one.thresholds = {*cond};
        const std::vector<Decision> d = Decide(one, RowsOf(*c));
        const PublishedColumn* col = StudyColumn(s, *cond);
        std::string v = "not recorded";
        if (!d.empty() && d[0].worst.has_value()) {
          v = Fixed(*d[0].worst, Decimals(col));
          if (cond->op == Op::kEqual && (*d[0].worst == 0 || *d[0].worst == 1)) {
            v = *d[0].worst == 1 ? "yes" : "no";
          }
          if (!col->suffix.empty()) absl::StrAppend(&v, col->suffix);
        }
        cells.push_back(v);
      }
      cells.push_back(VerdictText(c->judgement.verdict));
      ours += MdRow(cells);
    }
  }
  const std::string refiner = RefinerWithRecords(s);
  absl::StrAppend(&out, "\nOurs", refiner.empty() ? "" : " on one prompt", " (", Code(s.gate_id),
                  "; the worst value over each configuration's rows):\n\n",
                  ours.empty() ? "No records of what the study measured.\n"
                               : absl::StrCat(MdHeader(ours_header), ours));
  if (!refiner.empty()) absl::StrAppend(&out, RefinedSection(s, refiner));
  return out;
}

std::string Generator::BesideBlock() const {
  std::string out;
  for (const auto& [id, s] : in_.published.sections) {
    if (!out.empty()) out += "\n";
    out += BesideSection(s);
  }
  return out.empty() ? "No published figures.\n" : out;
}

std::string Generator::ConfigurationsBlock() const {
  std::string out;
  for (const gates::StudyPath& path : in_.paths.paths) {
    absl::StrAppend(&out, "### ", path.title, "\n\n<a id=\"", path.id, "\"></a>");
    const std::vector<const gates::GateRoleEntry*> gates = in_.paths.GatesOf(path.id);
    if (gates.empty()) {
      absl::StrAppend(&out, "No gate registered.\n\n");
      continue;
    }
    std::vector<std::string> names;
    for (const gates::GateRoleEntry* g : gates) {
      names.push_back(absl::StrCat(Code(g->gate), " (", gates::GateRoleName(g->role), ")"));
    }
    absl::StrAppend(&out, "Gates: ", absl::StrJoin(names, ", "), ".\n\n");
  }
  // Every gate version once, with its configurations (a gate of several paths is listed here
  // once, not under each path).
  std::string last_gate;
  int last_version = -1;
  for (const ConfigurationJudgement& c : configs_) {
    if (c.gate_id != last_gate || c.gate_version != last_version) {
      const gates::GateRoleEntry* e = in_.paths.Find(c.gate_id);
      absl::StrAppend(&out, "\n#### ", SpecLink(in_.out_dir, c.gate_id, c.gate_version), ": ",
                      e == nullptr ? "no role" : gates::GateRoleName(e->role), ", paths ",
                      e == nullptr ? "none" : absl::StrJoin(e->paths, ", "),
                      e == nullptr || e->refines.empty()
                          ? ""
                          : absl::StrCat(", refines ", Code(e->refines), " (judged over windows)"),
                      "\n\n",
                      MdHeader({"target", "variant", "verdict", "deciding numbers", "records"}));
      last_gate = c.gate_id;
      last_version = c.gate_version;
    }
    const std::vector<const RecordAt*> rows = RowsOf(c);
    std::vector<const RecordAt*> every;
    for (const RunJudgement& run : runs_) {
      if (run.gate_id == c.gate_id && run.gate_version == c.gate_version && run.target == c.target &&
          run.variant == c.variant) {
        every.insert(every.end(), run.rows.begin(), run.rows.end());
      }
    }
    std::string variant = Code(c.variant);
    if (in_.paths.ControlOf(c.variant) != nullptr) absl::StrAppend(&variant, " (control)");
    std::string verdict = VerdictText(c.judgement.verdict);
    if (c.runs > 1) absl::StrAppend(&verdict, " (", c.runs, " runs, ", c.valid_runs, " valid)");
    // At most two conditions a cell; the summaries list every one.
    std::vector<std::string> numbers = absl::StrSplit(
        DecidingNumbers(SpecOf(c.gate_id, c.gate_version), c.judgement, rows), "; ");
    if (numbers.size() > 2) {
      const size_t more = numbers.size() - 2;
      numbers.resize(2);
      numbers.push_back(absl::StrCat(more, " more"));
    }
    out += MdRow({ShortTarget(c.target), variant, verdict, absl::StrJoin(numbers, "; "),
                  RecordLinks(every, in_.out_dir)});
  }
  if (in_.paths.controls.size() > 0) {
    absl::StrAppend(&out, "\nControls (never open a path):\n\n");
    for (const gates::ControlVariant& c : in_.paths.controls) {
      absl::StrAppend(&out, "- ", Code(absl::StrCat(c.variant_prefix, "...")), ": ", c.why, ".\n");
    }
  }
  return out;
}

std::string Generator::InputsBlock() const {
  std::map<std::string, int> per_file;
  for (const RecordAt& row : in_.rows) ++per_file[row.file];
  std::string out = absl::StrCat(in_.rows.size(), " records in ", per_file.size(), " files of `",
                                 in_.records_dir, "/`, judged against ", in_.specs.size(),
                                 " gate specs of `", in_.specs_dir, "/`; paths and roles from `",
                                 in_.paths.file, "`; the study's figures from `",
                                 in_.published.file, "`.\n");
  if (!per_file.empty()) out += "\n";
  for (const auto& [file, count] : per_file) {
    absl::StrAppend(&out, "- [", file, "](", RelativePath(in_.out_dir, file), "): ", count,
                    count == 1 ? " row\n" : " rows\n");
  }
  return out;
}

std::map<std::string, std::string> Generator::LedgerBlocks() const {
  return {{"verdict", VerdictBlock()},
          {"questions", QuestionsBlock()},
          {"refined", RefinedBlock()},
          {"beside", BesideBlock()}};
}

std::map<std::string, std::string> Generator::AppendixBlocks() const {
  return {{"configurations", ConfigurationsBlock()}, {"inputs", InputsBlock()}};
}

}  // namespace kvgate::report::internal
