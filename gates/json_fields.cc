#include "gates/json_fields.h"

#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kvgate::gates {

absl::StatusOr<Json> ParseJson(absl::string_view text) {
  // nlohmann keeps the last of two equal keys; a document with one is rejected instead, so a row
  // cannot say two things about one metric.
  std::vector<std::set<std::string>> keys_of_open_objects;
  std::string duplicate;
  auto reject_duplicate_keys = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) keys_of_open_objects.emplace_back();
    if (event == Json::parse_event_t::object_end) keys_of_open_objects.pop_back();
    if (event == Json::parse_event_t::key &&
        !keys_of_open_objects.back().insert(parsed.get<std::string>()).second &&
        duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    Json json = Json::parse(text.begin(), text.end(), reject_duplicate_keys);
    if (!duplicate.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate key \"", duplicate, "\""));
    }
    return json;
  } catch (const Json::exception& e) {  // a syntax error, or a number out of range
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", e.what()));
  }
}

bool IsSnakeCaseName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') return false;
  }
  return true;
}

FieldReader::FieldReader(const Json& object, std::string where)
    : object_(object), where_(std::move(where)) {}

std::string FieldReader::Path(absl::string_view key) const {
  return where_.empty() ? std::string(key) : absl::StrCat(where_, ".", key);
}

absl::Status FieldReader::CheckKeys(std::initializer_list<absl::string_view> keys) const {
  const std::string name = where_.empty() ? "top level" : where_;
  if (!object_.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected an object"));
  }
  for (const auto& [key, value] : object_.items()) {
    bool known = false;
    for (absl::string_view k : keys) known = known || k == key;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": unknown field \"", key, "\" (known: ", absl::StrJoin(keys, ", "), ")"));
    }
  }
  for (absl::string_view key : keys) {
    if (!object_.contains(std::string(key))) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": missing \"", key, "\""));
    }
  }
  return absl::OkStatus();
}

const Json& FieldReader::Field(absl::string_view key) const { return object_.at(std::string(key)); }

absl::Status FieldReader::TypeError(absl::string_view key, absl::string_view expected) const {
  return absl::InvalidArgumentError(
      absl::StrCat(Path(key), ": expected ", expected, ", got ", Field(key).dump()));
}

absl::StatusOr<std::string> FieldReader::StringMaybeEmpty(absl::string_view key) const {
  const Json& value = Field(key);
  if (!value.is_string()) return TypeError(key, "a string");
  return value.get<std::string>();
}

absl::StatusOr<std::string> FieldReader::String(absl::string_view key) const {
  absl::StatusOr<std::string> value = StringMaybeEmpty(key);
  if (value.ok() && value->empty()) return TypeError(key, "a non-empty string");
  return value;
}

absl::StatusOr<int64_t> FieldReader::Integer(absl::string_view key) const {
  const Json& value = Field(key);
  if (value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX) {
    return TypeError(key, "an integer that fits 64 bits");
  }
  if (!value.is_number_integer()) return TypeError(key, "an integer");
  return value.get<int64_t>();
}

absl::StatusOr<std::optional<int64_t>> FieldReader::IntegerOrNull(absl::string_view key) const {
  if (Field(key).is_null()) return std::optional<int64_t>();
  absl::StatusOr<int64_t> value = Integer(key);
  if (!value.ok()) return TypeError(key, "an integer or null");
  return std::optional<int64_t>(*value);
}

absl::StatusOr<std::optional<std::string>> FieldReader::StringOrNull(absl::string_view key) const {
  if (Field(key).is_null()) return std::optional<std::string>();
  absl::StatusOr<std::string> value = String(key);
  if (!value.ok()) return TypeError(key, "a non-empty string or null");
  return std::optional<std::string>(*value);
}

absl::StatusOr<double> FieldReader::Number(absl::string_view key) const {
  const Json& value = Field(key);
  if (!value.is_number() || !std::isfinite(value.get<double>())) {
    return TypeError(key, "a finite number");
  }
  return value.get<double>();
}

absl::StatusOr<bool> FieldReader::Bool(absl::string_view key) const {
  const Json& value = Field(key);
  if (!value.is_boolean()) return TypeError(key, "true or false");
  return value.get<bool>();
}

}  // namespace kvgate::gates
