// See tokenizer.h.

#include "experiments/runtime/tokenizer.h"

#include <sys/stat.h>

#include <algorithm>
#include <queue>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "experiments/runtime/json_limits.h"
#include "experiments/runtime/tokenizer_unicode.h"

namespace kvgate::runtime {

char32_t ByteToUnicode(uint8_t b) {
  if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174)) return b;
  // The other 68 bytes take 256, 257, ... in byte order.
  char32_t n = 0;
  for (int x = 0; x < b; ++x) {
    if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174))) ++n;
  }
  return 256 + n;
}

absl::StatusOr<Tokenizer> Tokenizer::Create(TokenizerSpec spec) {
  Tokenizer t;
  t.source_ = spec.source;
  const std::string& src = t.source_;
  t.id_to_token_ = std::move(spec.vocab);
  // Added tokens extend the table to their largest id: bounded by twice the number of tokens
  // given (as in FromTokenizerJson), so a crafted id cannot size a table far larger than the input.
  const size_t id_limit = 2 * (t.id_to_token_.size() + spec.added_tokens.size());
  size_t table_size = t.id_to_token_.size();
  for (const AddedToken& added : spec.added_tokens) {
    if (added.id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(src, ": added token \"", added.content, "\" has negative id ", added.id));
    }
    if (static_cast<size_t>(added.id) >= id_limit) {
      return absl::InvalidArgumentError(
          absl::StrCat(src, ": added token \"", added.content, "\" has id ", added.id,
                       ", outside [0, ", id_limit, "), twice the number of tokens given"));
    }
    table_size = std::max(table_size, static_cast<size_t>(added.id) + 1);
  }
  // Exactly once: resize() past the capacity would double it.
  t.id_to_token_.reserve(table_size);
  t.id_to_token_.resize(table_size);
  for (const AddedToken& added : spec.added_tokens) {
    if (added.content.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(src, ": added token ", added.id, " is empty"));
    }
    std::string& slot = t.id_to_token_[added.id];
    if (!slot.empty() && slot != added.content) {
      return absl::InvalidArgumentError(
          absl::StrCat(src, ": added token \"", added.content, "\" has id ", added.id,
                       ", which the vocabulary gives to \"", slot, "\""));
    }
    slot = added.content;
  }
  if (t.id_to_token_.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": vocabulary too large"));
  }
  t.token_to_id_.reserve(t.id_to_token_.size());
  for (size_t id = 0; id < t.id_to_token_.size(); ++id) {
    if (!t.id_to_token_[id].empty())
      t.token_to_id_.emplace(t.id_to_token_[id], static_cast<int32_t>(id));
  }
  t.special_.assign(t.id_to_token_.size(), 0);
  for (const AddedToken& added : spec.added_tokens) {
    t.special_[added.id] = added.special ? 1 : 0;
    t.token_to_id_[added.content] = added.id;
  }
  t.added_tokens_ = std::move(spec.added_tokens);
  std::stable_sort(
      t.added_tokens_.begin(), t.added_tokens_.end(),
      [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });

  int present = 0;
  for (int b = 0; b < 256; ++b) {
    t.byte_char_[b].clear();
    AppendUtf8(ByteToUnicode(static_cast<uint8_t>(b)), &t.byte_char_[b]);
    t.char_to_byte_[ByteToUnicode(static_cast<uint8_t>(b))] = static_cast<uint8_t>(b);
    auto it = t.token_to_id_.find(t.byte_char_[b]);
    t.byte_token_[b] = it == t.token_to_id_.end() ? -1 : it->second;
    present += it != t.token_to_id_.end();
  }
  if (present < 128) {
    return absl::InvalidArgumentError(
        absl::StrCat(src, ": the vocabulary has tokens for only ", present,
                     " of the 256 byte characters; this is not a byte-level BPE vocabulary"));
  }
  if (!spec.unk_token.empty()) {
    auto it = t.token_to_id_.find(spec.unk_token);
    if (it == t.token_to_id_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(src, ": unk_token \"", spec.unk_token, "\" is not in the vocabulary"));
    }
    t.unk_id_ = it->second;
    t.fuse_unk_ = spec.fuse_unk;
  }

  t.merges_.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [left, right] = spec.merges[rank];
    auto l = t.token_to_id_.find(left);
    auto r = t.token_to_id_.find(right);
    auto m = t.token_to_id_.find(left + right);
    if (l == t.token_to_id_.end() || r == t.token_to_id_.end() || m == t.token_to_id_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(src, ": merge ", rank, " (\"", left, " ",
                                                     right,
                                                     "\") uses a token not in the vocabulary (\"",
                                                     l == t.token_to_id_.end()   ? left
                                                     : r == t.token_to_id_.end() ? right
                                                                                 : left + right,
                                                     "\")"));
    }
    const uint64_t key =
        (static_cast<uint64_t>(l->second) << 32) | static_cast<uint32_t>(r->second);
    // A repeated pair keeps its last rank, as the `tokenizers` merge map does.
    t.merges_[key] = {static_cast<int32_t>(rank), m->second};
  }
  t.pre_tokenizer_ = std::move(spec.pre_tokenizer);
  t.pre_tokenizer_name_ =
      spec.pre_tokenizer_name.empty() ? t.pre_tokenizer_.Describe() : spec.pre_tokenizer_name;
  t.ignore_merges_ = spec.ignore_merges;
  t.normalize_nfc_ = spec.normalize_nfc;
  const int64_t n = static_cast<int64_t>(t.id_to_token_.size());
  if (spec.bos_id >= n || spec.eos_id >= n) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": BOS/EOS id (", spec.bos_id, "/",
                                                   spec.eos_id, ") outside the vocabulary of ", n));
  }
  t.bos_id_ = spec.bos_id;
  t.eos_id_ = spec.eos_id;
  return t;
}

