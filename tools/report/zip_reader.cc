#include "tools/report/zip_reader.h"

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kvgate::report {
namespace {

constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kCentralDirectoryEntry = 0x02014b50;
constexpr uint32_t kLocalFileHeader = 0x04034b50;

uint16_t U16(absl::string_view b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) |
                               (static_cast<uint8_t>(b[at + 1]) << 8));
}

uint32_t U32(absl::string_view b, size_t at) {
  return static_cast<uint32_t>(U16(b, at)) | (static_cast<uint32_t>(U16(b, at + 2)) << 16);
}

absl::StatusOr<std::string> Inflate(absl::string_view compressed, size_t size,
                                    const std::string& where) {
  std::string out(size, '\0');
  z_stream stream = {};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) {
    return absl::InternalError(absl::StrCat(where, ": zlib inflateInit2 failed"));
  }
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = inflate(&stream, Z_FINISH);
  const size_t produced = size - stream.avail_out;
  inflateEnd(&stream);
  if (result != Z_STREAM_END || produced != size) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": the deflated data is corrupt"));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<ZipEntry>> ReadZip(absl::string_view bytes, const std::string& file) {
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", what));
  };
  // The end-of-central-directory record: 22 bytes and a comment of up to 65535 bytes.
  if (bytes.size() < 22) return error("not a zip archive (too short)");
  size_t eocd = std::string::npos;
  for (size_t at = bytes.size() - 22;; --at) {
    if (U32(bytes, at) == kEndOfCentralDirectory && at + 22 + U16(bytes, at + 20) == bytes.size()) {
      eocd = at;
      break;
    }
    if (at == 0 || bytes.size() - at > 22 + 65535) break;
  }
  if (eocd == std::string::npos) return error("not a zip archive (no end of central directory)");
  const uint16_t entries = U16(bytes, eocd + 10);
  const uint32_t directory_size = U32(bytes, eocd + 12);
  const uint32_t directory_offset = U32(bytes, eocd + 16);
  if (entries == 0xffff || directory_size == 0xffffffff || directory_offset == 0xffffffff) {
    return error("zip64 archives are not supported");
  }
  if (static_cast<uint64_t>(directory_offset) + directory_size > eocd) {
    return error("the central directory lies outside the archive");
  }
  std::vector<ZipEntry> out;
  size_t at = directory_offset;
  for (int i = 0; i < entries; ++i) {
    if (at + 46 > eocd || U32(bytes, at) != kCentralDirectoryEntry) {
      return error(absl::StrCat("central directory entry ", i, " is corrupt"));
    }
    const uint16_t flags = U16(bytes, at + 8);
    const uint16_t method = U16(bytes, at + 10);
    const uint32_t crc = U32(bytes, at + 16);
    const uint32_t compressed_size = U32(bytes, at + 20);
    const uint32_t size = U32(bytes, at + 24);
    const uint16_t name_length = U16(bytes, at + 28);
    const uint16_t extra_length = U16(bytes, at + 30);
    const uint16_t comment_length = U16(bytes, at + 32);
    const uint32_t local_offset = U32(bytes, at + 42);
    if (at + 46 + name_length > eocd) return error(absl::StrCat("entry ", i, " is corrupt"));
    const std::string name(bytes.substr(at + 46, name_length));
    at += 46 + name_length + extra_length + comment_length;
    const std::string where = absl::StrCat(file, "!", name);
    if (!name.empty() && name.back() == '/') continue;  // a folder
    if (compressed_size == 0xffffffff || size == 0xffffffff || local_offset == 0xffffffff) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": zip64 entries are not supported"));
    }
    if (flags & 1) return absl::InvalidArgumentError(absl::StrCat(where, ": encrypted"));
    if (static_cast<uint64_t>(local_offset) + 30 > bytes.size() ||
        U32(bytes, local_offset) != kLocalFileHeader) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": the local header is corrupt"));
    }
    const size_t data =
        local_offset + 30 + U16(bytes, local_offset + 26) + U16(bytes, local_offset + 28);
    if (static_cast<uint64_t>(data) + compressed_size > bytes.size()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": the data runs past the archive"));
    }
    const absl::string_view raw = bytes.substr(data, compressed_size);
    ZipEntry entry{name, ""};
    if (method == 0) {
      if (compressed_size != size) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": stored sizes disagree"));
      }
      entry.contents = std::string(raw);
    } else if (method == 8) {
      absl::StatusOr<std::string> inflated = Inflate(raw, size, where);
      if (!inflated.ok()) return inflated.status();
      entry.contents = *std::move(inflated);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": compression method ", method, " is not supported (0 or 8)"));
    }
    const uint32_t actual =
        static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(entry.contents.data()),
                                    static_cast<uInt>(entry.contents.size())));
    if (actual != crc) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: CRC-32 is %08x, the archive says %08x", where, actual, crc));
    }
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace kvgate::report
