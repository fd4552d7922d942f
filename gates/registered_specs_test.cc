// The committed specs of gates/specs/: each parses and is named for its id and version, versions
// run 1..N with none removed, SHA256SUMS locks the bytes of every file (so an edit shows up here
// even before any record pins the spec), and version 1 of each gate holds what the study
// registered.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gates/file_io.h"
#include "gates/spec_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

constexpr char kSpecDir[] = "gates/specs";

SpecRegistry Specs() {
  absl::StatusOr<SpecRegistry> specs = LoadSpecDir(kSpecDir);
  EXPECT_TRUE(specs.ok()) << specs.status();
  return specs.ok() ? *specs : SpecRegistry();
}

TEST(RegisteredSpecsTest, Sha256SumsLocksEverySpecFile) {
  absl::StatusOr<std::string> lock = ReadFile(std::string(kSpecDir) + "/SHA256SUMS");
  ASSERT_TRUE(lock.ok()) << lock.status();
  std::map<std::string, std::string> locked;  // file name -> sha256
  for (absl::string_view line : absl::StrSplit(*lock, '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(line, "  ");
    ASSERT_EQ(parts.size(), 2) << "not `sha256sum` output: " << line;
    locked[parts[1]] = parts[0];
  }
  const SpecRegistry specs = Specs();
  ASSERT_FALSE(specs.empty());
  std::set<std::string> files;
  for (const auto& [key, spec] : specs) {
    const std::string name = SpecFileName(key.first, key.second);
    files.insert(name);
    ASSERT_TRUE(locked.count(name)) << name << " is not in gates/specs/SHA256SUMS; add it with "
                                    << "`cd gates/specs && sha256sum " << name << " >> SHA256SUMS`";
    EXPECT_EQ(spec.sha256, locked[name])
        << name << " changed after it was registered. Specs are never edited: restore it and "
        << "register the change as a new version (gates/specs/README.md).";
  }
  for (const auto& [name, sha] : locked) {
    EXPECT_TRUE(files.count(name))
        << name << " is locked in SHA256SUMS but gone: records may pin it";
  }
}

TEST(RegisteredSpecsTest, VersionsRunFromOneWithoutGaps) {
  std::map<std::string, int> count;
  for (const auto& [key, spec] : Specs()) {
    EXPECT_EQ(key.second, ++count[key.first]) << key.first << " lacks version " << count[key.first];
  }
}

// Version 1 of each gate holds the thresholds of the study kvgate re-tests (its published bars).
TEST(RegisteredSpecsTest, VersionOneHoldsTheStudysThresholds) {
  const SpecRegistry specs = Specs();
  auto described = [&](const char* id) {
    std::vector<std::string> out;
    const RegisteredSpec* spec = FindSpec(specs, id, 1);
    EXPECT_NE(spec, nullptr) << id;
    if (spec == nullptr) return out;
    for (const Condition& c : spec->spec.validity) {
      out.push_back("valid if " + DescribeCondition(c));
    }
    for (const Condition& c : spec->spec.thresholds) out.push_back(DescribeCondition(c));
    return out;
  };
  using ::testing::ElementsAre;
  EXPECT_THAT(described("hfkv_real_kv_quality"),
              ElementsAre("valid if reference_finite == 1", "decode_logit_mse <= 0.25",
                          "top10_overlap >= 0.8", "argmax_agreement == 1"));
  EXPECT_THAT(described("work_reduction_oracle"),
              ElementsAre("valid if reference_finite == 1", "decode_logit_mse <= 0.25",
                          "top10_overlap >= 0.8", "argmax_agreement == 1",
                          "layer_median_o_proj_rel_l2 <= 0.1"));
  EXPECT_THAT(described("speed_ceiling"), ElementsAre("projected_speedup at h = 0.05 >= 1.2"));
  EXPECT_THAT(
      described("eager_value_path_latency"),
      ElementsAre("valid if dense_decode_step_ms > 0", "valid if compressed_decode_step_ms > 0",
                  "dense_decode_step_ms / compressed_decode_step_ms >= 1.1"));
  EXPECT_THAT(described("fused_codebook_latency"),
              ElementsAre("valid if dense_attention_ms > 0", "valid if compressed_attention_ms > 0",
                          "dense_attention_ms / compressed_attention_ms >= 1.1"));

  const RegisteredSpec* oracle = FindSpec(specs, "work_reduction_oracle", 1);
  ASSERT_NE(oracle, nullptr);
  EXPECT_EQ(oracle->spec.target.decode_steps, 4);
  EXPECT_EQ(oracle->spec.multi_step_rule, MultiStepRule::kEveryStepPasses);
  EXPECT_EQ(FindSpec(specs, "speed_ceiling", 1)->spec.multi_step_rule,
            MultiStepRule::kSingleMeasurement);
}

}  // namespace
}  // namespace kvgate::gates