// BPE over one piece, as `tokenizers`' Word::merge_all: a heap of candidate merges ordered by
// (rank, position); a popped candidate is applied only if its pair is still there.
void Tokenizer::EncodePiece(absl::string_view bytes, std::vector<int32_t>* out) const {
  if (bytes.empty()) return;
  if (ignore_merges_) {
    std::string mapped;
    for (unsigned char b : bytes) mapped += byte_char_[b];
    auto it = token_to_id_.find(mapped);
    if (it != token_to_id_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  // The word's initial symbols: one per byte, a missing byte dropped or made the unknown token.
  std::vector<int32_t> initial;
  initial.reserve(bytes.size());
  for (unsigned char b : bytes) {
    if (byte_token_[b] >= 0) {
      initial.push_back(byte_token_[b]);
    } else if (unk_id_ >= 0 && !(fuse_unk_ && !initial.empty() && initial.back() == unk_id_)) {
      initial.push_back(unk_id_);
    }
  }
  if (initial.size() <= 1) {
    out->insert(out->end(), initial.begin(), initial.end());
    return;
  }
  struct Symbol {
    int32_t id;
    int prev;
    int next;
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator<(const Candidate& o) const {  // "less" = popped later
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const int n = static_cast<int>(initial.size());
  std::vector<Symbol> symbols(n);
  for (int i = 0; i < n; ++i) symbols[i] = {initial[i], i - 1, i + 1 < n ? i + 1 : -1, true};
  auto lookup = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
    auto it = merges_.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::priority_queue<Candidate> queue;
  for (int i = 0; i + 1 < n; ++i) {
    if (const auto* m = lookup(symbols[i].id, symbols[i + 1].id))
      queue.push({m->first, i, m->second});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const auto* m = lookup(left.id, right.id);
    if (m == nullptr || m->second != top.new_id) continue;  // stale
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const auto* p = lookup(symbols[left.prev].id, left.id))
        queue.push({p->first, left.prev, p->second});
    }
    if (left.next >= 0) {
      if (const auto* q = lookup(left.id, symbols[left.next].id))
        queue.push({q->first, top.pos, q->second});
    }
  }
  for (int i = 0; i >= 0; i = symbols[i].next) out->push_back(symbols[i].id);
}

void Tokenizer::EncodeOrdinary(absl::string_view text, std::vector<int32_t>* out) const {
  if (text.empty()) return;
  std::string normalized;
  if (normalize_nfc_) {
    normalized = NormalizeNfc(text);
    text = normalized;
  }
  for (const std::string& piece : pre_tokenizer_.Split(text)) EncodePiece(piece, out);
}

std::vector<int32_t> Tokenizer::Encode(absl::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  if (!parse_special || added_tokens_.empty()) {
    EncodeOrdinary(text, &out);
    return out;
  }
  size_t segment = 0;
  size_t i = 0;
  while (i < text.size()) {
    const AddedToken* match = nullptr;
    for (const AddedToken& added : added_tokens_) {  // longest first
      if (added.content[0] == text[i] && absl::StartsWith(text.substr(i), added.content)) {
        match = &added;
        break;
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    EncodeOrdinary(text.substr(segment, i - segment), &out);
    out.push_back(match->id);
    i += match->content.size();
    segment = i;
  }
  EncodeOrdinary(text.substr(segment), &out);
  return out;
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special) const {
  std::string out;
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) continue;
    if (skip_special && special_[id]) continue;
    const std::string& token = id_to_token_[id];
    // The ByteLevel decoder: every character back to its byte, or the token's own text if one
    // character is not a byte character.
    bytes.clear();
    bool mapped = true;
    for (const Utf8Char& c : DecodeUtf8(token)) {
      auto it = char_to_byte_.find(c.codepoint);
      if (it == char_to_byte_.end()) {
        mapped = false;
        break;
      }
      bytes.push_back(static_cast<char>(it->second));
    }
    out += mapped ? bytes : token;
  }
  return out;
}

std::vector<std::string> Tokenizer::PreTokenize(absl::string_view text) const {
  if (normalize_nfc_) return pre_tokenizer_.Split(NormalizeNfc(text));
  return pre_tokenizer_.Split(text);
}

std::optional<int32_t> Tokenizer::TokenToId(absl::string_view token) const {
  auto it = token_to_id_.find(std::string(token));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

absl::string_view Tokenizer::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return "";
  return id_to_token_[id];
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[id] != 0;
}

// ---- tokenizer.json ----

namespace {

absl::Status Unsupported(absl::string_view source, absl::string_view field,
                         absl::string_view what) {
  return absl::UnimplementedError(absl::StrCat(source, ": ", field, ": ", what));
}

// Appends the steps of one pre_tokenizer object; sets *byte_level when a ByteLevel step is seen.
absl::Status ParsePreTokenizer(const nlohmann::json& p, absl::string_view source, int depth,
                               std::vector<PreTokenizeStep>* steps, bool* byte_level) {
  const std::string field = "pre_tokenizer";
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", field, ": expected an object with a \"type\""));
  }
  const std::string type = p["type"].get<std::string>();
  JsonObject fields(p, absl::StrCat(source, ": ", field, " ", type));
  if (type == "Sequence") {
    if (depth > 4) return Unsupported(source, field, "Sequence nested too deeply");
    absl::StatusOr<const nlohmann::json*> list = fields.Get("pretokenizers");
    if (!list.ok()) return list.status();
    if (!(*list)->is_array()) return fields.FieldError("pretokenizers", "expected an array");
    for (const nlohmann::json& item : **list) {
      if (absl::Status s = ParsePreTokenizer(item, source, depth + 1, steps, byte_level); !s.ok())
        return s;
    }
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    absl::StatusOr<bool> prefix = fields.BoolOr("add_prefix_space", false);
    absl::StatusOr<bool> use_regex = fields.BoolOr("use_regex", true);
    if (!prefix.ok()) return prefix.status();
    if (!use_regex.ok()) return use_regex.status();
    if (*prefix) steps->push_back({PreTokenizeStep::Kind::kPrefixSpace});
    if (*use_regex) steps->push_back({PreTokenizeStep::Kind::kRegex, SplitRegex::kGpt2});
    *byte_level = true;
    return absl::OkStatus();
  }
  if (type == "Digits") {
    absl::StatusOr<bool> individual = fields.BoolOr("individual_digits", false);
    if (!individual.ok()) return individual.status();
    PreTokenizeStep step;
    step.kind = PreTokenizeStep::Kind::kDigits;
    step.individual_digits = *individual;
    steps->push_back(step);
    return absl::OkStatus();
  }
  if (type == "Split") {
    absl::StatusOr<std::string> behavior = fields.String("behavior");
    if (!behavior.ok()) return behavior.status();
    if (*behavior != "Isolated") {
      return Unsupported(source, "pre_tokenizer Split",
                         absl::StrCat("behavior ", *behavior, " (only Isolated is implemented)"));
    }
    absl::StatusOr<bool> invert = fields.BoolOr("invert", false);
    if (!invert.ok()) return invert.status();
    if (*invert) return Unsupported(source, "pre_tokenizer Split", "invert: true");
    absl::StatusOr<const nlohmann::json*> pattern = fields.Get("pattern");
    if (!pattern.ok()) return pattern.status();
    if (!(*pattern)->is_object() || !(*pattern)->contains("Regex") ||
        !(**pattern)["Regex"].is_string()) {
      return Unsupported(source, "pre_tokenizer Split", "pattern must be {\"Regex\": ...}");
    }
    absl::StatusOr<SplitRegex> regex =
        SplitRegexFromPattern((**pattern)["Regex"].get<std::string>());
    if (!regex.ok()) return Unsupported(source, "pre_tokenizer Split", regex.status().message());
    steps->push_back({PreTokenizeStep::Kind::kRegex, *regex});
    return absl::OkStatus();
  }
  return Unsupported(source, field, absl::StrCat("type ", type, " is not implemented"));
}

