// Internal to //tools/report: the text and metric helpers every report of report.h uses.
#ifndef KVGATE_TOOLS_REPORT_REPORT_TEXT_H_
#define KVGATE_TOOLS_REPORT_REPORT_TEXT_H_

#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gates/gate_spec.h"
#include "gates/verdict.h"
#include "tools/report/report.h"

namespace kvgate::report::internal {

using gates::Condition;
using gates::ConfigurationJudgement;
using gates::GateSpec;
using gates::Op;
using gates::Record;
using gates::RecordAt;
using gates::RegisteredSpec;
using gates::RunJudgement;
using gates::Target;
using gates::Verdict;

// ---- Text ----------------------------------------------------------------------------------

inline std::string Fixed(double v, int decimals) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  std::string s = absl::StrFormat("%.*f", decimals, v);
  if (s.size() > 1 && s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

inline std::string Short(double v) { return absl::StrFormat("%g", v); }

// Markdown text broken at spaces into lines of at most `width` characters (a longer word stays
// whole); lines after the first start with `indent` (e.g. "  " to continue a list item). No
// trailing newline. Markdown joins the lines back into one paragraph.
inline std::string Wrapped(const std::string& text, const std::string& indent = "",
                           size_t width = 100) {
  // A line must not start with what Markdown reads as a list item, heading, quote or table:
  // break only before a word starting with a letter, a backtick or an opening bracket or quote.
  auto safe = [](absl::string_view word) {
    const char c = word[0];
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '`' || c == '(' || c == '[' ||
           c == '"' || c == '\'';
  };
  std::string out, line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && line.size() + 1 + word.size() > width && safe(word)) {
      absl::StrAppend(&out, line, "\n");
      line = indent;
    }
    absl::StrAppend(&line, line.empty() || line == indent ? "" : " ", word);
  }
  return out + line;
}

inline std::string Code(const std::string& s) { return absl::StrCat("`", s, "`"); }

inline std::string Cell(const std::string& text) {
  return absl::StrReplaceAll(text, {{"|", "\\|"}, {"\n", " "}});
}

inline std::string MdRow(const std::vector<std::string>& cells) {
  std::vector<std::string> escaped;
  for (const std::string& c : cells) escaped.push_back(Cell(c));
  return absl::StrCat("| ", absl::StrJoin(escaped, " | "), " |\n");
}

inline std::string MdHeader(const std::vector<std::string>& cells) {
  return absl::StrCat(MdRow(cells), "|",
                      absl::StrJoin(std::vector<std::string>(cells.size(), "---"), "|"), "|\n");
}

inline std::string VerdictText(Verdict v) { return std::string(gates::VerdictName(v)); }

inline std::string TargetText(const Target& t) {
  return absl::StrCat(t.model, ", ", t.context, " tokens, ", t.dtype);
}

inline std::string WeightsText(const std::string& weights) {
  return weights.size() == 64 ? absl::StrCat(weights.substr(0, 12), "...") : weights;
}

inline std::string ProvenanceText(const RunJudgement& run) {
  const gates::Provenance& p = run.provenance;
  return absl::StrCat(Code(p.git_commit), p.dirty ? " (dirty)" : "", ", ", run.target.device,
                      ", weights ", Code(WeightsText(run.target.weights_sha256)), ", ",
                      p.start_time);
}

inline std::string PlotLink(const std::string& alt, const std::string& from_dir,
                     const std::string& out_dir, const std::string& plot) {
  const std::string rel = RelativePath(from_dir, absl::StrCat(out_dir, "/", plot));
  return absl::StrCat("![", alt, "](", rel, ")\n\nThe plot as a file: [", plot, "](", rel, ").\n");
}

// ---- Metrics and conditions ------------------------------------------------------------------

// The metric an aggregate over windows summarises: "decode_logit_mse_mean_ci_high" ->
// "decode_logit_mse"; other names are returned as they are.
inline std::string BaseMetric(const std::string& name) {
  absl::string_view base = name;
  for (const char* suffix : {"_mean_ci_high", "_mean_ci_low", "_mean", "_median", "_p95", "_p99"}) {
    if (absl::ConsumeSuffix(&base, suffix)) break;
  }
  return std::string(base);
}

inline std::optional<double> MetricOf(const Record& r, const std::string& name) {
  auto it = r.metrics.find(name);
  if (it == r.metrics.end()) return std::nullopt;
  return it->second;
}

// The largest (or smallest) value of a metric over rows; nullopt when no row has it. NaN wins.
inline std::optional<double> Extreme(const std::vector<const RecordAt*>& rows, const std::string& name,
                              bool largest) {
  std::optional<double> out;
  for (const RecordAt* row : rows) {
    std::optional<double> v = MetricOf(row->record, name);
    if (!v.has_value()) continue;
    if (!out.has_value() || std::isnan(*v) ||
        (!std::isnan(*out) && (largest ? *v > *out : *v < *out))) {
      out = v;
    }
  }
  return out;
}

inline std::string MaybeFixed(std::optional<double> v, int decimals) {
  return v.has_value() ? Fixed(*v, decimals) : "not recorded";
}

