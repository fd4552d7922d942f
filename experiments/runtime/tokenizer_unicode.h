// Unicode for the tokenizers: UTF-8 decoding that never fails (an invalid byte becomes one
// "character" of its own that is neither letter, number nor space, so raw bytes still round-trip
// through byte-level BPE), and the classes the split regexes use: \p{L}, \p{N}, \s.
//
// \p{L} and \p{N} come from generated range tables (tokenizer_unicode_tables.cc, Unicode 14.0.0,
// from tokenizer_unicode_gen.py); \s is White_Space: U+0009..U+000D, U+0020, U+0085, U+00A0,
// U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 (Oniguruma's \s, which the
// Hugging Face `tokenizers` library uses).
//
// NormalizeNfc is Unicode normalization form C (UAX #15): full canonical decomposition (Hangul
// by the algorithm), canonical ordering of combining marks, then canonical composition of
// primary composites, from the same generated tables.

#ifndef KVGATE_EXPERIMENTS_RUNTIME_TOKENIZER_UNICODE_H_
#define KVGATE_EXPERIMENTS_RUNTIME_TOKENIZER_UNICODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace kvgate::runtime {

// Stands for a byte that is not part of valid UTF-8.
inline constexpr char32_t kInvalidUtf8 = 0xFFFFFFFF;

struct Utf8Char {
  char32_t codepoint;  // kInvalidUtf8 for an invalid byte
  size_t offset;       // byte offset in the text
  size_t length;       // bytes, 1..4
};

// Decodes strictly (no overlong forms, surrogates or values above U+10FFFF).
std::vector<Utf8Char> DecodeUtf8(absl::string_view text);
void AppendUtf8(char32_t codepoint, std::string* out);

bool IsUnicodeLetter(char32_t c);      // \p{L}
bool IsUnicodeNumber(char32_t c);      // \p{N}
bool IsUnicodeWhitespace(char32_t c);  // \s
const char* UnicodeTablesVersion();

// NFC of `text`. Invalid UTF-8 bytes are kept as they are and act as starters.
std::string NormalizeNfc(absl::string_view text);

namespace unicode_internal {
struct CodepointRange {
  char32_t lo;
  char32_t hi;
};
extern const char kUnicodeVersion[];
extern const CodepointRange kLetterRanges[];
extern const int kLetterRangeCount;
extern const CodepointRange kNumberRanges[];
extern const int kNumberRangeCount;
struct Decomposition {
  char32_t codepoint;
  uint16_t offset;  // into kDecompositionPool
  uint16_t length;
};
struct CombiningClass {
  char32_t codepoint;
  uint8_t ccc;
};
struct Composition {
  char32_t first;
  char32_t second;
  char32_t composite;
};
extern const Decomposition kDecompositions[];
extern const int kDecompositionCount;
extern const char32_t kDecompositionPool[];
extern const CombiningClass kCombiningClasses[];
extern const int kCombiningClassCount;
extern const Composition kCompositions[];
extern const int kCompositionCount;
}  // namespace unicode_internal

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_TOKENIZER_UNICODE_H_
