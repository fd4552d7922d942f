#include "tools/report/published.h"

#include <cmath>
#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gates/json_fields.h"

namespace kvgate::report {
namespace {

using ::kvgate::gates::FieldReader;
using ::kvgate::gates::Json;

absl::Status Error(const std::string& file, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", message));
}

absl::StatusOr<PublishedCell> ParseCell(const Json& value, const std::string& path) {
  if (value.is_null()) return PublishedCell();
  if (value.is_number()) {
    const double v = value.get<double>();
    if (!std::isfinite(v)) return absl::InvalidArgumentError(absl::StrCat(path, ": not finite"));
    return PublishedCell(v);
  }
  if (value.is_string() && !value.get<std::string>().empty()) {
    return PublishedCell(value.get<std::string>());
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": expected a number, a non-empty string or null, got ", value.dump()));
}

// Fails when `object` has a key outside `allowed` or lacks one of `required`.
absl::Status CheckObjectKeys(const Json& object, const std::string& path,
                             const std::set<std::string>& required,
                             const std::set<std::string>& allowed) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected an object"));
  }
  for (const auto& [key, value] : object.items()) {
    if (allowed.count(key) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": unknown key \"", key, "\" (allowed: ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  for (const std::string& key : required) {
    if (!object.contains(key)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": missing key \"", key, "\""));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PublishedColumn> ParseColumn(const Json& json, const std::string& path) {
  if (absl::Status s = CheckObjectKeys(json, path, {"key", "title"},
                                       {"key", "title", "decimals", "suffix", "overhead"});
      !s.ok()) {
    return s;
  }
  FieldReader f(json, path);
  PublishedColumn c;
  absl::StatusOr<std::string> key = f.String("key"), title = f.String("title");
  if (!key.ok()) return key.status();
  if (!title.ok()) return title.status();
  c.key = *key;
  c.title = *title;
  if (json.contains("decimals")) {
    absl::StatusOr<int64_t> d = f.Integer("decimals");
    if (!d.ok()) return d.status();
    if (*d < 0 || *d > 9) {
      return absl::InvalidArgumentError(absl::StrCat(f.Path("decimals"), ": must be 0..9"));
    }
    c.decimals = static_cast<int>(*d);
  }
  if (json.contains("suffix")) {
    absl::StatusOr<std::string> s = f.String("suffix");
    if (!s.ok()) return s.status();
    c.suffix = *s;
  }
  if (json.contains("overhead")) {
    absl::StatusOr<double> h = f.Number("overhead");
    if (!h.ok()) return h.status();
    if (!(*h >= 0)) {
      return absl::InvalidArgumentError(absl::StrCat(f.Path("overhead"), ": must be >= 0"));
    }
    c.overhead = *h;
  }
  return c;
}

absl::StatusOr<PublishedSection> ParseSection(const std::string& gate_id, const Json& json) {
  const std::string path = absl::StrCat("sections.", gate_id);
  if (!kvgate::gates::IsSnakeCaseName(gate_id)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a section is named for a gate id"));
  }
  if (absl::Status s = CheckObjectKeys(
          json, path, {"title", "source", "inputs", "columns", "rows"},
          {"title", "source", "inputs", "columns", "rows", "path", "verdict", "setup"});
      !s.ok()) {
    return s;
  }
  FieldReader f(json, path);
  PublishedSection section;
  section.gate_id = gate_id;
  absl::StatusOr<std::string> title = f.String("title"), source = f.String("source");
  if (!title.ok()) return title.status();
  if (!source.ok()) return source.status();
  section.title = *title;
  section.source = *source;
  for (const char* key : {"path", "verdict"}) {
    if (!json.contains(key)) continue;
    absl::StatusOr<std::string> v = f.String(key);
    if (!v.ok()) return v.status();
    (std::string(key) == "path" ? section.path : section.verdict) = *v;
  }
  if (json.contains("setup")) {
    const std::set<std::string> allowed(SetupKeys().begin(), SetupKeys().end());
    if (absl::Status s = CheckObjectKeys(json["setup"], path + ".setup", {}, allowed); !s.ok()) {
      return s;
    }
  }
  for (const std::string& key : SetupKeys()) {
    std::string value;
    if (json.contains("setup") && json["setup"].contains(key)) {
      FieldReader setup(json["setup"], path + ".setup");
      absl::StatusOr<std::optional<std::string>> v = setup.StringOrNull(key);
      if (!v.ok()) return v.status();
      value = v->value_or("");
    }
    section.setup.push_back({key, value});
  }
  if (!json["inputs"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ".inputs: expected an object"));
  }
  for (const auto& [name, value] : json["inputs"].items()) {
    absl::StatusOr<PublishedCell> cell = ParseCell(value, absl::StrCat(path, ".inputs.", name));
    if (!cell.ok()) return cell.status();
    section.inputs[name] = *cell;
  }
  if (!json["columns"].is_array() || json["columns"].empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ".columns: expected a non-empty list"));
  }
  std::set<std::string> keys;
  for (size_t i = 0; i < json["columns"].size(); ++i) {
    absl::StatusOr<PublishedColumn> c =
        ParseColumn(json["columns"][i], absl::StrCat(path, ".columns[", i, "]"));
    if (!c.ok()) return c.status();
    if (!keys.insert(c->key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".columns[", i, "]: key \"", c->key, "\" appears twice"));
    }
    section.columns.push_back(*std::move(c));
  }
  if (keys.count("verdict") == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".columns: needs a \"verdict\" column (the study's gate verdict)"));
  }
  if (!json["rows"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ".rows: expected a list"));
  }
  for (size_t i = 0; i < json["rows"].size(); ++i) {
    const std::string row_path = absl::StrCat(path, ".rows[", i, "]");
    std::set<std::string> allowed = keys;
    allowed.insert("match");
    if (absl::Status s = CheckObjectKeys(json["rows"][i], row_path, keys, allowed); !s.ok()) {
      return s;
    }
    std::string match;
    if (json["rows"][i].contains("match")) {
      absl::StatusOr<std::string> m = FieldReader(json["rows"][i], row_path).String("match");
      if (!m.ok()) return m.status();
      match = *m;
    }
    section.matches.push_back(match);
    std::map<std::string, PublishedCell> row;
    for (const std::string& key : keys) {
      absl::StatusOr<PublishedCell> cell =
          ParseCell(json["rows"][i][key], absl::StrCat(row_path, ".", key));
      if (!cell.ok()) return cell.status();
      row[key] = *cell;
    }
    section.rows.push_back(std::move(row));
  }
  return section;
}

}  // namespace

