// Pre-tokenizers of byte-level BPE tokenizers: how text is cut into pieces before BPE runs on each.
//
// The split regexes of GPT-2, Llama 3 and Qwen2 are implemented by hand, one alternative at a time
// in the regex's own order (leftmost alternative wins, greedy quantifiers, the (?!\S) lookahead),
// without std::regex (which lacks \p{L} and is slow), as llama.cpp does:
//   kGpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   kLlama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ kQwen2:  the same with \p{N} (one digit) for
//   \p{N}{1,3}
// Every piece of text a regex does not match is kept as a piece of its own (the `tokenizers`
// Split behaviour "Isolated"), so the pieces always concatenate back to the text.
//
// A PreTokenizer is a sequence of steps as in tokenizer.json's pre_tokenizer "Sequence":
//   SmolLM2: Digits(individual_digits) then ByteLevel(use_regex) = {kDigits individual, kGpt2}
//   Qwen2:   Split(Regex kQwen2, Isolated) then ByteLevel(use_regex=false) = {kQwen2}
//   GPT-2:   ByteLevel(use_regex) = {kGpt2}

#ifndef KVGATE_EXPERIMENTS_RUNTIME_TOKENIZER_PRETOKENIZE_H_
#define KVGATE_EXPERIMENTS_RUNTIME_TOKENIZER_PRETOKENIZE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::runtime {

enum class SplitRegex { kGpt2, kLlama3, kQwen2 };

// The regex source text, exactly as tokenizer.json spells it.
absl::string_view SplitRegexPattern(SplitRegex regex);
// The SplitRegex whose pattern is `pattern`; NotFound for any other regex.
absl::StatusOr<SplitRegex> SplitRegexFromPattern(absl::string_view pattern);

// Cuts `text` into consecutive pieces; their concatenation is `text`.
std::vector<absl::string_view> SplitWithRegex(absl::string_view text, SplitRegex regex);
// The `tokenizers` Digits pre-tokenizer: each \p{N} alone (individual) or runs of them isolated.
std::vector<absl::string_view> SplitDigits(absl::string_view text, bool individual);

struct PreTokenizeStep {
  enum class Kind { kDigits, kRegex, kPrefixSpace };
  Kind kind = Kind::kRegex;
  SplitRegex regex = SplitRegex::kGpt2;  // kRegex
  bool individual_digits = true;         // kDigits
};

class PreTokenizer {
 public:
  PreTokenizer() = default;
  explicit PreTokenizer(std::vector<PreTokenizeStep> steps) : steps_(std::move(steps)) {}

  // The pieces of `text`, in order (kPrefixSpace may add a space, else they concatenate to text).
  std::vector<std::string> Split(absl::string_view text) const;
  // E.g. "digits(individual) > regex(gpt2)".
  std::string Describe() const;
  const std::vector<PreTokenizeStep>& steps() const { return steps_; }

 private:
  std::vector<PreTokenizeStep> steps_;
};

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_TOKENIZER_PRETOKENIZE_H_
