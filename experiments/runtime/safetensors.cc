// See safetensors.h.

#include "experiments/runtime/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experiments/runtime/json_limits.h"

namespace kvgate::runtime {
namespace {

struct DtypeInfo {
  SafetensorsDtype dtype;
  const char* name;
  int bytes;
};

constexpr DtypeInfo kDtypes[] = {
    {SafetensorsDtype::kBool, "BOOL", 1},       {SafetensorsDtype::kU8, "U8", 1},
    {SafetensorsDtype::kI8, "I8", 1},           {SafetensorsDtype::kF8_E5M2, "F8_E5M2", 1},
    {SafetensorsDtype::kF8_E4M3, "F8_E4M3", 1}, {SafetensorsDtype::kI16, "I16", 2},
    {SafetensorsDtype::kU16, "U16", 2},         {SafetensorsDtype::kF16, "F16", 2},
    {SafetensorsDtype::kBF16, "BF16", 2},       {SafetensorsDtype::kI32, "I32", 4},
    {SafetensorsDtype::kU32, "U32", 4},         {SafetensorsDtype::kF32, "F32", 4},
    {SafetensorsDtype::kF64, "F64", 8},         {SafetensorsDtype::kI64, "I64", 8},
    {SafetensorsDtype::kU64, "U64", 8},
};

// Strict UTF-8 (RFC 3629: no overlong forms, surrogates or values above U+10FFFF), checked in
// place: the header may be 100 MB, so nothing is allocated per byte.
bool ValidUtf8(absl::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (n - i < length || p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k < length; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
    }
    i += length;
  }
  return true;
}

}  // namespace

absl::string_view SafetensorsDtypeName(SafetensorsDtype dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

int SafetensorsDtypeBytes(SafetensorsDtype dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.dtype == dtype) return d.bytes;
  }
  return 0;
}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  absl::StatusOr<std::shared_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  return Parse(*std::move(file));
}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Parse(std::shared_ptr<MappedFile> file) {
  SafetensorsFile st;
  st.file_ = std::move(file);
  const std::string& path = st.file_->path();
  const uint64_t size = st.file_->size();
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
  };
  if (size < 8)
    return error(absl::StrCat("truncated: ", size, " bytes, less than the 8-byte header length"));
  uint64_t n = 0;
  std::memcpy(&n, st.file_->data(), 8);  // little-endian on every host we build for
  if (n > kSafetensorsMaxHeaderBytes) {
    return error(
        absl::StrCat("header length ", n, " exceeds the limit of ", kSafetensorsMaxHeaderBytes));
  }
  if (n > size - 8) {
    return error(
        absl::StrCat("header length ", n, " runs past the end of the file (", size, " bytes)"));
  }
  const absl::string_view header(reinterpret_cast<const char*>(st.file_->data() + 8), n);
  if (header.empty() || header[0] != '{')
    return error("header is not a JSON object (it must start with '{')");
  if (!ValidUtf8(header)) return error("header is not valid UTF-8");
  absl::StatusOr<nlohmann::json> json = ParseJson(header, absl::StrCat(path, ": header"));
  if (!json.ok()) return json.status();
  if (!json->is_object()) return error("header is not a JSON object");

  const uint64_t data_size = size - 8 - n;
  uint8_t* data = st.file_->data() + 8 + n;
  for (auto it = json->begin(); it != json->end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return error("__metadata__ is not an object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          return error(absl::StrCat("__metadata__ \"", m.key(), "\" is ", JsonTypeName(m.value()),
                                    ", expected a string"));
        }
        st.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = absl::StrCat("tensor \"", name, "\"");
    if (!entry.is_object())
      return error(absl::StrCat(what, ": expected an object, got ", JsonTypeName(entry)));
    SafetensorsTensor t;
    t.name = name;
    auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string())
      return error(absl::StrCat(what, ": missing \"dtype\" string"));
    const std::string dtype_name = dtype->get<std::string>();
    const DtypeInfo* info = nullptr;
    for (const DtypeInfo& d : kDtypes) {
      if (dtype_name == d.name) info = &d;
    }
    if (info == nullptr) return error(absl::StrCat(what, ": unknown dtype \"", dtype_name, "\""));
    t.dtype = info->dtype;
    auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array())
      return error(absl::StrCat(what, ": missing \"shape\" array"));
    if (shape->size() > 16)
      return error(absl::StrCat(what, ": shape has ", shape->size(), " dims (at most 16)"));
    uint64_t numel = 1;
    for (const nlohmann::json& d : *shape) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) {
        return error(absl::StrCat(what, ": shape ", shape->dump(),
                                  " has an entry that is not a non-negative integer"));
      }
      const uint64_t dim = d.get<uint64_t>();
      if (__builtin_mul_overflow(numel, dim, &numel) ||
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return error(absl::StrCat(what, ": shape ", shape->dump(), " overflows"));
      }
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    t.numel = static_cast<int64_t>(numel);
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(info->bytes), &nbytes)) {
      return error(absl::StrCat(what, ": byte size overflows"));
    }
    auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return error(
          absl::StrCat(what, ": \"data_offsets\" must be [begin, end], two non-negative integers"));
    }
    t.begin = (*offsets)[0].get<uint64_t>();
    t.end = (*offsets)[1].get<uint64_t>();
    if (t.end < t.begin) {
      return error(
          absl::StrCat(what, ": data_offsets [", t.begin, ", ", t.end, "] end before they begin"));
    }
    if (t.end - t.begin != nbytes) {
      return error(absl::StrCat(what, ": data_offsets [", t.begin, ", ", t.end, "] span ",
                                t.end - t.begin, " bytes, but ", dtype_name, " [",
                                absl::StrJoin(t.shape, ", "), "] needs ", nbytes));
    }
    st.tensors_.push_back(std::move(t));
  }
  std::sort(st.tensors_.begin(), st.tensors_.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  uint64_t expected = 0;
  for (size_t i = 0; i < st.tensors_.size(); ++i) {
    SafetensorsTensor& t = st.tensors_[i];
    if (t.begin < expected) {
      return error(absl::StrCat("tensor \"", t.name, "\" data_offsets [", t.begin, ", ", t.end,
                                "] overlap tensor \"", st.tensors_[i - 1].name,
                                "\", which ends at ", expected));
    }
    if (t.begin > expected) {
      return error(absl::StrCat("tensor \"", t.name, "\" begins at ", t.begin,
                                ", leaving a gap after byte ", expected,
                                " (tensors must tile the data section)"));
    }
    if (t.end > data_size) {
      return error(absl::StrCat("truncated: tensor \"", t.name, "\" data_offsets [", t.begin, ", ",
                                t.end, "] run past the data section of ", data_size, " bytes"));
    }
    t.data = data + t.begin;
    expected = t.end;
    st.index_.emplace(t.name, i);
  }
  if (expected != data_size) {
    return error(absl::StrCat("the tensors cover ", expected,
                              " bytes of the data section, which has ", data_size,
                              " (trailing bytes)"));
  }
  return st;
}

absl::StatusOr<SafetensorsFile> ParseSafetensorsHeader(absl::string_view bytes, std::string name) {
  return SafetensorsFile::Parse(MappedFile::FromBytes(std::string(bytes), std::move(name)));
}

const SafetensorsTensor* SafetensorsFile::Find(absl::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace kvgate::runtime
