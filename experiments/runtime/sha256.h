// SHA-256 of byte buffers and files, for the weights_sha256 of records and for pinned inputs
// (the prompt corpus). Uses the CPU's SHA extensions when it has them (about 2 GB/s a core),
// else a portable implementation (about 0.3 GB/s); both give the same digest.
//
// Usage:
//   kvgate::runtime::Sha256 hasher;
//   hasher.Update(data, size);
//   std::string hex = hasher.HexDigest();          // 64 lowercase hex digits
//   std::string same = kvgate::runtime::Sha256Hex(absl::string_view(bytes));

#ifndef KVGATE_EXPERIMENTS_RUNTIME_SHA256_H_
#define KVGATE_EXPERIMENTS_RUNTIME_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::runtime {

class Sha256 {
 public:
  Sha256();
  // Appends bytes to the message.
  void Update(const void* data, size_t size);
  // The digest of everything appended; the hasher must not be used afterwards.
  std::array<uint8_t, 32> Digest();
  std::string HexDigest();

  // Whether this CPU runs the SHA-extension path (for tests and logs).
  static bool UsesShaExtensions();
  // For tests: forces the portable path even on a CPU with SHA extensions.
  static void ForcePortableForTesting(bool portable);

 private:
  void Blocks(const uint8_t* data, size_t blocks);
  std::array<uint32_t, 8> state_;
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

// Lowercase hex SHA-256 of a buffer.
std::string Sha256Hex(absl::string_view bytes);
std::string Sha256Hex(const void* data, size_t size);

// Lowercase hex SHA-256 of a file's contents; errors name the file.
absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_SHA256_H_
