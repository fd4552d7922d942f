// See gguf.h. Every read goes through Reader, which checks the bytes left first; counts are checked
// against what the remaining bytes could hold before anything is allocated for them.

#include "experiments/runtime/gguf.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kvgate::runtime {
namespace {

struct TypeTraits {
  const char* name;
  int64_t block;  // values per block
  int64_t bytes;  // bytes per block
};

// The ggml types whose block layout this parser knows; others are refused by number.
bool LookupType(uint32_t type, TypeTraits* traits) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32:
      *traits = {"F32", 1, 4};
      return true;
    case GgmlType::kF16:
      *traits = {"F16", 1, 2};
      return true;
    case GgmlType::kQ4_0:
      *traits = {"Q4_0", 32, 18};
      return true;
    case GgmlType::kQ4_1:
      *traits = {"Q4_1", 32, 20};
      return true;
    case GgmlType::kQ5_0:
      *traits = {"Q5_0", 32, 22};
      return true;
    case GgmlType::kQ5_1:
      *traits = {"Q5_1", 32, 24};
      return true;
    case GgmlType::kQ8_0:
      *traits = {"Q8_0", 32, 34};
      return true;
    case GgmlType::kQ8_1:
      *traits = {"Q8_1", 32, 36};
      return true;
    case GgmlType::kQ2_K:
      *traits = {"Q2_K", 256, 84};
      return true;
    case GgmlType::kQ3_K:
      *traits = {"Q3_K", 256, 110};
      return true;
    case GgmlType::kQ4_K:
      *traits = {"Q4_K", 256, 144};
      return true;
    case GgmlType::kQ5_K:
      *traits = {"Q5_K", 256, 176};
      return true;
    case GgmlType::kQ6_K:
      *traits = {"Q6_K", 256, 210};
      return true;
    case GgmlType::kQ8_K:
      *traits = {"Q8_K", 256, 292};
      return true;
    case GgmlType::kI8:
      *traits = {"I8", 1, 1};
      return true;
    case GgmlType::kI16:
      *traits = {"I16", 1, 2};
      return true;
    case GgmlType::kI32:
      *traits = {"I32", 1, 4};
      return true;
    case GgmlType::kI64:
      *traits = {"I64", 1, 8};
      return true;
    case GgmlType::kF64:
      *traits = {"F64", 1, 8};
      return true;
    case GgmlType::kBF16:
      *traits = {"BF16", 1, 2};
      return true;
  }
  return false;
}

