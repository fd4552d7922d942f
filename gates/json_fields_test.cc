#include "gates/json_fields.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(ParseJsonTest, RejectsDuplicateKeysAtAnyDepth) {
  EXPECT_TRUE(ParseJson(R"({"a": {"b": 1}, "c": [{"b": 2}, {"b": 3}]})").ok());
  EXPECT_THAT(Message(ParseJson(R"({"a": 1, "a": 2})").status()), HasSubstr("duplicate key \"a\""));
  EXPECT_THAT(Message(ParseJson(R"({"a": {"b": 1, "b": 1}})").status()),
              HasSubstr("duplicate key \"b\""));
  EXPECT_THAT(Message(ParseJson(R"([{"x": 1, "x": 1}])").status()), HasSubstr("duplicate key"));
}

TEST(ParseJsonTest, RejectsWhatIsNotJson) {
  for (const char* text : {"", "{", R"({"a": NaN})", R"({"a": 1e999})", "{} {}", "\xff"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(Message(ParseJson(text).status()), HasSubstr("not JSON"));
  }
}

TEST(IsSnakeCaseNameTest, LowercaseDigitsUnderscore) {
  EXPECT_TRUE(IsSnakeCaseName("top10_overlap"));
  EXPECT_TRUE(IsSnakeCaseName("_"));
  for (const char* bad : {"", "Top10", "top-10", "top 10", "p.attn"}) {
    EXPECT_FALSE(IsSnakeCaseName(bad)) << bad;
  }
}

TEST(FieldReaderTest, CheckKeysNamesUnknownThenMissing) {
  const Json json = *ParseJson(R"({"model": "m", "contxt": 1})");
  FieldReader target(json, "target");
  EXPECT_THAT(Message(target.CheckKeys({"model", "context"})),
              HasSubstr("target: unknown field \"contxt\" (known: model, context)"));
  const Json partial = *ParseJson(R"({"model": "m"})");
  EXPECT_THAT(Message(FieldReader(partial, "target").CheckKeys({"model", "context"})),
              HasSubstr("target: missing \"context\""));
  EXPECT_TRUE(FieldReader(partial, "").CheckKeys({"model"}).ok());
  EXPECT_THAT(Message(FieldReader(Json(3), "").CheckKeys({})),
              HasSubstr("top level: expected an object"));
}

TEST(FieldReaderTest, TypedFields) {
  const Json json = *ParseJson(
      R"({"s": "x", "e": "", "i": -3, "big": 18446744073709551615, "n": null, "d": 0.5,
          "b": true})");
  FieldReader f(json, "row");
  EXPECT_EQ(*f.String("s"), "x");
  EXPECT_THAT(Message(f.String("e").status()), HasSubstr("row.e: expected a non-empty string"));
  EXPECT_EQ(*f.StringMaybeEmpty("e"), "");
  EXPECT_EQ(*f.Integer("i"), -3);
  EXPECT_THAT(Message(f.Integer("big").status()), HasSubstr("fits 64 bits"));
  EXPECT_THAT(Message(f.Integer("d").status()), HasSubstr("row.d: expected an integer, got 0.5"));
  EXPECT_FALSE(f.IntegerOrNull("n")->has_value());
  EXPECT_EQ(**f.IntegerOrNull("i"), -3);
  EXPECT_DOUBLE_EQ(*f.Number("d"), 0.5);
  EXPECT_DOUBLE_EQ(*f.Number("i"), -3.0);
  EXPECT_THAT(Message(f.Number("s").status()), HasSubstr("expected a finite number"));
  EXPECT_TRUE(*f.Bool("b"));
  EXPECT_THAT(Message(f.Bool("i").status()), HasSubstr("expected true or false"));
  EXPECT_EQ(f.Path("s"), "row.s");
  EXPECT_EQ(FieldReader(json, "").Path("s"), "s");
}

}  // namespace
}  // namespace kvgate::gates
