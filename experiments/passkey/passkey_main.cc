// //experiments:passkey -- can the model still find a pass key hidden in a long text when its
// attention over the history goes through a compressed KV cache or a token selection?
// Needle-in-a-haystack over the texts of a prompt set; one judged record per configuration and
// context (passkey.h says what runs under which policy, haystack.h how a trial is built).
//
//   tools/bazel run //experiments:passkey       # fast: context 512, depths 10/50/90%, dense + int4
//   # the full run, one command line:
//   #   --contexts=2048,4096,8192 --depths=all --trials=3 --formats=all --selectors=all
//   #   --device=cuda --dtype=bfloat16
//
// The prompt is framed by the model's chat template when it has one (--chat_template=auto): the
// embedded SmolLM2-135M-Instruct and Qwen2.5-Instruct are instruction-tuned to answer a user's
// question in the assistant turn, and without the template an instruct model tends to continue
// the text rather than answer. A model without a recognized template gets the plain frame.
// Records are appended to reports/records/passkey.jsonl (or --out) after each context, judged by
// passkey_retrieval; a context with fewer than 27 trials (9 depths x 3) is judged invalid.

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/common/device_label.h"
#include "experiments/common/experiment_flags.h"
#include "experiments/common/experiment_io.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/passkey/haystack.h"
#include "experiments/passkey/passkey.h"
#include "experiments/qwen_oracle/oracle.h"
#include "experiments/runtime/chat_template.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/prompt_set.h"
#include "experiments/runtime/tokenizer.h"
#include "experiments/runtime/wall_clock.h"
#include "gates/record_io.h"
#include "kernels/selectors/selectors.h"

ABSL_FLAG(std::string, prompt_set, kvgate::runtime::kDebianTextsManifest,
          "The prompt set whose texts make the haystacks: a manifest of sha256-pinned texts "
          "(sha256sum format). Trial t's haystack is texts t, t+1, ... of the set joined, cut to "
          "fit the context.");
ABSL_FLAG(std::string, contexts, "",
          "Comma-separated contexts (positions of a trial: prompt, question and answer), e.g. "
          "2048,4096,8192. Empty: --context alone.");
ABSL_FLAG(std::string, depths, "0.1,0.5,0.9",
          "Comma-separated needle depths in (0, 1): the share of the haystack before the needle. "
          "'all': 0.1, 0.2, ..., 0.9.");
ABSL_FLAG(int64_t, trials, 1,
          "Trials per (context, depth), each on its own haystack (trial t starts at text t) and "
          "pass key. The gate needs >= 27 trials a context (9 depths x 3).");
ABSL_FLAG(std::string, formats, "symmetric_int4:block=32",
          "Comma-separated KV format specs, 'all' (every format hfkv_int4 runs) or 'none'.");
ABSL_FLAG(std::string, selectors, "none",
          "Comma-separated selector specs (kernels/selectors), 'all' (qwen_oracle's defaults, "
          "budgets scaled to each context) or 'none'.");
ABSL_FLAG(std::string, chat_template, "auto",
          "auto: the model's chat template when it has one (else the plain frame); none: the "
          "plain frame.");

namespace kvgate::experiments {
namespace {

void Say(const std::string& line) { std::cout << "passkey: " << line << std::endl; }

int Fail(const absl::Status& s) {
  std::cerr << "passkey: " << s.message() << "\n";
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) ? 2 : 1;
}

absl::Status FlagError(const std::string& flag, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", what));
}

absl::StatusOr<std::vector<int64_t>> ParseContexts(const CommonFlags& flags) {
  const std::string text = absl::GetFlag(FLAGS_contexts);
  if (text.empty()) return std::vector<int64_t>{flags.context};
  if (!flags.context_is_target) {
    return FlagError("contexts", "give --context or --contexts, not both");
  }
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int64_t c;
    if (!absl::SimpleAtoi(part, &c) || c < 1) {
      return FlagError("contexts", absl::StrCat("\"", part, "\" is not a positive integer"));
    }
    out.push_back(c);
  }
  if (out.empty()) return FlagError("contexts", "no context");
  return out;
}

