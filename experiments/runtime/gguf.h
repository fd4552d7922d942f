// GGUF files (llama.cpp's model format, versions 2 and 3, little-endian): a validating parser of
// the header, metadata and tensor index, and dequantization of tensor data to float32. No LibTorch:
// gguf_weights.h turns a parsed file into ModelWeights, tokenizer.h reads its vocabulary.
//
// Layout: "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv of (string key, u32 type, value),
// then n_tensors of (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset), then
// padding to `general.alignment` (default 32), then the data section. Strings are u64 length +
// bytes. ne[0] is the innermost (contiguous) dimension.
//
// Validation follows llama.cpp's gguf.cpp as hardened after its CVEs, and is stricter where cheap:
//  - magic, version 2 or 3 (1 used 32-bit counts; a byte-swapped version means big-endian:
//  refused);
//  - n_tensors and n_kv at most GgufLimits and at most what the remaining bytes could hold;
//  - every string and array length checked against the bytes left before allocating; arrays of
//    arrays refused; keys unique; string lengths and array sizes bounded;
//  - general.alignment a u32, a power of two, at most GgufLimits::max_alignment;
//  - tensor names unique, at most 63 bytes; 1..4 dims, each >= 0, their product and byte size
//    computed with overflow checks; ne[0] a multiple of the type's block size; known ggml type;
//  - tensor offsets multiples of the alignment and, as llama.cpp requires, consecutive in file
//    order: each tensor at the previous one's offset plus its size padded to the alignment (sums
//    overflow-checked); every tensor inside the file;
//  - nothing allocated from a claimed count: arrays and the tensor index grow as entries are read.
// Errors are InvalidArgument (malformed), Unimplemented (valid but unsupported) or NotFound, and
// their messages name the file, the key or tensor, and what was expected.
//
// Dequantization (DequantizeGgufTensor) supports F32, F16, BF16, Q8_0, Q4_0 and Q4_1, computed as
// ggml and the `gguf` Python package do (float32 arithmetic: Q4_1 is nibble * d + m):
//   Q8_0 block (34 bytes, 32 values): f16 d, int8 q[32];          x[j] = d * q[j]
//   Q4_0 block (18 bytes, 32 values): f16 d, u8 qs[16];           x[j] = d * ((qs[j] & 15) - 8),
//                                                                 x[j+16] = d * ((qs[j] >> 4) - 8)
//   Q4_1 block (20 bytes, 32 values): f16 d, f16 m, u8 qs[16];    x[j] = d * (qs[j] & 15) + m,
//                                                                 x[j+16] = d * (qs[j] >> 4) + m
//
// Usage:
//   absl::StatusOr<kvgate::runtime::GgufFile> gguf = kvgate::runtime::GgufFile::Open(path);
//   if (!gguf.ok()) return gguf.status();
//   absl::StatusOr<uint64_t> layers = gguf->GetUint("llama.block_count");
//   const kvgate::runtime::GgufTensorInfo* t = gguf->FindTensor("blk.0.attn_q.weight");
//   std::vector<float> values(t->numel);
//   absl::Status s = kvgate::runtime::DequantizeGgufTensor(*t, values.data());

#ifndef KVGATE_EXPERIMENTS_RUNTIME_GGUF_H_
#define KVGATE_EXPERIMENTS_RUNTIME_GGUF_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experiments/runtime/mapped_file.h"

namespace kvgate::runtime {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "string", ... ("type 77" for an unknown one).
std::string GgufValueTypeName(uint32_t type);

// One metadata value. Scalars fill one field; arrays fill the vector for their element kind.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  GgufValueType element_type = GgufValueType::kUint8;  // arrays only
  int64_t int_value = 0;   // integer types and bool (uint64 values above INT64_MAX are refused)
  double float_value = 0;  // float32, float64
  std::string string_value;
  std::vector<int64_t> ints;         // arrays of integers or bools
  std::vector<double> floats;        // arrays of floats
  std::vector<std::string> strings;  // arrays of strings
  uint64_t array_size = 0;
};

// ggml tensor types (ggml.h numbering).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

// "F32", "Q4_1", ... or "type N" for types this parser does not know.
std::string GgmlTypeName(uint32_t type);
// Whether DequantizeGgufTensor supports the type.
bool GgmlTypeDequantizable(uint32_t type);

struct GgufTensorInfo {
  std::string name;
  uint32_t type = 0;          // GgmlType
  std::vector<int64_t> dims;  // ne: dims[0] innermost; a PyTorch shape is dims reversed
  int64_t numel = 0;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t bytes = 0;
  const uint8_t* data = nullptr;  // inside the file's bytes

  // dims reversed, e.g. {49152, 576} for token_embd of ne {576, 49152}.
  std::vector<int64_t> TorchShape() const;
};

struct GgufLimits {
  uint64_t max_tensors = 1 << 16;
  uint64_t max_kv = 1 << 16;
  uint64_t max_string_bytes = 1 << 26;    // one string; chat templates are a few KB
  uint64_t max_array_elements = 1 << 24;  // vocabularies are < 300k, merges < 1M
  uint64_t max_alignment = 1 << 16;
  uint64_t max_name_bytes = 63;  // GGML_MAX_NAME - 1
  uint32_t max_dims = 4;         // GGML_MAX_DIMS
};

class GgufFile {
 public:
  // Maps and parses a file (tensor data stays in the mapping, read on demand).
  static absl::StatusOr<GgufFile> Open(const std::string& path, const GgufLimits& limits = {});
  // Parses bytes already in memory (the MappedFile is kept alive by the result).
  static absl::StatusOr<GgufFile> Parse(std::shared_ptr<MappedFile> file,
                                        const GgufLimits& limits = {});

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::shared_ptr<MappedFile>& file() const { return file_; }

  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const GgufValue* Find(absl::string_view key) const;
  // Typed reads; errors name the file and key and say what was expected.
  absl::StatusOr<uint64_t> GetUint(absl::string_view key) const;  // any integer type, >= 0
  absl::StatusOr<double> GetFloat(absl::string_view key) const;   // float or integer types
  absl::StatusOr<std::string> GetString(absl::string_view key) const;
  absl::StatusOr<bool> GetBool(absl::string_view key) const;
  absl::StatusOr<const std::vector<std::string>*> GetStringArray(absl::string_view key) const;
  absl::StatusOr<const std::vector<int64_t>*> GetIntArray(absl::string_view key) const;

  // In file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(absl::string_view name) const;

 private:
  GgufFile() = default;
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Fuzzing entry point: parses a whole GGUF file held in memory (a copy is kept); `name` stands for
// the path in errors.
absl::StatusOr<GgufFile> ParseGguf(absl::string_view bytes, std::string name = "<memory>",
                                   const GgufLimits& limits = {});

// Dequantizes a whole tensor to float32, `tensor.numel` values in GGUF order (row-major with ne[0]
// fastest). Unimplemented for types other than F32, F16, BF16, Q8_0, Q4_0, Q4_1.
absl::Status DequantizeGgufTensor(const GgufTensorInfo& tensor, float* out);

// Block dequantizers over `blocks` whole blocks of 32 values (exposed for tests).
void DequantizeQ8_0(const uint8_t* data, int64_t blocks, float* out);
void DequantizeQ4_0(const uint8_t* data, int64_t blocks, float* out);
void DequantizeQ4_1(const uint8_t* data, int64_t blocks, float* out);

// IEEE half and bfloat16 to float (exact).
float HalfToFloat(uint16_t bits);
float Bfloat16ToFloat(uint16_t bits);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_GGUF_H_
