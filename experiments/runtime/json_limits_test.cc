// Tests of limited JSON parsing and typed field reads (json_limits.h).
//
// Run: tools/bazel test //experiments/runtime:json_limits_test

#include "experiments/runtime/json_limits.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(JsonLimitsTest, ParsesAndRejectsWithTheSourceNamed) {
  EXPECT_TRUE(ParseJson(R"({"a": [1, {"b": "}]]"}]})", "x.json").ok());
  EXPECT_THAT(Message(ParseJson("{\"a\": }", "x.json").status()),
              HasSubstr("x.json: invalid JSON"));
  EXPECT_THAT(Message(ParseJson(std::string(65, '[') + std::string(65, ']'), "x.json").status()),
              HasSubstr("x.json: JSON nested deeper than 64 levels"));
  // Brackets inside strings (escaped quotes too) do not count.
  EXPECT_TRUE(ParseJson("[\"" + std::string(100, '[') + "\\\"" + "\"]", "x.json").ok());
  EXPECT_THAT(Message(ParseJson(R"({"a": 1, "b": {"a": 2, "a": 3}})", "x.json").status()),
              HasSubstr("duplicate key \"a\""));
  EXPECT_TRUE(ParseJson(R"({"a": 1, "b": {"a": 2}})", "x.json").ok());  // same key, other object
  JsonLimits small;
  small.max_bytes = 4;
  EXPECT_THAT(Message(ParseJson("[1, 2]", "x.json", small).status()),
              HasSubstr("exceeds the limit of 4"));
  EXPECT_TRUE(absl::IsNotFound(ReadJsonFile("/nonexistent/config.json").status()));
}

TEST(JsonLimitsTest, FieldReadsSayWhatWasExpected) {
  absl::StatusOr<nlohmann::json> json = ParseJson(
      R"({"n": 3, "neg": -1, "f": 1.5, "s": "x", "b": true, "null": null, "big": 18446744073709551615})",
      "c.json");
  ASSERT_TRUE(json.ok());
  JsonObject o(*json, "c.json");
  EXPECT_EQ(*o.PositiveInt("n"), 3);
  EXPECT_EQ(*o.Double("n"), 3.0);
  EXPECT_EQ(*o.Double("f"), 1.5);
  EXPECT_EQ(*o.String("s"), "x");
  EXPECT_TRUE(*o.Bool("b"));
  EXPECT_EQ(*o.PositiveIntOr("missing", 7), 7);
  EXPECT_EQ(*o.PositiveIntOr("null", 7), 7);
  EXPECT_THAT(Message(o.PositiveInt("missing").status()),
              HasSubstr("c.json: missing field \"missing\" (expected a positive integer)"));
  EXPECT_THAT(Message(o.PositiveInt("neg").status()),
              HasSubstr("c.json: field \"neg\": expected a positive integer, got -1"));
  EXPECT_THAT(Message(o.PositiveInt("s").status()),
              HasSubstr("field \"s\": expected an integer, got a string"));
  EXPECT_THAT(Message(o.PositiveIntOr("f", 1).status()),
              HasSubstr("expected an integer, got a number"));
  EXPECT_THAT(Message(o.Int("big").status()), HasSubstr("integer out of range"));
  EXPECT_THAT(Message(o.String("n").status()), HasSubstr("expected a string, got an integer"));
  EXPECT_THAT(Message(o.Bool("s").status()), HasSubstr("expected true or false, got a string"));
}

}  // namespace
}  // namespace kvgate::runtime
