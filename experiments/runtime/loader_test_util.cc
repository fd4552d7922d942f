// See loader_test_util.h.

#include "experiments/runtime/loader_test_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace kvgate::runtime::testing {
namespace {

[[noreturn]] void Fatal(const std::string& message) {
  std::fprintf(stderr, "loader_test_util: %s\n", message.c_str());
  std::abort();
}

template <typename T>
void Put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

void PutString(std::string* out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

bool Exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

}  // namespace

std::string TestDataPath(const std::string& name) { return "experiments/runtime/testdata/" + name; }

std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fatal("cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string SmolLM2GgufPath() {
  const char* name = "SmolLM2-135M-Instruct.Q4_1.gguf";
  std::vector<std::string> candidates = {std::string("../smollm2/") + name,
                                         std::string("external/smollm2/") + name};
  if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
    candidates.push_back(std::string(srcdir) + "/smollm2/" + name);
    candidates.push_back(std::string(srcdir) + "/kvgate/external/smollm2/" + name);
  }
  for (const std::string& path : candidates) {
    if (Exists(path)) return path;
  }
  return "";
}

std::string MakeTempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/" + name + "_XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) Fatal("mkdtemp failed for " + dir);
  return dir;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) Fatal("cannot write " + path);
}

uint16_t FloatToHalfExact(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  if (value == 0.0f) return sign;
  const int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127;
  const uint32_t mantissa = bits & 0x7FFFFF;
  if (exponent < -14 || exponent > 15 || (mantissa & 0x1FFF) != 0) {
    Fatal("value " + std::to_string(value) + " is not an exact normal half");
  }
  return static_cast<uint16_t>(sign | ((exponent + 15) << 10) | (mantissa >> 13));
}

uint16_t FloatToBfloat16Exact(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0xFFFF) != 0) Fatal("value " + std::to_string(value) + " is not an exact bfloat16");
  return static_cast<uint16_t>(bits >> 16);
}

std::string Q8_0Block(float d, const std::vector<int8_t>& q) {
  if (q.size() != 32) Fatal("Q8_0 block needs 32 codes");
  std::string out;
  Put<uint16_t>(&out, FloatToHalfExact(d));
  for (int8_t v : q) Put<int8_t>(&out, v);
  return out;
}

std::string Q4_0Block(float d, const std::vector<uint8_t>& q) {
  if (q.size() != 32) Fatal("Q4_0 block needs 32 codes");
  std::string out;
  Put<uint16_t>(&out, FloatToHalfExact(d));
  for (int j = 0; j < 16; ++j)
    Put<uint8_t>(&out, static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4)));
  return out;
}

std::string Q4_1Block(float d, float m, const std::vector<uint8_t>& q) {
  if (q.size() != 32) Fatal("Q4_1 block needs 32 codes");
  std::string out;
  Put<uint16_t>(&out, FloatToHalfExact(d));
  Put<uint16_t>(&out, FloatToHalfExact(m));
  for (int j = 0; j < 16; ++j)
    Put<uint8_t>(&out, static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4)));
  return out;
}

std::string F32Bytes(const std::vector<float>& values) {
  std::string out;
  for (float v : values) Put<float>(&out, v);
  return out;
}

std::string F16Bytes(const std::vector<float>& values) {
  std::string out;
  for (float v : values) Put<uint16_t>(&out, FloatToHalfExact(v));
  return out;
}

std::string Bf16Bytes(const std::vector<float>& values) {
  std::string out;
  for (float v : values) Put<uint16_t>(&out, FloatToBfloat16Exact(v));
  return out;
}

GgufBuilder& GgufBuilder::Raw(const std::string& key, uint32_t type,
                              const std::string& value_bytes) {
  std::string bytes;
  Put<uint32_t>(&bytes, type);
  bytes += value_bytes;
  kv_.emplace_back(key, bytes);
  return *this;
}

GgufBuilder& GgufBuilder::Uint32(const std::string& key, uint32_t value) {
  std::string v;
  Put(&v, value);
  return Raw(key, 4, v);
}

GgufBuilder& GgufBuilder::Int32(const std::string& key, int32_t value) {
  std::string v;
  Put(&v, value);
  return Raw(key, 5, v);
}

