// //experiments:quality_v2 -- do KV formats and token selectors keep a real model's next-token
// logits and perplexity over many texts and positions? Teacher-forced decode over windows of a
// prompt set, one judged record a configuration.
//
//   tools/bazel run //experiments:quality_v2       # fast: 2 windows, two int4 formats
//   tools/bazel run //experiments:quality_v2 -- --windows=32 --formats=all --selectors=default
//   ... --device=cuda --dtype=bfloat16             # the same on a GPU
//
// Each window is the first --context + --decode_steps + 1 tokens of one text of --prompt_set
// (experiments/runtime/prompt_sets/debian_texts.sha256 by default: 40 pinned texts); see
// quality_v2.h for what is measured. Format records are judged by kv_format_quality_over_windows,
// selector records by oracle_quality_over_windows, all appended to
// reports/records/quality_v2.jsonl (or --out); a run of fewer than 32 windows or 64 positions is
// recorded and judged invalid by those gates, never pass or fail. Perplexity (dense and per
// configuration, and their per-window ratio, with intervals) is in every record and the table.
// After every window the run's values so far go to --checkpoint (checkpoint.h); started again
// after a kill, the same run continues at the first window not done.

#include <torch/types.h>
#include <torch/utils.h>

#include <chrono>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/common/device_label.h"
#include "experiments/common/experiment_flags.h"
#include "experiments/common/experiment_io.h"
#include "experiments/common/selector_policy.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/quality_v2/checkpoint.h"
#include "experiments/quality_v2/quality_v2.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/prompt_set.h"
#include "experiments/runtime/tokenizer.h"
#include "experiments/runtime/wall_clock.h"
#include "gates/record_io.h"

ABSL_FLAG(std::string, prompt_set, kvgate::runtime::kDebianTextsManifest,
          "The prompt set: a manifest of sha256-pinned texts (sha256sum format), one window each.");
ABSL_FLAG(int64_t, windows, 2,
          "Windows (texts of the set, in its order). 2 is a fast check; the gate needs >= 32.");
ABSL_FLAG(std::string, formats, "symmetric_int4:block=32,affine_int4:block=32",
          "Comma-separated KV format specs, 'all' (every format hfkv_int4 runs) or 'none'.");
ABSL_FLAG(std::string, selectors, "none",
          "Token selectors: comma-separated specs of kernels/selectors (e.g. "
          "'h2o:heavy=96:recent=96,quest:budget=192:b=16'), 'default' (the oracle's ten "
          "configurations at --context, DefaultSelectorSpecs: global_block_mass f=0.376, 0.350, "
          "0.337, recent_sink, layer_block_mass, streaming_llm, h2o, tova, snapkv, quest, budgets "
          "scaled by context / 8192) or 'none'. 'none' by default: each configuration adds two "
          "decodes a window, and the default run stays a fast check.");

ABSL_FLAG(std::string, checkpoint, "",
          "Where the run keeps its progress: after every window, all configurations' values so "
          "far and the run's key (model, weights, context, positions, dtype, device, seed, prompt "
          "set, windows, configurations, the code's git commit), written atomically. Empty (the "
          "default): '<records file>.checkpoint.json' beside the records file (--out). A run that "
          "finds a checkpoint of the same run continues at its first window not done; one of "
          "another run or a corrupt one is refused, naming the file (delete it to start over). "
          "Deleted once the run's records are written.");

