// The study's published figures, read from one data file (reports/templates/published.json), so
// no published number is typed into code or into a generated report. Each section belongs to a
// gate and is a small table: the study's numbers as published, a source for each section, and
// what was given with them (the inputs they were measured at, the requirements they were judged
// by).
//
//   {"source": "where the figures come from, in words",
//    "sections": {
//      "speed_ceiling": {
//        "title": "...", "source": "...",
//        "inputs": {"p_attn": 0.334, "dense_decode_step_ms": 20.4},
//        "columns": [{"key": "f", "title": "active fraction f", "decimals": 3},
//                    {"key": "speedup_h5", "title": "at 5%", "decimals": 2, "suffix": "x",
//                     "overhead": 0.05},
//                    {"key": "verdict", "title": "gate"}],
//        "rows": [{"f": 0.337, "speedup_h5": 1.21, "verdict": "pass"}]}}}
//
// Optional: a section's "path" (the path of gates/paths.json its question belongs to),
// "verdict" (the study's verdict in words) and "setup" (what the study measured on: model,
// weights, context, dtype, card, software, commit, prompts, steps, repeats; each a string or null
// for not given); a row's "match" (the text our variants of the section's gate contain when they
// measure what the row measured); the file's "final_verdict" ({"text", "source"}).
// Every row has exactly the columns' keys (and "match"); a cell is a number, a string, or null
// (not published).
// Every section has a `verdict` column. `decimals` prints a number with that many decimals
// (else the shortest form), `suffix` follows it; `overhead` marks a projected-speedup column
// at that selector overhead (the speed-ceiling summary and plot read them).
//
// Usage:
//   absl::StatusOr<Published> p = ParsePublished(bytes, "reports/templates/published.json");
//   const PublishedSection* s = p->Find("speed_ceiling");

#ifndef KVGATE_TOOLS_REPORT_PUBLISHED_H_
#define KVGATE_TOOLS_REPORT_PUBLISHED_H_

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::report {

// A published cell: not published (monostate), a number, or words.
using PublishedCell = std::variant<std::monostate, double, std::string>;

struct PublishedColumn {
  std::string key;
  std::string title;
  std::optional<int> decimals;
  std::string suffix;
  std::optional<double> overhead;
};

struct PublishedSection {
  std::string gate_id;  // the key it is filed under
  std::string title;
  std::string source;
  std::map<std::string, PublishedCell> inputs;
  std::vector<PublishedColumn> columns;
  std::vector<std::map<std::string, PublishedCell>> rows;
  std::vector<std::string> matches;  // per row: what our variants contain; "" when none
  std::string path;                  // "" when not given
  std::string verdict;               // the study's verdict in words; "" when not given
  std::vector<std::pair<std::string, std::string>> setup;  // in kSetupKeys order; "" not given

  // The cell as printed: "—" for a figure not published.
  std::string Format(const PublishedColumn& column, const PublishedCell& cell) const;
  // A numeric input, or nullopt.
  std::optional<double> NumberInput(absl::string_view name) const;
  // A numeric cell of a row, or nullopt.
  static std::optional<double> Number(const std::map<std::string, PublishedCell>& row,
                                      absl::string_view key);
};

// The keys of a section's "setup", in the order reports print them.
const std::vector<std::string>& SetupKeys();

struct Published {
  std::string file;
  std::string source;
  std::string final_verdict;         // "" when not given
  std::string final_verdict_source;
  std::map<std::string, PublishedSection> sections;  // by gate id

  const PublishedSection* Find(absl::string_view gate_id) const;
};

// Parses and checks the file's bytes; errors name the file and the field.
absl::StatusOr<Published> ParsePublished(absl::string_view bytes, const std::string& file);

// A published number as printed: `decimals` fixed decimals, else the shortest form ("%g").
std::string FormatPublishedNumber(double value, std::optional<int> decimals);

}  // namespace kvgate::report

#endif  // KVGATE_TOOLS_REPORT_PUBLISHED_H_
