// Test helpers for the loaders: builders that write small GGUF and safetensors files from
// values (the tests' crafted inputs are generated here, never hand-edited bytes), quantized-block
// encoders with chosen scales and codes, and paths of test data and of the embedded SmolLM2 GGUF.

#ifndef KVGATE_EXPERIMENTS_RUNTIME_LOADER_TEST_UTIL_H_
#define KVGATE_EXPERIMENTS_RUNTIME_LOADER_TEST_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvgate::runtime::testing {

// A file under experiments/runtime/testdata (a `data` dependency of the test).
std::string TestDataPath(const std::string& name);
// The whole file as bytes; aborts the test binary with a message if it cannot be read.
std::string ReadTestFile(const std::string& path);
// The embedded model @smollm2//:gguf, from the test's runfiles; empty if absent.
std::string SmolLM2GgufPath();
// A fresh folder under $TEST_TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& name);
void WriteFile(const std::string& path, const std::string& bytes);

// IEEE half of a float; exact for the values tests use (checked with a fatal error otherwise).
uint16_t FloatToHalfExact(float value);
uint16_t FloatToBfloat16Exact(float value);

// Blocks of 32 values: scale d (and minimum m), codes q (int8 for Q8_0, 0..15 for Q4_x).
std::string Q8_0Block(float d, const std::vector<int8_t>& q);
std::string Q4_0Block(float d, const std::vector<uint8_t>& q);
std::string Q4_1Block(float d, float m, const std::vector<uint8_t>& q);
// Raw little-endian arrays.
std::string F32Bytes(const std::vector<float>& values);
std::string F16Bytes(const std::vector<float>& values);
std::string Bf16Bytes(const std::vector<float>& values);

// Writes GGUF files (version 3 unless told otherwise).
class GgufBuilder {
 public:
  GgufBuilder& Uint32(const std::string& key, uint32_t value);
  GgufBuilder& Int32(const std::string& key, int32_t value);
  GgufBuilder& Uint64(const std::string& key, uint64_t value);
  GgufBuilder& Float32(const std::string& key, float value);
  GgufBuilder& Bool(const std::string& key, bool value);
  GgufBuilder& String(const std::string& key, const std::string& value);
  GgufBuilder& StringArray(const std::string& key, const std::vector<std::string>& values);
  GgufBuilder& Int32Array(const std::string& key, const std::vector<int32_t>& values);
  // A metadata entry written as given: type id and the value's raw bytes.
  GgufBuilder& Raw(const std::string& key, uint32_t type, const std::string& value_bytes);

  // A tensor: ggml type id, ne (innermost first), its data bytes. Offsets are assigned in order,
  // aligned, unless `offset` is given; data at an offset beyond 64 MiB is not written.
  GgufBuilder& Tensor(const std::string& name, uint32_t type, const std::vector<int64_t>& ne,
                      const std::string& data, std::optional<uint64_t> offset = std::nullopt);

  // Corruption knobs for tests of malformed files.
  GgufBuilder& Version(uint32_t version);
  GgufBuilder& TensorCountOverride(uint64_t count);
  GgufBuilder& KvCountOverride(uint64_t count);
  // Alignment used to place the data (general.alignment is written only through Uint32 etc.).
  GgufBuilder& DataAlignment(uint64_t alignment);

  std::string Build() const;

 private:
  struct TensorEntry {
    std::string name;
    uint32_t type;
    std::vector<int64_t> ne;
    std::string data;
    std::optional<uint64_t> offset;
  };
  std::vector<std::pair<std::string, std::string>> kv_;  // key, type + value bytes
  std::vector<TensorEntry> tensors_;
  uint32_t version_ = 3;
  std::optional<uint64_t> tensor_count_;
  std::optional<uint64_t> kv_count_;
  uint64_t alignment_ = 32;
};

// A safetensors tensor: dtype name as in the header, shape, data bytes.
struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string data;
};

// A valid safetensors file of `tensors` (offsets contiguous, in the given order).
std::string BuildSafetensors(const std::vector<StTensor>& tensors,
                             const std::vector<std::pair<std::string, std::string>>& metadata = {});
// A file from a given header text and data bytes; header_length overrides the length field.
std::string RawSafetensors(const std::string& header, const std::string& data,
                           std::optional<uint64_t> header_length = std::nullopt);

}  // namespace kvgate::runtime::testing

#endif  // KVGATE_EXPERIMENTS_RUNTIME_LOADER_TEST_UTIL_H_
