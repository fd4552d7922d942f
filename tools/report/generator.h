// Internal to //tools/report: the generator behind GenerateReports (report.h), one object over
// the judged inputs, its methods split by job: report.cc the summaries, ledger.cc the ledger and
// its appendix, answers.cc the first page's answers, refined.cc gates judged over windows beside
// the gates they refine, reproduced.cc one configuration on two devices, plots.cc the SVG plots.
#ifndef KVGATE_TOOLS_REPORT_GENERATOR_H_
#define KVGATE_TOOLS_REPORT_GENERATOR_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gates/path_table.h"
#include "gates/spec_registry.h"
#include "gates/verdict.h"
#include "tools/report/report.h"
#include "tools/report/report_text.h"

namespace kvgate::report::internal {

// The reports.
constexpr char kLedger[] = "results-ledger";
constexpr char kAppendix[] = "ledger-appendix";
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

// The synthetic K0-prep suite's records (no gate), shown beside the real-K/V quality gate.
constexpr char kK0PrepExperiment[] = "k0_prep";

// Study columns and metrics the summaries read beyond metrics.h's names.
constexpr char kDenseStepMs[] = "dense_decode_step_ms";
constexpr char kCompressedStepMs[] = "compressed_decode_step_ms";
constexpr char kDenseAttentionMs[] = "dense_attention_ms";
constexpr char kCompressedAttentionMs[] = "compressed_attention_ms";
constexpr char kPublishedKvRatioVsBf16[] = "kv_ratio_vs_bf16";

// The summary built around each gate: a path's summaries are those of its gates.
const std::map<std::string, std::string>& SummaryOfGate();

// A path's answer on the first page.
struct PathAnswer {
  std::string verdict;   // "open", "closed", "not open", "untested", "baseline"
  std::string words;     // kvgate's verdict in a sentence
  std::string deciding;  // the one figure that decides
};

// The answer to one table of the study.
struct SectionAnswer {
  std::string ours;      // kvgate's verdict on what the study measured
  std::string agree;     // "agree", "differ", "mixed", "no records"
  std::string deciding;  // study figure against ours
};

class Generator {
 public:
  explicit Generator(const ReportInputs& in)
      : in_(in),
        runs_(gates::JudgeRuns(in.specs, in.rows)),
        configs_(gates::JudgeConfigurations(runs_)),
        decisions_(gates::DecidePaths(in.paths, in.specs, configs_)) {}

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

  // The ledger (ledger.cc): its first page and its appendix.
  std::map<std::string, std::string> LedgerBlocks() const;
  std::map<std::string, std::string> AppendixBlocks() const;
  std::string VerdictBlock() const;
  std::string QuestionsBlock() const;
  std::string BesideBlock() const;
  std::string BesideSection(const PublishedSection& s) const;
  std::string SetupTable(const PublishedSection& s) const;
  // The setup rows (model, weights, context, ...) of our configurations, by setup key.
  std::map<std::string, std::set<std::string>> SetupValues(
      const std::vector<const ConfigurationJudgement*>& ours) const;
  std::string ConfigurationsBlock() const;
  std::string InputsBlock() const;
  PathAnswer Answer(const gates::PathDecision& d) const;
  SectionAnswer AnswerSection(const PublishedSection& s) const;
  // Our configurations of the study row: of `gate_id` (the section's gate when empty) at its
  // latest version, not controls, on the study's model where we have it.
  std::vector<const ConfigurationJudgement*> Matching(const PublishedSection& s, size_t row,
                                                      const std::string& gate_id = "") const;
  struct SectionTally {
    int agree = 0, differ = 0, mixed = 0, pass = 0, total = 0;
    std::set<std::string> models;
  };
  SectionTally TallySection(const PublishedSection& s, const std::string& gate_id) const;
  // The first gate refining the section's gate (gates/paths.json "refines") with records of
  // what the study measured; "" when none.
  std::string RefinerWithRecords(const PublishedSection& s) const;

  // Gates judged over windows against the gates they refine (refined.cc).
  std::string RefinedBlock() const;
  std::string RefinedSection(const PublishedSection& s, const std::string& refiner) const;
  // The condition that decides a configuration's verdict: its first failing one, else the first.
  const Condition* DecidingCondition(const GateSpec& spec, const ConfigurationJudgement& c) const;
  // Configurations of a gate judged over windows measured on more than one device
  // (reproduced.cc).
  std::string ReproducedBlock() const;
  // A configuration's figure over windows for `metric` (a study column or a gate metric):
  // "2.2850 [1.8306, 2.8158] over 32 windows" from <metric>_mean and its interval; "" when the
  // records lack it.
  std::string WindowsFigure(const ConfigurationJudgement& c, const std::string& metric) const;
  // The same without " over N windows": "2.2850 [1.8306, 2.8158]".
  std::string WindowsValue(const ConfigurationJudgement& c, const std::string& metric) const;
  std::vector<const RecordAt*> RowsOf(const ConfigurationJudgement& c) const;
  std::string PathLinks(const std::string& path_id, const std::string& from_dir) const;
  std::string SummaryLink(const std::string& gate_id, const std::string& from_dir) const;

  absl::StatusOr<std::map<std::string, std::string>> SpeedCeilingBlocks() const;
  std::map<std::string, std::string> OracleBlocks() const;
  std::map<std::string, std::string> HfkvBlocks() const;
  std::string K0PrepBeside(const std::vector<const RunJudgement*>& real) const;
  std::map<std::string, std::string> EagerBlocks() const;
  std::map<std::string, std::string> FusedBlocks() const;

  std::vector<double> PublishedOverheads() const;
  absl::StatusOr<std::string> SpeedCeilingPlot() const;
  std::string OraclePlot() const;
  std::string KvQualityPlot() const;

  const ReportInputs& in_;
  const std::vector<RunJudgement> runs_;
  const std::vector<ConfigurationJudgement> configs_;
  const std::vector<gates::PathDecision> decisions_;
};

}  // namespace kvgate::report::internal

#endif  // KVGATE_TOOLS_REPORT_GENERATOR_H_