// How a condition fared over rows: its worst value and how many rows fail it.
struct Decision {
  const Condition* condition = nullptr;
  std::optional<double> worst;
  int failing = 0;
  int judged = 0;
};

inline std::vector<Decision> Decide(const GateSpec& spec, const std::vector<const RecordAt*>& rows) {
  std::vector<Decision> out;
  for (const Condition& c : spec.thresholds) {
    Decision d;
    d.condition = &c;
    for (const RecordAt* row : rows) {
      absl::StatusOr<double> q = gates::ConditionQuantity(c, row->record.metrics);
      if (!q.ok() || !std::isfinite(*q)) continue;
      ++d.judged;
      if (!gates::Satisfies(c, *q)) ++d.failing;
      bool worse = !d.worst.has_value();
      if (!worse) {
        switch (c.op) {
          case Op::kLessEqual:
          case Op::kLess:
            worse = *q > *d.worst;
            break;
          case Op::kGreaterEqual:
          case Op::kGreater:
            worse = *q < *d.worst;
            break;
          case Op::kEqual:
            worse = std::fabs(*q - c.value) > std::fabs(*d.worst - c.value);
            break;
        }
      }
      if (worse) d.worst = *q;
    }
    out.push_back(d);
  }
  return out;
}

// "decode_logit_mse 1.7400 fails <= 0.25" (with "on 2 of 4 rows" when several rows were judged).
inline std::string DecisionText(const Decision& d, const std::string& rows_word = "steps") {
  const Condition& c = *d.condition;
  if (!d.worst.has_value()) {
    return absl::StrCat(gates::QuantityName(c), " not judged (", gates::OpSymbol(c.op), " ",
                        Short(c.value), ")");
  }
  std::string out = absl::StrCat(gates::QuantityName(c), " ", Fixed(*d.worst, 4),
                                 d.failing > 0 ? " fails " : " meets ", gates::OpSymbol(c.op), " ",
                                 Short(c.value));
  if (d.failing > 0 && d.judged > 1) {
    absl::StrAppend(&out, " on ", d.failing, " of ", d.judged, " ", rows_word);
  }
  return out;
}

// The deciding numbers of a verdict: the failing conditions of a failure, every condition of a
// pass, the reasons of an invalid verdict.
inline std::string DecidingNumbers(const GateSpec* spec, const gates::Judgement& judgement,
                            const std::vector<const RecordAt*>& rows) {
  if (judgement.verdict == Verdict::kInvalid || spec == nullptr) {
    return absl::StrCat("invalid: ", absl::StrJoin(judgement.failed, "; "));
  }
  std::vector<std::string> parts;
  for (const Decision& d : Decide(*spec, rows)) {
    if (judgement.verdict == Verdict::kFail && d.failing == 0) continue;
    parts.push_back(DecisionText(d));
  }
  return absl::StrJoin(parts, "; ");
}

// The thresholds of `spec` on metric `name`, in words: "<= 0.25".
inline std::string RequiredOn(const GateSpec* spec, const std::string& name) {
  if (spec == nullptr) return "unknown spec";
  std::vector<std::string> parts;
  for (const Condition& c : spec->thresholds) {
    if (c.kind == Condition::Kind::kMetric && c.metric == name) {
      parts.push_back(absl::StrCat(gates::OpSymbol(c.op), " ", Short(c.value)));
    }
  }
  return parts.empty() ? "no threshold" : absl::StrJoin(parts, ", ");
}

// The ratio thresholds of `spec`, in words: ">= 1.1".
inline std::string RequiredRatio(const GateSpec* spec) {
  if (spec == nullptr) return "unknown spec";
  std::vector<std::string> parts;
  for (const Condition& c : spec->thresholds) {
    if (c.kind == Condition::Kind::kRatio) {
      parts.push_back(absl::StrCat(gates::OpSymbol(c.op), " ", Short(c.value)));
    }
  }
  return parts.empty() ? "no threshold" : absl::StrJoin(parts, ", ");
}

// Metrics of the rows not shown in other columns: "name = 0.1234" (one row) or
// "name max 0.1234" (several rows). "—" when there are none.
inline std::string OtherMetrics(const std::vector<const RecordAt*>& rows,
                         const std::set<std::string>& shown) {
  std::set<std::string> names;
  for (const RecordAt* row : rows) {
    for (const auto& [name, value] : row->record.metrics) {
      if (shown.count(name) == 0) names.insert(name);
    }
  }
  // At most about 180 characters a cell; the rest stay in the linked records.
  std::vector<std::string> parts;
  size_t length = 0;
  for (const std::string& name : names) {
    const std::optional<double> v = Extreme(rows, name, true);
    std::string part =
        absl::StrCat(name, rows.size() == 1 ? " = " : " max ", absl::StrFormat("%.4g", *v));
    if (length + part.size() > 160) {
      parts.push_back(absl::StrCat(names.size() - parts.size(), " more in the records"));
      break;
    }
    length += part.size() + 2;
    parts.push_back(std::move(part));
  }
  return parts.empty() ? "—" : absl::StrJoin(parts, ", ");
}

}  // namespace kvgate::report::internal

#endif  // KVGATE_TOOLS_REPORT_REPORT_TEXT_H_
