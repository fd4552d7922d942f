#include "experiments/passkey/haystack.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace kvgate::experiments {
namespace {

constexpr char kInstruction[] =
    "There is a pass key hidden inside a lot of irrelevant text. Find it and memorize it. I will "
    "quiz you about the pass key.\n\n";
constexpr char kQuestion[] = "\n\nWhat is the pass key?";
constexpr char kAnswerStart[] = "The pass key is";
constexpr char kMarker[] = "\x01HAYSTACK\x01";

}  // namespace

absl::StatusOr<PasskeyFrame> MakeFrame(const runtime::Tokenizer& tokenizer,
                                       std::optional<runtime::ChatTemplate> chat_template) {
  PasskeyFrame frame;
  std::string head, tail;
  if (chat_template.has_value()) {
    absl::StatusOr<std::string> text = runtime::ApplyChatTemplate(
        *chat_template, {{"user", absl::StrCat(kInstruction, kMarker, kQuestion)}},
        /*add_generation_prompt=*/true);
    if (!text.ok()) return text.status();
    const size_t at = text->find(kMarker);
    if (at == std::string::npos) return absl::InternalError("passkey: the template lost the text");
    head = text->substr(0, at);
    tail = absl::StrCat(text->substr(at + sizeof(kMarker) - 1), kAnswerStart);
    frame.note = absl::StrCat("the model's chat template (",
                              runtime::ChatTemplateName(*chat_template),
                              "): instruction, haystack and question in the user turn, the "
                              "assistant turn started with \"",
                              kAnswerStart, "\"");
  } else {
    head = kInstruction;
    tail = absl::StrCat(kQuestion, " ", kAnswerStart);
    frame.note = absl::StrCat("plain text (no chat template): instruction, haystack, question, \"",
                              kAnswerStart, "\"");
  }
  // Special tokens (<|im_start|>, ...) are parsed in the frame, never in the haystack's texts.
  frame.head = ToIds(tokenizer.Encode(head, /*parse_special=*/true));
  frame.tail = ToIds(tokenizer.Encode(tail, /*parse_special=*/true));
  return frame;
}

int64_t PassKey(uint64_t seed, int64_t context, int64_t depth_index, int64_t trial) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(context), static_cast<uint32_t>(depth_index),
                    static_cast<uint32_t>(trial)};
  std::mt19937_64 rng(seq);
  return 10000 + static_cast<int64_t>(rng() % 90000);
}

std::string NeedleText(int64_t key) {
  return absl::StrCat(" The pass key is ", key, ". Remember it. ", key, " is the pass key. ");
}

std::vector<int64_t> ToIds(const std::vector<int32_t>& ids) {
  return std::vector<int64_t>(ids.begin(), ids.end());
}

absl::StatusOr<Filler> BuildFiller(const TextIds& text, int64_t count, int64_t first,
                                   int64_t tokens, const std::vector<int64_t>& separator) {
  if (count < 1 || first < 0 || tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("passkey: a haystack of ", tokens,
                                                   " tokens from text ", first, " of ", count));
  }
  Filler filler;
  int64_t total = 0;
  for (int64_t k = 0; k < count && static_cast<int64_t>(filler.ids.size()) < tokens; ++k) {
    const int64_t index = (first + k) % count;
    absl::StatusOr<std::vector<int64_t>> ids = text(index);
    if (!ids.ok()) return ids.status();
    if (!filler.ids.empty()) {
      filler.ids.insert(filler.ids.end(), separator.begin(), separator.end());
    }
    filler.ids.insert(filler.ids.end(), ids->begin(), ids->end());
    filler.texts.push_back(index);
    total += static_cast<int64_t>(ids->size());
  }
  if (static_cast<int64_t>(filler.ids.size()) < tokens) {
    return absl::FailedPreconditionError(
        absl::StrCat("passkey: the prompt set's ", count, " texts hold ", total,
                     " tokens, fewer than a haystack of ", tokens, " tokens"));
  }
  filler.ids.resize(tokens);
  return filler;
}

int64_t HaystackTokens(const PasskeyFrame& frame, int64_t needle_tokens, int64_t context,
                       int64_t answer_tokens) {
  return context - answer_tokens - static_cast<int64_t>(frame.head.size()) - needle_tokens -
         static_cast<int64_t>(frame.tail.size());
}

absl::StatusOr<PasskeyTrial> BuildTrial(const PasskeyFrame& frame,
                                        const std::vector<int64_t>& filler,
                                        const std::vector<int64_t>& needle, double depth,
                                        int64_t context, int64_t answer_tokens) {
  if (!(depth > 0 && depth < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("passkey: depth ", depth, " is not in (0, 1)"));
  }
  const int64_t h =
      HaystackTokens(frame, static_cast<int64_t>(needle.size()), context, answer_tokens);
  if (h < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "passkey: context ", context, " leaves no room for a haystack (frame ",
        frame.head.size() + frame.tail.size(), " + needle ", needle.size(), " + answer ",
        answer_tokens, " tokens)"));
  }
  if (static_cast<int64_t>(filler.size()) < h) {
    return absl::InvalidArgumentError(absl::StrCat("passkey: a filler of ", filler.size(),
                                                   " tokens for a haystack of ", h));
  }
  PasskeyTrial t;
  t.context = context;
  t.depth = depth;
  const int64_t at = static_cast<int64_t>(std::llround(depth * static_cast<double>(h)));
  t.prompt = frame.head;
  t.prompt.insert(t.prompt.end(), filler.begin(), filler.begin() + at);
  t.needle_at = static_cast<int64_t>(t.prompt.size());
  t.prompt.insert(t.prompt.end(), needle.begin(), needle.end());
  t.prompt.insert(t.prompt.end(), filler.begin() + at, filler.begin() + h);
  t.tail = frame.tail;
  return t;
}

std::optional<std::string> FirstDigitRun(absl::string_view text) {
  size_t begin = 0;
  while (begin < text.size() && !absl::ascii_isdigit(static_cast<unsigned char>(text[begin]))) {
    ++begin;
  }
  if (begin == text.size()) return std::nullopt;
  size_t end = begin;
  while (end < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[end]))) ++end;
  return std::string(text.substr(begin, end - begin));
}

bool AnswerComplete(absl::string_view text) {
  size_t begin = 0;
  while (begin < text.size() && !absl::ascii_isdigit(static_cast<unsigned char>(text[begin]))) {
    ++begin;
  }
  size_t end = begin;
  while (end < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[end]))) ++end;
  return end > begin && end < text.size();
}

absl::StatusOr<gates::Interval> WilsonInterval(int64_t correct, int64_t n) {
  if (n < 1 || correct < 0 || correct > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("passkey: a Wilson interval of ", correct, " out of ", n));
  }
  constexpr double z = 1.959963984540054;
  const double nn = static_cast<double>(n), p = static_cast<double>(correct) / nn;
  const double denom = 1 + z * z / nn;
  const double centre = (p + z * z / (2 * nn)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / denom;
  return gates::Interval{std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

}  // namespace kvgate::experiments
