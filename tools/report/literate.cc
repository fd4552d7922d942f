#include "tools/report/literate.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace kvgate::report {
namespace {

constexpr absl::string_view kBeginPrefix = "<!-- report:begin ";
constexpr absl::string_view kEndPrefix = "<!-- report:end ";
constexpr absl::string_view kSuffix = " -->";

bool IsBlockName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

enum class Marker { kNone, kBegin, kEnd };

// Whether `line` (without its newline) is a marker, and of which block.
Marker ParseMarker(absl::string_view line, std::string* name) {
  absl::string_view rest = line;
  Marker kind = Marker::kNone;
  if (absl::ConsumePrefix(&rest, kBeginPrefix)) {
    kind = Marker::kBegin;
  } else if (absl::ConsumePrefix(&rest, kEndPrefix)) {
    kind = Marker::kEnd;
  } else {
    return Marker::kNone;
  }
  if (!absl::ConsumeSuffix(&rest, kSuffix)) return Marker::kNone;
  *name = std::string(rest);
  return kind;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_';
}

// The numbers of `text`, each with the offset where it starts. With `in_names`, runs glued to a
// name count too (every number a generated block holds, "block=32" included).
std::vector<std::pair<std::string, size_t>> Numbers(absl::string_view text, bool in_names) {
  std::vector<std::pair<std::string, size_t>> out;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i + 1 < text.size() && text[i] == '.' && IsDigit(text[i + 1])) {
      ++i;
      while (i < text.size() && IsDigit(text[i])) ++i;
    }
    const char before = start > 0 ? text[start - 1] : ' ';
    const bool glued = IsNameChar(before) || before == '.' ||
                       (before == '-' && start > 1 && IsNameChar(text[start - 2]));
    if (in_names || !glued) out.push_back({std::string(text.substr(start, i - start)), start});
  }
  return out;
}

// "0.2500" and "0.25" are one number.
std::string Canonical(const std::string& number) {
  std::string s = number;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  const size_t first = s.find_first_not_of('0');
  if (first == std::string::npos) return "0";
  return s[first] == '.' ? s.substr(first - 1) : s.substr(first);
}

}  // namespace

absl::Status CheckNumbersInWords(const Template& tmpl,
                                 const std::map<std::string, std::string>& blocks) {
  std::set<std::string> generated;
  for (const auto& [name, content] : blocks) {
    for (const auto& [number, at] : Numbers(content, true)) generated.insert(Canonical(number));
  }
  int line = 1;
  for (const Segment& s : tmpl.segments) {
    if (!s.block_name.empty()) {
      line += 2;  // the block's two marker lines
      continue;
    }
    for (const auto& [number, at] : Numbers(s.text, false)) {
      if (generated.count(Canonical(number)) > 0) continue;
      const int where =
          line + static_cast<int>(std::count(s.text.begin(), s.text.begin() + at, '\n'));
      return absl::FailedPreconditionError(absl::StrCat(
          tmpl.file, ":", where, ": the number ", number,
          " in the words is in no generated block of this report; a figure must come from the "
          "records (put it in a block) or go"));
    }
    line += static_cast<int>(std::count(s.text.begin(), s.text.end(), '\n'));
  }
  return absl::OkStatus();
}

std::vector<std::string> Template::BlockNames() const {
  std::vector<std::string> names;
  for (const Segment& s : segments) {
    if (!s.block_name.empty()) names.push_back(s.block_name);
  }
  return names;
}

std::string BeginMarker(absl::string_view name) {
  return absl::StrCat(kBeginPrefix, name, kSuffix);
}
std::string EndMarker(absl::string_view name) { return absl::StrCat(kEndPrefix, name, kSuffix); }