absl::StatusOr<std::vector<double>> ParseDepths() {
  const std::string text = absl::GetFlag(FLAGS_depths);
  std::vector<double> out;
  if (text == "all") {
    for (int d = 1; d <= 9; ++d) out.push_back(d / 10.0);
    return out;
  }
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    double d;
    if (!absl::SimpleAtod(part, &d) || !(d > 0 && d < 1)) {
      return FlagError("depths", absl::StrCat("\"", part, "\" is not a number in (0, 1)"));
    }
    out.push_back(d);
  }
  if (out.empty()) return FlagError("depths", "no depth");
  return out;
}

std::vector<std::string> SpecList(const std::string& text) {
  if (text == "none" || text.empty()) return {};
  return absl::StrSplit(text, ',', absl::SkipWhitespace());
}

int Run(const CommonFlags& flags) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<int64_t>> contexts = ParseContexts(flags);
  if (!contexts.ok()) return Fail(contexts.status());
  absl::StatusOr<std::vector<double>> depths = ParseDepths();
  if (!depths.ok()) return Fail(depths.status());
  const int64_t trials_each = absl::GetFlag(FLAGS_trials);
  if (trials_each < 1) return Fail(FlagError("trials", "must be >= 1"));
  const std::string chat_flag = absl::GetFlag(FLAGS_chat_template);
  if (chat_flag != "auto" && chat_flag != "none") {
    return Fail(FlagError("chat_template", "must be auto or none"));
  }
  const std::string formats_flag = absl::GetFlag(FLAGS_formats);
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> formats =
      MakeFormats(formats_flag == "all" ? DefaultFormatSpecs() : SpecList(formats_flag));
  if (!formats.ok()) return Fail(FlagError("formats", std::string(formats.status().message())));
  const std::string selectors_flag = absl::GetFlag(FLAGS_selectors);
  if (selectors_flag != "all") {
    for (const std::string& spec : SpecList(selectors_flag)) {
      if (absl::StatusOr<std::string> c = kernels::CanonicalSelectorName(spec); !c.ok()) {
        return Fail(FlagError("selectors", std::string(c.status().message())));
      }
    }
  }
  const int64_t answer_tokens = flags.decode_steps;

  absl::StatusOr<ModelChoice> choice = ChooseModel(flags.model, nullptr);
  if (!choice.ok()) return Fail(choice.status());
  Say(absl::StrCat(choice->note, "; contexts ", absl::StrJoin(*contexts, ","), ", depths ",
                   absl::StrJoin(*depths, ","), ", ", trials_each,
                   " trials each, dense + ", formats->size(), " formats + selectors ",
                   selectors_flag, ", answers of at most ", answer_tokens, " tokens",
                   depths->size() * trials_each < 27
                       ? " (a fast size: the gate needs >= 27 trials a context, so its verdicts "
                         "will be invalid)"
                       : ""));
  torch::manual_seed(flags.seed);
  absl::StatusOr<runtime::ModelWeights> weights = runtime::LoadModel(choice->path);
  if (!weights.ok()) return Fail(weights.status());
  const int64_t max_positions = weights->config.max_position_embeddings;
  for (int64_t c : *contexts) {
    if (max_positions > 0 && c > max_positions) {
      return Fail(FlagError(flags.context_is_target ? "contexts" : "context",
                            absl::StrCat(c, " exceeds the model's max_position_embeddings ",
                                         max_positions)));
    }
  }
  runtime::ModelOptions options;
  options.dtype = *ParseDtype(flags.dtype);
  options.device = *ParseDevice(flags.device);
  options.allow_non_finite_weights = flags.allow_non_finite_weights;
  absl::StatusOr<runtime::Model> model = runtime::Model::Create(*weights, options);
  if (!model.ok()) return Fail(model.status());
  absl::StatusOr<runtime::Tokenizer> tokenizer = runtime::LoadTokenizer(choice->path);
  if (!tokenizer.ok()) return Fail(tokenizer.status());
  std::optional<runtime::ChatTemplate> chat_template;
  if (chat_flag == "auto") {
    absl::StatusOr<runtime::ChatTemplate> t = runtime::LoadChatTemplate(choice->path);
    if (t.ok()) chat_template = *t;
  }
  absl::StatusOr<PasskeyFrame> frame = MakeFrame(*tokenizer, chat_template);
  if (!frame.ok()) return Fail(frame.status());
  Say(absl::StrCat("frame: ", frame->note, "; ", frame->head.size(), " + ", frame->tail.size(),
                   " tokens around the haystack"));

  const std::string set_path = absl::GetFlag(FLAGS_prompt_set);
  absl::StatusOr<std::vector<runtime::PromptSetEntry>> set =
      runtime::LoadPromptSetManifest(set_path);
  if (!set.ok()) return Fail(set.status());
  const int64_t set_size = static_cast<int64_t>(set->size());
  if (trials_each > set_size) {
    return Fail(FlagError("trials", absl::StrCat(trials_each, " exceeds the ", set_size,
                                                 " texts of ", set_path)));
  }
  // Whole texts, checked against their pins and tokenized on first use.
  std::map<int64_t, std::vector<int64_t>> texts;
  TextIds text_ids = [&](int64_t i) -> absl::StatusOr<std::vector<int64_t>> {
    auto it = texts.find(i);
    if (it != texts.end()) return it->second;
    const std::vector<runtime::PromptSetEntry> one = {(*set)[i]};
    absl::StatusOr<runtime::PromptWindows> probe =
        runtime::LoadPromptWindows(*tokenizer, one, 1, 1);
    if (!probe.ok()) return probe.status();
    absl::StatusOr<runtime::PromptWindows> whole =
        runtime::LoadPromptWindows(*tokenizer, one, 1, probe->windows[0].text_tokens);
    if (!whole.ok()) return whole.status();
    return texts[i] = ToIds(whole->windows[0].ids);
  };
  const std::vector<int64_t> separator = ToIds(tokenizer->Encode("\n\n", false));
  auto detokenize = [&](const std::vector<int64_t>& ids) {
    return tokenizer->Decode(std::vector<int32_t>(ids.begin(), ids.end()));
  };

  gates::Target target;
  target.model = weights->model_name;
  target.weights_sha256 = weights->weights_sha256;
  target.dtype = flags.dtype;
  target.device = DeviceLabel(*options.device);
  const std::string path = RecordsPath(flags.out, kPasskeyExperiment);
  std::vector<gates::Record> all_rows;
  std::vector<std::string> verdicts;
  for (int64_t context : *contexts) {
    std::vector<PasskeyTrial> trials;
    for (size_t d = 0; d < depths->size(); ++d) {
      for (int64_t t = 0; t < trials_each; ++t) {
        const int64_t key = PassKey(static_cast<uint64_t>(flags.seed), context, d, t);
        const std::vector<int64_t> needle = ToIds(tokenizer->Encode(NeedleText(key), false));
        const int64_t h = HaystackTokens(*frame, static_cast<int64_t>(needle.size()), context,
                                         answer_tokens);
        if (h < 1) {
          return Fail(FlagError(flags.context_is_target ? "contexts" : "context",
                                absl::StrCat(context, " leaves no room for a haystack: frame ",
                                             frame->head.size() + frame->tail.size(),
                                             " + needle ", needle.size(), " + answer ",
                                             answer_tokens, " tokens")));
        }
        absl::StatusOr<Filler> filler = BuildFiller(text_ids, set_size, t, h, separator);
        if (!filler.ok()) {
          return Fail(absl::Status(filler.status().code(),
                                   absl::StrCat(set_path, ": ", filler.status().message())));
        }
        absl::StatusOr<PasskeyTrial> trial =
            BuildTrial(*frame, filler->ids, needle, (*depths)[d], context, answer_tokens);
        if (!trial.ok()) return Fail(trial.status());
        trial->key = key;
        trial->depth_index = static_cast<int64_t>(d);
        trial->trial = t;
        trial->texts = filler->texts;
        trials.push_back(std::move(*trial));
      }
    }
    std::string budget_note;
    const std::vector<std::string> selectors =
        selectors_flag == "all" ? DefaultSelectorSpecs(context, &budget_note)
                                : SpecList(selectors_flag);
    Say(absl::StrCat("context ", context, ": ", trials.size(), " trials, dense + ",
                     formats->size(), " formats + ", selectors.size(), " selectors",
                     budget_note.empty() ? "" : "; ", budget_note));
    PasskeyOptions run_options;
    run_options.answer_tokens = answer_tokens;
    run_options.stop_token = tokenizer->eos_id();
    run_options.detokenize = detokenize;
    run_options.progress = Say;
    absl::StatusOr<std::vector<ConfigAnswers>> result =
        RunPasskey(*model, trials, *formats, selectors, run_options);
    if (!result.ok()) return Fail(result.status());
    std::vector<std::string> times;
    for (const ConfigAnswers& c : *result) {
      times.push_back(absl::StrFormat("%s %.1f", c.variant, c.seconds));
    }
    Say(absl::StrCat("context ", context, ": seconds per configuration over its ", trials.size(),
                     " trials (the prefills not included): ", absl::StrJoin(times, ", ")));
    absl::StatusOr<std::vector<gates::Record>> records =
        PasskeyRecords(*result, trials, target, static_cast<uint64_t>(flags.seed));
    if (!records.ok()) return Fail(records.status());
    if (records->empty()) {
      Say(absl::StrCat("context ", context, ": dense only, no record (dense is each record's "
                       "reference): dense accuracy ",
                       std::count_if((*result)[0].answers.begin(), (*result)[0].answers.end(),
                                     [](const TrialAnswer& a) { return a.correct; }),
                       "/", trials.size()));
      continue;
    }
    absl::StatusOr<std::vector<gates::Record>> judged =
        JudgeAndAppend(path, kPasskeyGate, *records, CurrentProvenance(flags.seed));
    if (!judged.ok()) return Fail(judged.status());
    for (const gates::Record& r : *judged) {
      verdicts.push_back(VerdictInWords(r));
      all_rows.push_back(r);
    }
    Say(absl::StrCat("context ", context, ": ", judged->size(), " rows judged by ", kPasskeyGate,
                     " -> ", path));
  }
  std::cout << "\n## Passkey retrieval (" << target.model << ", " << flags.dtype << ", "
            << flags.device << ")\n\n"
            << PasskeyTable(all_rows, verdicts) << "\n";
  Say(absl::StrCat(all_rows.size(), " rows -> ", path, " (",
                   SecondsSince(start),
                   " s); regenerate the reports with: tools/bazel run //tools/report"));
  return 0;
}

}  // namespace
}  // namespace kvgate::experiments

