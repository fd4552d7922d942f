// GenerateReports over the fixture records (testdata/records) and over no records; the file side
// (collect.h): bad records, comparing with the committed reports, test outputs.
#include "tools/report/report.h"

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gates/file_io.h"
#include "gates/record_io.h"
#include "gates/testing_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/report/collect.h"
#include "tools/report/fixture_records.h"

namespace kvgate::report {
namespace {

using ::kvgate::gates::testing::CopyOfFolder;
using ::kvgate::gates::testing::NewTestFolder;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kGolden[] = "tools/report/testdata/golden";

ReportPaths FixturePaths() {
  ReportPaths paths;
  paths.records_dir = kFixtureRecordsDir;
  paths.templates_dir = "tools/report/testdata/templates";
  paths.published = "reports/templates/published.json";
  paths.out_dir = kGolden;
  return paths;
}

ReportInputs Load(const ReportPaths& paths) {
  std::vector<std::string> problems;
  absl::StatusOr<ReportInputs> in = LoadInputs(paths, &problems);
  EXPECT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(problems, IsEmpty());
  return in.ok() ? *std::move(in) : ReportInputs();
}

std::map<std::string, std::string> Generate(const ReportInputs& in) {
  absl::StatusOr<std::map<std::string, std::string>> files = GenerateReports(in);
  EXPECT_TRUE(files.ok()) << files.status();
  return files.value_or(std::map<std::string, std::string>());
}

TEST(FixtureRecordsTest, CommittedFilesAreWhatTheGeneratorWrites) {
  const ReportInputs in = Load(FixturePaths());
  absl::StatusOr<std::map<std::string, std::vector<gates::Record>>> files =
      FixtureRecords(in.specs);
  ASSERT_TRUE(files.ok()) << files.status();
  for (const auto& [name, rows] : *files) {
    std::string expected;
    for (const gates::Record& r : rows) {
      absl::StatusOr<std::string> line = gates::RecordToJsonLine(r);
      ASSERT_TRUE(line.ok()) << line.status();
      absl::StrAppend(&expected, *line, "\n");
    }
    absl::StatusOr<std::string> committed =
        gates::ReadFile(absl::StrCat(kFixtureRecordsDir, "/", name));
    ASSERT_TRUE(committed.ok()) << committed.status();
    EXPECT_EQ(*committed, expected)
        << name << " is stale: tools/bazel run //tools/report:make_fixture_records";
  }
}

TEST(ReportTest, RelativePath) {
  EXPECT_EQ(RelativePath("reports/summaries", "reports/records/a.jsonl"), "../records/a.jsonl");
  EXPECT_EQ(RelativePath("reports", "reports/records/a.jsonl"), "records/a.jsonl");
  EXPECT_EQ(RelativePath("reports/summaries", "gates/specs/x.json"), "../../gates/specs/x.json");
  EXPECT_EQ(RelativePath("reports/summaries", "reports/summaries/x.md"), "x.md");
}

TEST(ReportTest, EveryReportFromNoRecordsSaysSoAndShowsThePublishedFigures) {
  ReportPaths paths;  // the real templates
  paths.records_dir = "tools/report/testdata/no_such_folder";
  const std::map<std::string, std::string> files = Generate(Load(paths));
  std::vector<std::string> names;
  for (const auto& [name, bytes] : files) names.push_back(name);
  EXPECT_THAT(
      names,
      ElementsAre("ledger-appendix.md", "plots/kv-quality-vs-bytes.svg", "plots/speed-ceiling.svg",
                  "plots/work-reduction-oracle.svg", "results-ledger.md",
                  "summaries/eager-value-path-summary.md", "summaries/fused-codebook-summary.md",
                  "summaries/hfkv-quality-k0-prep-summary.md", "summaries/speed-ceiling-summary.md",
                  "summaries/work-reduction-oracle-summary.md"));
  for (const auto& [name, bytes] : files) {
    if (name.rfind("summaries/", 0) == 0) {
      EXPECT_THAT(bytes, HasSubstr("No records yet")) << name;
    }
  }
  EXPECT_THAT(files.at("results-ledger.md"),
              AllOf(HasSubstr("**Open paths: none**"), HasSubstr("untested: no records yet"),
                    HasSubstr("| 0.337 | 1.28x | 1.21x | 1.14x | pass | — |"),
                    HasSubstr("dense_decode_step_ms = 20.447")));
  // The study's figures, as published figures.
  const std::string& sc = files.at("summaries/speed-ceiling-summary.md");
  EXPECT_THAT(sc, HasSubstr("Published figures, not measured by kvgate"));
  EXPECT_THAT(sc, HasSubstr("| 0.376 | 1.26x | 1.19x | 1.12x | fail | near miss |"));
  EXPECT_THAT(sc, HasSubstr("| 0.334 | 0.376 | 1.26x | 1.19x | 1.12x | fail (1.188x) |"));
  EXPECT_THAT(files.at("summaries/hfkv-quality-k0-prep-summary.md"),
              HasSubstr("| symmetric int4 | 0.800 | yes | 1.739284 | 3.56x | fail |"));
  EXPECT_THAT(
      files.at("summaries/work-reduction-oracle-summary.md"),
      HasSubstr("| recent_sink | — | 0.163465 | 0.1394 | fails only on layer-local L2 (<= 0.10) "
                "| fail |"));
  EXPECT_THAT(files.at("summaries/eager-value-path-summary.md"),
              HasSubstr("has no section for `eager_value_path_latency`"));
  EXPECT_THAT(files.at("plots/work-reduction-oracle.svg"), HasSubstr(">no records yet</text>"));
}

TEST(ReportTest, SameRecordsInAnyOrderGiveTheSameBytes) {
  ReportInputs in = Load(FixturePaths());
  const std::map<std::string, std::string> first = Generate(in);
  EXPECT_EQ(Generate(in), first);
  std::reverse(in.rows.begin(), in.rows.end());
  EXPECT_EQ(Generate(in), first);
}

// The records' file:line links of a report (`../records/` or `../../records/`).
std::set<std::string> LinkedRecords(const std::string& report) {
  std::set<std::string> linked;
  const std::regex link(R"(\((?:\.\./)+records/([a-z0-9_]+\.jsonl)#L(\d+)(?:-L(\d+))?\))");
  for (std::sregex_iterator it(report.begin(), report.end(), link), end; it != end; ++it) {
    const int from = std::stoi((*it)[2]);
    const int to = (*it)[3].matched ? std::stoi((*it)[3]) : from;
    for (int line = from; line <= to; ++line)
      linked.insert(absl::StrCat((*it)[1].str(), ":", line));
  }
  return linked;
}

// Every judged record's file:line is linked from the ledger's appendix, and every record without a
// gate (K0-prep) from the hfkv summary: no row is dropped.
TEST(ReportTest, TheLedgerLinksEveryRecord) {
  const ReportInputs in = Load(FixturePaths());
  const std::map<std::string, std::string> files = Generate(in);
  const std::set<std::string> appendix = LinkedRecords(files.at("ledger-appendix.md"));
  const std::set<std::string> hfkv =
      LinkedRecords(files.at("summaries/hfkv-quality-k0-prep-summary.md"));
  ASSERT_EQ(in.rows.size(), 43u);
  int ungated = 0;
  for (const gates::RecordAt& row : in.rows) {
    const std::string name = row.file.substr(row.file.rfind('/') + 1);
    const bool gated = gates::HasGate(row.record);
    ungated += gated ? 0 : 1;
    EXPECT_THAT(gated ? appendix : hfkv, Contains(absl::StrCat(name, ":", row.line)))
        << row.Where();
  }
  EXPECT_EQ(ungated, 5);
}

TEST(ReportTest, TablesOfTheFixtureRecords) {
  const std::map<std::string, std::string> files = Generate(Load(FixturePaths()));
  const std::string& ledger = files.at("results-ledger.md");
  // Closed: the eager path (latency); open: work reduction (one variant passes the speed ceiling
  // and the oracle on one target); int4 has quality records only.
  EXPECT_THAT(ledger, HasSubstr("- Closed, a gate fails wherever it was measured: Eager value path "
                                "(speed)."));
  EXPECT_THAT(ledger, HasSubstr("open: `global_block_mass:f=0.3370:b=16` on Qwen2.5-7B-Instruct, "
                                "8192, bfloat16, H100 80GB HBM3 passes `work_reduction_oracle` "
                                "and `speed_ceiling`"));
  EXPECT_THAT(ledger, HasSubstr("not open: no latency or capacity records yet | not measured"));
  // The int4 study table decides by the gate refining its own (over windows), one prompt beside.
  EXPECT_THAT(ledger, HasSubstr("| mixed | symmetric int4, decode_logit_mse (<= 0.25): study "
                                "1.739284; ours over windows 2.1000 [1.8000, 2.6000] over 32 "
                                "windows; one prompt 1.740000 |"));
  EXPECT_THAT(ledger, HasSubstr("| symmetric int4 | `symmetric_int4:block=32` | "
                                "SmolLM2-135M-Instruct, 512, float32, cpu | 0.8100 [0.7900, "
                                "0.8300] | 0.8200 [0.8000, 0.8300] | 2.1000 [1.8000, 2.6000] | "
                                "512 tokens, 32 windows x 64 positions | fail |"));
  // The verdicts that changed come first: affine int4 fails on one prompt, passes over windows
  // on the CPU (and fails on the GPU host: a pair a device).
  EXPECT_THAT(ledger, HasSubstr("1 of 3 one-prompt verdicts changed under the gate judged over "
                                "windows (one pair for each device the windows ran on).\n\n| "
                                "configuration |"));
  EXPECT_THAT(ledger,
              HasSubstr("|---|---|---|---|---|\n| `affine_int4:block=32`, "
                        "SmolLM2-135M-Instruct, cpu | `hfkv_real_kv_quality v1`: **fail** (1024 "
                        "tokens, 1 decode step) | `kv_format_quality_over_windows v1`: "
                        "**pass** (512 tokens, 32 windows x 64 positions) | **yes**: fail "
                        "to pass | decode_logit_mse: over windows 0.1200 [0.0900, 0.1600], "
                        "bar <= 0.25 on the upper 95% bound; one prompt 1.360000 (worst "
                        "step, bar <= 0.25) |"));
  EXPECT_THAT(ledger, HasSubstr("| no record of `hfkv_real_kv_quality` |"));
  // One configuration on two devices: kivi agrees (1% apart), affine int4 does not.
  EXPECT_THAT(ledger, HasSubstr("2 configurations are measured on more than one device; the "
                                "verdicts agree on 1."));
  EXPECT_THAT(ledger,
              HasSubstr("| `affine_int4:block=32`, SmolLM2-135M-Instruct, 512, float32 | "
                        "`kv_format_quality_over_windows v1` | decode_logit_mse mean: H100 "
                        "80GB HBM3: 0.1300 [0.0900, 0.2700]; cpu: 0.1200 [0.0900, 0.1600] | "
                        "0.077; largest 0.077 (decode_logit_mse_mean) | **no**: fail, pass |"));
  EXPECT_THAT(ledger, HasSubstr("| 0.0099; largest 0.0099 (decode_logit_mse_mean) | yes: fail |"));
  // Three study rows match the same three global_block_mass configurations: counted once each.
  EXPECT_THAT(ledger, HasSubstr("| fails: no oracle selector passes every decode step | pass on 2 "
                                "of 4 matching configurations (Qwen2.5-7B-Instruct) |"));
  const std::string& appendix = files.at("ledger-appendix.md");
  EXPECT_THAT(appendix, HasSubstr("| `recent_sink:f=0.3500` | fail | layer_median_o_proj_rel_l2 "
                                  "0.1420 fails <= 0.1 on 4 of 4 steps |"));
  EXPECT_THAT(appendix, HasSubstr("(2 runs, 1 valid)"));
  EXPECT_THAT(files.at("summaries/work-reduction-oracle-summary.md"),
              HasSubstr("| Qwen2.5-7B-Instruct, 8192 tokens, bfloat16 | `recent_sink:f=0.3500` "
                        "| 0.3500 | 0 of 4 | 0, 1, 2, 3 | 0.0610 | 0.1420 | "
                        "layer_median_o_proj_rel_l2 0.1420 fails <= 0.1 on 4 of 4 steps | "
                        "fail (v1) | `fixture`, NVIDIA H100 80GB HBM3, weights `random:seed=0`, "
                        "2026-11-27T18:00:00Z | [qwen_oracle.jsonl:1-4]("
                        "../../records/qwen_oracle.jsonl#L1-L4) |"));
  EXPECT_THAT(files.at("summaries/speed-ceiling-summary.md"),
              HasSubstr("| 0.334 | 0.3760 | 1.263x | 1.188x | 1.122x | fail (v2): "
                        "projected_speedup at h = 0.05 1.1882 fails >= 1.2 |"));
  EXPECT_THAT(files.at("summaries/hfkv-quality-k0-prep-summary.md"),
              HasSubstr("| 0.2812 (3.56x smaller) |"));
  // K0-prep beside real K/V: int4's small synthetic error, its real-K/V failure; int8 has none.
  EXPECT_THAT(files.at("summaries/hfkv-quality-k0-prep-summary.md"),
              AllOf(HasSubstr("| `symmetric_int4:block=32` | 2 | 0.0133 | 0.0134 | 0.116 | "
                              "0.2812 | fail (`hfkv_int4`) | 1.7400 |"),
                    HasSubstr("| `int8:scale=token` | 1 | 5e-05 | 5e-05 | 0.007 | 0.5312 | "
                              "no real-K/V run | - |"),
                    HasSubstr("3 formats have K0-prep records; 2 of them also have real-K/V runs "
                              "judged by `hfkv_real_kv_quality`, and 2 of those fail it")));
  EXPECT_THAT(files.at("summaries/eager-value-path-summary.md"),
              HasSubstr("| 41.900 | 55.200 | 0.759 | >= 1.1 | fail (v1)"));
  EXPECT_THAT(files.at("summaries/fused-codebook-summary.md"),
              HasSubstr("| 0.840 | 0.700 | 1.200 | >= 1.1 | pass (v1) |"));
  // The speed-ceiling plot: a family a colour, the model in the title, the study's rows.
  const std::string& speed = files.at("plots/speed-ceiling.svg");
  EXPECT_THAT(speed, AllOf(HasSubstr("Speed ceiling at h = 0.05 by context: Qwen2.5-7B-Instruct "
                                     "(H100 80GB HBM3)"),
                           HasSubstr(">global_block_mass: Qwen2.5-7B-Instruct on H100 80GB "
                                     "HBM3</text>"),
                           HasSubstr(">recent_sink: Qwen2.5-7B-Instruct on H100 80GB HBM3</text>"),
                           HasSubstr("the study (context not given): 1.21x at f = 0.337, 1.20x "
                                     "at f = 0.35, 1.19x at f = 0.376")));
  // The quality plot: one-prompt circles, squares with interval bars over windows, one legend
  // entry a family, the study's figures at full precision, the controls counted, not drawn.
  const std::string& kv = files.at("plots/kv-quality-vs-bytes.svg");
  EXPECT_THAT(kv, AllOf(HasSubstr("context 1024 (one prompt) and 512 (over windows)"),
                        HasSubstr(">int4</text>"), HasSubstr(">kivi</text>"),
                        HasSubstr("symmetric int4 1.739284, affine int4 1.360282"),
                        HasSubstr("&lt;= 0.25 on decode_logit_mse_mean_ci_high "
                                  "(kv_format_quality_over_windows v1)")));
  EXPECT_THAT(kv, Not(HasSubstr(">symmetric_int4:block=32")));
  // The oracle plot: a row of panels a context, log axes where values span decades.
  EXPECT_THAT(files.at("plots/work-reduction-oracle.svg"),
              AllOf(HasSubstr(">decode-logit MSE, context 8192</text>"),
                    HasSubstr(">layer-local L2, context 8192</text>"),
                    HasSubstr(">global_block_mass</text>")));
}

TEST(ReportTest, BadRecordsAreProblemsWithFileAndLine) {
  const std::string dir = CopyOfFolder(kFixtureRecordsDir, ".jsonl");
  auto edit = [&](const std::string& name, const std::string& from, const std::string& to) {
    const std::string path = absl::StrCat(dir, "/", name);
    std::string bytes = gates::ReadFile(path).value();
    const size_t at = bytes.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    bytes.replace(at, from.size(), to);
    ASSERT_TRUE(gates::AtomicWriteFile(path, bytes).ok());
  };
  edit("hfkv_int4.jsonl", "\"decode_logit_mse\":1.36", "\"decode_logit_mse\":0.01");
  edit("fused_codebook.jsonl", "\"version\":1", "\"version\":7");
  edit("speed_ceiling.jsonl", "\"p_attn\":0.334", "\"p_attn\":null");
  ReportPaths paths = FixturePaths();
  paths.records_dir = dir;
  std::vector<std::string> problems;
  absl::StatusOr<ReportInputs> in = LoadInputs(paths, &problems);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(problems, Contains(AllOf(HasSubstr(dir + "/hfkv_int4.jsonl:2: stores verdict fail"),
                                       HasSubstr("judges it pass"))));
  EXPECT_THAT(problems, Contains(HasSubstr(dir + "/fused_codebook.jsonl:1: names unknown spec "
                                                 "fused_codebook_latency v7")));
  EXPECT_THAT(problems, Contains(HasSubstr(dir + "/speed_ceiling.jsonl:1: ")));
}

TEST(ReportTest, AMissingOrExtraTemplateBlockIsAnError) {
  const std::string dir = CopyOfFolder("tools/report/testdata/templates", ".md");
  const std::string path = dir + "/fused-codebook-summary.md";
  std::string bytes = gates::ReadFile(path).value();
  bytes = absl::StrReplaceAll(bytes, {{"<!-- report:begin ours -->\n<!-- report:end ours -->\n",
                                       "<!-- report:begin our -->\n<!-- report:end our -->\n"}});
  ASSERT_TRUE(gates::AtomicWriteFile(path, bytes).ok());
  ReportPaths paths = FixturePaths();
  paths.templates_dir = dir;
  absl::StatusOr<std::map<std::string, std::string>> files = GenerateReports(Load(paths));
  ASSERT_FALSE(files.ok());
  EXPECT_THAT(files.status().message(), AllOf(HasSubstr(path + ": unknown blocks our (line"),
                                              HasSubstr("missing blocks ours")));
}

TEST(CompareWithDiskTest, NamesChangedMissingAndStaleFiles) {
  const std::map<std::string, std::string> files = Generate(Load(FixturePaths()));
  const std::string out = NewTestFolder();
  std::vector<std::string> changes;
  ASSERT_TRUE(WriteReports(files, out, &changes).ok());
  EXPECT_EQ(changes.size(), files.size());
  EXPECT_THAT(CompareWithDisk(files, out), IsEmpty());
  changes.clear();
  ASSERT_TRUE(WriteReports(files, out, &changes).ok());
  EXPECT_THAT(changes, IsEmpty());  // nothing rewritten when nothing changed

  // A hand-edited number, a removed plot, a file the records do not produce.
  const std::string ledger = out + "/ledger-appendix.md";
  std::string bytes = gates::ReadFile(ledger).value();
  bytes = absl::StrReplaceAll(bytes, {{"1.7400 fails", "0.1700 fails"}});
  ASSERT_TRUE(gates::AtomicWriteFile(ledger, bytes).ok());
  ASSERT_EQ(::remove((out + "/plots/speed-ceiling.svg").c_str()), 0);
  ASSERT_TRUE(gates::AtomicWriteFile(out + "/summaries/old-summary.md", "old\n").ok());
  EXPECT_THAT(
      CompareWithDisk(files, out),
      ElementsAre(
          AllOf(HasSubstr(ledger + ": differs from what the records produce, first difference on "
                                   "line 74, column "),
                HasSubstr("decode_logit_mse 0.1700 fails"), HasSubstr("decode_logit_mse 1.7400")),
          out + "/plots/speed-ceiling.svg: missing; the records produce it",
          out + "/summaries/old-summary.md: stale; the records no longer produce it"));
  changes.clear();
  ASSERT_TRUE(WriteReports(files, out, &changes).ok());
  EXPECT_THAT(changes, Contains("removed stale " + out + "/summaries/old-summary.md"));
  EXPECT_THAT(CompareWithDisk(files, out), IsEmpty());
}

TEST(TestOutputsTest, FindsRecordsInFoldersAndInOutputsZip) {
  absl::StatusOr<std::vector<FoundRecordsFile>> found =
      FindTestOutputRecords("tools/report/testdata/testlogs");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[0].name,
            "tools/report/testdata/testlogs/experiments/hfkv_int4_test/test.outputs/"
            "outputs.zip!hfkv_int4.jsonl");
  EXPECT_EQ((*found)[0].basename, "hfkv_int4.jsonl");
  EXPECT_EQ((*found)[1].name,
            "tools/report/testdata/testlogs/experiments/speed_ceiling_test/test.outputs/"
            "speed_ceiling.jsonl");
  EXPECT_FALSE(FindTestOutputRecords("tools/report/testdata/no_such_folder").ok());

