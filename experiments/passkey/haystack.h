// The passkey retrieval task, without a model: haystacks cut from the texts of a prompt set, a
// needle sentence carrying a seeded random pass key inserted at a depth, the prompt around them
// (the model's chat template when it has one), the answer's digits, and the accuracy interval.
//
// A trial's token layout, `context` positions at the longest:
//   head | haystack[0, at) | needle | haystack[at, H) | tail | answer (<= answer_tokens tokens)
// head: the instruction ("There is a pass key hidden inside a lot of irrelevant text. ..."), after
// the chat template's system turn and user-turn opening; tail: the question, the template's end of
// the user turn and assistant opening, then "The pass key is" (the answer's start, so the reply is
// the number). The haystack has exactly H = context - answer_tokens - |head| - |needle| - |tail|
// tokens, from texts of the set joined in the set's order (trial t starts at text t, so trials
// read distinct haystacks), and the needle starts at at = round(depth * H).
//
// Usage:
//   PasskeyFrame frame = *MakeFrame(tokenizer, chat_template);    // nullopt: the plain frame
//   const int64_t key = PassKey(seed, context, depth_index, trial);
//   std::vector<int64_t> needle = ToIds(tokenizer.Encode(NeedleText(key), false));
//   Filler filler = *BuildFiller(texts, text_count, trial, tokens_needed, separator);
//   PasskeyTrial t = *BuildTrial(frame, filler.ids, needle, depth, context, answer_tokens);
//   bool correct = FirstDigitRun(answer_text) == std::to_string(key);

#ifndef KVGATE_EXPERIMENTS_PASSKEY_HAYSTACK_H_
#define KVGATE_EXPERIMENTS_PASSKEY_HAYSTACK_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experiments/runtime/chat_template.h"
#include "experiments/runtime/tokenizer.h"
#include "gates/distribution.h"

namespace kvgate::experiments {

// The text around the haystack, as token ids.
struct PasskeyFrame {
  std::vector<int64_t> head;  // before the haystack
  std::vector<int64_t> tail;  // after it, ending with the answer's start "The pass key is"
  std::string note;           // which frame, in words
};

// The frame in `chat_template` (the user turn holds instruction, haystack and question; the
// assistant turn starts with "The pass key is"), or the plain text frame when nullopt.
absl::StatusOr<PasskeyFrame> MakeFrame(const runtime::Tokenizer& tokenizer,
                                       std::optional<runtime::ChatTemplate> chat_template);

// The pass key of one trial: a 5-digit number (10000..99999) drawn from mt19937_64 seeded by
// std::seed_seq{seed, context, depth_index, trial}, so every trial has its own key and a seed
// gives the same keys everywhere.
int64_t PassKey(uint64_t seed, int64_t context, int64_t depth_index, int64_t trial);

// " The pass key is 48213. Remember it. 48213 is the pass key. "
std::string NeedleText(int64_t key);

std::vector<int64_t> ToIds(const std::vector<int32_t>& ids);

// The haystack of one trial: texts first, first + 1, ... (mod count, each at most once), joined by
// `separator`, cut to `tokens`. `text(i)` returns text i's ids (errors come back as they are).
// FailedPrecondition when the whole set holds fewer tokens.
struct Filler {
  std::vector<int64_t> ids;
  std::vector<int64_t> texts;  // the indices used, in order
};
using TextIds = std::function<absl::StatusOr<std::vector<int64_t>>(int64_t index)>;
absl::StatusOr<Filler> BuildFiller(const TextIds& text, int64_t count, int64_t first,
                                   int64_t tokens, const std::vector<int64_t>& separator);

// Haystack tokens a trial has room for (may be < 1: the context is too short for the frame).
int64_t HaystackTokens(const PasskeyFrame& frame, int64_t needle_tokens, int64_t context,
                       int64_t answer_tokens);

// One trial's prompt (prefilled densely) and tail (run under the policy being measured).
struct PasskeyTrial {
  int64_t context = 0;          // prompt + tail + answer_tokens
  double depth = 0;             // of the needle in the haystack, in (0, 1)
  int64_t depth_index = 0;      // in the run's depth list
  int64_t trial = 0;            // 0-based, within (context, depth)
  int64_t key = 0;              // the pass key
  std::vector<int64_t> prompt;  // head + haystack with the needle
  std::vector<int64_t> tail;
  int64_t needle_at = 0;        // index in `prompt` of the needle's first token
  std::vector<int64_t> texts;   // the prompt set's texts in the haystack
};

// Builds the trial from `filler` (at least HaystackTokens tokens; the first ones are used).
// InvalidArgument for a depth outside (0, 1), a context too short for the frame and needle, or a
// filler too short. key, depth_index, trial and texts are the caller's to fill.
absl::StatusOr<PasskeyTrial> BuildTrial(const PasskeyFrame& frame,
                                        const std::vector<int64_t>& filler,
                                        const std::vector<int64_t>& needle, double depth,
                                        int64_t context, int64_t answer_tokens);

// The first maximal run of ASCII digits in `text`, or nullopt when there is none.
std::optional<std::string> FirstDigitRun(absl::string_view text);

// True once the answer's number is complete: a digit run followed by another character.
bool AnswerComplete(absl::string_view text);

// The Wilson score interval (95%, z = 1.959964) of `correct` successes out of `n` >= 1 trials.
absl::StatusOr<gates::Interval> WilsonInterval(int64_t correct, int64_t n);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_PASSKEY_HAYSTACK_H_
