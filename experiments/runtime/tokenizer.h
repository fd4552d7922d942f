// Byte-level BPE tokenizers (GPT-2 family: SmolLM2, Qwen2, Llama 3), read from a Hugging Face
// tokenizer.json or from GGUF metadata, with encode and decode that match the `tokenizers` library.
//
// Encode: (1) added tokens (<|im_start|>, ...) are cut out of the text first, leftmost and then
// longest match, as `tokenizers` does; (2) the rest is normalized (NFC only when the tokenizer
// asks for it, see below) and cut into pieces by the model's pre-tokenizer
// (tokenizer_pretokenize.h); (3) each piece's bytes are mapped to GPT-2's printable characters
// (byte_to_unicode) and merged by BPE: repeatedly the adjacent pair with the lowest merge rank,
// leftmost first, exactly as `tokenizers`' BPE word merge. No BOS/EOS is added (as
// `encode(text, add_special_tokens=False)`). Decode maps each token's characters back to bytes
// (the ByteLevel decoder; a token with a character outside the byte map, e.g. an added token
// with a space, decodes to its own text); the result is the exact bytes, which may end inside a
// UTF-8 character when the ids stop mid-character.
//
// A byte whose character is not in the vocabulary (SmolLM2 lacks 21 bytes that valid UTF-8 text
// rarely or never contains: 0x04, 0xC0, 0xF5..0xFF, ...) is dropped, as `tokenizers` and llama.cpp
// drop it, or becomes the unknown token if tokenizer.json's model names one.
//
// Token ids (vocab and added tokens) must be below twice the number of tokens the file lists, so
// a crafted id cannot size the id table; a malformed config.json next to tokenizer.json is an error.
//
// Supported tokenizer.json: model BPE (vocab, merges as "a b" strings or [a, b] pairs,
// ignore_merges, unk_token, fuse_unk), no byte_fallback/dropout/subword prefixes; pre_tokenizer
// ByteLevel, Digits, Split(Regex of GPT-2, Llama 3 or Qwen2, Isolated) or a Sequence of them;
// decoder ByteLevel; normalizer null or NFC. Anything else is Unimplemented with the field named.
// GGUF: tokenizer.ggml.model "gpt2" with tokenizer.ggml.pre "gpt-2", "smollm", "qwen2" or
// "llama-bpe"; tokens of type 3 (control) and 4 (user-defined) are the added tokens.
//
// NFC: Qwen2's tokenizer.json declares an NFC normalizer; it is applied (NormalizeNfc in
// tokenizer_unicode.h) to the text between added tokens. GGUF files of pre "qwen2" get it too.
//
// Usage:
//   absl::StatusOr<kvgate::runtime::Tokenizer> tok = kvgate::runtime::LoadTokenizer(path);
//   std::vector<int32_t> ids = tok->Encode("<|im_start|>user\nHello<|im_end|>\n");
//   std::string text = tok->Decode(ids);

#ifndef KVGATE_EXPERIMENTS_RUNTIME_TOKENIZER_H_
#define KVGATE_EXPERIMENTS_RUNTIME_TOKENIZER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "experiments/runtime/gguf.h"
#include "experiments/runtime/tokenizer_pretokenize.h"

namespace kvgate::runtime {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = true;  // skipped by Decode(..., skip_special=true)
};

// Everything a tokenizer is made of, as read from a file (exposed for tests and for building one).
struct TokenizerSpec {
  std::vector<std::string> vocab;                           // by id; "" for an unused id
  std::vector<std::pair<std::string, std::string>> merges;  // by rank
  std::vector<AddedToken> added_tokens;
  PreTokenizer pre_tokenizer;
  std::string pre_tokenizer_name;  // e.g. "smollm", "qwen2", or a description
  bool ignore_merges = false;      // a piece that is itself a token is not merged
  std::string unk_token;           // stands for bytes missing from the vocabulary; "" drops them
  bool fuse_unk = false;           // consecutive unknown bytes make one unknown token
  bool normalize_nfc = false;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  std::string source;  // the file, for messages
};

class Tokenizer {
 public:
  // Validates the spec: every byte has a token, every merge's parts and result are tokens, ids are
  // unique; errors name spec.source.
  static absl::StatusOr<Tokenizer> Create(TokenizerSpec spec);
  // Fuzzing entry point: a tokenizer.json's text held in memory; `source` names it in errors.
  static absl::StatusOr<Tokenizer> FromTokenizerJson(absl::string_view json,
                                                     absl::string_view source);
  static absl::StatusOr<Tokenizer> FromTokenizerJsonFile(const std::string& path);
  static absl::StatusOr<Tokenizer> FromGguf(const GgufFile& gguf);

  // Token ids of `text` (any bytes; invalid UTF-8 is encoded byte by byte). With parse_special
  // false, added tokens' text is tokenized as ordinary text.
  std::vector<int32_t> Encode(absl::string_view text, bool parse_special = true) const;
  // The bytes of `ids`; unknown ids decode to nothing.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special = false) const;

  // The pre-tokenizer's pieces of text (without added-token handling), for tests.
  std::vector<std::string> PreTokenize(absl::string_view text) const;

  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }
  std::optional<int32_t> TokenToId(absl::string_view token) const;
  // The token's vocabulary string ("Ġhello"); empty for an unknown id.
  absl::string_view IdToToken(int32_t id) const;
  bool IsSpecial(int32_t id) const;
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  void set_bos_id(int32_t id) { bos_id_ = id; }
  void set_eos_id(int32_t id) { eos_id_ = id; }
  const std::string& pre_tokenizer_name() const { return pre_tokenizer_name_; }
  const PreTokenizer& pre_tokenizer() const { return pre_tokenizer_; }
  const std::vector<AddedToken>& added_tokens() const { return added_tokens_; }
  bool normalize_nfc() const { return normalize_nfc_; }
  const std::string& source() const { return source_; }

 private:
  Tokenizer() = default;
  void EncodePiece(absl::string_view bytes, std::vector<int32_t>* out) const;
  void EncodeOrdinary(absl::string_view text, std::vector<int32_t>* out) const;

  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int32_t> token_to_id_;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  int32_t byte_token_[256] = {};  // -1: not in the vocabulary
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  std::string byte_char_[256];  // GPT-2 byte_to_unicode, as UTF-8
  std::unordered_map<char32_t, uint8_t> char_to_byte_;
  std::vector<AddedToken> added_tokens_;  // longest first
  std::vector<uint8_t> special_;          // by id
  PreTokenizer pre_tokenizer_;
  std::string pre_tokenizer_name_;
  bool ignore_merges_ = false;
  bool normalize_nfc_ = false;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  std::string source_;
};

// A tokenizer from a Hugging Face snapshot folder (tokenizer.json; BOS/EOS ids from config.json
// when present) or a GGUF file.
absl::StatusOr<Tokenizer> LoadTokenizer(const std::string& path);

// GPT-2's byte_to_unicode: the printable character standing for byte b.
char32_t ByteToUnicode(uint8_t b);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_TOKENIZER_H_
