// JSON from untrusted files (config.json, tokenizer.json, safetensors headers, index files) parsed
// with limits: a size bound, a nesting-depth bound checked before nlohmann/json's recursive parser
// runs (so "[[[[..." cannot exhaust the stack), duplicate object keys rejected (nlohmann would keep
// the last silently), and exceptions turned into absl::Status. JsonObject reads typed fields with
// errors that name the file, the field and what was expected.
//
// Usage:
//   absl::StatusOr<nlohmann::json> config = kvgate::runtime::ReadJsonFile(dir + "/config.json");
//   if (!config.ok()) return config.status();
//   kvgate::runtime::JsonObject fields(*config, dir + "/config.json");
//   absl::StatusOr<int64_t> hidden = fields.PositiveInt("hidden_size");
//   // error: ".../config.json: missing field "hidden_size" (expected a positive integer)"

#ifndef KVGATE_EXPERIMENTS_RUNTIME_JSON_LIMITS_H_
#define KVGATE_EXPERIMENTS_RUNTIME_JSON_LIMITS_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::runtime {

struct JsonLimits {
  uint64_t max_bytes = uint64_t{512} << 20;  // tokenizer.json of a 150k vocabulary is ~7 MB
  int max_depth = 64;
};

// Parses `text`; `source` names it in errors (a path, or "path: header").
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, absl::string_view source,
                                         const JsonLimits& limits = {});

// Reads and parses a file (at most limits.max_bytes).
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path, const JsonLimits& limits = {});

// Reads a whole small file into a string (at most max_bytes); errors name the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes);

// "a string", "an integer", ... for error messages.
std::string JsonTypeName(const nlohmann::json& value);

// Typed reads of an object's fields. Every error names `source` and the field.
class JsonObject {
 public:
  // `object` must outlive this reader.
  JsonObject(const nlohmann::json& object, std::string source);

  // OK if the value is an object; else an error naming `what`.
  absl::Status CheckIsObject(absl::string_view what) const;
  bool Has(absl::string_view key) const;  // present and not null
  absl::StatusOr<const nlohmann::json*> Get(absl::string_view key) const;

  absl::StatusOr<std::string> String(absl::string_view key) const;
  absl::StatusOr<int64_t> Int(absl::string_view key) const;
  absl::StatusOr<int64_t> PositiveInt(absl::string_view key) const;
  absl::StatusOr<double> Double(absl::string_view key) const;
  absl::StatusOr<bool> Bool(absl::string_view key) const;
  // The value when present and not null, else `fallback`; a present value of the wrong type is
  // still an error.
  absl::StatusOr<int64_t> PositiveIntOr(absl::string_view key, int64_t fallback) const;
  absl::StatusOr<double> DoubleOr(absl::string_view key, double fallback) const;
  absl::StatusOr<bool> BoolOr(absl::string_view key, bool fallback) const;

  const std::string& source() const { return source_; }
  // "<source>: field \"key\": <message>".
  absl::Status FieldError(absl::string_view key, absl::string_view message) const;

 private:
  const nlohmann::json& object_;
  std::string source_;
};

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_JSON_LIMITS_H_
