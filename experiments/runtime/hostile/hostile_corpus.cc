// See hostile_corpus.h. Every file is built from a small valid file of its format with one thing
// changed, so each error has one cause; the valid bases are in the corpus too and must load.

#include "experiments/runtime/hostile/hostile_corpus.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "experiments/runtime/tokenizer.h"
#include "experiments/runtime/tokenizer_unicode.h"

namespace kvgate::runtime::hostile {
namespace {

using absl::StatusCode;

// Little-endian bytes, written the same on every host.
class Bytes {
 public:
  Bytes& U8(uint8_t v) { return Le(v, 1); }
  Bytes& U32(uint32_t v) { return Le(v, 4); }
  Bytes& U64(uint64_t v) { return Le(v, 8); }
  Bytes& I64(int64_t v) { return Le(static_cast<uint64_t>(v), 8); }
  Bytes& F32(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    return U32(bits);
  }
  Bytes& Raw(absl::string_view s) {
    out_.append(s.data(), s.size());
    return *this;
  }
  Bytes& Fill(size_t n, char c) {
    out_.append(n, c);
    return *this;
  }
  // GGUF string: u64 length, then the bytes.
  Bytes& Str(absl::string_view s) { return U64(s.size()).Raw(s); }
  Bytes& PadTo(uint64_t alignment) { return Fill((alignment - out_.size() % alignment) % alignment, '\0'); }
  const std::string& str() const { return out_; }

