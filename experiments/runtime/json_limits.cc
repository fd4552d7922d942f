// See json_limits.h.

#include "experiments/runtime/json_limits.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_set>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kvgate::runtime {
namespace {

// The deepest nesting of [ and { outside strings, and where it first passes `limit`.
absl::Status CheckDepth(absl::string_view text, absl::string_view source, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": JSON nested deeper than ", limit, " levels (at byte ", i, ")"));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, absl::string_view source,
                                         const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": JSON of ", text.size(), " bytes exceeds the limit of ", limits.max_bytes));
  }
  if (absl::Status depth = CheckDepth(text, source, limits.max_depth); !depth.ok()) return depth;
  // Duplicate keys: one set of keys per open object.
  std::vector<std::unordered_set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event,
                      nlohmann::json& parsed) -> bool {
    switch (event) {
      case nlohmann::json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case nlohmann::json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case nlohmann::json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get_ref<const std::string&>()).second &&
            duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON: ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(source, ": out of memory parsing JSON"));
  }
  if (!duplicate.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": duplicate key \"", duplicate, "\" in a JSON object"));
  }
  return value;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (file == nullptr) {
    const int error = errno;
    const std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::PermissionDeniedError(message);
  }
  std::string out;
  // Sized once from the file's length (when it is within the limit), so reading never holds a
  // buffer larger than the file; growing by appends would double past it (a 200 KB file read
  // into a 256 KB string).
  struct stat info;
  if (::fstat(::fileno(file.get()), &info) == 0 && info.st_size > 0 &&
      static_cast<uint64_t>(info.st_size) <= max_bytes) {
    out.reserve(static_cast<size_t>(info.st_size));
  }
  char buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) {
    if (out.size() + got > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than the limit of ", max_bytes, " bytes"));
    }
    out.append(buffer, got);
  }
  if (std::ferror(file.get())) {
    return absl::DataLossError(absl::StrCat(path, ": read error: ", std::strerror(errno)));
  }
  return out;
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path, const JsonLimits& limits) {
  absl::StatusOr<std::string> text = ReadFileToString(path, limits.max_bytes);
  if (!text.ok()) return text.status();
  return ParseJson(*text, path, limits);
}

std::string JsonTypeName(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a number";
    default:
      return "an unknown JSON value";
  }
}

JsonObject::JsonObject(const nlohmann::json& object, std::string source)
    : object_(object), source_(std::move(source)) {}

absl::Status JsonObject::CheckIsObject(absl::string_view what) const {
  if (object_.is_object()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      source_, ": expected ", what, " to be a JSON object, got ", JsonTypeName(object_)));
}

absl::Status JsonObject::FieldError(absl::string_view key, absl::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(source_, ": field \"", key, "\": ", message));
}

bool JsonObject::Has(absl::string_view key) const {
  if (!object_.is_object()) return false;
  auto it = object_.find(std::string(key));
  return it != object_.end() && !it->is_null();
}

absl::StatusOr<const nlohmann::json*> JsonObject::Get(absl::string_view key) const {
  if (!object_.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": expected a JSON object, got ", JsonTypeName(object_)));
  }
  auto it = object_.find(std::string(key));
  if (it == object_.end() || it->is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": missing field \"", key, "\""));
  }
  return &*it;
}

absl::StatusOr<std::string> JsonObject::String(absl::string_view key) const {
  absl::StatusOr<const nlohmann::json*> value = Get(key);
  if (!value.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(value.status().message(), " (expected a string)"));
  if (!(*value)->is_string())
    return FieldError(key, absl::StrCat("expected a string, got ", JsonTypeName(**value)));
  return (*value)->get<std::string>();
}

absl::StatusOr<int64_t> JsonObject::Int(absl::string_view key) const {
  absl::StatusOr<const nlohmann::json*> value = Get(key);
  if (!value.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(value.status().message(), " (expected an integer)"));
  const nlohmann::json& v = **value;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{INT64_MAX}) {
      return FieldError(key, "integer out of range");
    }
    return v.get<int64_t>();
  }
  return FieldError(key, absl::StrCat("expected an integer, got ", JsonTypeName(v)));
}

absl::StatusOr<int64_t> JsonObject::PositiveInt(absl::string_view key) const {
  absl::StatusOr<const nlohmann::json*> value = Get(key);
  if (!value.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(value.status().message(), " (expected a positive integer)"));
  absl::StatusOr<int64_t> v = Int(key);
  if (!v.ok()) return v.status();
  if (*v <= 0) return FieldError(key, absl::StrCat("expected a positive integer, got ", *v));
  return *v;
}

absl::StatusOr<double> JsonObject::Double(absl::string_view key) const {
  absl::StatusOr<const nlohmann::json*> value = Get(key);
  if (!value.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(value.status().message(), " (expected a number)"));
  if (!(*value)->is_number())
    return FieldError(key, absl::StrCat("expected a number, got ", JsonTypeName(**value)));
  const double v = (*value)->get<double>();
  if (!std::isfinite(v)) return FieldError(key, "expected a finite number");
  return v;
}

absl::StatusOr<bool> JsonObject::Bool(absl::string_view key) const {
  absl::StatusOr<const nlohmann::json*> value = Get(key);
  if (!value.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(value.status().message(), " (expected true or false)"));
  if (!(*value)->is_boolean())
    return FieldError(key, absl::StrCat("expected true or false, got ", JsonTypeName(**value)));
  return (*value)->get<bool>();
}

absl::StatusOr<int64_t> JsonObject::PositiveIntOr(absl::string_view key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return PositiveInt(key);
}

absl::StatusOr<double> JsonObject::DoubleOr(absl::string_view key, double fallback) const {
  if (!Has(key)) return fallback;
  return Double(key);
}

absl::StatusOr<bool> JsonObject::BoolOr(absl::string_view key, bool fallback) const {
  if (!Has(key)) return fallback;
  return Bool(key);
}

}  // namespace kvgate::runtime
