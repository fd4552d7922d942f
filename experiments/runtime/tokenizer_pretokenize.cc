// See tokenizer_pretokenize.h. The splitters walk decoded code points; positions are indices into
// that array, and pieces are cut at the code points' byte offsets.

#include "experiments/runtime/tokenizer_pretokenize.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experiments/runtime/tokenizer_unicode.h"

namespace kvgate::runtime {
namespace {

constexpr absl::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr absl::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr absl::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Code points of one piece with their classes, and the cutting of pieces.
class Walker {
 public:
  explicit Walker(absl::string_view text) : text_(text), chars_(DecodeUtf8(text)) {}

  size_t size() const { return chars_.size(); }
  char32_t At(size_t i) const { return i < chars_.size() ? chars_[i].codepoint : 0; }
  bool Letter(size_t i) const { return i < chars_.size() && IsUnicodeLetter(chars_[i].codepoint); }
  bool Number(size_t i) const { return i < chars_.size() && IsUnicodeNumber(chars_[i].codepoint); }
  bool Space(size_t i) const {
    return i < chars_.size() && IsUnicodeWhitespace(chars_[i].codepoint);
  }
  // [^\s\p{L}\p{N}]: anything else, invalid bytes included.
  bool Other(size_t i) const { return i < chars_.size() && !Space(i) && !Letter(i) && !Number(i); }
  bool CrLf(size_t i) const { return At(i) == '\r' || At(i) == '\n'; }
  // Case-insensitive ASCII letter match (?i), with U+017F LONG S folding to 's' as in Unicode.
  bool Folds(size_t i, char lower) const {
    if (i >= chars_.size()) return false;
    char32_t c = chars_[i].codepoint;
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    if (c == 0x17F) c = 's';
    return c == static_cast<char32_t>(lower);
  }
  // Whitespace run starting at i: its end.
  size_t SpaceRunEnd(size_t i) const {
    while (Space(i)) ++i;
    return i;
  }

  // Emits the piece [cut_, end) (if not empty) and moves the cut to `end`.
  void Emit(size_t end, std::vector<absl::string_view>* out) {
    if (end <= cut_) return;
    const size_t begin_byte = chars_[cut_].offset;
    const size_t end_byte = end < chars_.size() ? chars_[end].offset : text_.size();
    out->push_back(text_.substr(begin_byte, end_byte - begin_byte));
    cut_ = end;
  }

