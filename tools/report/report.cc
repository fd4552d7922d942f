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
#include "absl/strings/match.h"
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
#include "tools/report/generator.h"
#include "tools/report/svg_plot.h"

// The summaries: one per hypothesis, each built around its gate.
namespace kvgate::report {
namespace internal {

const std::map<std::string, std::string>& SummaryOfGate() {
  static const auto* const kSummaries = new std::map<std::string, std::string>{
      {kSpeedCeilingGate, kSpeedCeilingDoc}, {kOracleGate, kOracleDoc}, {kHfkvGate, kHfkvDoc},
      {kEagerGate, kEagerDoc},               {kFusedGate, kFusedDoc}};
  return *kSummaries;
}

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
    absl::StrAppend(
        &out,
        Wrapped(absl::StrCat("- ", SpecLink(SummaryDir(), s.id, s.version), ", registered ",
                             s.created, ", sha256 `", registered.sha256, "`: ", s.summary),
                "  "),
        "\n", "  - target: ", s.target.model.value_or("any model"), ", ",
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
  std::string out =
      absl::StrCat(Wrapped(absl::StrCat("**", s->title,
                                        ".** Published figures, not measured by "
                                        "kvgate. Source: ",
                                        s->source, " A dash marks a figure not published.")),
                   "\n\n");
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
                "decode-logit MSE (max)", "required MSE", "KV bytes vs bf16", "gate",
                "other metrics", "provenance", "records"});
  for (const RunJudgement* run : runs) {
    const std::optional<double> kv = Extreme(run->rows, gates::kKvRatio, true);
    std::string kv_text = MaybeFixed(kv, 4);
    if (kv.has_value() && *kv > 0 && std::isfinite(*kv) && *kv != 1) {  // bytes_vs_bf16
      absl::StrAppend(&kv_text, *kv < 1 ? absl::StrCat(" (", Fixed(1.0 / *kv, 2), "x smaller)")
                                        : absl::StrCat(" (", Fixed(*kv, 2), "x larger)"));
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
      // The speedups the record carries are the columns before: not printed twice.
      std::set<std::string> shown = {gates::kPAttn, gates::kActiveHistoryFraction};
      for (const RecordAt* r : run->rows) {
        for (const auto& [name, value] : r->record.metrics) {
          if (absl::StartsWith(name, "projected_speedup")) shown.insert(name);
        }
      }
      row.push_back(OtherMetrics(run->rows, shown));
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

// ---- KV formats: quality against bytes ---------------------------------------------------------

std::map<std::string, std::string> Generator::HfkvBlocks() const {
  std::map<std::string, std::string> blocks;
  blocks["gate"] = GateBlock(kHfkvGate);
  blocks["published"] = PublishedBlock(kHfkvGate);
  blocks["plot"] = PlotLink("Decode-logit MSE against KV bytes for every KV format", SummaryDir(),
                            in_.out_dir, kKvQualityPlot);
  const std::vector<const RunJudgement*> runs = RunsOfGate(kHfkvGate);
  blocks["ours"] = runs.empty() ? NoRecords(kHfkvGate) : QualityTable(runs);
  blocks["k0_prep"] = K0PrepBeside(runs);
  return blocks;
}

// The synthetic K0-prep records (no gate) of each format, worst over their shapes, beside the
// verdicts the real-K/V quality gate gave the same format.
std::string Generator::K0PrepBeside(const std::vector<const RunJudgement*>& real) const {
  std::map<std::string, std::vector<const RecordAt*>> synthetic;  // by format
  for (const RecordAt& row : in_.rows) {
    if (row.record.experiment == kK0PrepExperiment && !gates::HasGate(row.record)) {
      synthetic[row.record.variant].push_back(&row);
    }
  }
  if (synthetic.empty()) {
    return absl::StrCat("No K0-prep records yet: no row of experiment `", kK0PrepExperiment,
                        "` in `", in_.records_dir, "/`.\n");
  }
  std::string out = MdHeader({"format", "synthetic shapes", "K rel MSE (worst)",
                              "V rel MSE (worst)", "q.k rel RMSE (worst)", "bytes vs bf16",
                              "real-K/V verdicts", "real decode-logit MSE (max)",
                              "K0-prep records"});
  // The real-K/V rows are linked from their own tables; linking them here too made cells of
  // over 200 characters for the formats that three experiments measured.
  // Errors span orders of magnitude between formats: three significant digits.
  const auto sig = [](std::optional<double> v) {
    return v.has_value() ? absl::StrFormat("%.3g", *v) : std::string("not recorded");
  };
  int both = 0, real_fail = 0;
  for (const auto& [format, rows] : synthetic) {
    std::set<std::string> shapes;
    for (const RecordAt* row : rows) shapes.insert(row->record.target.model);
    std::vector<std::string> verdicts;
    std::vector<const RecordAt*> real_rows;
    bool failed = false;
    for (const RunJudgement* run : real) {
      if (run->variant != format) continue;
      verdicts.push_back(absl::StrCat(VerdictText(run->judgement.verdict), " (",
                                      Code(run->experiment), ")"));
      failed = failed || run->judgement.verdict == Verdict::kFail;
      real_rows.insert(real_rows.end(), run->rows.begin(), run->rows.end());
    }
    if (!verdicts.empty()) ++both;
    if (failed) ++real_fail;
    out += MdRow({Code(format), absl::StrCat(shapes.size()),
                  sig(Extreme(rows, "k_rel_mse", true)), sig(Extreme(rows, "v_rel_mse", true)),
                  sig(Extreme(rows, "ip_rel_rmse", true)),
                  MaybeFixed(Extreme(rows, gates::kKvRatio, true), 4),
                  verdicts.empty() ? "no real-K/V run" : absl::StrJoin(verdicts, ", "),
                  real_rows.empty()
                      ? "-"
                      : MaybeFixed(Extreme(real_rows, gates::kDecodeLogitMse, true), 4),
                  RecordLinks(rows, SummaryDir())});
  }
  absl::StrAppend(&out, "\n", synthetic.size(), " formats have K0-prep records; ", both,
                  " of them also have real-K/V runs judged by `", kHfkvGate, "`, and ", real_fail,
                  " of those fail it on at least one run.\n");
  return out;
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
  blocks[kAppendix] = AppendixBlocks();
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
    if (absl::Status s = CheckNumbersInWords(t->second, blocks[name]); !s.ok()) return s;
    const bool top = name == kLedger || name == kAppendix;
    files[top ? absl::StrCat(name, ".md") : absl::StrCat("summaries/", name, ".md")] = *filled;
  }
  absl::StatusOr<std::string> speed_plot = SpeedCeilingPlot();
  if (!speed_plot.ok()) return speed_plot.status();
  files[kSpeedCeilingPlot] = *speed_plot;
  files[kOraclePlot] = OraclePlot();
  files[kKvQualityPlot] = KvQualityPlot();
  return files;
}


}  // namespace internal

std::vector<std::string> ReportNames() {
  return {internal::kLedger,   internal::kAppendix, internal::kSpeedCeilingDoc, internal::kOracleDoc,
          internal::kHfkvDoc, internal::kEagerDoc, internal::kFusedDoc};
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
  return internal::Generator(inputs).Generate();
}

}  // namespace kvgate::report