// Bytes of one scalar of a metadata type; 0 for string, array and unknown types.
uint64_t ScalarBytes(uint32_t type) {
  switch (static_cast<GgufValueType>(type)) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

bool IsKnownValueType(uint32_t type) {
  return type <= static_cast<uint32_t>(GgufValueType::kFloat64);
}
bool IsFloatType(GgufValueType t) {
  return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64;
}
bool IsIntegerType(GgufValueType t) {
  return ScalarBytes(static_cast<uint32_t>(t)) > 0 && !IsFloatType(t);
}

class Reader {
 public:
  Reader(const uint8_t* data, uint64_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", what, " (at byte ", pos_, ")"));
  }
  absl::Status Truncated(absl::string_view what, uint64_t need) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": truncated: ", what, " needs ", need,
                                                   " bytes at byte ", pos_, ", the file has ",
                                                   left(), " left"));
  }

  absl::Status Bytes(void* out, uint64_t n, absl::string_view what) {
    if (n > left()) return Truncated(what, n);
    std::memcpy(out, data_ + pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }
  template <typename T>
  absl::Status Scalar(T* out, absl::string_view what) {
    return Bytes(out, sizeof(T), what);
  }
  absl::Status String(std::string* out, uint64_t max_bytes, absl::string_view what) {
    uint64_t length = 0;
    if (absl::Status s = Scalar(&length, absl::StrCat(what, " length")); !s.ok()) return s;
    if (length > max_bytes) {
      return Error(
          absl::StrCat(what, " is ", length, " bytes long, more than the limit of ", max_bytes));
    }
    if (length > left()) return Truncated(what, length);
    out->assign(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return absl::OkStatus();
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
};

// Reads one little-endian T into value's float_value (floating T) or int_value (integer T);
// uint64 values above INT64_MAX are refused.
template <typename T>
absl::Status ReadNumber(Reader& r, GgufValue* value, absl::string_view what) {
  T v = 0;
  if (absl::Status s = r.Scalar(&v, what); !s.ok()) return s;
  if constexpr (std::is_floating_point_v<T>) {
    value->float_value = v;
  } else {
    if constexpr (std::is_same_v<T, uint64_t>) {
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return r.Error(absl::StrCat(what, ": uint64 value ", v, " is out of range"));
      }
    }
    value->int_value = static_cast<int64_t>(v);
  }
  return absl::OkStatus();
}

// Reads one scalar of `type` into value's int_value / float_value.
absl::Status ReadScalar(Reader& r, GgufValueType type, GgufValue* value, absl::string_view what) {
  switch (type) {
    case GgufValueType::kUint8:
      return ReadNumber<uint8_t>(r, value, what);
    case GgufValueType::kInt8:
      return ReadNumber<int8_t>(r, value, what);
    case GgufValueType::kUint16:
      return ReadNumber<uint16_t>(r, value, what);
    case GgufValueType::kInt16:
      return ReadNumber<int16_t>(r, value, what);
    case GgufValueType::kUint32:
      return ReadNumber<uint32_t>(r, value, what);
    case GgufValueType::kInt32:
      return ReadNumber<int32_t>(r, value, what);
    case GgufValueType::kUint64:
      return ReadNumber<uint64_t>(r, value, what);
    case GgufValueType::kInt64:
      return ReadNumber<int64_t>(r, value, what);
    case GgufValueType::kFloat32:
      return ReadNumber<float>(r, value, what);
    case GgufValueType::kFloat64:
      return ReadNumber<double>(r, value, what);
    case GgufValueType::kBool: {
      if (absl::Status s = ReadNumber<uint8_t>(r, value, what); !s.ok()) return s;
      if (value->int_value > 1) {
        return r.Error(absl::StrCat(what, ": bool value ", value->int_value, " is not 0 or 1"));
      }
      return absl::OkStatus();
    }
    default:
      return r.Error(absl::StrCat(what, ": not a scalar type"));
  }
}

absl::Status ReadValue(Reader& r, uint32_t raw_type, const GgufLimits& limits, GgufValue* value,
                       const std::string& key) {
  const std::string what = absl::StrCat("value of key \"", key, "\"");
  if (!IsKnownValueType(raw_type)) {
    return r.Error(absl::StrCat(what, " has unknown type ", raw_type));
  }
  value->type = static_cast<GgufValueType>(raw_type);
  if (value->type == GgufValueType::kString) {
    return r.String(&value->string_value, limits.max_string_bytes, what);
  }
  if (value->type != GgufValueType::kArray) return ReadScalar(r, value->type, value, what);

  uint32_t element_type = 0;
  uint64_t n = 0;
  if (absl::Status s = r.Scalar(&element_type, absl::StrCat(what, " element type")); !s.ok())
    return s;
  if (absl::Status s = r.Scalar(&n, absl::StrCat(what, " array length")); !s.ok()) return s;
  if (!IsKnownValueType(element_type)) {
    return r.Error(absl::StrCat(what, " is an array of unknown type ", element_type));
  }
  if (element_type == static_cast<uint32_t>(GgufValueType::kArray)) {
    return r.Error(absl::StrCat(what, " is an array of arrays, which GGUF readers refuse"));
  }
  if (n > limits.max_array_elements) {
    return r.Error(absl::StrCat(what, " has ", n, " elements, more than the limit of ",
                                limits.max_array_elements));
  }
  // Each element takes at least its scalar size, a string at least its 8-byte length.
  const uint64_t min_element =
      element_type == static_cast<uint32_t>(GgufValueType::kString) ? 8 : ScalarBytes(element_type);
  if (n > r.left() / min_element) {
    return r.Truncated(absl::StrCat(what, " (", n, " elements)"), n * min_element);
  }
  value->element_type = static_cast<GgufValueType>(element_type);
  value->array_size = n;
  // The vectors grow with the elements actually read, never sized from the claimed count: n
  // strings of at least 8 bytes each fit the bytes left, but a std::string is 32 bytes, so
  // resize(n) could allocate 4x the file before the first element fails to read.
  if (value->element_type == GgufValueType::kString) {
    for (uint64_t i = 0; i < n; ++i) {
      std::string element;
      if (absl::Status s =
              r.String(&element, limits.max_string_bytes, absl::StrCat(what, " element ", i));
          !s.ok()) {
        return s;
      }
      value->strings.push_back(std::move(element));
    }
  } else if (IsFloatType(value->element_type)) {
    GgufValue element;
    for (uint64_t i = 0; i < n; ++i) {
      if (absl::Status s = ReadScalar(r, value->element_type, &element, what); !s.ok()) return s;
      value->floats.push_back(element.float_value);
    }
  } else {
    GgufValue element;
    for (uint64_t i = 0; i < n; ++i) {
      if (absl::Status s = ReadScalar(r, value->element_type, &element, what); !s.ok()) return s;
      value->ints.push_back(element.int_value);
    }
  }
  return absl::OkStatus();
}

bool MulOverflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}
bool AddOverflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_add_overflow(a, b, out);
}

}  // namespace