absl::StatusOr<Template> ParseTemplate(absl::string_view bytes, const std::string& file) {
  Template tmpl;
  tmpl.file = file;
  std::set<std::string> seen;
  std::string narrative;
  std::string open;  // the block whose begin marker was the previous line
  int open_line = 0;
  int line_number = 0;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find('\n', pos);
    const bool has_newline = end != absl::string_view::npos;
    if (!has_newline) end = bytes.size();
    const absl::string_view line = bytes.substr(pos, end - pos);
    const absl::string_view with_newline = bytes.substr(pos, end - pos + (has_newline ? 1 : 0));
    pos = end + 1;
    ++line_number;
    const std::string where = absl::StrCat(file, ":", line_number, ": ");
    std::string name;
    const Marker marker = ParseMarker(line, &name);
    if (marker == Marker::kNone && absl::StrContains(line, "<!-- report:")) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "a report marker must be alone on its line: \"", BeginMarker("name"),
                       "\" or \"", EndMarker("name"), "\""));
    }
    if (!open.empty()) {
      if (marker == Marker::kEnd && name == open) {
        open.clear();
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          where, "block ", open, " (opened on line ", open_line,
          ") must be empty in a template and closed on the next line by \"", EndMarker(open),
          "\": the tool fills it; write the narrative outside the markers"));
    }
    if (marker == Marker::kEnd) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "\"", EndMarker(name), "\" closes no open block"));
    }
    if (marker == Marker::kBegin) {
      if (!IsBlockName(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "block name \"", name, "\" is not [a-z0-9_]+"));
      }
      if (!seen.insert(name).second) {
        return absl::InvalidArgumentError(absl::StrCat(where, "block ", name, " appears twice"));
      }
      if (!has_newline) {
        return absl::InvalidArgumentError(absl::StrCat(where, "block ", name, " is not closed"));
      }
      if (!narrative.empty()) tmpl.segments.push_back({std::move(narrative), "", 0});
      narrative.clear();
      tmpl.segments.push_back({"", name, line_number});
      open = name;
      open_line = line_number;
      continue;
    }
    narrative.append(with_newline.data(), with_newline.size());
  }
  if (!open.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ":", open_line, ": block ", open, " is not closed"));
  }
  if (!narrative.empty()) tmpl.segments.push_back({std::move(narrative), "", 0});
  return tmpl;
}

absl::StatusOr<std::string> FillTemplate(const Template& tmpl,
                                         const std::map<std::string, std::string>& blocks,
                                         absl::string_view header) {
  std::vector<std::string> unknown, missing;
  std::set<std::string> used;
  for (const Segment& s : tmpl.segments) {
    if (s.block_name.empty()) continue;
    used.insert(s.block_name);
    if (blocks.count(s.block_name) == 0) {
      unknown.push_back(absl::StrCat(s.block_name, " (line ", s.line, ")"));
    }
  }
  for (const auto& [name, content] : blocks) {
    if (used.count(name) == 0) missing.push_back(name);
    if (!content.empty() && content.back() != '\n') {
      return absl::InternalError(absl::StrCat("block ", name, " does not end in a newline"));
    }
  }
  if (!unknown.empty() || !missing.empty()) {
    std::vector<std::string> why;
    if (!unknown.empty()) {
      why.push_back(absl::StrCat("unknown blocks ", absl::StrJoin(unknown, ", ")));
    }
    if (!missing.empty()) {
      why.push_back(absl::StrCat("missing blocks ", absl::StrJoin(missing, ", "),
                                 " (every block the report offers must appear once, so no "
                                 "table is left out)"));
    }
    std::vector<std::string> offered;
    for (const auto& [name, content] : blocks) offered.push_back(name);
    return absl::InvalidArgumentError(absl::StrCat(tmpl.file, ": ", absl::StrJoin(why, "; "),
                                                   "; this report's blocks are ",
                                                   absl::StrJoin(offered, ", ")));
  }
  std::string out = absl::StrCat(header, "\n");
  for (const Segment& s : tmpl.segments) {
    if (s.block_name.empty()) {
      out += s.text;
    } else {
      absl::StrAppend(&out, BeginMarker(s.block_name), "\n", blocks.at(s.block_name),
                      EndMarker(s.block_name), "\n");
    }
  }
  return out;
}

}  // namespace kvgate::report
