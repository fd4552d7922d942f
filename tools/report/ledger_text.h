// Internal to //tools/report: helpers the ledger's first page (ledger.cc) and its answers
// (answers.cc) share: targets in short, and a study row's figure for a gate condition.
#ifndef KVGATE_TOOLS_REPORT_LEDGER_TEXT_H_
#define KVGATE_TOOLS_REPORT_LEDGER_TEXT_H_

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/report/published.h"
#include "tools/report/report_text.h"

namespace kvgate::report::internal {

using Row = std::map<std::string, PublishedCell>;

inline std::string DeviceText(const std::string& device) {
  return absl::StartsWith(device, "NVIDIA ") ? device.substr(7) : device;
}

// "Qwen2.5-7B-Instruct, 8192, bfloat16, H100 80GB HBM3".
inline std::string ShortTarget(const Target& t) {
  return absl::StrCat(t.model, ", ", t.context, ", ", t.dtype, ", ", DeviceText(t.device));
}

inline std::string JoinSet(const std::set<std::string>& values) {
  return values.empty() ? "none" : absl::StrJoin(values, "; ");
}

// The study row's figure for a condition: the column of the condition's metric, or the
// projected-speedup column at the condition's overhead.
inline std::optional<double> StudyValue(const PublishedSection& s, const Row& row,
                                        const Condition& c) {
  if (c.kind == Condition::Kind::kMetric) return PublishedSection::Number(row, c.metric);
  if (c.kind == Condition::Kind::kProjectedSpeedup) {
    for (const PublishedColumn& col : s.columns) {
      if (col.overhead.has_value() && std::fabs(*col.overhead - c.overhead) < 1e-12) {
        return PublishedSection::Number(row, col.key);
      }
    }
  }
  return std::nullopt;
}

inline const PublishedColumn* StudyColumn(const PublishedSection& s, const Condition& c) {
  for (const PublishedColumn& col : s.columns) {
    if (c.kind == Condition::Kind::kMetric && col.key == c.metric) return &col;
    if (c.kind == Condition::Kind::kProjectedSpeedup && col.overhead.has_value() &&
        std::fabs(*col.overhead - c.overhead) < 1e-12) {
      return &col;
    }
  }
  return nullptr;
}

inline std::string StudyVerdictOf(const PublishedSection& s, const Row& row) {
  auto it = row.find("verdict");
  if (it == row.end()) return "";
  const std::string* v = std::get_if<std::string>(&it->second);
  return v == nullptr ? "" : *v;
}

inline int Decimals(const PublishedColumn* col) {
  return col != nullptr && col->decimals.has_value() ? std::max(*col->decimals, 3) : 4;
}

}  // namespace kvgate::report::internal

#endif  // KVGATE_TOOLS_REPORT_LEDGER_TEXT_H_
