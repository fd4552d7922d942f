// Strict reading of JSON objects for gate specs and records: every field typed, every key known,
// every error naming where it is (e.g. `target.context: expected an integer, got "8k"`).
//
// Usage:
//   FieldReader target(json["target"], "target");
//   if (absl::Status s = target.CheckKeys({"model", "context"}); !s.ok()) return s;
//   absl::StatusOr<std::string> model = target.String("model");

#ifndef KVGATE_GATES_JSON_FIELDS_H_
#define KVGATE_GATES_JSON_FIELDS_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace kvgate::gates {

using Json = nlohmann::json;

// Parses one JSON document; a syntax error is InvalidArgument with nlohmann's position.
absl::StatusOr<Json> ParseJson(absl::string_view text);

// Whether `name` is [a-z0-9_]+: what gate ids and metric names are made of.
bool IsSnakeCaseName(absl::string_view name);

// Typed access to the fields of one JSON object.
class FieldReader {
 public:
  // `where` names the object in messages: "" for the top level, else e.g. "target".
  FieldReader(const Json& object, std::string where);

  // Fails unless the value is an object whose keys are exactly `keys`: none missing, none extra.
  absl::Status CheckKeys(std::initializer_list<absl::string_view> keys) const;

  const Json& Field(absl::string_view key) const;
  std::string Path(absl::string_view key) const;  // "target.context"

  absl::StatusOr<std::string> String(absl::string_view key) const;  // non-empty
  absl::StatusOr<std::string> StringMaybeEmpty(absl::string_view key) const;
  absl::StatusOr<int64_t> Integer(absl::string_view key) const;
  absl::StatusOr<std::optional<int64_t>> IntegerOrNull(absl::string_view key) const;
  absl::StatusOr<std::optional<std::string>> StringOrNull(absl::string_view key) const;  // non-empty
  absl::StatusOr<double> Number(absl::string_view key) const;  // an integer or a float
  absl::StatusOr<bool> Bool(absl::string_view key) const;

 private:
  absl::Status TypeError(absl::string_view key, absl::string_view expected) const;

  const Json& object_;
  std::string where_;
};

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_JSON_FIELDS_H_