std::string GgufValueTypeName(uint32_t type) {
  static const char* const kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                       "int32",  "float32", "bool",   "string", "array",
                                       "uint64", "int64",   "float64"};
  if (type < sizeof(kNames) / sizeof(kNames[0])) return kNames[type];
  return absl::StrCat("type ", type);
}

std::string GgmlTypeName(uint32_t type) {
  TypeTraits traits;
  if (LookupType(type, &traits)) return traits.name;
  return absl::StrCat("type ", type);
}

bool GgmlTypeDequantizable(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
      return true;
    default:
      return false;
  }
}

std::vector<int64_t> GgufTensorInfo::TorchShape() const {
  return std::vector<int64_t>(dims.rbegin(), dims.rend());
}

absl::StatusOr<GgufFile> GgufFile::Open(const std::string& path, const GgufLimits& limits) {
  absl::StatusOr<std::shared_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  return Parse(*std::move(file), limits);
}

absl::StatusOr<GgufFile> GgufFile::Parse(std::shared_ptr<MappedFile> file,
                                         const GgufLimits& limits) {
  GgufFile gguf;
  gguf.file_ = std::move(file);
  const std::string& path = gguf.file_->path();
  Reader r(gguf.file_->data(), gguf.file_->size(), path);

  char magic[4];
  if (absl::Status s = r.Bytes(magic, 4, "magic \"GGUF\""); !s.ok()) return s;
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a GGUF file (magic is not \"GGUF\")"));
  }
  if (absl::Status s = r.Scalar(&gguf.version_, "version"); !s.ok()) return s;
  if ((gguf.version_ & 0xFFFF) == 0 && gguf.version_ != 0) {
    return absl::UnimplementedError(
        absl::StrCat(path, ": version field ", gguf.version_,
                     " looks byte-swapped: big-endian GGUF is not supported"));
  }
  if (gguf.version_ != 2 && gguf.version_ != 3) {
    return absl::UnimplementedError(absl::StrCat(path, ": GGUF version ", gguf.version_,
                                                 " is not supported (expected 2 or 3)"));
  }
  uint64_t n_tensors = 0, n_kv = 0;
  if (absl::Status s = r.Scalar(&n_tensors, "tensor count"); !s.ok()) return s;
  if (absl::Status s = r.Scalar(&n_kv, "metadata count"); !s.ok()) return s;
  // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least
  // 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes.
  if (n_tensors > limits.max_tensors) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tensor count ", n_tensors,
                                                   " exceeds the limit of ", limits.max_tensors));
  }
  if (n_kv > limits.max_kv) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": metadata count ", n_kv, " exceeds the limit of ", limits.max_kv));
  }
  if (n_kv > r.left() / 13 || n_tensors > r.left() / 32 || n_kv * 13 + n_tensors * 32 > r.left()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header claims ", n_kv, " metadata entries and ", n_tensors,
                     " tensors, more than the file's ", r.left(), " remaining bytes can hold"));
  }

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key;
    if (absl::Status s = r.String(&key, limits.max_string_bytes, absl::StrCat("metadata key ", i));
        !s.ok()) {
      return s;
    }
    uint32_t type = 0;
    if (absl::Status s = r.Scalar(&type, absl::StrCat("type of key \"", key, "\"")); !s.ok())
      return s;
    GgufValue value;
    if (absl::Status s = ReadValue(r, type, limits, &value, key); !s.ok()) return s;
    if (!gguf.metadata_.emplace(key, std::move(value)).second) {
      return r.Error(absl::StrCat("duplicate metadata key \"", key, "\""));
    }
  }

  if (const GgufValue* alignment = gguf.Find("general.alignment")) {
    if (alignment->type != GgufValueType::kUint32) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": general.alignment must be a uint32, got ",
                       GgufValueTypeName(static_cast<uint32_t>(alignment->type))));
    }
    const uint64_t a = static_cast<uint64_t>(alignment->int_value);
    if (a == 0 || (a & (a - 1)) != 0 || a > limits.max_alignment) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": general.alignment ", a,
                                                     " is not a power of two between 1 and ",
                                                     limits.max_alignment));
    }
    gguf.alignment_ = a;
  }

  // Not reserved from n_tensors: a tensor info is ~100 bytes in memory and 32 in the file, so a
  // claimed count the bytes left could hold would still allocate 3x the file up front.
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    if (absl::Status s =
            r.String(&t.name, limits.max_string_bytes, absl::StrCat("tensor ", i, " name"));
        !s.ok()) {
      return s;
    }
    const std::string what = absl::StrCat("tensor \"", t.name, "\"");
    if (t.name.empty() || t.name.size() > limits.max_name_bytes) {
      return r.Error(absl::StrCat(what, ": name must be 1 to ", limits.max_name_bytes, " bytes"));
    }
    uint32_t n_dims = 0;
    if (absl::Status s = r.Scalar(&n_dims, absl::StrCat(what, " n_dims")); !s.ok()) return s;
    if (n_dims == 0 || n_dims > limits.max_dims) {
      return r.Error(
          absl::StrCat(what, ": n_dims ", n_dims, " is not between 1 and ", limits.max_dims));
    }
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      int64_t ne = 0;
      if (absl::Status s = r.Scalar(&ne, absl::StrCat(what, " dim ", d)); !s.ok()) return s;
      if (ne < 0) return r.Error(absl::StrCat(what, ": dim ", d, " is negative (", ne, ")"));
      if (MulOverflows(numel, static_cast<uint64_t>(ne), &numel) ||
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return r.Error(absl::StrCat(what, ": element count overflows"));
      }
      t.dims.push_back(ne);
    }
    t.numel = static_cast<int64_t>(numel);
    if (absl::Status s = r.Scalar(&t.type, absl::StrCat(what, " type")); !s.ok()) return s;
    TypeTraits traits;
    if (!LookupType(t.type, &traits)) {
      return absl::UnimplementedError(
          absl::StrCat(path, ": ", what, ": unknown or unsupported ggml type ", t.type));
    }
    if (t.dims[0] % traits.block != 0) {
      return r.Error(absl::StrCat(what, ": innermost dim ", t.dims[0], " is not a multiple of ",
                                  traits.name, "'s block size ", traits.block));
    }
    if (MulOverflows(numel / traits.block, traits.bytes, &t.bytes)) {
      return r.Error(absl::StrCat(what, ": byte size overflows"));
    }
    if (absl::Status s = r.Scalar(&t.offset, absl::StrCat(what, " offset")); !s.ok()) return s;
    if (t.offset % gguf.alignment_ != 0) {
      return r.Error(absl::StrCat(what, ": offset ", t.offset,
                                  " is not a multiple of the alignment ", gguf.alignment_));
    }
    if (!gguf.tensor_index_.emplace(t.name, gguf.tensors_.size()).second) {
      return r.Error(absl::StrCat("duplicate tensor name \"", t.name, "\""));
    }
    gguf.tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t header_end = r.pos();
  gguf.data_offset_ =
      header_end + (gguf.alignment_ - header_end % gguf.alignment_) % gguf.alignment_;
  const uint64_t file_size = gguf.file_->size();
  if (n_tensors > 0 && gguf.data_offset_ > file_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": truncated: the data section would start at byte ", gguf.data_offset_,
                     ", past the end (", file_size, " bytes)"));
  }
  const uint64_t data_size = file_size - std::min(file_size, gguf.data_offset_);
  // As llama.cpp's gguf.cpp: tensors follow one another in file order, each at the previous
  // one's offset plus its size padded to the alignment (so no two overlap), with every sum
  // overflow-checked; and each tensor's bytes lie inside the file.
  uint64_t expected_offset = 0;
  for (GgufTensorInfo& t : gguf.tensors_) {
    if (t.offset != expected_offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor \"", t.name, "\" has offset ", t.offset, ", expected ", expected_offset,
          " (tensors follow one another in file order, each padded to the alignment ",
          gguf.alignment_, ")"));
    }
    uint64_t padded = 0;
    if (AddOverflows(t.bytes, (gguf.alignment_ - t.bytes % gguf.alignment_) % gguf.alignment_,
                     &padded) ||
        AddOverflows(expected_offset, padded, &expected_offset)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor \"", t.name, "\": ", t.bytes,
                       " bytes overflow when padded to the alignment ", gguf.alignment_));
    }
    uint64_t end = 0;
    if (AddOverflows(t.offset, t.bytes, &end) || end > data_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor \"", t.name, "\": data [", t.offset, ", ", t.offset, " + ",
                       t.bytes, ") lies outside the data section of ", data_size,
                       " bytes (file truncated or offset corrupt)"));
    }
    t.data = gguf.file_->data() + gguf.data_offset_ + t.offset;
  }
  return gguf;
}

