#include "tools/report/published.h"

#include <cmath>
#include <string>

#include "gates/file_io.h"
#include "gates/speed_ceiling/speed_ceiling.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::report {
namespace {

using ::testing::HasSubstr;

constexpr char kMinimal[] = R"({
  "source": "s",
  "sections": {
    "speed_ceiling": {
      "title": "t", "source": "src", "inputs": {"p_attn": 0.334},
      "columns": [{"key": "f", "title": "f", "decimals": 3},
                  {"key": "speedup_h5", "title": "at 5%", "decimals": 2, "suffix": "x",
                   "overhead": 0.05},
                  {"key": "verdict", "title": "gate"}],
      "rows": [{"f": 0.35, "speedup_h5": 1.2, "verdict": "pass"},
               {"f": 0.376, "speedup_h5": null, "verdict": "fail"}]}}})";

TEST(PublishedTest, ParsesAndFormatsWithFixedDecimals) {
  absl::StatusOr<Published> p = ParsePublished(kMinimal, "p.json");
  ASSERT_TRUE(p.ok()) << p.status();
  const PublishedSection* s = p->Find("speed_ceiling");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(p->Find("other"), nullptr);
  EXPECT_EQ(s->NumberInput("p_attn"), 0.334);
  ASSERT_EQ(s->rows.size(), 2u);
  EXPECT_EQ(s->Format(s->columns[0], s->rows[0].at("f")), "0.350");
  EXPECT_EQ(s->Format(s->columns[1], s->rows[0].at("speedup_h5")), "1.20x");
  EXPECT_EQ(s->Format(s->columns[1], s->rows[1].at("speedup_h5")), "—");
  EXPECT_EQ(s->Format(s->columns[2], s->rows[1].at("verdict")), "fail");
  EXPECT_EQ(s->columns[1].overhead, 0.05);
  EXPECT_EQ(PublishedSection::Number(s->rows[1], "speedup_h5"), std::nullopt);
}

TEST(PublishedTest, RejectsWhatIsNotTheSchemaNamingTheField) {
  const std::pair<std::string, std::string> bad[] = {
      {"{", "p.json: "},
      {R"({"source": "s"})", "missing key \"sections\""},
      {R"({"source": "s", "sections": {}, "x": 1})", "unknown key \"x\""},
      {R"({"source": "s", "sections": {"g": {"title": "t", "source": "s", "inputs": {},
          "columns": [{"key": "a", "title": "a"}], "rows": []}}})",
       "sections.g.columns: needs a \"verdict\" column"},
      {R"({"source": "s", "sections": {"g": {"title": "t", "source": "s", "inputs": {},
          "columns": [{"key": "verdict", "title": "v"}], "rows": [{"verdict": "pass", "x": 1}]}}})",
       "sections.g.rows[0]: unknown key \"x\""},
      {R"({"source": "s", "sections": {"g": {"title": "t", "source": "s", "inputs": {},
          "columns": [{"key": "verdict", "title": "v"}], "rows": [{}]}}})",
       "sections.g.rows[0]: missing key \"verdict\""},
      {R"({"source": "s", "sections": {"g": {"title": "t", "source": "s", "inputs": {},
          "columns": [{"key": "verdict", "title": "v"}], "rows": [{"verdict": true}]}}})",
       "sections.g.rows[0].verdict: expected a number, a non-empty string or null"},
      {R"({"source": "s", "sections": {"g": {"title": "t", "source": "s", "inputs": {},
          "columns": [{"key": "verdict", "title": "v", "decimals": 12}], "rows": []}}})",
       "decimals: must be 0..9"},
  };
  for (const auto& [text, message] : bad) {
    SCOPED_TRACE(text);
    absl::StatusOr<Published> p = ParsePublished(text, "p.json");
    ASSERT_FALSE(p.ok());
    EXPECT_THAT(p.status().message(), HasSubstr("p.json: "));
    EXPECT_THAT(p.status().message(), HasSubstr(message));
  }
}

// The committed figures: they parse, and the study's speed-ceiling table agrees with
// gates/speed_ceiling at the study's own p_attn to the printed precision.
TEST(PublishedTest, CommittedFiguresAgreeWithTheSpeedCeilingFormula) {
  absl::StatusOr<std::string> bytes = gates::ReadFile("reports/templates/published.json");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<Published> p = ParsePublished(*bytes, "reports/templates/published.json");
  ASSERT_TRUE(p.ok()) << p.status();
  const PublishedSection* s = p->Find("speed_ceiling");
  ASSERT_NE(s, nullptr);
  const std::optional<double> p_attn = s->NumberInput("p_attn");
  ASSERT_TRUE(p_attn.has_value());
  int checked = 0;
  for (const auto& row : s->rows) {
    const std::optional<double> f = PublishedSection::Number(row, "f");
    ASSERT_TRUE(f.has_value());
    for (const PublishedColumn& c : s->columns) {
      if (!c.overhead.has_value()) continue;
      const std::optional<double> published = PublishedSection::Number(row, c.key);
      ASSERT_TRUE(published.has_value());
      absl::StatusOr<double> computed = gates::ProjectedSpeedup(*p_attn, *f, *c.overhead);
      ASSERT_TRUE(computed.ok());
      EXPECT_NEAR(*published, *computed, 0.005 + 1e-9) << "f = " << *f << ", h = " << *c.overhead;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 9);
  // The int4 KV ratios are bf16 bytes over int4 bytes with one bf16 scale (symmetric) or a scale
  // and an offset (affine) per 32 values: 16 / 4.5 and 16 / 5.
  const PublishedSection* hfkv = p->Find("hfkv_real_kv_quality");
  ASSERT_NE(hfkv, nullptr);
  ASSERT_EQ(hfkv->rows.size(), 2u);
  EXPECT_NEAR(*PublishedSection::Number(hfkv->rows[0], "kv_ratio_vs_bf16"), 16 / 4.5, 0.005);
  EXPECT_NEAR(*PublishedSection::Number(hfkv->rows[1], "kv_ratio_vs_bf16"), 16 / 5.0, 0.005);
}

}  // namespace
}  // namespace kvgate::report