bool HasStep(const std::vector<PreTokenizeStep>& steps, SplitRegex regex) {
  for (const PreTokenizeStep& s : steps) {
    if (s.kind == PreTokenizeStep::Kind::kRegex && s.regex == regex) return true;
  }
  return false;
}

std::string NameSteps(const std::vector<PreTokenizeStep>& steps) {
  if (steps.size() == 2 && steps[0].kind == PreTokenizeStep::Kind::kDigits &&
      steps[0].individual_digits && HasStep(steps, SplitRegex::kGpt2)) {
    return "smollm";
  }
  if (steps.size() == 1 && HasStep(steps, SplitRegex::kQwen2)) return "qwen2";
  if (steps.size() == 1 && HasStep(steps, SplitRegex::kLlama3)) return "llama-bpe";
  if (steps.size() == 1 && HasStep(steps, SplitRegex::kGpt2)) return "gpt-2";
  return PreTokenizer(steps).Describe();
}

}  // namespace

absl::StatusOr<Tokenizer> Tokenizer::FromTokenizerJson(absl::string_view json,
                                                       absl::string_view source_view) {
  const std::string source(source_view);
  absl::StatusOr<nlohmann::json> parsed = ParseJson(json, source);
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& root = *parsed;
  JsonObject top(root, source);
  if (absl::Status s = top.CheckIsObject("the tokenizer"); !s.ok()) return s;

  TokenizerSpec spec;
  spec.source = source;
  // model
  absl::StatusOr<const nlohmann::json*> model_json = top.Get("model");
  if (!model_json.ok()) return model_json.status();
  JsonObject model(**model_json, absl::StrCat(source, ": model"));
  if (absl::Status s = model.CheckIsObject("\"model\""); !s.ok()) return s;
  if (model.Has("type")) {
    absl::StatusOr<std::string> type = model.String("type");
    if (!type.ok()) return type.status();
    if (*type != "BPE")
      return Unsupported(source, "model.type", absl::StrCat(*type, " (only BPE is implemented)"));
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.Has(key)) {
      absl::StatusOr<std::string> v = model.String(key);
      if (!v.ok()) return v.status();
      if (!v->empty())
        return Unsupported(source, absl::StrCat("model.", key), absl::StrCat("\"", *v, "\""));
    }
  }
  absl::StatusOr<bool> byte_fallback = model.BoolOr("byte_fallback", false);
  if (!byte_fallback.ok()) return byte_fallback.status();
  if (*byte_fallback) return Unsupported(source, "model.byte_fallback", "true");
  if (model.Has("dropout")) {
    absl::StatusOr<double> dropout = model.Double("dropout");
    if (!dropout.ok()) return dropout.status();
    if (*dropout != 0.0) return Unsupported(source, "model.dropout", "BPE dropout");
  }
  if (model.Has("unk_token")) {
    absl::StatusOr<std::string> unk = model.String("unk_token");
    if (!unk.ok()) return unk.status();
    spec.unk_token = *unk;
  }
  absl::StatusOr<bool> fuse_unk = model.BoolOr("fuse_unk", false);
  if (!fuse_unk.ok()) return fuse_unk.status();
  spec.fuse_unk = *fuse_unk;
  absl::StatusOr<bool> ignore_merges = model.BoolOr("ignore_merges", false);
  if (!ignore_merges.ok()) return ignore_merges.status();
  spec.ignore_merges = *ignore_merges;

  absl::StatusOr<const nlohmann::json*> vocab = model.Get("vocab");
  if (!vocab.ok()) return vocab.status();
  if (!(*vocab)->is_object()) return model.FieldError("vocab", "expected an object of token: id");
  if ((*vocab)->empty()) return model.FieldError("vocab", "is empty");
  // Ids index tables sized by the largest id, so they must be below twice the number of tokens
  // the file lists (vocab entries plus added tokens; unused ids are allowed, as `tokenizers`
  // allows them, up to that many): one crafted id of 2^30 - 1 would otherwise size a table of
  // 2^30 tokens (32 GiB) from a 4 KB file.
  const int64_t id_limit =
      2 * static_cast<int64_t>((*vocab)->size() + (root.contains("added_tokens") &&
                                                           root["added_tokens"].is_array()
                                                       ? root["added_tokens"].size()
                                                       : 0));
  spec.vocab.reserve((*vocab)->size());  // entries present; dense ids then never reallocate
  for (auto it = (*vocab)->begin(); it != (*vocab)->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() >= (int64_t{1} << 30)) {
      return model.FieldError(
          "vocab", absl::StrCat("token \"", it.key(), "\": expected an id in [0, 2^30)"));
    }
    const int64_t id = it.value().get<int64_t>();
    if (id >= id_limit) {
      return model.FieldError(
          "vocab", absl::StrCat("token \"", it.key(), "\": id ", id, " is outside [0, ", id_limit,
                                "), twice the number of tokens the file lists"));
    }
    if (static_cast<size_t>(id) >= spec.vocab.size()) spec.vocab.resize(id + 1);
    if (!spec.vocab[id].empty()) {
      return model.FieldError("vocab", absl::StrCat("id ", id, " is given to both \"",
                                                    spec.vocab[id], "\" and \"", it.key(), "\""));
    }
    if (it.key().empty())
      return model.FieldError("vocab", absl::StrCat("id ", id, " has an empty token"));
    spec.vocab[id] = it.key();
  }
  absl::StatusOr<const nlohmann::json*> merges = model.Get("merges");
  if (!merges.ok()) return merges.status();
  if (!(*merges)->is_array()) return model.FieldError("merges", "expected an array");
  spec.merges.reserve((*merges)->size());
  for (size_t i = 0; i < (*merges)->size(); ++i) {
    const nlohmann::json& m = (**merges)[i];
    if (m.is_string()) {
      const std::string line = m.get<std::string>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        return model.FieldError("merges",
                                absl::StrCat("entry ", i, " (\"", line,
                                             "\") is not two tokens separated by one space"));
      }
      spec.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return model.FieldError("merges",
                              absl::StrCat("entry ", i, " is neither \"a b\" nor [\"a\", \"b\"]"));
    }
  }

  // added_tokens
  if (top.Has("added_tokens")) {
    const nlohmann::json& list = root["added_tokens"];
    if (!list.is_array()) return top.FieldError("added_tokens", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      JsonObject entry(list[i], absl::StrCat(source, ": added_tokens[", i, "]"));
      if (absl::Status s = entry.CheckIsObject("an added token"); !s.ok()) return s;
      AddedToken added;
      absl::StatusOr<int64_t> id = entry.Int("id");
      absl::StatusOr<std::string> content = entry.String("content");
      absl::StatusOr<bool> special = entry.BoolOr("special", false);
      if (!id.ok()) return id.status();
      if (!content.ok()) return content.status();
      if (!special.ok()) return special.status();
      if (*id < 0 || *id >= id_limit) {
        return entry.FieldError("id", absl::StrCat(*id, " is outside [0, ", id_limit,
                                                   "), twice the number of tokens the file lists"));
      }
      for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
        absl::StatusOr<bool> v = entry.BoolOr(flag, false);
        if (!v.ok()) return v.status();
        if (*v)
          return Unsupported(source, absl::StrCat("added_tokens[", i, "].", flag),
                             "true is not implemented");
      }
      added.id = static_cast<int32_t>(*id);
      added.content = *content;
      added.special = *special;
      spec.added_tokens.push_back(std::move(added));
    }
  }

  // normalizer
  if (top.Has("normalizer")) {
    const nlohmann::json& n = root["normalizer"];
    auto is_nfc = [](const nlohmann::json& x) {
      return x.is_object() && x.contains("type") && x["type"] == "NFC";
    };
    if (is_nfc(n)) {
      spec.normalize_nfc = true;
    } else if (n.is_object() && n.contains("type") && n["type"] == "Sequence" &&
               n.contains("normalizers") && n["normalizers"].is_array() &&
               n["normalizers"].size() <= 1 &&
               (n["normalizers"].empty() || is_nfc(n["normalizers"][0]))) {
      spec.normalize_nfc = !n["normalizers"].empty();
    } else {
      return Unsupported(
          source, "normalizer",
          absl::StrCat(n.dump().substr(0, 200), " (only null and NFC are implemented)"));
    }
  }

  // pre_tokenizer
  std::vector<PreTokenizeStep> steps;
  bool byte_level = false;
  if (top.Has("pre_tokenizer")) {
    if (absl::Status s = ParsePreTokenizer(root["pre_tokenizer"], source, 0, &steps, &byte_level);
        !s.ok())
      return s;
  }
  if (!byte_level) {
    return Unsupported(source, "pre_tokenizer",
                       "no ByteLevel step: only byte-level BPE tokenizers are implemented");
  }
  spec.pre_tokenizer_name = NameSteps(steps);
  spec.pre_tokenizer = PreTokenizer(std::move(steps));

  // decoder
  if (!top.Has("decoder") || !root["decoder"].is_object() ||
      root["decoder"].value("type", "") != "ByteLevel") {
    return Unsupported(source, "decoder", "only the ByteLevel decoder is implemented");
  }
  return Create(std::move(spec));
}