 private:
  absl::string_view text_;
  std::vector<Utf8Char> chars_;
  size_t cut_ = 0;
};

// Returns the end of a match of 's|'t|'re|'ve|'m|'ll|'d at pos (case-insensitive or not), or pos.
size_t MatchContraction(const Walker& w, size_t pos, bool ignore_case) {
  if (w.At(pos) != '\'' || pos + 1 >= w.size()) return pos;
  auto is = [&](size_t i, char c) {
    return ignore_case ? w.Folds(i, c) : w.At(i) == static_cast<char32_t>(c);
  };
  if (is(pos + 1, 's') || is(pos + 1, 't') || is(pos + 1, 'm') || is(pos + 1, 'd')) return pos + 2;
  if (pos + 2 < w.size() &&
      ((is(pos + 1, 'r') && is(pos + 2, 'e')) || (is(pos + 1, 'v') && is(pos + 2, 'e')) ||
       (is(pos + 1, 'l') && is(pos + 2, 'l')))) {
    return pos + 3;
  }
  return pos;
}

// \s+(?!\S)|\s+ at a whitespace position: the end of the match.
size_t MatchTrailingSpace(const Walker& w, size_t pos) {
  const size_t run_end = w.SpaceRunEnd(pos);
  if (run_end < w.size() && run_end - pos >= 2) return run_end - 1;  // leave one for the next word
  return run_end;
}

std::vector<absl::string_view> SplitGpt2(absl::string_view text) {
  Walker w(text);
  std::vector<absl::string_view> out;
  size_t pos = 0;
  const size_t n = w.size();
  while (pos < n) {
    size_t end = MatchContraction(w, pos, /*ignore_case=*/false);
    if (end == pos) {
      const size_t q = pos + (w.At(pos) == ' ' ? 1 : 0);  // the optional leading space
      if (w.Letter(q)) {
        end = q;
        while (w.Letter(end)) ++end;
      } else if (w.Number(q)) {
        end = q;
        while (w.Number(end)) ++end;
      } else if (w.Other(q)) {
        end = q;
        while (w.Other(end)) ++end;
      } else {
        end = MatchTrailingSpace(w, pos);  // pos is whitespace here
      }
    }
    w.Emit(end, &out);
    pos = end;
  }
  return out;
}

std::vector<absl::string_view> SplitLlama3Style(absl::string_view text, int max_digits) {
  Walker w(text);
  std::vector<absl::string_view> out;
  size_t pos = 0;
  const size_t n = w.size();
  while (pos < n) {
    size_t end = MatchContraction(w, pos, /*ignore_case=*/true);
    if (end != pos) {
      w.Emit(end, &out);
      pos = end;
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!w.CrLf(pos) && !w.Letter(pos) && !w.Number(pos) && w.Letter(pos + 1)) {
      end = pos + 1;
      while (w.Letter(end)) ++end;
    } else if (w.Letter(pos)) {
      end = pos;
      while (w.Letter(end)) ++end;
    } else if (w.Number(pos)) {  // \p{N}{1,max_digits}
      end = pos;
      while (w.Number(end) && static_cast<int>(end - pos) < max_digits) ++end;
    } else if (w.Other(pos + (w.At(pos) == ' ' ? 1 : 0))) {  //  ?[^\s\p{L}\p{N}]+[\r\n]*
      end = pos + (w.At(pos) == ' ' ? 1 : 0);
      while (w.Other(end)) ++end;
      while (w.CrLf(end)) ++end;
    } else {
      // pos is whitespace: \s*[\r\n]+ ends after the run's last CR or LF, if it has one.
      const size_t run_end = w.SpaceRunEnd(pos);
      size_t last_crlf_end = 0;
      for (size_t i = pos; i < run_end; ++i) {
        if (w.CrLf(i)) last_crlf_end = i + 1;
      }
      end = last_crlf_end > 0 ? last_crlf_end : MatchTrailingSpace(w, pos);
    }
    w.Emit(end, &out);
    pos = end;
  }
  return out;
}

}  // namespace

absl::string_view SplitRegexPattern(SplitRegex regex) {
  switch (regex) {
    case SplitRegex::kGpt2:
      return kGpt2Pattern;
    case SplitRegex::kLlama3:
      return kLlama3Pattern;
    case SplitRegex::kQwen2:
      return kQwen2Pattern;
  }
  return "";
}

absl::StatusOr<SplitRegex> SplitRegexFromPattern(absl::string_view pattern) {
  for (SplitRegex regex : {SplitRegex::kGpt2, SplitRegex::kLlama3, SplitRegex::kQwen2}) {
    if (pattern == SplitRegexPattern(regex)) return regex;
  }
  return absl::NotFoundError(absl::StrCat(
      "split regex ", pattern, " is not one of the implemented ones (GPT-2, Llama 3, Qwen2)"));
}

std::vector<absl::string_view> SplitWithRegex(absl::string_view text, SplitRegex regex) {
  switch (regex) {
    case SplitRegex::kGpt2:
      return SplitGpt2(text);
    case SplitRegex::kLlama3:
      return SplitLlama3Style(text, 3);
    case SplitRegex::kQwen2:
      return SplitLlama3Style(text, 1);
  }
  return {text};
}

std::vector<absl::string_view> SplitDigits(absl::string_view text, bool individual) {
  Walker w(text);
  std::vector<absl::string_view> out;
  size_t pos = 0;
  while (pos < w.size()) {
    size_t end = pos;
    if (w.Number(pos)) {
      end = pos + 1;
      if (!individual) {
        while (w.Number(end)) ++end;
      }
    } else {
      while (end < w.size() && !w.Number(end)) ++end;
    }
    w.Emit(end, &out);
    pos = end;
  }
  return out;
}

std::vector<std::string> PreTokenizer::Split(absl::string_view text) const {
  std::vector<std::string> pieces;
  if (text.empty()) return pieces;
  pieces.emplace_back(text);
  for (const PreTokenizeStep& step : steps_) {
    std::vector<std::string> next;
    next.reserve(pieces.size());
    for (const std::string& piece : pieces) {
      switch (step.kind) {
        case PreTokenizeStep::Kind::kPrefixSpace:
          next.push_back(!piece.empty() && piece[0] == ' ' ? piece : " " + piece);
          break;
        case PreTokenizeStep::Kind::kDigits:
          for (absl::string_view part : SplitDigits(piece, step.individual_digits)) {
            next.emplace_back(part);
          }
          break;
        case PreTokenizeStep::Kind::kRegex:
          for (absl::string_view part : SplitWithRegex(piece, step.regex)) next.emplace_back(part);
          break;
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

std::string PreTokenizer::Describe() const {
  std::vector<std::string> parts;
  for (const PreTokenizeStep& step : steps_) {
    switch (step.kind) {
      case PreTokenizeStep::Kind::kPrefixSpace:
        parts.push_back("prefix_space");
        break;
      case PreTokenizeStep::Kind::kDigits:
        parts.push_back(step.individual_digits ? "digits(individual)" : "digits(runs)");
        break;
      case PreTokenizeStep::Kind::kRegex:
        parts.push_back(step.regex == SplitRegex::kGpt2     ? "regex(gpt2)"
                        : step.regex == SplitRegex::kLlama3 ? "regex(llama3)"
                                                            : "regex(qwen2)");
        break;
    }
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, " > ");
}

}  // namespace kvgate::runtime
