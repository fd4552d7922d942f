// Passkey retrieval under KV formats and token selectors: does the model still find a number
// hidden in a long text when its attention over the history goes through a compressed cache or a
// selection? (The needle-in-a-haystack test of kvpress and of vLLM's FP8 KV study, on the texts of
// a prompt set; the task itself is haystack.h.)
//
// What runs under which policy, per trial:
//   1. The prompt (instruction + haystack with the needle) is prefilled densely, once; every
//      configuration starts from a copy of that cache.
//   2. The tail (the question, the chat template's turn markers, "The pass key is") is
//      teacher-forced one token a step, then the answer is decoded greedily, at most
//      `answer_tokens` tokens (stopping once the number is complete or at the stop token), all
//      under the configuration's policy: dense, a KV format (PromptRoundTripAttention below) or a
//      selector.
// So every attention over the history that can retrieve the key -- from the question tokens and
// from the answer tokens -- reads the compressed cache or the selection, while the haystack's own
// keys and values are those of a dense prefill. This is the query-agnostic setting: the cache is
// compressed (or the selector's prompt statistics fixed) when the document has been read, before
// the question arrives, as for a cache reused across questions. Prefilling the question densely
// instead would let its tokens copy the key into their own hidden states with exact attention, and
// the answer could then be read from the recent question tokens, which every selector keeps: the
// test would no longer measure the history. The cost: SnapKV's observation window is the end of
// the document, not the question, which is weaker than SnapKV's own (query-aware) setting.
// Selectors: as the work-reduction oracle's (experiments/common/selector_policy.h); H2O, TOVA and
// SnapKV read what the dense prefill saw; the oracles (global_block_mass, layer_block_mass) read
// this step's dense attention probabilities, computed by a dense step of the same token on the
// same cache just before the selected step (and then overwritten), so they stay oracles when the
// configuration's answer departs from dense's.
//
// PasskeyRecords: one record per configuration and context (dense is each row's reference, not a
// row): accuracy with its Wilson 95% interval, dense accuracy on the same trials, the paired
// accuracy drop (dense - configuration) with a seeded bootstrap 95% interval over trials
// (gates/distribution.h), answer agreement with dense, per-depth accuracies (the configuration's
// with their Wilson intervals, and dense's), trials, and kv_ratio
// (formats) or active_history_fraction (selectors); judged by gates/specs/passkey_retrieval.json.
//
// Usage:
//   PasskeyOptions options;
//   options.detokenize = [&](const std::vector<int64_t>& ids) { return ...; };
//   absl::StatusOr<std::vector<ConfigAnswers>> r =
//       RunPasskey(model, trials, formats, {"tova:budget=768"}, options);   // (*r)[0]: dense
//   absl::StatusOr<std::vector<gates::Record>> rows = PasskeyRecords(*r, trials, target, seed);

#ifndef KVGATE_EXPERIMENTS_PASSKEY_PASSKEY_H_
#define KVGATE_EXPERIMENTS_PASSKEY_PASSKEY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/passkey/haystack.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/model.h"
#include "gates/record.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::experiments {

inline constexpr char kPasskeyExperiment[] = "passkey";
inline constexpr char kPasskeyGate[] = "passkey_retrieval";
inline constexpr char kDenseVariant[] = "dense";

// One configuration's answer to one trial.
struct TrialAnswer {
  std::vector<int64_t> tokens;  // the greedy answer
  std::string text;             // detokenized
  std::optional<std::string> number;  // FirstDigitRun(text)
  bool correct = false;               // number == the trial's key
  double active_fraction = 0;         // selectors: kept share of the history, mean over steps
};

struct ConfigAnswers {
  std::string variant;  // "dense", a format's name or a selector's canonical spec
  bool selector = false;
  std::map<int64_t, double> kv_ratio;  // formats: by context (kernels::KvBytesVsBf16)
  std::vector<TrialAnswer> answers;  // in the trials' order
  double seconds = 0;
};

struct PasskeyOptions {
  int64_t answer_tokens = 8;  // at most, greedy
  int64_t stop_token = -1;    // end of turn: the answer stops there
  int64_t prefill_chunk = 256;  // prompt tokens a forward when H2O, TOVA or SnapKV need captures
  // Token ids -> text, for the answer (required).
  std::function<std::string(const std::vector<int64_t>&)> detokenize;
  std::function<void(const std::string&)> progress;  // one line a trial (may be empty)
};

// The policy of a KV format here: the prompt's keys and values (positions [0, prompt_tokens),
// fixed once the dense prefill has written them) are encoded with `format` as one block at the
// layer's first call and kept decoded on the model's device; the positions after it (question and
// answer tokens) are encoded as one block of their own at every call; attention then reads both
// decoded blocks. The document is compressed once, when it has been read, as a deployment would.
// For formats whose tokens encode independently (KvFormat::EncodesTokensIndependently) this equals
// KvRoundTripAttention; formats that share across tokens (KIVI's residual window, scale=head, the
// outlier split) see the document and the tail as separate blocks.
// Encoding runs on CPU tensors (the formats' reference code), so this works with a CUDA model too.
runtime::AttentionPolicy PromptRoundTripAttention(std::shared_ptr<const kernels::KvFormat> format,
                                                  int64_t prompt_tokens);

// Runs dense (first), each format and each selector (kernels/selectors specs) on every trial.
// InvalidArgument for no trials, an unknown selector, answer_tokens < 1, no detokenize, a trial
// longer than the model's max_position_embeddings; errors of the model and the configurations
// come back naming the configuration.
absl::StatusOr<std::vector<ConfigAnswers>> RunPasskey(
    const runtime::Model& model, const std::vector<PasskeyTrial>& trials,
    const std::vector<std::shared_ptr<const kernels::KvFormat>>& formats,
    const std::vector<std::string>& selectors, const PasskeyOptions& options);

// One record per configuration other than dense and per context of the trials (in the order the
// contexts first appear); target.context is set per record. `seed` seeds the bootstrap.
// InvalidArgument when configs[0] is not dense or a configuration lacks answers.
absl::StatusOr<std::vector<gates::Record>> PasskeyRecords(const std::vector<ConfigAnswers>& configs,
                                                          const std::vector<PasskeyTrial>& trials,
                                                          const gates::Target& target,
                                                          uint64_t seed);

// Metric names.
inline constexpr char kTrials[] = "trials";
inline constexpr char kAccuracy[] = "accuracy";
inline constexpr char kDenseAccuracy[] = "dense_accuracy";
inline constexpr char kAccuracyDrop[] = "accuracy_drop";
inline constexpr char kAnswerAgreement[] = "answer_agreement";
// "accuracy_depth_10" for depth 0.10 (the depth in whole percent).
std::string DepthMetric(const std::string& base, double depth);

// A markdown table of the records: accuracy [CI], dense accuracy, drop [CI], per-depth
// accuracies, verdicts (empty or one a record).
std::string PasskeyTable(const std::vector<gates::Record>& records,
                         const std::vector<std::string>& verdicts = {});

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_PASSKEY_PASSKEY_H_
