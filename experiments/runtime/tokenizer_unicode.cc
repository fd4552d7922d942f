// See tokenizer_unicode.h.

#include "experiments/runtime/tokenizer_unicode.h"

#include <algorithm>

namespace kvgate::runtime {
namespace {

bool InRanges(char32_t c, const unicode_internal::CodepointRange* ranges, int count) {
  const unicode_internal::CodepointRange* end = ranges + count;
  const unicode_internal::CodepointRange* it = std::upper_bound(
      ranges, end, c,
      [](char32_t value, const unicode_internal::CodepointRange& r) { return value < r.lo; });
  return it != ranges && c <= (it - 1)->hi;
}

}  // namespace

std::vector<Utf8Char> DecodeUtf8(absl::string_view text) {
  std::vector<Utf8Char> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back({b, i, 1});
      ++i;
      continue;
    }
    size_t length = 0;
    char32_t c = 0;
    char32_t min = 0;
    if ((b & 0xE0) == 0xC0) {
      length = 2, c = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      length = 3, c = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      length = 4, c = b & 0x07, min = 0x10000;
    }
    bool valid = length > 0 && i + length <= n;
    for (size_t k = 1; valid && k < length; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) {
        valid = false;
      } else {
        c = (c << 6) | (s[i + k] & 0x3F);
      }
    }
    if (valid && (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))) valid = false;
    if (valid) {
      out.push_back({c, i, length});
      i += length;
    } else {
      out.push_back({kInvalidUtf8, i, 1});
      ++i;
    }
  }
  return out;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool IsUnicodeLetter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return c != kInvalidUtf8 &&
         InRanges(c, unicode_internal::kLetterRanges, unicode_internal::kLetterRangeCount);
}

bool IsUnicodeNumber(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return c != kInvalidUtf8 &&
         InRanges(c, unicode_internal::kNumberRanges, unicode_internal::kNumberRangeCount);
}

bool IsUnicodeWhitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

const char* UnicodeTablesVersion() { return unicode_internal::kUnicodeVersion; }

namespace {

// Hangul syllables (UAX #15, section 16 of the Unicode core specification).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

uint8_t CombiningClassOf(char32_t c) {
  if (c < 0x300 || c == kInvalidUtf8) return 0;
  const auto* begin = unicode_internal::kCombiningClasses;
  const auto* end = begin + unicode_internal::kCombiningClassCount;
  const auto* it = std::lower_bound(
      begin, end, c,
      [](const unicode_internal::CombiningClass& e, char32_t v) { return e.codepoint < v; });
  return it != end && it->codepoint == c ? it->ccc : 0;
}

void Decompose(char32_t c, std::vector<char32_t>* out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  if (c >= 0xC0 && c != kInvalidUtf8) {
    const auto* begin = unicode_internal::kDecompositions;
    const auto* end = begin + unicode_internal::kDecompositionCount;
    const auto* it = std::lower_bound(
        begin, end, c,
        [](const unicode_internal::Decomposition& e, char32_t v) { return e.codepoint < v; });
    if (it != end && it->codepoint == c) {
      out->insert(out->end(), unicode_internal::kDecompositionPool + it->offset,
                  unicode_internal::kDecompositionPool + it->offset + it->length);
      return;
    }
  }
  out->push_back(c);
}

// The primary composite of (first, second), or 0.
char32_t Compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const auto* begin = unicode_internal::kCompositions;
  const auto* end = begin + unicode_internal::kCompositionCount;
  const auto* it = std::lower_bound(
      begin, end, std::make_pair(first, second),
      [](const unicode_internal::Composition& e, const std::pair<char32_t, char32_t>& v) {
        return e.first < v.first || (e.first == v.first && e.second < v.second);
      });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

}  // namespace

std::string NormalizeNfc(absl::string_view text) {
  bool ascii = true;
  for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(text);

  const std::vector<Utf8Char> chars = DecodeUtf8(text);
  // Invalid bytes are carried through as 0x110000 + byte, which no table contains.
  std::vector<char32_t> decomposed;
  decomposed.reserve(chars.size() + 8);
  for (const Utf8Char& c : chars) {
    if (c.codepoint == kInvalidUtf8) {
      decomposed.push_back(0x110000 + static_cast<unsigned char>(text[c.offset]));
    } else {
      Decompose(c.codepoint, &decomposed);
    }
  }
  // Canonical ordering: a stable sort of each run of nonzero combining classes.
  for (size_t i = 0; i < decomposed.size();) {
    if (CombiningClassOf(decomposed[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < decomposed.size() && CombiningClassOf(decomposed[j]) != 0) ++j;
    std::stable_sort(decomposed.begin() + i, decomposed.begin() + j, [](char32_t a, char32_t b) {
      return CombiningClassOf(a) < CombiningClassOf(b);
    });
    i = j;
  }
  // Canonical composition (the sample algorithm of UAX #15).
  std::vector<char32_t> composed;
  composed.reserve(decomposed.size());
  size_t starter = 0;
  int last_class = -1;  // -1: no starter yet
  for (char32_t c : decomposed) {
    const int klass = CombiningClassOf(c);
    if (last_class >= 0 && (last_class < klass || last_class == 0)) {
      if (const char32_t composite = Compose(composed[starter], c); composite != 0) {
        composed[starter] = composite;
        continue;
      }
    }
    if (klass == 0) {
      starter = composed.size();
      last_class = 0;
    } else if (last_class >= 0) {
      last_class = klass;
    }
    composed.push_back(c);
  }
  std::string out;
  out.reserve(text.size());
  for (char32_t c : composed) {
    if (c >= 0x110000) {
      out.push_back(static_cast<char>(c - 0x110000));
    } else {
      AppendUtf8(c, &out);
    }
  }
  return out;
}

}  // namespace kvgate::runtime