GgufBuilder& GgufBuilder::Uint64(const std::string& key, uint64_t value) {
  std::string v;
  Put(&v, value);
  return Raw(key, 10, v);
}

GgufBuilder& GgufBuilder::Float32(const std::string& key, float value) {
  std::string v;
  Put(&v, value);
  return Raw(key, 6, v);
}

GgufBuilder& GgufBuilder::Bool(const std::string& key, bool value) {
  std::string v;
  Put<uint8_t>(&v, value ? 1 : 0);
  return Raw(key, 7, v);
}

GgufBuilder& GgufBuilder::String(const std::string& key, const std::string& value) {
  std::string v;
  PutString(&v, value);
  return Raw(key, 8, v);
}

GgufBuilder& GgufBuilder::StringArray(const std::string& key,
                                      const std::vector<std::string>& values) {
  std::string v;
  Put<uint32_t>(&v, 8);
  Put<uint64_t>(&v, values.size());
  for (const std::string& s : values) PutString(&v, s);
  return Raw(key, 9, v);
}

GgufBuilder& GgufBuilder::Int32Array(const std::string& key, const std::vector<int32_t>& values) {
  std::string v;
  Put<uint32_t>(&v, 5);
  Put<uint64_t>(&v, values.size());
  for (int32_t x : values) Put(&v, x);
  return Raw(key, 9, v);
}

GgufBuilder& GgufBuilder::Tensor(const std::string& name, uint32_t type,
                                 const std::vector<int64_t>& ne, const std::string& data,
                                 std::optional<uint64_t> offset) {
  tensors_.push_back({name, type, ne, data, offset});
  return *this;
}

GgufBuilder& GgufBuilder::Version(uint32_t version) {
  version_ = version;
  return *this;
}

GgufBuilder& GgufBuilder::TensorCountOverride(uint64_t count) {
  tensor_count_ = count;
  return *this;
}

GgufBuilder& GgufBuilder::KvCountOverride(uint64_t count) {
  kv_count_ = count;
  return *this;
}

GgufBuilder& GgufBuilder::DataAlignment(uint64_t alignment) {
  alignment_ = alignment;
  return *this;
}

std::string GgufBuilder::Build() const {
  std::string out = "GGUF";
  Put<uint32_t>(&out, version_);
  Put<uint64_t>(&out, tensor_count_.value_or(tensors_.size()));
  Put<uint64_t>(&out, kv_count_.value_or(kv_.size()));
  for (const auto& [key, bytes] : kv_) {
    PutString(&out, key);
    out += bytes;
  }
  // Offsets: given ones as they are, others packed in order with padding to the alignment.
  std::vector<uint64_t> offsets;
  uint64_t next = 0;
  for (const TensorEntry& t : tensors_) {
    const uint64_t offset = t.offset.value_or(next);
    offsets.push_back(offset);
    const uint64_t end = offset + t.data.size();
    next = (end + alignment_ - 1) / alignment_ * alignment_;
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const TensorEntry& t = tensors_[i];
    PutString(&out, t.name);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t ne : t.ne) Put<int64_t>(&out, ne);
    Put<uint32_t>(&out, t.type);
    Put<uint64_t>(&out, offsets[i]);
  }
  if (tensors_.empty()) return out;
  out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, '\0');
  const size_t data_start = out.size();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (offsets[i] > (uint64_t{1} << 26)) continue;  // an offset far past the file, on purpose
    const size_t at = data_start + offsets[i];
    if (out.size() < at + tensors_[i].data.size()) out.resize(at + tensors_[i].data.size(), '\0');
    std::memcpy(out.data() + at, tensors_[i].data.data(), tensors_[i].data.size());
  }
  out.resize((out.size() - data_start + alignment_ - 1) / alignment_ * alignment_ + data_start,
             '\0');
  return out;
}

std::string BuildSafetensors(const std::vector<StTensor>& tensors,
                             const std::vector<std::pair<std::string, std::string>>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::string data;
  for (const StTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + t.data.size()}}};
    data += t.data;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');  // as the safetensors writer pads
  return RawSafetensors(text, data);
}

std::string RawSafetensors(const std::string& header, const std::string& data,
                           std::optional<uint64_t> header_length) {
  std::string out;
  Put<uint64_t>(&out, header_length.value_or(header.size()));
  return out + header + data;
}

}  // namespace kvgate::runtime::testing
