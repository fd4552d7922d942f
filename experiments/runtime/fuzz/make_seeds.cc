// Writes the generated seeds of the fuzz targets (small valid files, built with the tests'
// builders in loader_test_util, never hand-edited bytes) into a folder:
//   <out>/safetensors/: files of every dtype, with metadata, a zero-size tensor, no tensors;
//   <out>/gguf/: a GGUF with a byte-level BPE vocabulary (tokenizer.ggml.*, pre "smollm"), added
//   tokens and tensors of every type DequantizeGgufTensor supports; version 2; no tensors.
// Usage: make_seeds <out folder>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/runtime/loader_test_util.h"
#include "experiments/runtime/tokenizer.h"
#include "experiments/runtime/tokenizer_unicode.h"

namespace kvgate::runtime {
namespace {

using testing::GgufBuilder;
using testing::StTensor;

void SafetensorsSeeds(const std::string& dir) {
  testing::WriteFile(dir + "/all_dtypes.safetensors",
                     testing::BuildSafetensors(
                         {{"f32", "F32", {2, 3}, testing::F32Bytes({1, 2, 3, 4, 5, 6})},
                          {"f16", "F16", {2}, testing::F16Bytes({0.5f, -2})},
                          {"bf16", "BF16", {1, 2}, testing::Bf16Bytes({1, -1})},
                          {"i64", "I64", {1}, std::string(8, '\x01')},
                          {"u8", "U8", {3}, "abc"},
                          {"bool", "BOOL", {1}, std::string(1, '\x01')},
                          {"empty", "F32", {0, 4}, ""}},
                         {{"format", "pt"}}));
  testing::WriteFile(dir + "/scalar.safetensors",
                     testing::BuildSafetensors({{"s", "F64", {}, std::string(8, '\0')}}));
  testing::WriteFile(dir + "/no_tensors.safetensors", testing::BuildSafetensors({}));
}

void GgufSeeds(const std::string& dir) {
  // A byte-level BPE vocabulary: the 256 byte characters, a few merges and their results, and
  // added tokens (type 3 control, 4 user-defined).
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) {
    std::string token;
    AppendUtf8(ByteToUnicode(static_cast<uint8_t>(b)), &token);
    tokens.push_back(token);
  }
  const std::vector<std::string> merges = {"h e", "l l", "he ll", "Ġ w", "o r"};
  for (const std::string& m : merges) {
    std::string merged = m;
    merged.erase(merged.find(' '), 1);
    tokens.push_back(merged);
  }
  tokens.push_back("<|im_start|>");
  tokens.push_back("<|im_end|>");
  tokens.push_back("<tool>");
  std::vector<int32_t> types(tokens.size(), 1);
  types[tokens.size() - 3] = 3;
  types[tokens.size() - 2] = 3;
  types[tokens.size() - 1] = 4;
  GgufBuilder builder;
  builder.String("general.architecture", "llama")
      .Uint32("general.alignment", 32)
      .Uint32("llama.block_count", 1)
      .Float32("llama.rope.freq_base", 10000.0f)
      .Bool("tokenizer.ggml.add_bos_token", false)
      .String("tokenizer.ggml.model", "gpt2")
      .String("tokenizer.ggml.pre", "smollm")
      .StringArray("tokenizer.ggml.tokens", tokens)
      .Int32Array("tokenizer.ggml.token_type", types)
      .StringArray("tokenizer.ggml.merges", merges)
      .Uint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(tokens.size() - 3))
      .Uint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tokens.size() - 2));
  std::vector<float> f32(32);
  for (int i = 0; i < 32; ++i) f32[i] = static_cast<float>(i) - 16;
  std::vector<int8_t> q8(32);
  std::vector<uint8_t> q4(32);
  for (int i = 0; i < 32; ++i) {
    q8[i] = static_cast<int8_t>(i * 7 - 100);
    q4[i] = static_cast<uint8_t>(i % 16);
  }
  builder.Tensor("f32", 0, {32}, testing::F32Bytes(f32))
      .Tensor("f16", 1, {8, 2}, testing::F16Bytes(std::vector<float>(16, 0.25f)))
      .Tensor("bf16", 30, {4}, testing::Bf16Bytes({1, 2, 3, 4}))
      .Tensor("q8_0", 8, {32}, testing::Q8_0Block(0.5f, q8))
      .Tensor("q4_0", 2, {32}, testing::Q4_0Block(0.25f, q4))
      .Tensor("q4_1", 3, {32, 1}, testing::Q4_1Block(0.5f, -1.0f, q4));
  testing::WriteFile(dir + "/vocab_and_tensors.gguf", builder.Build());
  testing::WriteFile(dir + "/version2.gguf",
                     GgufBuilder().Version(2).String("general.name", "v2").Build());
  testing::WriteFile(dir + "/empty.gguf", GgufBuilder().Build());
}

}  // namespace
}  // namespace kvgate::runtime

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <out folder>\n");
    return 2;
  }
  const std::string out = argv[1];
  std::filesystem::create_directories(out + "/safetensors");
  std::filesystem::create_directories(out + "/gguf");
  kvgate::runtime::SafetensorsSeeds(out + "/safetensors");
  kvgate::runtime::GgufSeeds(out + "/gguf");
  return 0;
}