absl::StatusOr<GgufFile> ParseGguf(absl::string_view bytes, std::string name,
                                   const GgufLimits& limits) {
  return GgufFile::Parse(MappedFile::FromBytes(std::string(bytes), std::move(name)), limits);
}

const GgufValue* GgufFile::Find(absl::string_view key) const {
  auto it = metadata_.find(std::string(key));
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::FindTensor(absl::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
absl::Status Missing(const std::string& path, absl::string_view key, absl::string_view expected) {
  return absl::NotFoundError(
      absl::StrCat(path, ": missing metadata key \"", key, "\" (expected ", expected, ")"));
}
absl::Status WrongType(const std::string& path, absl::string_view key, const GgufValue& v,
                       absl::string_view expected) {
  std::string got = GgufValueTypeName(static_cast<uint32_t>(v.type));
  if (v.type == GgufValueType::kArray) {
    got = absl::StrCat("array of ", GgufValueTypeName(static_cast<uint32_t>(v.element_type)));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": metadata key \"", key, "\": expected ", expected, ", got ", got));
}
}  // namespace

absl::StatusOr<uint64_t> GgufFile::GetUint(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path(), key, "an unsigned integer");
  if (!IsIntegerType(v->type) || v->type == GgufValueType::kBool) {
    return WrongType(path(), key, *v, "an unsigned integer");
  }
  if (v->int_value < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path(), ": metadata key \"", key,
                                                   "\": expected a non-negative integer, got ",
                                                   v->int_value));
  }
  return static_cast<uint64_t>(v->int_value);
}

