// The results ledger: its first page (a five-line verdict, the study's questions with ours, the
// study's tables beside ours with their setups) and its appendix (every configuration's verdict,
// the inputs); the answers themselves are in answers.cc. Paths come from the path table
// (gates/paths.json), never from a list in code.
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
#include "tools/report/ledger_text.h"

namespace kvgate::report::internal {

using gates::GateRole;
using gates::PathCell;
using gates::PathDecision;

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
    for (auto& values : columns) {
      std::vector<std::string> sorted(values[key].begin(), values[key].end());
      if (key == "context") {  // numerically: 8192 before 32768
        std::sort(sorted.begin(), sorted.end(), [](const std::string& a, const std::string& b) {
          return a.size() != b.size() ? a.size() < b.size() : a < b;
        });
      }
      cells.push_back(sorted.empty() ? "none" : absl::StrJoin(sorted, "; "));
    }
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
  std::string out =
      absl::StrCat("### ", s.title, " (", Code(s.gate_id), ")\n\n",
                   Wrapped(absl::StrCat("<a id=\"", s.gate_id, "\"></a>Source: ", s.source)),
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
    absl::StrAppend(&out, "### ", path.title, "\n\n");
    const std::vector<const gates::GateRoleEntry*> gates = in_.paths.GatesOf(path.id);
    if (gates.empty()) {
      absl::StrAppend(&out, "<a id=\"", path.id, "\"></a>No gate registered.\n\n");
      continue;
    }
    std::vector<std::string> names;
    for (const gates::GateRoleEntry* g : gates) {
      const bool recorded = std::any_of(configs_.begin(), configs_.end(),
                                        [&](const auto& c) { return c.gate_id == g->gate; });
      names.push_back(recorded ? absl::StrCat("[", Code(g->gate), "](#gate-", g->gate, ") (",
                                              gates::GateRoleName(g->role), ")")
                               : absl::StrCat(Code(g->gate), " (", gates::GateRoleName(g->role),
                                              ", no records yet)"));
    }
    absl::StrAppend(&out,
                    Wrapped(absl::StrCat("<a id=\"", path.id,
                                         "\"></a>Gates: ", absl::StrJoin(names, ", "), ".")),
                    "\n\n");
  }
  // Every gate version once, with its configurations (a gate of several paths is listed here
  // once, not under each path).
  if (!configs_.empty()) {
    absl::StrAppend(&out, "### Every gate version and its configurations\n");
  }
  std::string last_gate;
  int last_version = -1;
  for (const ConfigurationJudgement& c : configs_) {
    if (c.gate_id != last_gate || c.gate_version != last_version) {
      const gates::GateRoleEntry* e = in_.paths.Find(c.gate_id);
      absl::StrAppend(
          &out, "\n",
          c.gate_id != last_gate ? absl::StrCat("<a id=\"gate-", c.gate_id, "\"></a>\n\n") : "",
          "#### ", SpecLink(in_.out_dir, c.gate_id, c.gate_version), ": ",
          e == nullptr ? "no role" : gates::GateRoleName(e->role), ", paths ",
          e == nullptr ? "none" : absl::StrJoin(e->paths, ", "),
          e == nullptr || e->refines.empty()
              ? ""
              : absl::StrCat(", refines ", Code(e->refines), " (judged over windows)"),
          "\n\n", MdHeader({"target", "variant", "verdict", "deciding numbers", "records"}));
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
          {"reproduced", ReproducedBlock()},
          {"beside", BesideBlock()}};
}

std::map<std::string, std::string> Generator::AppendixBlocks() const {
  return {{"configurations", ConfigurationsBlock()}, {"inputs", InputsBlock()}};
}

}  // namespace kvgate::report::internal
