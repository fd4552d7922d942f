// Tests of the GGUF parser and dequantization (gguf.h) on files written by GgufBuilder: exact
// values for F32, F16, BF16, Q8_0, Q4_0 and Q4_1 blocks with chosen scales and codes; typed
// metadata reads; and every kind of malformed file (truncation at every length, counts past the
// file, huge lengths, bad alignment, overlapping or out-of-file offsets, unknown types) returning
// an error that names the problem, never a crash. Also random corruption of a valid file.
//
// Run: tools/bazel test //experiments/runtime:gguf_test

#include "experiments/runtime/gguf.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "experiments/runtime/loader_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::GgufBuilder;
using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

absl::StatusOr<GgufFile> ParseBytes(const std::string& bytes,
                                    const std::string& name = "test.gguf") {
  return GgufFile::Parse(MappedFile::FromBytes(bytes, name));
}

std::vector<float> Dequantized(const GgufTensorInfo& t) {
  std::vector<float> out(t.numel);
  absl::Status s = DequantizeGgufTensor(t, out.data());
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

std::vector<int8_t> Ramp8() {
  std::vector<int8_t> q(32);
  for (int i = 0; i < 32; ++i)
    q[i] = static_cast<int8_t>(i * 8 - 127 + (i == 31 ? 6 : 0));  // -127..127
  return q;
}

std::vector<uint8_t> Ramp4() {
  std::vector<uint8_t> q(32);
  for (int i = 0; i < 32; ++i) q[i] = static_cast<uint8_t>((i * 7) % 16);
  return q;
}

// A small valid file: metadata of several types and one tensor of each supported type.
GgufBuilder ValidBuilder() {
  GgufBuilder b;
  b.String("general.architecture", "llama")
      .Uint32("llama.block_count", 2)
      .Float32("llama.rope.freq_base", 10000.0f)
      .Bool("tokenizer.ggml.add_bos_token", true)
      .StringArray("tokenizer.ggml.tokens", {"a", "b", "c"})
      .Int32Array("tokenizer.ggml.token_type", {1, 1, 3})
      .Tensor("f32", 0, {4, 2}, testing::F32Bytes({1, -2, 3.5f, 0, 1e-3f, -1e9f, 7, 8}))
      .Tensor("f16", 1, {3}, testing::F16Bytes({0.5f, -65504.0f, 6.103515625e-05f}))
      .Tensor("bf16", 30, {2}, testing::Bf16Bytes({1.5f, -2.0f}))
      .Tensor("q8_0", 8, {32, 2},
              testing::Q8_0Block(0.5f, Ramp8()) + testing::Q8_0Block(-0.25f, Ramp8()))
      .Tensor("q4_0", 2, {32}, testing::Q4_0Block(0.125f, Ramp4()))
      .Tensor(
          "q4_1", 3, {64},
          testing::Q4_1Block(0.0625f, -1.5f, Ramp4()) + testing::Q4_1Block(2.0f, 0.25f, Ramp4()))
      .Tensor("tail", 0, {8},
              testing::F32Bytes({1, 2, 3, 4, 5, 6, 7, 8}));  // 32 bytes: no trailing padding
  return b;
}

TEST(GgufTest, ParsesFromAByteBuffer) {
  absl::StatusOr<GgufFile> gguf = ParseGguf(ValidBuilder().Build(), "buffer");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_EQ(gguf->tensors().size(), 7u);
  EXPECT_EQ(gguf->path(), "buffer");
  EXPECT_THAT(Message(ParseGguf("GGUF").status()), HasSubstr("<memory>: truncated"));
}

TEST(GgufTest, ParsesMetadataAndTensorIndex) {
  const std::string bytes = ValidBuilder().Build();
  absl::StatusOr<GgufFile> gguf = ParseBytes(bytes);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_EQ(gguf->version(), 3u);
  EXPECT_EQ(gguf->alignment(), 32u);
  EXPECT_EQ(gguf->data_offset() % 32, 0u);
  EXPECT_EQ(*gguf->GetString("general.architecture"), "llama");
  EXPECT_EQ(*gguf->GetUint("llama.block_count"), 2u);
  EXPECT_EQ(*gguf->GetFloat("llama.rope.freq_base"), 10000.0);
  EXPECT_EQ(*gguf->GetFloat("llama.block_count"), 2.0);  // integers read as numbers too
  EXPECT_TRUE(*gguf->GetBool("tokenizer.ggml.add_bos_token"));
  EXPECT_THAT(**gguf->GetStringArray("tokenizer.ggml.tokens"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(**gguf->GetIntArray("tokenizer.ggml.token_type"), ElementsAre(1, 1, 3));
  ASSERT_EQ(gguf->tensors().size(), 7u);
  const GgufTensorInfo* q8 = gguf->FindTensor("q8_0");
  ASSERT_NE(q8, nullptr);
  EXPECT_THAT(q8->dims, ElementsAre(32, 2));
  EXPECT_THAT(q8->TorchShape(), ElementsAre(2, 32));
  EXPECT_EQ(q8->numel, 64);
  EXPECT_EQ(q8->bytes, 68u);
  EXPECT_EQ(GgmlTypeName(q8->type), "Q8_0");
  EXPECT_EQ(gguf->FindTensor("missing"), nullptr);
}

TEST(GgufTest, TypedReadsNameTheKeyAndWhatWasExpected) {
  absl::StatusOr<GgufFile> gguf = ParseBytes(ValidBuilder().Build(), "model.gguf");
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  absl::StatusOr<uint64_t> missing = gguf->GetUint("llama.embedding_length");
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(Message(missing.status()),
              HasSubstr("model.gguf: missing metadata key \"llama.embedding_length\" (expected an "
                        "unsigned integer)"));
  absl::StatusOr<std::string> wrong = gguf->GetString("llama.block_count");
  EXPECT_THAT(Message(wrong.status()),
              HasSubstr("metadata key \"llama.block_count\": expected a string, got uint32"));
  EXPECT_THAT(Message(gguf->GetStringArray("tokenizer.ggml.token_type").status()),
              HasSubstr("expected an array of strings, got array of int32"));
}

TEST(GgufTest, DequantizesEveryTypeToKnownValues) {
  absl::StatusOr<GgufFile> gguf = ParseBytes(ValidBuilder().Build());
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_THAT(Dequantized(*gguf->FindTensor("f32")),
              ElementsAre(1, -2, 3.5f, 0, 1e-3f, -1e9f, 7, 8));
  EXPECT_THAT(Dequantized(*gguf->FindTensor("f16")),
              ElementsAre(0.5f, -65504.0f, 6.103515625e-05f));
  EXPECT_THAT(Dequantized(*gguf->FindTensor("bf16")), ElementsAre(1.5f, -2.0f));

  std::vector<float> expected;
  for (float d : {0.5f, -0.25f}) {
    for (int8_t q : Ramp8()) expected.push_back(d * q);
  }
  EXPECT_THAT(Dequantized(*gguf->FindTensor("q8_0")), ElementsAreArray(expected));

  expected.clear();
  for (uint8_t q : Ramp4()) expected.push_back(0.125f * (static_cast<int>(q) - 8));
  EXPECT_THAT(Dequantized(*gguf->FindTensor("q4_0")), ElementsAreArray(expected));

  expected.clear();
  for (auto [d, m] : {std::pair<float, float>{0.0625f, -1.5f}, {2.0f, 0.25f}}) {
    for (uint8_t q : Ramp4()) expected.push_back(d * q + m);
  }
  EXPECT_THAT(Dequantized(*gguf->FindTensor("q4_1")), ElementsAreArray(expected));
}

TEST(GgufTest, Q4NibbleOrderIsLowHalfThenHighHalf) {
  // Byte j holds element j in its low nibble and element j + 16 in its high nibble.
  std::string block = testing::Q4_1Block(1.0f, 0.0f, std::vector<uint8_t>(32, 0));
  block[4] = static_cast<char>(0x3A);  // element 0 = 10, element 16 = 3
  std::vector<float> out(32);
  DequantizeQ4_1(reinterpret_cast<const uint8_t*>(block.data()), 1, out.data());
  EXPECT_EQ(out[0], 10.0f);
  EXPECT_EQ(out[16], 3.0f);
  EXPECT_EQ(out[1], 0.0f);
}

TEST(GgufTest, HalfConversionCoversSubnormalsAndSpecials) {
  EXPECT_EQ(HalfToFloat(0x0001), 5.9604644775390625e-08f);
  EXPECT_EQ(HalfToFloat(0x8000), -0.0f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7C00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7E00)));
  EXPECT_EQ(Bfloat16ToFloat(0x3FC0), 1.5f);
}

// Found by gguf_fuzzer under UBSan: an F32 tensor of zero elements was memcpy'd with the null
// pointers an empty output vector (and an empty tensor) give. Also replayed from
// fuzz/regressions/gguf/ by fuzz_seeds_test.
TEST(GgufTest, ZeroSizeTensorDequantizesIntoAnEmptyBuffer) {
  for (uint32_t type : {0u, 1u, 30u, 8u, 2u, 3u}) {  // F32, F16, BF16, Q8_0, Q4_0, Q4_1
    const std::vector<int64_t> ne = type == 0 || type == 1 || type == 30
                                        ? std::vector<int64_t>{0}
                                        : std::vector<int64_t>{32, 0};
    absl::StatusOr<GgufFile> gguf = ParseBytes(GgufBuilder().Tensor("t", type, ne, "").Build());
    ASSERT_TRUE(gguf.ok()) << gguf.status();
    const GgufTensorInfo& t = *gguf->FindTensor("t");
    EXPECT_EQ(t.numel, 0);
    std::vector<float> out;  // data() is null
    EXPECT_TRUE(DequantizeGgufTensor(t, out.data()).ok()) << GgmlTypeName(type);
  }
}

TEST(GgufTest, UnsupportedTypeParsesButDoesNotDequantize) {
  const std::string bytes =
      GgufBuilder().Tensor("k", 12, {256}, std::string(144, '\0')).Build();  // Q4_K
  absl::StatusOr<GgufFile> gguf = ParseBytes(bytes);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  std::vector<float> out(256);
  absl::Status s = DequantizeGgufTensor(*gguf->FindTensor("k"), out.data());
  EXPECT_TRUE(absl::IsUnimplemented(s));
  EXPECT_THAT(Message(s), HasSubstr("tensor \"k\": dequantizing Q4_K is not implemented"));
}

TEST(GgufTest, EveryTruncationIsAnError) {
  const std::string bytes = ValidBuilder().Build();
  for (size_t length = 0; length < bytes.size(); ++length) {
    absl::StatusOr<GgufFile> gguf = ParseBytes(bytes.substr(0, length));
    ASSERT_FALSE(gguf.ok()) << "a prefix of " << length << " of " << bytes.size()
                            << " bytes parsed";
    ASSERT_TRUE(absl::IsInvalidArgument(gguf.status())) << length << ": " << gguf.status();
  }
  absl::StatusOr<GgufFile> cut = ParseBytes(bytes.substr(0, bytes.size() - 1));
  EXPECT_THAT(Message(cut.status()), HasSubstr("tensor \"tail\": data ["));
  EXPECT_THAT(Message(cut.status()), HasSubstr("lies outside the data section"));
  EXPECT_THAT(Message(ParseBytes(bytes.substr(0, 12)).status()),
              HasSubstr("truncated: tensor count needs 8 bytes"));
}

TEST(GgufTest, RandomCorruptionNeverCrashes) {
  const std::string bytes = ValidBuilder().Build();
  std::mt19937 rng(7);
  int failures = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string copy = bytes;
    const int flips = 1 + trial % 4;
    for (int f = 0; f < flips; ++f) {
      const size_t at = rng() % std::min<size_t>(copy.size(), 700);  // the header
      copy[at] = static_cast<char>(rng());
    }
    absl::StatusOr<GgufFile> gguf = ParseBytes(copy);
    if (!gguf.ok()) {
      ++failures;
      continue;
    }
    for (const GgufTensorInfo& t : gguf->tensors()) {  // what parsed must be readable in bounds
      ASSERT_LE(t.data + t.bytes, gguf->file()->data() + gguf->file()->size());
      if (GgmlTypeDequantizable(t.type) && t.numel < (1 << 20)) {
        std::vector<float> out(t.numel);
        ASSERT_TRUE(DequantizeGgufTensor(t, out.data()).ok());
      }
    }
  }
  EXPECT_GT(failures, 100);
}