const std::vector<std::string>& SetupKeys() {
  static const auto* const kKeys = new std::vector<std::string>{
      "model", "weights", "context", "dtype", "card", "software", "commit", "prompts", "steps",
      "repeats"};
  return *kKeys;
}

std::string FormatPublishedNumber(double value, std::optional<int> decimals) {
  if (decimals.has_value()) return absl::StrFormat("%.*f", *decimals, value);
  return absl::StrFormat("%g", value);
}

std::string PublishedSection::Format(const PublishedColumn& column,
                                     const PublishedCell& cell) const {
  if (std::holds_alternative<std::monostate>(cell)) return "—";
  if (const std::string* s = std::get_if<std::string>(&cell)) return *s;
  return absl::StrCat(FormatPublishedNumber(std::get<double>(cell), column.decimals),
                      column.suffix);
}

std::optional<double> PublishedSection::NumberInput(absl::string_view name) const {
  auto it = inputs.find(std::string(name));
  if (it == inputs.end() || !std::holds_alternative<double>(it->second)) return std::nullopt;
  return std::get<double>(it->second);
}

std::optional<double> PublishedSection::Number(const std::map<std::string, PublishedCell>& row,
                                               absl::string_view key) {
  auto it = row.find(std::string(key));
  if (it == row.end() || !std::holds_alternative<double>(it->second)) return std::nullopt;
  return std::get<double>(it->second);
}

const PublishedSection* Published::Find(absl::string_view gate_id) const {
  auto it = sections.find(std::string(gate_id));
  return it == sections.end() ? nullptr : &it->second;
}

absl::StatusOr<Published> ParsePublished(absl::string_view bytes, const std::string& file) {
  absl::StatusOr<Json> json = kvgate::gates::ParseJson(bytes);
  if (!json.ok()) return Error(file, json.status().message());
  if (absl::Status s =
          CheckObjectKeys(*json, "(top level)", {"source", "sections"},
                          {"source", "sections", "final_verdict"});
      !s.ok()) {
    return Error(file, s.message());
  }
  Published published;
  published.file = file;
  absl::StatusOr<std::string> source = FieldReader(*json, "").String("source");
  if (!source.ok()) return Error(file, source.status().message());
  published.source = *source;
  if (json->contains("final_verdict")) {
    const Json& fv = (*json)["final_verdict"];
    if (absl::Status s = CheckObjectKeys(fv, "final_verdict", {"text", "source"}, {"text", "source"});
        !s.ok()) {
      return Error(file, s.message());
    }
    FieldReader r(fv, "final_verdict");
    absl::StatusOr<std::string> text = r.String("text"), from = r.String("source");
    if (!text.ok()) return Error(file, text.status().message());
    if (!from.ok()) return Error(file, from.status().message());
    published.final_verdict = *text;
    published.final_verdict_source = *from;
  }
  if (!(*json)["sections"].is_object()) return Error(file, "sections: expected an object");
  for (const auto& [gate_id, section_json] : (*json)["sections"].items()) {
    absl::StatusOr<PublishedSection> section = ParseSection(gate_id, section_json);
    if (!section.ok()) return Error(file, section.status().message());
    published.sections[gate_id] = *std::move(section);
  }
  return published;
}

}  // namespace kvgate::report