 private:
  Bytes& Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    return *this;
  }
  std::string out_;
};

constexpr uint64_t kMaxU64 = ~uint64_t{0};
constexpr uint64_t k2p62 = uint64_t{1} << 62;
constexpr uint64_t k2p63 = uint64_t{1} << 63;

// ---- safetensors ----

// Tensor "a": F32 [2] = {1, 2}, 8 bytes.
const char kStA[] = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

std::string F32Data(int n) {
  Bytes b;
  for (int i = 0; i < n; ++i) b.F32(static_cast<float>(i + 1));
  return b.str();
}

// 8-byte header length (the header's own size unless `length` is given), header, data.
std::string Safetensors(absl::string_view header, absl::string_view data,
                        std::optional<uint64_t> length = std::nullopt) {
  return Bytes().U64(length.value_or(header.size())).Raw(header).Raw(data).str();
}

std::string StHeader(absl::string_view tensors) { return absl::StrCat("{", tensors, "}"); }

void AddSafetensors(std::vector<HostileFile>* out) {
  auto add = [&](std::string name, std::string bytes, StatusCode code, std::string fragment,
                 std::string attack) {
    out->push_back({absl::StrCat("st_", name, ".safetensors"), HostileLoader::kSafetensors,
                    std::move(bytes), code, std::move(fragment), std::move(attack)});
  };
  const std::string valid_header = StHeader(kStA);
  add("valid", Safetensors(valid_header, F32Data(2)), StatusCode::kOk, "",
      "control: one F32 tensor, the base the other st_ files change");
  add("zero_size_tensor",
      Safetensors(StHeader(absl::StrCat(
                      R"("empty":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},)", kStA)),
                  F32Data(2)),
      StatusCode::kOk, "", "a tensor of shape [0, 4] with data_offsets [0, 0]: valid, must load");
  add("header_length_max", Safetensors(valid_header, F32Data(2), kMaxU64),
      StatusCode::kInvalidArgument, "header length 18446744073709551615 exceeds the limit",
      "header length 2^64-1 (8 + N overflows)");
  add("header_length_100000001", Safetensors(valid_header, F32Data(2), 100000001),
      StatusCode::kInvalidArgument, "header length 100000001 exceeds the limit of 100000000",
      "header length one past the safetensors limit of 100,000,000");
  add("header_length_past_file", Safetensors(valid_header, F32Data(2), 1000),
      StatusCode::kInvalidArgument, "header length 1000 runs past the end of the file",
      "header length larger than the file");
  add("header_not_json", Safetensors(R"({"a":{"dtype":"F32","shape":[2],)", F32Data(2)),
      StatusCode::kInvalidArgument, "header: invalid JSON", "header cut off mid-object");
  add("header_not_object", Safetensors("[1,2]", F32Data(2)), StatusCode::kInvalidArgument,
      "header is not a JSON object", "header is a JSON array");
  add("header_not_utf8",
      Safetensors(StHeader(absl::StrCat(R"("a)", std::string(1, '\xff'),
                                        R"(":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})")),
                  F32Data(2)),
      StatusCode::kInvalidArgument, "header is not valid UTF-8",
      "tensor name with the byte 0xFF (not UTF-8)");
  add("header_deep",
      Safetensors(absl::StrCat(R"({"__metadata__":)", std::string(1000, '['),
                               std::string(1000, ']'), "}"),
                  ""),
      StatusCode::kInvalidArgument, "header: JSON nested deeper than 64 levels",
      "header JSON nested 1000 levels deep (stack exhaustion in a recursive parser)");
  add("tensor_not_object", Safetensors(StHeader(R"("a":7)"), ""), StatusCode::kInvalidArgument,
      "tensor \"a\": expected an object, got an integer", "a tensor entry that is a number");
  add("metadata_not_string",
      Safetensors(StHeader(absl::StrCat(R"("__metadata__":{"format":1},)", kStA)), F32Data(2)),
      StatusCode::kInvalidArgument, "__metadata__ \"format\" is an integer, expected a string",
      "__metadata__ value that is not a string");
  add("shared_bytes",
      Safetensors(StHeader(absl::StrCat(
                      kStA, R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})")),
                  F32Data(2)),
      StatusCode::kInvalidArgument, "data_offsets [0, 8] overlap tensor",
      "two tensors sharing the same bytes [0, 8)");
  add("gap",
      Safetensors(StHeader(absl::StrCat(
                      kStA, R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]})")),
                  F32Data(5)),
      StatusCode::kInvalidArgument, "tensor \"b\" begins at 12, leaving a gap after byte 8",
      "four unused bytes between two tensors");
  add("trailing_bytes", Safetensors(valid_header, F32Data(2) + "xy"),
      StatusCode::kInvalidArgument, "cover 8 bytes of the data section, which has 10",
      "two bytes after the last tensor");
  add("data_short_by_2", Safetensors(valid_header, F32Data(2).substr(0, 6)),
      StatusCode::kInvalidArgument,
      "truncated: tensor \"a\" data_offsets [0, 8] run past the data section of 6 bytes",
      "data section 2 bytes shorter than the last tensor");
  add("shape_numel_overflow",
      Safetensors(StHeader(
                      R"("a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"),
                  F32Data(2)),
      StatusCode::kInvalidArgument, "tensor \"a\": shape [4294967296,4294967296] overflows",
      "shape [2^32, 2^32]: element count 2^64 overflows");
  add("shape_bytes_overflow",
      Safetensors(StHeader(
                      R"("a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]})"),
                  F32Data(2)),
      StatusCode::kInvalidArgument, "tensor \"a\": byte size overflows",
      "shape [2^62] of F32: 2^64 bytes overflow");
  add("shape_negative",
      Safetensors(StHeader(R"("a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"),
                  F32Data(2)),
      StatusCode::kInvalidArgument, "has an entry that is not a non-negative integer",
      "negative dimension");
  add("end_before_begin",
      Safetensors(StHeader(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]})"),
                  F32Data(2)),
      StatusCode::kInvalidArgument, "data_offsets [8, 0] end before they begin",
      "data_offsets [8, 0]");
  add("unknown_dtype",
      Safetensors(StHeader(R"("a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]})"),
                  F32Data(2)),
      StatusCode::kInvalidArgument, "tensor \"a\": unknown dtype \"F17\"", "dtype \"F17\"");
}

// ---- GGUF ----

constexpr uint32_t kTypeString = 8;
constexpr uint32_t kTypeArray = 9;
constexpr uint32_t kTypeUint8 = 0;
constexpr uint32_t kTypeUint32 = 4;
constexpr uint32_t kGgmlF32 = 0;
constexpr uint32_t kGgmlQ8_0 = 8;
constexpr uint32_t kGgmlF64 = 28;

Bytes GgufHeader(uint64_t n_tensors, uint64_t n_kv) {
  Bytes b;
  b.Raw("GGUF").U32(3).U64(n_tensors).U64(n_kv);
  return b;
}
void KvString(Bytes& b, absl::string_view key, absl::string_view value) {
  b.Str(key).U32(kTypeString).Str(value);
}
void KvU32(Bytes& b, absl::string_view key, uint32_t value) {
  b.Str(key).U32(kTypeUint32).U32(value);
}
void TensorInfo(Bytes& b, absl::string_view name, const std::vector<int64_t>& dims, uint32_t type,
                uint64_t offset) {
  b.Str(name).U32(static_cast<uint32_t>(dims.size()));
  for (int64_t d : dims) b.I64(d);
  b.U32(type).U64(offset);
}

