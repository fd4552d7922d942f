// Tests of the safetensors parser (safetensors.h) on files written by BuildSafetensors and on
// crafted headers: values and offsets of a valid file; and malformed files (every truncation, a
// header length past the end or over the limit, bad JSON, unknown dtype, bad shapes, overlapping
// or gapped offsets, trailing bytes) returning errors that name the file and tensor.
//
// Run: tools/bazel test //experiments/runtime:safetensors_test

#include "experiments/runtime/safetensors.h"

#include <cstring>
#include <string>
#include <vector>

#include "experiments/runtime/loader_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::StTensor;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

absl::StatusOr<SafetensorsFile> ParseBytes(const std::string& bytes,
                                           const std::string& name = "m.safetensors") {
  return SafetensorsFile::Parse(MappedFile::FromBytes(bytes, name));
}

std::string ValidFile() {
  std::string i64(16, '\0');
  const int64_t values[2] = {-5, 1LL << 40};
  std::memcpy(i64.data(), values, 16);
  return testing::BuildSafetensors({{"w", "F32", {2, 2}, testing::F32Bytes({1, 2, 3, -4})},
                                    {"b", "BF16", {3}, testing::Bf16Bytes({0.5f, -1, 2})},
                                    {"h", "F16", {1, 1}, testing::F16Bytes({0.25f})},
                                    {"i", "I64", {2}, i64},
                                    {"empty", "F32", {0, 4}, ""}},
                                   {{"format", "pt"}});
}

TEST(SafetensorsTest, ParsesFromAByteBuffer) {
  absl::StatusOr<SafetensorsFile> st = ParseSafetensorsHeader(ValidFile(), "buffer");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->tensors().size(), 5u);
  EXPECT_EQ(st->path(), "buffer");
  EXPECT_THAT(Message(ParseSafetensorsHeader("short").status()), HasSubstr("<memory>: truncated"));
}

TEST(SafetensorsTest, ParsesAValidFile) {
  absl::StatusOr<SafetensorsFile> st = ParseBytes(ValidFile());
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->tensors().size(), 5u);
  EXPECT_EQ(st->metadata().at("format"), "pt");
  const SafetensorsTensor* w = st->Find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, SafetensorsDtype::kF32);
  EXPECT_THAT(w->shape, ElementsAre(2, 2));
  EXPECT_EQ(w->numel, 4);
  float values[4];
  std::memcpy(values, w->data, 16);
  EXPECT_THAT(values, ElementsAre(1, 2, 3, -4));
  const SafetensorsTensor* b = st->Find("b");
  EXPECT_EQ(SafetensorsDtypeName(b->dtype), "BF16");
  EXPECT_EQ(b->end - b->begin, 6u);
  EXPECT_EQ(st->Find("empty")->numel, 0);
  EXPECT_EQ(st->Find("nope"), nullptr);
  // Sorted by offset, tiling the data.
  for (size_t i = 1; i < st->tensors().size(); ++i) {
    EXPECT_EQ(st->tensors()[i].begin, st->tensors()[i - 1].end);
  }
}

TEST(SafetensorsTest, EveryTruncationIsAnError) {
  const std::string bytes = ValidFile();
  for (size_t length = 0; length < bytes.size(); ++length) {
    absl::StatusOr<SafetensorsFile> st = ParseBytes(bytes.substr(0, length));
    ASSERT_FALSE(st.ok()) << length;
    ASSERT_TRUE(absl::IsInvalidArgument(st.status())) << st.status();
  }
}

std::string Header(const std::string& entries) { return "{" + entries + "}"; }

TEST(SafetensorsTest, AcceptsMultibyteUtf8Names) {
  // 2-, 3- and 4-byte characters at the edges of the valid ranges: U+0080, U+07FF, U+0800,
  // U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF.
  const std::string name =
      "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf";
  absl::StatusOr<SafetensorsFile> st =
      ParseBytes(testing::BuildSafetensors({{name, "F32", {2}, testing::F32Bytes({1, 2})}}));
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_NE(st->Find(name), nullptr);
}