  // Against the fixture records: one row is already committed, two are new.
  const ReportInputs in = Load(FixturePaths());
  const ImportPlan plan = PlanImport(in.specs, in.rows, *found, "records");
  EXPECT_THAT(plan.problems, IsEmpty());
  EXPECT_EQ(plan.already_committed, 1);
  ASSERT_EQ(plan.appends.size(), 2u);
  ASSERT_EQ(plan.appends.at("records/hfkv_int4.jsonl").size(), 1u);
  EXPECT_EQ(plan.appends.at("records/hfkv_int4.jsonl")[0].variant, "affine_int4:block=64");
  ASSERT_EQ(plan.appends.at("records/speed_ceiling.jsonl").size(), 1u);

  // A bad row in the test outputs: a problem with its name and line, nothing to append.
  std::vector<FoundRecordsFile> bad = *found;
  bad[1].bytes =
      absl::StrReplaceAll(bad[1].bytes, {{"\"verdict\":\"fail\"", "\"verdict\":\"pass\""}});
  const ImportPlan refused = PlanImport(in.specs, in.rows, bad, "records");
  EXPECT_THAT(refused.problems,
              ElementsAre(HasSubstr("speed_ceiling_test/test.outputs/speed_ceiling.jsonl:1: ")));
  EXPECT_THAT(refused.appends, IsEmpty());
  EXPECT_FALSE(ApplyImport(refused).ok());
}

}  // namespace
}  // namespace kvgate::report
