#include "gates/path_table.h"

#include <string>
#include <vector>

#include "gates/spec_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::testing::HasSubstr;

constexpr char kTable[] = R"({
  "about": "test",
  "paths": [{"id": "int4_kv", "title": "int4", "question": "q?"},
            {"id": "dense_baseline", "title": "dense", "question": "d?"}],
  "gates": [
    {"gate": "hfkv_real_kv_quality", "role": "quality", "paths": ["int4_kv"]},
    {"gate": "int4_decode_latency", "role": "latency", "paths": ["int4_kv"]},
    {"gate": "dense_decode_roofline", "role": "baseline", "paths": ["dense_baseline"]}
  ],
  "controls": [{"variant_prefix": "exact_cleanup(", "why": "uncompressed"}]
})";

SpecRegistry Specs() {
  absl::StatusOr<SpecRegistry> specs = LoadSpecDir("gates/specs");
  EXPECT_TRUE(specs.ok()) << specs.status();
  return specs.ok() ? *specs : SpecRegistry();
}

ConfigurationJudgement Config(const std::string& gate, const std::string& variant,
                              const std::string& device, Verdict verdict) {
  ConfigurationJudgement c;
  c.gate_id = gate;
  c.gate_version = 1;
  c.variant = variant;
  c.target = {.model = "m", .weights_sha256 = "w", .context = 8192, .dtype = "bfloat16",
              .device = device};
  c.runs = c.valid_runs = 1;
  c.judgement.verdict = verdict;
  return c;
}

TEST(PathTableTest, CommittedTableCoversEveryRegisteredGate) {
  const SpecRegistry specs = Specs();
  absl::StatusOr<PathTable> table = LoadPathTable("gates/paths.json", specs);
  ASSERT_TRUE(table.ok()) << table.status();
  for (const auto& [key, spec] : specs) {
    const GateRoleEntry* e = table->Find(key.first);
    ASSERT_NE(e, nullptr) << key.first;
    EXPECT_FALSE(e->paths.empty()) << key.first;
  }
  // Every path with a gate has a quality gate and a latency or capacity gate, unless it is a
  // baseline path (only baseline gates).
  for (const StudyPath& p : table->paths) {
    bool quality = false, speed = false, baseline_only = true;
    const std::vector<const GateRoleEntry*> gates = table->GatesOf(p.id);
    for (const GateRoleEntry* g : gates) {
      quality = quality || g->role == GateRole::kQuality;
      speed = speed || g->role == GateRole::kLatency || g->role == GateRole::kCapacity;
      baseline_only = baseline_only && g->role == GateRole::kBaseline;
    }
    if (gates.empty() || baseline_only) continue;
    EXPECT_TRUE(quality && speed) << p.id << " needs a quality and a latency or capacity gate";
  }
}

TEST(PathTableTest, EveryGateNeedsAnEntry) {
  absl::StatusOr<PathTable> table = ParsePathTable(kTable, "t.json");
  ASSERT_TRUE(table.ok()) << table.status();
  absl::Status s = CheckCoversSpecs(*table, Specs());
  EXPECT_THAT(std::string(s.message()), HasSubstr("no path and role for cuda_codebook_kernels"));
}

TEST(PathTableTest, BadTablesNameTheField) {
  std::string bad = kTable;
  bad.replace(bad.find("\"latency\""), 9, "\"speedy\"");
  absl::StatusOr<PathTable> t = ParsePathTable(bad, "t.json");
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("t.json: gates[1].role"));

  bad = kTable;
  bad.replace(bad.find("[\"dense_baseline\"]"), 18, "[\"other\"]");
  t = ParsePathTable(bad, "t.json");
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("\"other\" is not a path"));

  // A refining gate names another gate of the same role.
  const std::string refine = R"("paths": ["int4_kv"], "refines": "int4_decode_latency"})";
  bad = kTable;
  bad.replace(bad.find(R"("paths": ["int4_kv"]})"), 21, refine);
  t = ParsePathTable(bad, "t.json");
  EXPECT_THAT(std::string(t.status().message()),
              HasSubstr("t.json: gates: hfkv_real_kv_quality.refines: \"int4_decode_latency\" is "
                        "not another gate of the table with the role quality"));
}