absl::StatusOr<double> GgufFile::GetFloat(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path(), key, "a number");
  if (IsFloatType(v->type)) return v->float_value;
  if (IsIntegerType(v->type) && v->type != GgufValueType::kBool) {
    return static_cast<double>(v->int_value);
  }
  return WrongType(path(), key, *v, "a number");
}

absl::StatusOr<std::string> GgufFile::GetString(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path(), key, "a string");
  if (v->type != GgufValueType::kString) return WrongType(path(), key, *v, "a string");
  return v->string_value;
}

absl::StatusOr<bool> GgufFile::GetBool(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path(), key, "a bool");
  if (v->type != GgufValueType::kBool) return WrongType(path(), key, *v, "a bool");
  return v->int_value != 0;
}

absl::StatusOr<const std::vector<std::string>*> GgufFile::GetStringArray(
    absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path(), key, "an array of strings");
  if (v->type != GgufValueType::kArray || v->element_type != GgufValueType::kString) {
    return WrongType(path(), key, *v, "an array of strings");
  }
  return &v->strings;
}

absl::StatusOr<const std::vector<int64_t>*> GgufFile::GetIntArray(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path(), key, "an array of integers");
  if (v->type != GgufValueType::kArray || !IsIntegerType(v->element_type)) {
    return WrongType(path(), key, *v, "an array of integers");
  }
  return &v->ints;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1F;
  const uint32_t mantissa = h & 0x3FF;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: value = mantissa * 2^-24, exact in float
      const float value = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
      std::memcpy(&bits, &value, 4);
      bits |= sign;
    }
  } else if (exponent == 31) {
    bits = sign | 0x7F800000 | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

float Bfloat16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

namespace {
uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
}  // namespace

void DequantizeQ8_0(const uint8_t* data, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b, data += 34, out += 32) {
    const float d = HalfToFloat(Load16(data));
    const int8_t* q = reinterpret_cast<const int8_t*>(data + 2);
    for (int j = 0; j < 32; ++j) out[j] = d * static_cast<float>(q[j]);
  }
}