struct BadCase {
  std::string name;
  std::string bytes;
  std::string message;
};

std::vector<BadCase> BadCases() {
  std::vector<BadCase> cases;
  auto add = [&](std::string name, std::string bytes, std::string message) {
    cases.push_back({std::move(name), std::move(bytes), std::move(message)});
  };
  const std::string f32 = testing::F32Bytes({1, 2, 3, 4, 5, 6, 7, 8});
  add("magic", "GGML" + ValidBuilder().Build().substr(4), "not a GGUF file");
  add("version1", GgufBuilder().Version(1).Build(), "GGUF version 1 is not supported");
  add("big_endian", GgufBuilder().Version(0x03000000).Build(), "big-endian GGUF is not supported");
  add("huge_tensor_count", GgufBuilder().TensorCountOverride(uint64_t{1} << 60).Build(),
      "tensor count 1152921504606846976 exceeds the limit");
  add("tensor_count_past_file", GgufBuilder().TensorCountOverride(1000).Build(),
      "more than the file's");
  add("huge_kv_count", GgufBuilder().KvCountOverride(~uint64_t{0}).Build(), "metadata count");
  add("kv_count_past_file", GgufBuilder().String("a", "b").KvCountOverride(3).Build(),
      "more than the file's");
  {
    std::string v;
    const uint64_t huge = uint64_t{1} << 40;
    v.append(reinterpret_cast<const char*>(&huge), 8);
    add("huge_string", GgufBuilder().Raw("k", 8, v + "abc").Build(),
        "value of key \"k\" is 1099511627776 bytes long");
    add("string_past_end",
        GgufBuilder().Raw("k", 8, std::string("\x10\0\0\0\0\0\0\0abc", 11)).Build(),
        "truncated: value of key \"k\" needs 16 bytes");
  }
  {
    std::string v;
    const uint32_t type = 4;
    const uint64_t n = uint64_t{1} << 23;  // under the element limit, past the file
    v.append(reinterpret_cast<const char*>(&type), 4);
    v.append(reinterpret_cast<const char*>(&n), 8);
    add("array_past_end", GgufBuilder().Raw("arr", 9, v).Build(),
        "value of key \"arr\" (8388608 elements)");
    const uint64_t too_many = uint64_t{1} << 40;
    std::string w(reinterpret_cast<const char*>(&type), 4);
    w.append(reinterpret_cast<const char*>(&too_many), 8);
    add("array_too_long", GgufBuilder().Raw("arr", 9, w).Build(), "more than the limit");
    const uint32_t array_type = 9;
    std::string nested(reinterpret_cast<const char*>(&array_type), 4);
    nested.append(8, '\0');
    add("array_of_arrays", GgufBuilder().Raw("arr", 9, nested).Build(), "array of arrays");
  }
  add("unknown_value_type", GgufBuilder().Raw("k", 13, "").Build(),
      "value of key \"k\" has unknown type 13");
  add("bad_bool", GgufBuilder().Raw("k", 7, "\x02").Build(), "bool value 2 is not 0 or 1");
  add("duplicate_key", GgufBuilder().Uint32("k", 1).Uint32("k", 2).Build(),
      "duplicate metadata key \"k\"");
  add("alignment_not_power_of_two", GgufBuilder().Uint32("general.alignment", 24).Build(),
      "general.alignment 24 is not a power of two");
  add("alignment_zero", GgufBuilder().Uint32("general.alignment", 0).Build(),
      "general.alignment 0 is not a power of two");
  add("alignment_too_big", GgufBuilder().Uint32("general.alignment", 1u << 30).Build(),
      "is not a power of two between 1 and 65536");
  add("alignment_wrong_type", GgufBuilder().Uint64("general.alignment", 32).Build(),
      "general.alignment must be a uint32, got uint64");
  add("five_dims", GgufBuilder().Tensor("t", 0, {1, 1, 1, 1, 8}, f32).Build(),
      "tensor \"t\": n_dims 5 is not between 1 and 4");
  add("negative_dim", GgufBuilder().Tensor("t", 0, {8, -1}, f32).Build(),
      "tensor \"t\": dim 1 is negative");
  add("dim_overflow",
      GgufBuilder().Tensor("t", 0, {int64_t{1} << 40, int64_t{1} << 40}, f32).Build(),
      "tensor \"t\": element count overflows");
  add("unknown_ggml_type", GgufBuilder().Tensor("t", 77, {8}, f32).Build(),
      "tensor \"t\": unknown or unsupported ggml type 77");
  add("block_multiple", GgufBuilder().Tensor("t", 3, {16}, std::string(20, '\0')).Build(),
      "innermost dim 16 is not a multiple of Q4_1's block size 32");
  add("unaligned_offset", GgufBuilder().Tensor("t", 0, {8}, f32, 4).Build(),
      "offset 4 is not a multiple of the alignment 32");
  add("offset_past_end", GgufBuilder().Tensor("t", 0, {8}, f32, uint64_t{1} << 40).Build(),
      "tensor \"t\" has offset 1099511627776, expected 0");
  add("offset_overflow", GgufBuilder().Tensor("t", 0, {8}, f32, ~uint64_t{0} - 31).Build(),
      "has offset 18446744073709551584, expected 0");
  add("data_past_end", GgufBuilder().Tensor("t", 0, {16}, f32).Build(),
      "tensor \"t\": data [0, 0 + 64) lies outside the data section of 32 bytes");
  add("overlap", GgufBuilder().Tensor("a", 0, {8}, f32, 0).Tensor("b", 0, {8}, f32, 0).Build(),
      "tensor \"b\" has offset 0, expected 32");
  add("overlap_partial",
      GgufBuilder().Tensor("a", 0, {16}, f32 + f32, 0).Tensor("b", 0, {8}, f32, 32).Build(),
      "tensor \"b\" has offset 32, expected 64");
  add("out_of_order",
      GgufBuilder().Tensor("a", 0, {8}, f32, 32).Tensor("b", 0, {8}, f32, 0).Build(),
      "tensor \"a\" has offset 32, expected 0");
  add("gap", GgufBuilder().Tensor("a", 0, {8}, f32, 0).Tensor("b", 0, {8}, f32, 64).Build(),
      "tensor \"b\" has offset 64, expected 32");
  // F64 [2^61 - 1]: 2^64 - 8 bytes, whose padding to 32 overflows.
  add("pad_overflow",
      GgufBuilder().Tensor("t", 28, {(int64_t{1} << 61) - 1}, std::string(8, '\0'), 0).Build(),
      "tensor \"t\": 18446744073709551608 bytes overflow when padded to the alignment 32");
  add("duplicate_tensor", GgufBuilder().Tensor("t", 0, {8}, f32).Tensor("t", 0, {8}, f32).Build(),
      "duplicate tensor name \"t\"");
  add("long_name", GgufBuilder().Tensor(std::string(64, 'x'), 0, {8}, f32).Build(),
      "name must be 1 to 63 bytes");
  return cases;
}

TEST(GgufTest, MalformedFilesAreErrorsThatNameTheProblem) {
  for (const BadCase& c : BadCases()) {
    absl::StatusOr<GgufFile> gguf = ParseBytes(c.bytes, c.name + ".gguf");
    ASSERT_FALSE(gguf.ok()) << c.name;
    EXPECT_THAT(Message(gguf.status()), HasSubstr(c.message)) << c.name;
    EXPECT_THAT(Message(gguf.status()), HasSubstr(c.name + ".gguf")) << c.name;
  }
}

TEST(GgufTest, OpenNamesAMissingFile) {
  absl::StatusOr<GgufFile> gguf = GgufFile::Open("/nonexistent/model.gguf");
  EXPECT_TRUE(absl::IsNotFound(gguf.status()));
  EXPECT_THAT(Message(gguf.status()), HasSubstr("/nonexistent/model.gguf"));
}

}  // namespace
}  // namespace kvgate::runtime