TEST(PathTableTest, ARefiningGateDecidesWhereItJudgedTheVariant) {
  std::string text = kTable;
  text.replace(text.find(R"({"gate": "int4_decode_latency")"), 0,
               R"({"gate": "kv_format_quality_over_windows", "role": "quality", )"
               R"("paths": ["int4_kv"], "refines": "hfkv_real_kv_quality"},)"
               "\n    ");
  absl::StatusOr<PathTable> table = ParsePathTable(text, "t.json");
  ASSERT_TRUE(table.ok()) << table.status();
  const SpecRegistry specs = Specs();
  // One prompt passes, latency passes on the same target: open.
  std::vector<ConfigurationJudgement> configs = {
      Config("hfkv_real_kv_quality", "int4", "gpu", Verdict::kPass),
      Config("int4_decode_latency", "int4", "gpu", Verdict::kPass)};
  EXPECT_TRUE(DecidePaths(*table, specs, configs)[0].open());
  // The refining gate fails the variant on the model (another context): the one-prompt pass no
  // longer counts, so the path is not open, and only the refining gate's cell is listed.
  ConfigurationJudgement windows =
      Config("kv_format_quality_over_windows", "int4", "cpu", Verdict::kFail);
  windows.target.context = 512;
  configs.push_back(windows);
  const std::vector<PathDecision> d = DecidePaths(*table, specs, configs);
  EXPECT_FALSE(d[0].open());
  ASSERT_EQ(d[0].by_role.at(GateRole::kQuality).size(), 1u);
  EXPECT_EQ(d[0].by_role.at(GateRole::kQuality)[0].gate->gate, "kv_format_quality_over_windows");
  // Another model's one-prompt verdict still counts.
  ConfigurationJudgement other = Config("hfkv_real_kv_quality", "int4", "gpu", Verdict::kPass);
  other.target.model = "other";
  EXPECT_FALSE(Refined(*table, specs, configs, other));
  EXPECT_TRUE(Refined(*table, specs, configs, configs[0]));
}

TEST(PathTableTest, ARefiningGateIsFoundByTheGateItRefines) {
  std::string table = kTable;
  table.replace(table.find(R"({"gate": "int4_decode_latency")"), 0,
                R"({"gate": "kv_format_quality_over_windows", "role": "quality", )"
                R"("paths": ["int4_kv"], "refines": "hfkv_real_kv_quality"},)"
                "\n    ");
  absl::StatusOr<PathTable> t = ParsePathTable(table, "t.json");
  ASSERT_TRUE(t.ok()) << t.status();
  const std::vector<const GateRoleEntry*> refiners = t->RefinersOf("hfkv_real_kv_quality");
  ASSERT_EQ(refiners.size(), 1u);
  EXPECT_EQ(refiners[0]->gate, "kv_format_quality_over_windows");
  EXPECT_TRUE(t->RefinersOf("int4_decode_latency").empty());
  EXPECT_EQ(t->Find("hfkv_real_kv_quality")->refines, "");
}

TEST(PathTableTest, OpenOnlyWithQualityAndLatencyForOneVariantOnOneTarget) {
  absl::StatusOr<PathTable> table = ParsePathTable(kTable, "t.json");
  ASSERT_TRUE(table.ok()) << table.status();
  const SpecRegistry specs = Specs();
  // Quality passes on the CPU, latency passes on the GPU: not open.
  std::vector<ConfigurationJudgement> configs = {
      Config("hfkv_real_kv_quality", "int4", "cpu", Verdict::kPass),
      Config("int4_decode_latency", "int4", "gpu", Verdict::kPass),
      Config("dense_decode_roofline", "dense", "gpu", Verdict::kPass)};
  std::vector<PathDecision> d = DecidePaths(*table, specs, configs);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_FALSE(d[0].open());
  EXPECT_EQ(d[0].targets_with_both, 0);
  EXPECT_FALSE(d[1].open());  // a baseline never opens a path

  // Both on the GPU but for different variants: not open.
  configs[0] = Config("hfkv_real_kv_quality", "int4_other", "gpu", Verdict::kPass);
  d = DecidePaths(*table, specs, configs);
  EXPECT_FALSE(d[0].open());
  EXPECT_EQ(d[0].targets_with_both, 1);

  // One variant, one target, both pass: open.
  configs[0] = Config("hfkv_real_kv_quality", "int4", "gpu", Verdict::kPass);
  d = DecidePaths(*table, specs, configs);
  EXPECT_TRUE(d[0].open());

  // A second weights file on the same target failing quality closes it again.
  ConfigurationJudgement second = Config("hfkv_real_kv_quality", "int4", "gpu", Verdict::kFail);
  second.target.weights_sha256 = "other";
  configs.push_back(second);
  d = DecidePaths(*table, specs, configs);
  EXPECT_FALSE(d[0].open());
}

TEST(PathTableTest, ControlsNeverOpenAPath) {
  absl::StatusOr<PathTable> table = ParsePathTable(kTable, "t.json");
  ASSERT_TRUE(table.ok()) << table.status();
  const std::string control = "exact_cleanup(turboquant_mse:bits=4)";
  std::vector<ConfigurationJudgement> configs = {
      Config("hfkv_real_kv_quality", control, "cpu", Verdict::kPass),
      Config("int4_decode_latency", control, "cpu", Verdict::kPass)};
  EXPECT_FALSE(DecidePaths(*table, Specs(), configs)[0].open());
  EXPECT_NE(table->ControlOf(control), nullptr);
  EXPECT_EQ(table->ControlOf("turboquant_mse:bits=4"), nullptr);
}

}  // namespace
}  // namespace kvgate::gates