absl::StatusOr<Tokenizer> Tokenizer::FromTokenizerJsonFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path, JsonLimits().max_bytes);
  if (!text.ok()) return text.status();
  return FromTokenizerJson(*text, path);
}

// ---- GGUF ----

absl::StatusOr<Tokenizer> Tokenizer::FromGguf(const GgufFile& gguf) {
  const std::string& source = gguf.path();
  absl::StatusOr<std::string> model = gguf.GetString("tokenizer.ggml.model");
  if (!model.ok()) return model.status();
  if (*model != "gpt2") {
    return absl::UnimplementedError(
        absl::StrCat(source, ": tokenizer.ggml.model \"", *model,
                     "\" is not implemented (only \"gpt2\", byte-level BPE)"));
  }
  absl::StatusOr<std::string> pre = gguf.GetString("tokenizer.ggml.pre");
  if (!pre.ok()) return pre.status();
  TokenizerSpec spec;
  spec.source = source;
  spec.pre_tokenizer_name = *pre;
  if (*pre == "gpt-2") {
    spec.pre_tokenizer = PreTokenizer({{PreTokenizeStep::Kind::kRegex, SplitRegex::kGpt2}});
  } else if (*pre == "smollm") {
    PreTokenizeStep digits;
    digits.kind = PreTokenizeStep::Kind::kDigits;
    digits.individual_digits = true;
    spec.pre_tokenizer = PreTokenizer({digits, {PreTokenizeStep::Kind::kRegex, SplitRegex::kGpt2}});
  } else if (*pre == "qwen2") {
    spec.pre_tokenizer = PreTokenizer({{PreTokenizeStep::Kind::kRegex, SplitRegex::kQwen2}});
    spec.normalize_nfc = true;  // as Qwen2's tokenizer.json
  } else if (*pre == "llama-bpe") {
    spec.pre_tokenizer = PreTokenizer({{PreTokenizeStep::Kind::kRegex, SplitRegex::kLlama3}});
  } else {
    return absl::UnimplementedError(
        absl::StrCat(source, ": tokenizer.ggml.pre \"", *pre,
                     "\" is not implemented (gpt-2, smollm, qwen2, llama-bpe are)"));
  }
  absl::StatusOr<const std::vector<std::string>*> tokens =
      gguf.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  spec.vocab = **tokens;
  if (gguf.Find("tokenizer.ggml.token_type") != nullptr) {
    absl::StatusOr<const std::vector<int64_t>*> types =
        gguf.GetIntArray("tokenizer.ggml.token_type");
    if (!types.ok()) return types.status();
    if ((*types)->size() != spec.vocab.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": tokenizer.ggml.token_type has ", (*types)->size(),
                       " entries, tokenizer.ggml.tokens ", spec.vocab.size()));
    }
    for (size_t id = 0; id < spec.vocab.size(); ++id) {
      const int64_t type = (**types)[id];
      if (type == 3 || type == 4) {  // control, user-defined
        if (spec.vocab[id].empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(source, ": token ", id, " of type ", type, " is empty"));
        }
        spec.added_tokens.push_back({static_cast<int32_t>(id), spec.vocab[id], type == 3});
      }
    }
  }
  absl::StatusOr<const std::vector<std::string>*> merges =
      gguf.GetStringArray("tokenizer.ggml.merges");
  if (!merges.ok()) return merges.status();
  spec.merges.reserve((*merges)->size());
  for (size_t i = 0; i < (*merges)->size(); ++i) {
    const std::string& line = (**merges)[i];
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": tokenizer.ggml.merges[", i, "] (\"", line,
                       "\") is not two tokens separated by one space"));
    }
    spec.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  for (auto [key, out] :
       {std::pair<const char*, int32_t*>{"tokenizer.ggml.bos_token_id", &spec.bos_id},
        std::pair<const char*, int32_t*>{"tokenizer.ggml.eos_token_id", &spec.eos_id}}) {
    if (gguf.Find(key) == nullptr) continue;
    absl::StatusOr<uint64_t> id = gguf.GetUint(key);
    if (!id.ok()) return id.status();
    if (*id >= spec.vocab.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": ", key, " ", *id, " is outside the vocabulary of ", spec.vocab.size()));
    }
    *out = static_cast<int32_t>(*id);
  }
  return Create(std::move(spec));
}