// One metadata entry and one F32 [8] tensor "t" at offset 0, data aligned to 32.
std::string GgufWithTensor(const std::vector<int64_t>& dims, uint32_t type, uint64_t offset,
                           int data_floats = 8) {
  Bytes b = GgufHeader(1, 1);
  KvString(b, "general.architecture", "llama");
  TensorInfo(b, "t", dims, type, offset);
  b.PadTo(32).Raw(F32Data(data_floats));
  return b.str();
}

// The tokenizer metadata of a GGUF: 256 byte tokens, "ab", one merge.
void GgufTokenizerKv(Bytes& b, uint64_t bos) {
  KvString(b, "tokenizer.ggml.model", "gpt2");
  KvString(b, "tokenizer.ggml.pre", "gpt-2");
  b.Str("tokenizer.ggml.tokens").U32(kTypeArray).U32(kTypeString).U64(257);
  for (int byte = 0; byte < 256; ++byte) {
    std::string token;
    AppendUtf8(ByteToUnicode(static_cast<uint8_t>(byte)), &token);
    b.Str(token);
  }
  b.Str("ab");
  b.Str("tokenizer.ggml.merges").U32(kTypeArray).U32(kTypeString).U64(1).Str("a b");
  KvU32(b, "tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos));
}

void AddGguf(std::vector<HostileFile>* out) {
  auto add = [&](std::string name, std::string bytes, StatusCode code, std::string fragment,
                 std::string attack, HostileLoader loader = HostileLoader::kGguf) {
    out->push_back({absl::StrCat("gguf_", name, ".gguf"), loader, std::move(bytes), code,
                    std::move(fragment), std::move(attack)});
  };
  add("valid", GgufWithTensor({8}, kGgmlF32, 0), StatusCode::kOk, "",
      "control: one string key, one F32 [8] tensor; the base the other gguf_ files change");
  auto counts = [](uint64_t n_tensors, uint64_t n_kv) {
    Bytes b = GgufHeader(n_tensors, n_kv);
    KvString(b, "general.architecture", "llama");
    return b.str();
  };
  add("n_tensors_2p63", counts(k2p63, 1), StatusCode::kInvalidArgument,
      "tensor count 9223372036854775808 exceeds the limit", "n_tensors 2^63");
  add("n_tensors_max", counts(kMaxU64, 1), StatusCode::kInvalidArgument,
      "tensor count 18446744073709551615 exceeds the limit", "n_tensors 2^64-1");
  add("n_kv_2p63", counts(0, k2p63), StatusCode::kInvalidArgument,
      "metadata count 9223372036854775808 exceeds the limit", "n_kv 2^63");
  add("n_kv_max", counts(0, kMaxU64), StatusCode::kInvalidArgument,
      "metadata count 18446744073709551615 exceeds the limit", "n_kv 2^64-1");
  {
    // n_tensors within the limits and within what the bytes left could hold, followed by 64 KiB
    // of zeros: tensor 0 has an empty name. A parser that reserves n_tensors records up front
    // allocates ~100 bytes per claimed tensor, 3x the file.
    Bytes b = GgufHeader(2048, 0);
    b.Fill(65536, '\0');
    add("n_tensors_fills_file", b.str(), StatusCode::kInvalidArgument,
        "tensor \"\": name must be 1 to 63 bytes",
        "n_tensors 2048, as many as the 64 KiB left could hold, then zeros (allocation per claim)");
  }
  {
    Bytes b = GgufHeader(0, 1);
    b.Str("general.name").U32(kTypeString).U64(1000).Raw("short");
    add("string_past_end", b.str(), StatusCode::kInvalidArgument,
        "truncated: value of key \"general.name\" needs 1000 bytes",
        "string length 1000 with 5 bytes left in the file");
  }
  {
    Bytes b = GgufHeader(0, 1);
    b.Str("general.name").U32(kTypeString).U64(kMaxU64).Raw("short");
    add("string_length_max", b.str(), StatusCode::kInvalidArgument,
        "value of key \"general.name\" is 18446744073709551615 bytes long",
        "string length 2^64-1");
  }
  {
    Bytes b = GgufHeader(0, 1);
    b.Str("tokenizer.ggml.token_type").U32(kTypeArray).U32(kTypeUint8).U64(k2p62).Fill(64, '\1');
    add("array_2p62", b.str(), StatusCode::kInvalidArgument,
        "value of key \"tokenizer.ggml.token_type\" has 4611686018427387904 elements",
        "uint8 array of 2^62 elements");
  }
  {
    // As many strings as the bytes left could hold (8 bytes each at least), then 0xFF bytes:
    // string 0's length is 2^64-1. A parser that sizes the array from the count allocates
    // 32 bytes per claimed string, 4x the file.
    Bytes b = GgufHeader(0, 1);
    b.Str("tokenizer.ggml.tokens").U32(kTypeArray).U32(kTypeString).U64(8192).Fill(65536, '\xff');
    add("string_array_fills_file", b.str(), StatusCode::kInvalidArgument,
        "value of key \"tokenizer.ggml.tokens\" element 0 is 18446744073709551615 bytes long",
        "array of 8192 strings, as many as the 64 KiB left could hold, of length 2^64-1");
  }
  {
    Bytes b = GgufHeader(0, 1);
    b.Str("general.nested").U32(kTypeArray).U32(kTypeArray).U64(1).U32(kTypeUint8).U64(1).U8(0);
    add("array_of_arrays", b.str(), StatusCode::kInvalidArgument,
        "value of key \"general.nested\" is an array of arrays", "array whose elements are arrays");
  }
  {
    Bytes b = GgufHeader(1, 1);
    KvString(b, "general.architecture", "llama");
    b.Str("t").U32(5);
    for (int d = 0; d < 5; ++d) b.I64(1);
    b.U32(kGgmlF32).U64(0).PadTo(32).Raw(F32Data(1));
    add("n_dims_5", b.str(), StatusCode::kInvalidArgument,
        "tensor \"t\": n_dims 5 is not between 1 and 4", "tensor with 5 dimensions");
  }
  add("dim_negative", GgufWithTensor({-8}, kGgmlF32, 0), StatusCode::kInvalidArgument,
      "tensor \"t\": dim 0 is negative (-8)", "dimension -8");
  add("dim_overflow", GgufWithTensor({int64_t{1} << 32, int64_t{1} << 32}, kGgmlF32, 0),
      StatusCode::kInvalidArgument, "tensor \"t\": element count overflows",
      "dimensions [2^32, 2^32]: element count 2^64 overflows");
  add("bytes_overflow", GgufWithTensor({int64_t{1} << 62}, kGgmlF32, 0),
      StatusCode::kInvalidArgument, "tensor \"t\": byte size overflows",
      "F32 [2^62]: 2^64 bytes overflow");
  add("unknown_type", GgufWithTensor({8}, 99, 0), StatusCode::kUnimplemented,
      "tensor \"t\": unknown or unsupported ggml type 99", "ggml type 99");
  add("not_block_multiple", GgufWithTensor({33}, kGgmlQ8_0, 0), StatusCode::kInvalidArgument,
      "tensor \"t\": innermost dim 33 is not a multiple of Q8_0's block size 32",
      "Q8_0 tensor whose first dimension is 33");
  {
    Bytes b = GgufHeader(2, 1);
    KvString(b, "general.architecture", "llama");
    TensorInfo(b, "a", {8}, kGgmlF32, 32);
    TensorInfo(b, "b", {8}, kGgmlF32, 0);
    b.PadTo(32).Raw(F32Data(16));
    add("offsets_out_of_order", b.str(), StatusCode::kInvalidArgument,
        "tensor \"a\" has offset 32, expected 0",
        "tensor a at offset 32 listed before tensor b at offset 0");
  }
  add("offset_past_end", GgufWithTensor({8}, kGgmlF32, 0, 4), StatusCode::kInvalidArgument,
      "tensor \"t\": data [0, 0 + 32) lies outside the data section of 16 bytes",
      "tensor of 32 bytes with 16 bytes of data in the file");
  {
    Bytes b = GgufHeader(2, 1);
    KvString(b, "general.architecture", "llama");
    TensorInfo(b, "a", {8}, kGgmlF32, 0);
    TensorInfo(b, "b", {8}, kGgmlF32, uint64_t{1} << 40);
    b.PadTo(32).Raw(F32Data(16));
    add("offset_far_past_end", b.str(), StatusCode::kInvalidArgument,
        "tensor \"b\" has offset 1099511627776, expected 32", "second tensor at offset 2^40");
  }
  // F64 [2^61 - 1] is 2^64 - 8 bytes: representable, but padding it to 32 overflows.
  add("offset_pad_overflow", GgufWithTensor({(int64_t{1} << 61) - 1}, kGgmlF64, 0),
      StatusCode::kInvalidArgument,
      "tensor \"t\": 18446744073709551608 bytes overflow when padded to the alignment 32",
      "F64 tensor of 2^64-8 bytes: padding to the alignment overflows");
  for (uint32_t alignment : {0u, 13u}) {
    Bytes b = GgufHeader(1, 2);
    KvString(b, "general.architecture", "llama");
    KvU32(b, "general.alignment", alignment);
    TensorInfo(b, "t", {8}, kGgmlF32, 0);
    b.PadTo(32).Raw(F32Data(8));
    add(absl::StrCat("alignment_", alignment), b.str(), StatusCode::kInvalidArgument,
        absl::StrCat("general.alignment ", alignment, " is not a power of two"),
        absl::StrCat("general.alignment ", alignment));
  }
  {
    Bytes b = GgufHeader(0, 5);
    GgufTokenizerKv(b, 0);
    add("tokenizer_valid", b.str(), StatusCode::kOk, "",
        "control: GGUF tokenizer of 256 byte tokens, \"ab\" and one merge", HostileLoader::kGgufTokenizer);
  }
  {
    Bytes b = GgufHeader(0, 5);
    GgufTokenizerKv(b, 999999);
    add("tokenizer_bos_out_of_range", b.str(), StatusCode::kInvalidArgument,
        "tokenizer.ggml.bos_token_id 999999 is outside the vocabulary of 257",
        "BOS token id 999999 in a vocabulary of 257", HostileLoader::kGgufTokenizer);
  }
}

// ---- tokenizer.json and config.json ----

nlohmann::json BaseTokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int byte = 0; byte < 256; ++byte) {
    std::string token;
    AppendUtf8(ByteToUnicode(static_cast<uint8_t>(byte)), &token);
    vocab[token] = byte;
  }
  vocab["ab"] = 256;
  nlohmann::json tok;
  tok["version"] = "1.0";
  tok["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b"}}};
  tok["added_tokens"] = {{{"id", 257}, {"content", "<|end|>"}, {"special", true}}};
  tok["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  tok["decoder"] = {{"type", "ByteLevel"}};
  tok["normalizer"] = nullptr;
  return tok;
}

