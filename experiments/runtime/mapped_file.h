// A whole file mapped into memory (private, copy-on-write), or an owned byte buffer standing in for
// one (tests). Loaders parse headers from it and hand out tensors that point into it, keeping the
// mapping alive through a shared_ptr: a 15 GB snapshot is never read into the heap, and pages are
// read from disk once, when first touched.
//
// Usage:
//   absl::StatusOr<std::shared_ptr<kvgate::runtime::MappedFile>> file =
//       kvgate::runtime::MappedFile::Open("/models/qwen/model-00001-of-00004.safetensors");
//   if (!file.ok()) return file.status();
//   const uint8_t* bytes = (*file)->data();

#ifndef KVGATE_EXPERIMENTS_RUNTIME_MAPPED_FILE_H_
#define KVGATE_EXPERIMENTS_RUNTIME_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::runtime {

class MappedFile {
 public:
  // Maps `path` read/write-private: writes through data() stay in this process (copy on write) and
  // never reach the file. Errors (NotFound, a folder, mmap failure) name the path.
  static absl::StatusOr<std::shared_ptr<MappedFile>> Open(const std::string& path);
  // A buffer that behaves like a mapped file named `name` (for tests and in-memory files).
  static std::shared_ptr<MappedFile> FromBytes(std::string bytes, std::string name);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  // The whole file as bytes (for hashing).
  absl::string_view bytes() const {
    return absl::string_view(reinterpret_cast<const char*>(data_), size_);
  }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
  std::string owned_;
  std::string path_;
};

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_MAPPED_FILE_H_