// ---- LoadTokenizer ----

absl::StatusOr<Tokenizer> LoadTokenizer(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file or folder"));
  }
  if (S_ISDIR(info.st_mode)) {
    const std::string dir = absl::EndsWith(path, "/") ? path : path + "/";
    absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromTokenizerJsonFile(dir + "tokenizer.json");
    if (!tokenizer.ok()) return tokenizer.status();
    // BOS/EOS ids from config.json when it has them (an EOS list gives its first id).
    // A missing config.json is fine; a malformed one is an error, not silently ignored.
    absl::StatusOr<nlohmann::json> config = ReadJsonFile(dir + "config.json");
    if (!config.ok() && !absl::IsNotFound(config.status())) return config.status();
    if (config.ok() && config->is_object()) {
      for (auto [key, setter] : {std::pair<const char*, void (Tokenizer::*)(int32_t)>{
                                     "bos_token_id", &Tokenizer::set_bos_id},
                                 std::pair<const char*, void (Tokenizer::*)(int32_t)>{
                                     "eos_token_id", &Tokenizer::set_eos_id}}) {
        auto it = config->find(key);
        if (it == config->end()) continue;
        const nlohmann::json& v = it->is_array() && !it->empty() ? (*it)[0] : *it;
        if (v.is_number_integer() && v.get<int64_t>() >= 0 &&
            v.get<int64_t>() < tokenizer->vocab_size()) {
          ((*tokenizer).*setter)(static_cast<int32_t>(v.get<int64_t>()));
        }
      }
    }
    return tokenizer;
  }
  // Any other file is read as GGUF (its parser says so if the file is not one).
  absl::StatusOr<GgufFile> gguf = GgufFile::Open(path);
  if (!gguf.ok()) return gguf.status();
  return Tokenizer::FromGguf(*gguf);
}

}  // namespace kvgate::runtime