void AddJson(std::vector<HostileFile>* out) {
  auto add = [&](std::string name, const nlohmann::json& tok, StatusCode code,
                 std::string fragment, std::string attack) {
    out->push_back({absl::StrCat("tok_", name, ".json"), HostileLoader::kTokenizerJson,
                    tok.dump(1) + "\n", code, std::move(fragment), std::move(attack)});
  };
  add("valid", BaseTokenizer(), StatusCode::kOk, "",
      "control: 256 byte tokens, \"ab\", one merge, one added token; the base of the tok_ files");
  {
    nlohmann::json t = BaseTokenizer();
    t["model"]["merges"] = {"a zz"};
    add("merge_absent_token", t, StatusCode::kInvalidArgument,
        "merge 0 (\"a zz\") uses a token not in the vocabulary (\"zz\")",
        "merge naming a token absent from the vocab");
  }
  {
    nlohmann::json t = BaseTokenizer();
    t["model"]["vocab"] = nlohmann::json::object();
    t["model"]["merges"] = nlohmann::json::array();
    t["added_tokens"] = nlohmann::json::array();
    add("empty_vocab", t, StatusCode::kInvalidArgument, "field \"vocab\": is empty",
        "empty vocab, no merges, no added tokens");
  }
  {
    nlohmann::json t = BaseTokenizer();
    t["added_tokens"][0]["id"] = (1 << 30) - 1;
    add("special_token_out_of_range", t, StatusCode::kInvalidArgument,
        "added_tokens[0]: field \"id\": 1073741823 is outside",
        "added (special) token id 2^30-1 in a vocab of 257 (would size a table of 2^30 tokens)");
  }
  {
    nlohmann::json t = BaseTokenizer();
    t["model"]["vocab"]["ab"] = (1 << 30) - 1;
    add("vocab_id_out_of_range", t, StatusCode::kInvalidArgument,
        "field \"vocab\": token \"ab\": id 1073741823 is outside",
        "vocab id 2^30-1 in a vocab of 257 entries");
  }
  {
    nlohmann::json t = BaseTokenizer();
    t.erase("model");
    add("missing_model", t, StatusCode::kInvalidArgument, "missing field \"model\"",
        "required field \"model\" missing");
  }
  {
    nlohmann::json t = BaseTokenizer();
    t["model"]["vocab"] = nlohmann::json::array({"a", "b"});
    add("vocab_mistyped", t, StatusCode::kInvalidArgument,
        "field \"vocab\": expected an object of token: id", "\"vocab\" is an array");
  }
  {
    nlohmann::json t = BaseTokenizer();
    t["model"]["merges"] = "a b";
    add("merges_mistyped", t, StatusCode::kInvalidArgument, "field \"merges\": expected an array",
        "\"merges\" is a string");
  }
  {
    nlohmann::json t = BaseTokenizer();
    t["added_tokens"][0]["id"] = "257";
    add("added_id_mistyped", t, StatusCode::kInvalidArgument,
        "field \"id\": expected an integer, got a string", "added token id is a string");
  }
  {
    // 100,000 levels: a recursive-descent parser (nlohmann's included) would exhaust the stack.
    const int depth = 100000;
    std::string deep = absl::StrCat(R"({"vocab_size":1,"x":)", std::string(depth, '['),
                                    std::string(depth, ']'), "}\n");
    out->push_back({"config_deep.json", HostileLoader::kConfigJson, std::move(deep),
                    StatusCode::kInvalidArgument, "JSON nested deeper than 64 levels",
                    "config.json nested 100,000 levels deep"});
  }
}

}  // namespace