void DequantizeQ4_0(const uint8_t* data, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b, data += 18, out += 32) {
    const float d = HalfToFloat(Load16(data));
    const uint8_t* qs = data + 2;
    for (int j = 0; j < 16; ++j) {
      out[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
      out[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
    }
  }
}

void DequantizeQ4_1(const uint8_t* data, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b, data += 20, out += 32) {
    const float d = HalfToFloat(Load16(data));
    const float m = HalfToFloat(Load16(data + 2));
    const uint8_t* qs = data + 4;
    for (int j = 0; j < 16; ++j) {
      // Two roundings (product, then sum) as in numpy; BUILD compiles this with -ffp-contract=off.
      out[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
      out[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
    }
  }
}

absl::Status DequantizeGgufTensor(const GgufTensorInfo& t, float* out) {
  const uint8_t* p = t.data;
  if (p == nullptr && t.numel > 0) {
    return absl::FailedPreconditionError(absl::StrCat("tensor \"", t.name, "\" has no data"));
  }
  switch (static_cast<GgmlType>(t.type)) {
    case GgmlType::kF32:
      // memcpy's pointers must be valid even for 0 bytes; a zero-size tensor may have none.
      if (t.numel > 0) std::memcpy(out, p, t.numel * sizeof(float));
      return absl::OkStatus();
    case GgmlType::kF16:
      for (int64_t i = 0; i < t.numel; ++i) out[i] = HalfToFloat(Load16(p + 2 * i));
      return absl::OkStatus();
    case GgmlType::kBF16:
      for (int64_t i = 0; i < t.numel; ++i) out[i] = Bfloat16ToFloat(Load16(p + 2 * i));
      return absl::OkStatus();
    case GgmlType::kQ8_0:
      DequantizeQ8_0(p, t.numel / 32, out);
      return absl::OkStatus();
    case GgmlType::kQ4_0:
      DequantizeQ4_0(p, t.numel / 32, out);
      return absl::OkStatus();
    case GgmlType::kQ4_1:
      DequantizeQ4_1(p, t.numel / 32, out);
      return absl::OkStatus();
    default:
      return absl::UnimplementedError(
          absl::StrCat("tensor \"", t.name, "\": dequantizing ", GgmlTypeName(t.type),
                       " is not implemented (F32, F16, BF16, Q8_0, Q4_0, Q4_1 are)"));
  }
}

}  // namespace kvgate::runtime