// Every experiment's main has this shape (its defaults and usage text, the shared parser of
// experiments/common, then Run, whose last lines print the table and the time): the lines repeat
// across the experiments' mains on purpose, since what differs is the data they pass.
int main(int argc, char** argv) {
  kvgate::experiments::ExperimentDefaults defaults;
  defaults.context = 512;
  defaults.decode_steps = 8;
  absl::StatusOr<kvgate::experiments::CommonFlags> flags =
      kvgate::experiments::ParseExperimentCommandLine(
          argc, argv,
          "passkey: needle-in-a-haystack retrieval under KV formats and token selectors. A pass "
          "key sentence (a seeded 5-digit number) is hidden at each --depths of a haystack cut "
          "from the texts of --prompt_set to fill each of --contexts (positions: prompt, "
          "question and answer); the prompt is prefilled densely, then the question is "
          "teacher-forced and the answer decoded greedily (at most --decode_steps tokens) under "
          "each configuration; a trial is correct when the answer's first number is the key. "
          "One record per configuration and context: accuracy (Wilson 95%), dense accuracy on "
          "the same trials, paired drop (bootstrap 95%), per-depth accuracies; judged by "
          "passkey_retrieval (valid from 27 trials a context).\n"
          "  tools/bazel run //experiments:passkey -- --contexts=2048,4096,8192 --depths=all "
          "--trials=3 --formats=all --selectors=all --device=cuda --dtype=bfloat16",
          defaults);
  if (!flags.ok()) {
    std::cerr << "passkey: " << flags.status().message() << "\n";
    return 2;
  }
  return kvgate::experiments::Run(*flags);
}
