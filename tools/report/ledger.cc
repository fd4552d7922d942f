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
  for (const PathCell& c : quality) {
    if (timed.count(c.config->variant) > 0) relevant.push_back(c);
  }
  const bool formats_timed = !relevant.empty();
  if (!formats_timed) relevant = quality;
  if (!speed.empty() && passing(speed) == 0) {
    return {"closed",
            absl::StrCat("closed on speed: none of its ", speed.size(),
                         " latency configurations passes"),
            nearest(speed)};
  }
  if (!relevant.empty() && passing(relevant) == 0) {
    return {"closed",
            absl::StrCat("closed on quality: none of its ", relevant.size(), " quality configurations",
                         formats_timed ? " of the formats it timed" : "", " passes"),
            nearest(relevant)};
  }
  if (speed.empty()) return {"untested", "not open: no latency or capacity records yet", "—"};
  if (quality.empty()) return {"untested", "not open: no quality records yet", "—"};
  return {"not open",
          "not open: quality and speed each pass, never for one variant on one target",
          absl::StrCat("quality passes on ", where(quality), "; speed on ", where(speed))};
}

std::vector<const ConfigurationJudgement*> Generator::Matching(const PublishedSection& s,
                                                               size_t row) const {
  std::vector<const ConfigurationJudgement*> out;
  const RegisteredSpec* latest = gates::LatestSpec(in_.specs, s.gate_id);
  if (latest == nullptr || row >= s.matches.size() || s.matches[row].empty()) return out;
  std::string model;
  for (const auto& [key, value] : s.setup) {
    if (key == "model") model = value;
  }
  bool on_model = false;
  for (const ConfigurationJudgement& c : configs_) {
    if (c.gate_id != s.gate_id || c.gate_version != latest->spec.version ||
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

SectionAnswer Generator::AnswerSection(const PublishedSection& s) const {
  SectionAnswer a;
  const GateSpec* spec = nullptr;
  if (const RegisteredSpec* latest = gates::LatestSpec(in_.specs, s.gate_id)) spec = &latest->spec;
  int agree = 0, differ = 0, mixed = 0, pass = 0, total = 0;
  std::set<std::string> models;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const std::vector<const ConfigurationJudgement*> ours = Matching(s, i);
    if (ours.empty()) continue;
    const std::string study = StudyVerdictOf(s, s.rows[i]);
    int same = 0;
    for (const ConfigurationJudgement* c : ours) {
      ++total;
      pass += c->judgement.verdict == Verdict::kPass;
      same += VerdictText(c->judgement.verdict) == study;
      models.insert(c->target.model);
    }
    if (same == static_cast<int>(ours.size())) {
      ++agree;
    } else if (same == 0) {
      ++differ;
    } else {
      ++mixed;
    }
    if (!a.deciding.empty() || spec == nullptr) continue;
    std::vector<const RecordAt*> rows;
    for (const ConfigurationJudgement* c : ours) {
      for (const RecordAt* r : RowsOf(*c)) rows.push_back(r);
    }
    for (const Decision& d : Decide(*spec, rows)) {
      const std::optional<double> theirs = StudyValue(s, s.rows[i], *d.condition);
      if (!theirs.has_value() || !d.worst.has_value()) continue;
      const int decimals = Decimals(StudyColumn(s, *d.condition));
      const PublishedColumn& label = s.columns.front();
      a.deciding = absl::StrCat(s.Format(label, s.rows[i].at(label.key)), ", ",
                                gates::QuantityName(*d.condition), " (",
                                gates::OpSymbol(d.condition->op), " ", Short(d.condition->value),
                                "): study ", FormatPublishedNumber(*theirs, StudyColumn(s, *d.condition)->decimals),
                                ", ours ", ours.size() > 1 ? "worst " : "", Fixed(*d.worst, decimals));
      break;
    }
  }
  if (total == 0) {
    return {"no records of what the study measured", "no records", "—"};
  }
  a.ours = absl::StrCat("pass on ", pass, " of ", total, " matching configurations (",
                        absl::StrJoin(models, ", "), ")");
  a.agree = differ == 0 && mixed == 0 ? "agree" : agree == 0 && mixed == 0 ? "differ" : "mixed";
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
      closed.push_back(absl::StrCat(title, absl::StrContains(a.words, "speed") ? " (speed)"
                                                                                : " (quality)"));
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
  std::vector<const ConfigurationJudgement*> ours;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    for (const ConfigurationJudgement* c : Matching(s, i)) {
      if (std::find(ours.begin(), ours.end(), c) == ours.end()) ours.push_back(c);
    }
  }
  std::map<std::string, std::set<std::string>> values;
  for (const ConfigurationJudgement* c : ours) {
    values["model"].insert(c->target.model);
    values["weights"].insert(absl::StartsWith(c->target.weights_sha256, "random")
                                 ? absl::StrCat("random (", c->target.weights_sha256.substr(7), ")")
                                 : absl::StrCat("real, sha256 ", WeightsText(c->target.weights_sha256)));
    values["context"].insert(absl::StrCat(c->target.context));
    values["dtype"].insert(c->target.dtype);
    values["card"].insert(DeviceText(c->target.device));
    values["prompts"].insert("not recorded");
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
      values["steps"].insert(
          run.rows.front()->record.step.has_value()
              ? absl::StrCat(run.rows.size(), " decode step", run.rows.size() == 1 ? "" : "s")
              : "one measurement");
    }
  }
  std::string out = MdHeader({"setup", "study", "kvgate"});
  for (const auto& [key, study] : s.setup) {
    out += MdRow({key, study.empty() ? "not given" : study, JoinSet(values[key])});
  }
  return out;
}

std::string Generator::BesideSection(const PublishedSection& s) const {
  std::string out = absl::StrCat("### ", s.title, " (", Code(s.gate_id), ")\n\n<a id=\"", s.gate_id,
                                 "\"></a>Source: ", s.source, "\n\n", SetupTable(s), "\n");
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
  absl::StrAppend(&out, "\nOurs (the worst value over each configuration's rows):\n\n",
                  ours.empty() ? "No records of what the study measured.\n"
                               : absl::StrCat(MdHeader(ours_header), ours));
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
                      e == nullptr ? "none" : absl::StrJoin(e->paths, ", "), "\n\n",
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
  return {{"verdict", VerdictBlock()}, {"questions", QuestionsBlock()}, {"beside", BesideBlock()}};
}

std::map<std::string, std::string> Generator::AppendixBlocks() const {
  return {{"configurations", ConfigurationsBlock()}, {"inputs", InputsBlock()}};
}

}  // namespace kvgate::report::internal
