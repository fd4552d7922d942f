// A prompt set: many windows, one from each of several distinct texts, for quality measured over
// prompts rather than on one. A set is a manifest in sha256sum format ("<sha256>  <path>" a line,
// '#' comments and blank lines allowed), committed with the code, so the exact bytes of every
// text are pinned; prompt_sets/debian_texts.sha256 lists 40 texts every Debian 12 machine has.
//
// LoadPromptWindows reads the first `count` texts of a set, checks each against its pin, tokenizes
// it whole (no BOS, no chat template) and keeps its first `window_tokens` tokens. Refused with one
// line naming the file: a missing file, an empty text, a sha256 that differs from the pin, a text
// shorter than the window. A text is never repeated or padded to fill a window.
//
// Usage:
//   absl::StatusOr<std::vector<PromptSetEntry>> set = LoadPromptSetManifest(
//       "experiments/runtime/prompt_sets/debian_texts.sha256");
//   absl::StatusOr<PromptWindows> w = LoadPromptWindows(tokenizer, *set, /*count=*/32,
//                                                       /*window_tokens=*/512 + 64 + 1);
//   // w->windows[i].ids.size() == 577; w->windows[i].source: the file it was cut from

#ifndef KVGATE_EXPERIMENTS_RUNTIME_PROMPT_SET_H_
#define KVGATE_EXPERIMENTS_RUNTIME_PROMPT_SET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experiments/runtime/tokenizer.h"

namespace kvgate::runtime {

inline constexpr char kDebianTextsManifest[] =
    "experiments/runtime/prompt_sets/debian_texts.sha256";

struct PromptSetEntry {
  std::string sha256;  // lowercase hex, of the file's bytes
  std::string path;
};

// The entries of a manifest's text, in order. InvalidArgument naming `name` and the line for a
// malformed line or a path listed twice; an empty set is an error too.
absl::StatusOr<std::vector<PromptSetEntry>> ParsePromptSetManifest(absl::string_view text,
                                                                   const std::string& name);

// The manifest file read and parsed; errors name the file.
absl::StatusOr<std::vector<PromptSetEntry>> LoadPromptSetManifest(const std::string& path);

struct PromptWindow {
  std::string source;          // the text's path
  std::string sha256;          // of the text (equal to its pin)
  int64_t text_tokens = 0;     // tokens of the whole text
  std::vector<int32_t> ids;    // its first window_tokens tokens
};

struct PromptWindows {
  std::vector<PromptWindow> windows;
  std::string set_sha256;  // of the chosen entries' "<sha256>  <path>\n" lines, in order
  std::string note;        // what was done, in words, for a run's log and records' readers
};

// The first `count` texts of `entries` (1 <= count <= entries.size(), else InvalidArgument naming
// the count and the set size), each cut to `window_tokens` (>= 1) tokens. FailedPrecondition, one
// line naming the file, for a missing or empty file, a sha256 mismatch or a text shorter than the
// window.
absl::StatusOr<PromptWindows> LoadPromptWindows(const Tokenizer& tokenizer,
                                                const std::vector<PromptSetEntry>& entries,
                                                int64_t count, int64_t window_tokens);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_PROMPT_SET_H_
