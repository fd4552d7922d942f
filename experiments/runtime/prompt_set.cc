// See prompt_set.h.

#include "experiments/runtime/prompt_set.h"

#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "experiments/runtime/json_limits.h"
#include "gates/sha256.h"

namespace kvgate::runtime {
namespace {

constexpr uint64_t kMaxTextBytes = 8 << 20;
constexpr uint64_t kMaxManifestBytes = 1 << 20;

bool IsLowerHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<PromptSetEntry>> ParsePromptSetManifest(absl::string_view text,
                                                                   const std::string& name) {
  std::vector<PromptSetEntry> entries;
  std::set<std::string> paths;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    const absl::string_view stripped = absl::StripAsciiWhitespace(line);
    if (stripped.empty() || stripped[0] == '#') continue;
    // sha256sum's format: 64 hex digits, two spaces (or " *" for binary mode), the path.
    const size_t gap = stripped.find(' ');
    PromptSetEntry entry;
    entry.sha256 = std::string(stripped.substr(0, gap));
    absl::string_view path =
        gap == absl::string_view::npos ? absl::string_view() : stripped.substr(gap + 1);
    if (!path.empty() && (path[0] == ' ' || path[0] == '*')) path.remove_prefix(1);
    entry.path = std::string(path);
    if (!IsLowerHex64(entry.sha256) || entry.path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt set ", name, " line ", line_number,
          ": expected '<64 lowercase hex digits>  <path>', got '", stripped, "'"));
    }
    if (!paths.insert(entry.path).second) {
      return absl::InvalidArgumentError(absl::StrCat("prompt set ", name, " line ", line_number,
                                                     ": ", entry.path, " is listed twice"));
    }
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("prompt set ", name, " lists no texts"));
  }
  return entries;
}

absl::StatusOr<std::vector<PromptSetEntry>> LoadPromptSetManifest(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path, kMaxManifestBytes);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat("prompt set: ", text.status().message()));
  }
  return ParsePromptSetManifest(*text, path);
}

absl::StatusOr<PromptWindows> LoadPromptWindows(const Tokenizer& tokenizer,
                                                const std::vector<PromptSetEntry>& entries,
                                                int64_t count, int64_t window_tokens) {
  if (count < 1 || count > static_cast<int64_t>(entries.size())) {
    return absl::InvalidArgumentError(absl::StrCat("prompt set: asked for ", count,
                                                   " windows, the set has ", entries.size(),
                                                   " texts"));
  }
  if (window_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt set: a window of ", window_tokens, " tokens"));
  }
  PromptWindows out;
  std::string listing;
  for (int64_t i = 0; i < count; ++i) {
    const PromptSetEntry& entry = entries[i];
    absl::StatusOr<std::string> text = ReadFileToString(entry.path, kMaxTextBytes);
    if (!text.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("prompt set: ", text.status().message()));
    }
    if (text->empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("prompt set: ", entry.path, " is empty"));
    }
    const std::string digest = gates::Sha256Hex(*text);
    if (digest != entry.sha256) {
      return absl::FailedPreconditionError(
          absl::StrCat("prompt set: ", entry.path, " has sha256 ", digest, " (", text->size(),
                       " bytes), the set pins ", entry.sha256, ": this machine's text differs"));
    }
    PromptWindow window;
    window.source = entry.path;
    window.sha256 = digest;
    window.ids = tokenizer.Encode(*text, /*parse_special=*/false);
    window.text_tokens = static_cast<int64_t>(window.ids.size());
    if (window.text_tokens < window_tokens) {
      return absl::FailedPreconditionError(absl::StrCat(
          "prompt set: ", entry.path, " has ", window.text_tokens,
          " tokens, shorter than the window of ", window_tokens, " tokens"));
    }
    window.ids.resize(window_tokens);
    out.windows.push_back(std::move(window));
    absl::StrAppend(&listing, entry.sha256, "  ", entry.path, "\n");
  }
  out.set_sha256 = gates::Sha256Hex(listing);
  out.note = absl::StrCat(count, " of ", entries.size(), " texts (set sha256 ",
                          out.set_sha256.substr(0, 12), "), each cut to its first ",
                          window_tokens, " tokens");
  return out;
}

}  // namespace kvgate::runtime