namespace kvgate::experiments {
namespace {

void Say(const std::string& line) { std::cout << "quality_v2: " << line << std::endl; }

int Fail(const absl::Status& s) {
  std::cerr << "quality_v2: " << s.message() << "\n";
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) ? 2 : 1;
}

// A comma list, or a keyword's list.
std::vector<std::string> SplitSpecs(const std::string& flag) {
  return std::vector<std::string>(absl::StrSplit(flag, ',', absl::SkipWhitespace()));
}

int Run(const CommonFlags& flags) {
  const auto start = std::chrono::steady_clock::now();
  const std::string formats_flag = absl::GetFlag(FLAGS_formats);
  const std::vector<std::string> format_specs = formats_flag == "all" ? DefaultFormatSpecs()
                                                : formats_flag == "none"
                                                    ? std::vector<std::string>()
                                                    : SplitSpecs(formats_flag);
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> formats =
      MakeFormats(format_specs);
  if (!formats.ok()) {
    return Fail(
        absl::InvalidArgumentError(absl::StrCat("--formats: ", formats.status().message())));
  }
  const std::string selectors_flag = absl::GetFlag(FLAGS_selectors);
  std::string budget_note;
  const std::vector<std::string> selector_specs =
      selectors_flag == "default" ? DefaultSelectorSpecs(flags.context, &budget_note)
      : selectors_flag == "none"  ? std::vector<std::string>()
                                  : SplitSpecs(selectors_flag);
  absl::StatusOr<SelectorSpecs> selectors = CheckSelectorSpecs(selector_specs, flags.context);
  if (!selectors.ok()) {
    return Fail(
        absl::InvalidArgumentError(absl::StrCat("--selectors: ", selectors.status().message())));
  }
  if (formats->empty() && selectors->canonical.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--formats and --selectors: both 'none' leaves nothing to measure"));
  }
  const int64_t windows = absl::GetFlag(FLAGS_windows);
  if (windows < 1) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--windows=", windows, ": must be >= 1")));
  }
  const int64_t positions = flags.decode_steps;
  absl::StatusOr<ModelChoice> choice = ChooseModel(flags.model, nullptr);
  if (!choice.ok()) return Fail(choice.status());
  // The first line: the model and the size of the run.
  Say(absl::StrCat(choice->note, "; ", windows, " windows x ", positions,
                   " teacher-forced positions at context ", flags.context, ", ", formats->size(),
                   " formats, ", selectors->canonical.size(), " selectors",
                   windows < 32 ? " (a fast size: the gate needs >= 32 windows, so "
                                  "its verdicts will be invalid)"
                                : ""));
  torch::manual_seed(flags.seed);
  absl::StatusOr<runtime::ModelWeights> weights = runtime::LoadModel(choice->path);
  if (!weights.ok()) return Fail(weights.status());
  if (absl::Status s = CheckContextFits(flags, weights->config.max_position_embeddings,
                                        /*corpus_tokens=*/flags.context);
      !s.ok()) {
    return Fail(s);
  }
  runtime::ModelOptions options;
  options.dtype = *ParseDtype(flags.dtype);
  options.device = *ParseDevice(flags.device);
  options.allow_non_finite_weights = flags.allow_non_finite_weights;
  absl::StatusOr<runtime::Model> model = runtime::Model::Create(*weights, options);
  if (!model.ok()) return Fail(model.status());
  absl::StatusOr<runtime::Tokenizer> tokenizer = runtime::LoadTokenizer(choice->path);
  if (!tokenizer.ok()) return Fail(tokenizer.status());
  absl::StatusOr<std::vector<runtime::PromptSetEntry>> set =
      runtime::LoadPromptSetManifest(absl::GetFlag(FLAGS_prompt_set));
  if (!set.ok()) return Fail(set.status());
  if (windows > static_cast<int64_t>(set->size())) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--windows=", windows, ": the prompt set ",
                                                        absl::GetFlag(FLAGS_prompt_set), " has ",
                                                        set->size(), " texts")));
  }
  absl::StatusOr<runtime::PromptWindows> texts =
      runtime::LoadPromptWindows(*tokenizer, *set, windows, flags.context + positions + 1);
  if (!texts.ok()) return Fail(texts.status());
  Say(absl::StrCat("prompt set ", absl::GetFlag(FLAGS_prompt_set), ": ", texts->note));
  if (!budget_note.empty()) Say(absl::StrCat("selectors: ", budget_note));
  std::vector<std::vector<int64_t>> ids;
  for (const runtime::PromptWindow& w : texts->windows)
    ids.emplace_back(w.ids.begin(), w.ids.end());

  gates::Target target;
  target.model = weights->model_name;
  target.weights_sha256 = weights->weights_sha256;
  target.context = flags.context;
  target.dtype = flags.dtype;
  target.device = DeviceLabel(*options.device);
  const std::string path = RecordsPath(flags.out, kQualityV2Experiment);

  // Provenance: its commit keys the checkpoint; it is recorded with the rows at the end.
  const gates::Provenance provenance = CurrentProvenance(flags.seed);

  // A run killed by a time limit loses nothing: each window's values go to the checkpoint, and
  // the same run (the same code too) started again continues after the last window written there.
  RunKey key;
  key.model = target.model;
  key.weights_sha256 = target.weights_sha256;
  key.context = flags.context;
  key.positions = positions;
  key.dtype = flags.dtype;
  key.device = target.device;
  key.seed = flags.seed;
  key.prompt_set_sha256 = texts->set_sha256;
  key.windows = windows;
  key.window_ids_sha256 = WindowIdsSha256(ids);
  for (const auto& f : *formats) key.variants.push_back(f->name());
  for (const std::string& s : selectors->canonical) key.variants.push_back(s);
  key.code = absl::StrCat(provenance.git_commit, provenance.dirty ? "+dirty" : "");
  const std::string checkpoint = CheckpointPath(absl::GetFlag(FLAGS_checkpoint), path);
  absl::StatusOr<std::vector<ConfigPositions>> done = LoadCheckpoint(checkpoint, key);
  if (!done.ok()) return Fail(done.status());
  if (done->empty()) {
    Say(absl::StrCat("checkpoint: ", checkpoint,
                     " after every window (deleted once the records are written)"));
  } else {
    Say(absl::StrCat("resuming from ", checkpoint, ": ", (*done)[0].kl_divergence.size(), " of ",
                     windows, " windows done"));
  }

  absl::StatusOr<std::vector<ConfigPositions>> result =
      RunOverWindows(*model, ids, flags.context, positions, *formats, selectors->canonical, Say,
                     *std::move(done), [&](size_t, const std::vector<ConfigPositions>& configs) {
                       return WriteCheckpoint(checkpoint, key, configs);
                     });
  if (!result.ok()) return Fail(result.status());
  // Where the time went, for sizing a larger run.
  std::vector<std::string> costs;
  for (const ConfigPositions& c : *result) {
    costs.push_back(absl::StrFormat("%s %.1f s", c.variant, c.seconds));
  }
  Say(absl::StrCat("wall time a configuration, all windows (driven + layer-local): ",
                   absl::StrJoin(costs, ", ")));

  absl::StatusOr<std::vector<gates::Record>> records =
      QualityRecords(*result, target, static_cast<uint64_t>(flags.seed));
  if (!records.ok()) return Fail(records.status());
  // Formats and selectors go to their own gates, in one append (a run cut between two appends
  // would keep its checkpoint and append the first group again); the table keeps the run's order.
  std::vector<gates::Record> judged(records->size());
  for (const char* gate : {kFormatWindowsGate, kSelectorWindowsGate}) {
    std::vector<gates::Record> rows;
    std::vector<size_t> at;
    for (size_t i = 0; i < records->size(); ++i) {
      if ((*result)[i].gate == gate) {
        rows.push_back((*records)[i]);
        at.push_back(i);
      }
    }
    if (rows.empty()) continue;
    absl::StatusOr<std::vector<gates::Record>> group = JudgeRows(gate, rows, provenance);
    if (!group.ok()) return Fail(group.status());
    for (size_t j = 0; j < group->size(); ++j) judged[at[j]] = (*group)[j];
  }
  absl::StatusOr<std::vector<gates::Record>> written = AppendJudged(path, judged);
  if (!written.ok()) return Fail(written.status());
  std::vector<std::string> verdicts;
  for (const gates::Record& r : *written) {
    verdicts.push_back(VerdictInWords(r));
  }
  // The records hold everything the checkpoint did: keeping it would make a rerun append them
  // again.
  if (absl::Status s = RemoveCheckpoint(checkpoint); !s.ok()) return Fail(s);
  std::cout << "\n## KV formats and selectors over " << windows << " windows x " << positions
            << " positions (" << target.model << ", context " << flags.context << ", "
            << flags.dtype << ", " << flags.device << ")\n\n"
            << QualityTable(*records, verdicts) << "\n";
  Say(absl::StrCat(records->size(), " rows judged by ", kFormatWindowsGate, " (formats) and ",
                   kSelectorWindowsGate, " (selectors) -> ", path, " (", SecondsSince(start),
                   " s)"));
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
  defaults.decode_steps = 64;
  absl::StatusOr<kvgate::experiments::CommonFlags> flags =
      kvgate::experiments::ParseExperimentCommandLine(
          argc, argv,
          "quality_v2: KV formats and token selectors against dense over many texts and "
          "teacher-forced positions (--decode_steps positions a window, --windows texts of "
          "--prompt_set), one record a configuration with mean, median, p95, p99 and 95% "
          "bootstrap intervals over windows of each measure and of perplexity, judged by "
          "kv_format_quality_over_windows (formats) and oracle_quality_over_windows "
          "(selectors).\n"
          "  tools/bazel run //experiments:quality_v2 -- --windows=32 --formats=all "
          "--selectors=default [--device=cuda --dtype=bfloat16]",
          defaults);
  if (!flags.ok()) {
    std::cerr << "quality_v2: " << flags.status().message() << "\n";
    return 2;
  }
  return kvgate::experiments::Run(*flags);
}