absl::string_view HostileLoaderName(HostileLoader loader) {
  switch (loader) {
    case HostileLoader::kSafetensors:
      return "safetensors";
    case HostileLoader::kGguf:
      return "gguf";
    case HostileLoader::kGgufTokenizer:
      return "gguf tokenizer";
    case HostileLoader::kTokenizerJson:
      return "tokenizer.json";
    case HostileLoader::kConfigJson:
      return "config.json";
  }
  return "?";
}

std::vector<HostileFile> HostileCorpus() {
  std::vector<HostileFile> corpus;
  AddSafetensors(&corpus);
  AddGguf(&corpus);
  AddJson(&corpus);
  return corpus;
}

std::string HostileCorpusReadme(const std::vector<HostileFile>& corpus) {
  std::string out =
      "# Hostile model files\n\n"
      "Generated by `tools/bazel run //experiments/runtime/hostile:generate_hostile_corpus` from\n"
      "experiments/runtime/hostile/hostile_corpus.cc; never edit these files by hand (the golden\n"
      "test fails when they differ from the generator). hostile_files_test loads each file with\n"
      "its loader and expects the status code and message fragment below, with no allocation\n"
      "larger than the file plus a fixed slack.\n\n"
      "| file | loader | attacks | must produce |\n|---|---|---|---|\n";
  for (const HostileFile& f : corpus) {
    const std::string expected =
        f.code == absl::StatusCode::kOk
            ? std::string("OK (loads)")
            : absl::StrCat(absl::StatusCodeToString(f.code), ": `",
                           absl::StrReplaceAll(f.fragment, {{"|", "\\|"}}), "`");
    absl::StrAppend(&out, "| ", f.name, " | ", HostileLoaderName(f.loader), " | ", f.attack,
                    " | ", expected, " |\n");
  }
  return out;
}

absl::Status WriteHostileCorpus(const std::string& dir) {
  const std::vector<HostileFile> corpus = HostileCorpus();
  std::vector<std::pair<std::string, std::string>> files;
  for (const HostileFile& f : corpus) files.emplace_back(f.name, f.bytes);
  files.emplace_back("README.md", HostileCorpusReadme(corpus));
  for (const auto& [name, bytes] : files) {
    const std::string path = absl::StrCat(dir, "/", name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) return absl::InternalError(absl::StrCat(path, ": cannot write"));
  }
  return absl::OkStatus();
}

}  // namespace kvgate::runtime::hostile
