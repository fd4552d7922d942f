// safetensors files: an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "BF16", "shape": [a, b],
//    "data_offsets": [begin, end]}, ...}
// then the data section; offsets are relative to its start. No LibTorch here: hf_snapshot.h makes
// tensors that point into the mapped file.
//
// Validation follows the `safetensors` crate's own parser: N at most 100,000,000 and inside the
// file, the header valid UTF-8 JSON starting with '{' (limited depth, no duplicate keys), a known
// dtype, a shape of non-negative integers whose product and byte size do not overflow, offsets
// [begin, end] with begin <= end, byte size equal to end - begin, and the tensors, sorted by
// offset, tiling the data section exactly: each begins where the previous ended (no overlap, no
// gap) and the last ends at the end of the file. Errors name the file and the tensor.
//
// Usage:
//   absl::StatusOr<kvgate::runtime::SafetensorsFile> st =
//   kvgate::runtime::SafetensorsFile::Open(path); if (!st.ok()) return st.status(); for (const
//   kvgate::runtime::SafetensorsTensor& t : st->tensors()) { ... t.data, t.shape ... }

#ifndef KVGATE_EXPERIMENTS_RUNTIME_SAFETENSORS_H_
#define KVGATE_EXPERIMENTS_RUNTIME_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experiments/runtime/mapped_file.h"

namespace kvgate::runtime {

enum class SafetensorsDtype {
  kBool,
  kU8,
  kI8,
  kF8_E5M2,
  kF8_E4M3,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64,
};

// "BF16", ... as the header spells it.
absl::string_view SafetensorsDtypeName(SafetensorsDtype dtype);
int SafetensorsDtypeBytes(SafetensorsDtype dtype);

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  uint64_t begin = 0;  // data_offsets, relative to the data section
  uint64_t end = 0;
  uint8_t* data = nullptr;  // inside the file's (copy-on-write) mapping
};

inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100000000;

class SafetensorsFile {
 public:
  static absl::StatusOr<SafetensorsFile> Open(const std::string& path);
  static absl::StatusOr<SafetensorsFile> Parse(std::shared_ptr<MappedFile> file);

  const std::string& path() const { return file_->path(); }
  const std::shared_ptr<MappedFile>& file() const { return file_; }
  // Sorted by offset.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(absl::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::shared_ptr<MappedFile> file_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// Fuzzing entry point: parses a whole safetensors file held in memory (a copy is kept), header
// and data layout; `name` stands for the path in errors.
absl::StatusOr<SafetensorsFile> ParseSafetensorsHeader(absl::string_view bytes,
                                                       std::string name = "<memory>");

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_SAFETENSORS_H_