TEST(SafetensorsTest, MalformedFilesAreErrorsThatNameTheProblem) {
  const std::string f32x2 = testing::F32Bytes({1, 2});
  struct Case {
    std::string name;
    std::string bytes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"short", "abc", "truncated: 3 bytes, less than the 8-byte header length"},
      {"length_past_end", testing::RawSafetensors("{}", "", 1000),
       "header length 1000 runs past the end of the file"},
      {"length_huge", testing::RawSafetensors("{}", "", uint64_t{1} << 62),
       "exceeds the limit of 100000000"},
      {"not_object", testing::RawSafetensors("[1]", ""), "header is not a JSON object"},
      {"bad_utf8", testing::RawSafetensors("{\"\xff\": 1}", ""), "header is not valid UTF-8"},
      {"overlong_utf8", testing::RawSafetensors("{\"\xc0\x80\": 1}", ""), "not valid UTF-8"},
      {"overlong_utf8_3", testing::RawSafetensors("{\"\xe0\x80\xaf\": 1}", ""), "not valid UTF-8"},
      {"surrogate_utf8", testing::RawSafetensors("{\"\xed\xa0\x80\": 1}", ""), "not valid UTF-8"},
      {"above_max_utf8", testing::RawSafetensors("{\"\xf4\x90\x80\x80\": 1}", ""),
       "not valid UTF-8"},
      {"cut_utf8", testing::RawSafetensors("{\"\xe2\x82", ""), "not valid UTF-8"},
      {"bad_json", testing::RawSafetensors("{\"a\": ", ""), "invalid JSON"},
      {"deep_json",
       testing::RawSafetensors("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", ""),
       "JSON nested deeper than 64 levels"},
      {"duplicate",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, )"
                  R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})"),
           f32x2),
       "duplicate key \"a\""},
      {"unknown_dtype",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F7", "shape": [2], "data_offsets": [0, 8]})"), f32x2),
       "tensor \"a\": unknown dtype \"F7\""},
      {"no_shape",
       testing::RawSafetensors(Header(R"("a": {"dtype": "F32", "data_offsets": [0, 8]})"), f32x2),
       "tensor \"a\": missing \"shape\" array"},
      {"negative_shape",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]})"), f32x2),
       "not a non-negative integer"},
      {"shape_overflow",
       testing::RawSafetensors(
           Header(
               R"("a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]})"),
           f32x2),
       "tensor \"a\": shape [4294967296,4294967296] overflows"},
      {"offsets_shape",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [0]})"), f32x2),
       "\"data_offsets\" must be [begin, end]"},
      {"offsets_reversed",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]})"), f32x2),
       "end before they begin"},
      {"size_mismatch",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]})"), f32x2),
       "data_offsets [0, 8] span 8 bytes, but F32 [3] needs 12"},
      {"overlap",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, )"
                  R"("b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]})"),
           f32x2),
       "tensor \"b\" data_offsets [4, 8] overlap tensor \"a\", which ends at 8"},
      {"gap",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]})"), f32x2),
       "tensor \"a\" begins at 4, leaving a gap after byte 0"},
      {"past_end",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]})"), f32x2),
       "truncated: tensor \"a\" data_offsets [0, 16] run past the data section of 8 bytes"},
      {"trailing",
       testing::RawSafetensors(
           Header(R"("a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})"), f32x2),
       "the tensors cover 4 bytes of the data section, which has 8"},
      {"metadata_type", testing::RawSafetensors(Header(R"("__metadata__": {"x": 1})"), ""),
       "__metadata__ \"x\" is an integer, expected a string"},
      {"entry_type", testing::RawSafetensors(Header(R"("a": [1, 2])"), ""),
       "tensor \"a\": expected an object, got an array"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<SafetensorsFile> st = ParseBytes(c.bytes, c.name + ".safetensors");
    ASSERT_FALSE(st.ok()) << c.name;
    EXPECT_THAT(Message(st.status()), HasSubstr(c.message)) << c.name;
    EXPECT_THAT(Message(st.status()), HasSubstr(c.name + ".safetensors")) << c.name;
  }
}

TEST(SafetensorsTest, OpensAFileFromDisk) {
  const std::string dir = testing::MakeTempDir("safetensors");
  testing::WriteFile(dir + "/model.safetensors", ValidFile());
  absl::StatusOr<SafetensorsFile> st = SafetensorsFile::Open(dir + "/model.safetensors");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->path(), dir + "/model.safetensors");
  EXPECT_TRUE(absl::IsNotFound(SafetensorsFile::Open(dir + "/missing.safetensors").status()));
  EXPECT_FALSE(SafetensorsFile::Open(dir).ok());  // a folder
}

}  // namespace
}  // namespace kvgate::runtime
