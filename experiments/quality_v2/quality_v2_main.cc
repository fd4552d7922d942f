// //experiments:quality_v2 -- do KV formats keep a real model's next-token logits over many texts
// and positions? Teacher-forced decode over windows of a prompt set, one judged record a format.
//
//   tools/bazel run //experiments:quality_v2                       # fast: 2 windows, int4 only
//   tools/bazel run //experiments:quality_v2 -- --windows=32 --formats=all
//
// Each window is the first --context + --decode_steps + 1 tokens of one text of --prompt_set
// (experiments/runtime/prompt_sets/debian_texts.sha256 by default: 40 pinned texts); see
// quality_v2.h for what is measured. Records are judged by kv_format_quality_over_windows and
// appended to reports/records/quality_v2.jsonl (or --out); a run of fewer than 32 windows or 64
// positions is recorded and judged invalid by that gate, never pass or fail.

#include <torch/torch.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/common/experiment_flags.h"
#include "experiments/common/experiment_io.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/quality_v2/quality_v2.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/prompt_set.h"
#include "experiments/runtime/tokenizer.h"
#include "gates/record_io.h"

ABSL_FLAG(std::string, prompt_set, kvgate::runtime::kDebianTextsManifest,
          "The prompt set: a manifest of sha256-pinned texts (sha256sum format), one window each.");
ABSL_FLAG(int64_t, windows, 2,
          "Windows (texts of the set, in its order). 2 is a fast check; the gate needs >= 32.");
ABSL_FLAG(std::string, formats, "symmetric_int4:block=32,affine_int4:block=32",
          "Comma-separated KV format specs, or 'all' (every format hfkv_int4 runs).");

namespace kvgate::experiments {
namespace {

void Say(const std::string& line) { std::cout << "quality_v2: " << line << std::endl; }

int Fail(const absl::Status& s) {
  std::cerr << "quality_v2: " << s.message() << "\n";
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) ? 2 : 1;
}

int Run(const CommonFlags& flags) {
  const auto start = std::chrono::steady_clock::now();
  const std::string formats_flag = absl::GetFlag(FLAGS_formats);
  const std::vector<std::string> specs =
      formats_flag == "all" ? DefaultFormatSpecs()
                            : std::vector<std::string>(absl::StrSplit(formats_flag, ',',
                                                                      absl::SkipWhitespace()));
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> formats =
      MakeFormats(specs);
  if (!formats.ok()) return Fail(absl::InvalidArgumentError(
      absl::StrCat("--formats: ", formats.status().message())));
  const int64_t windows = absl::GetFlag(FLAGS_windows);
  const int64_t positions = flags.decode_steps;
  absl::StatusOr<ModelChoice> choice = ChooseModel(flags.model, nullptr);
  if (!choice.ok()) return Fail(choice.status());
  // The first line: the model and the size of the run.
  Say(absl::StrCat(choice->note, "; ", windows, " windows x ", positions,
                   " teacher-forced positions at context ", flags.context, ", ", formats->size(),
                   " formats", windows < 32 ? " (a fast size: the gate needs >= 32 windows, so "
                                              "its verdicts will be invalid)" : ""));
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
  absl::StatusOr<runtime::PromptWindows> texts = runtime::LoadPromptWindows(
      *tokenizer, *set, windows, flags.context + positions + 1);
  if (!texts.ok()) return Fail(texts.status());
  Say(absl::StrCat("prompt set ", absl::GetFlag(FLAGS_prompt_set), ": ", texts->note));
  std::vector<std::vector<int64_t>> ids;
  for (const runtime::PromptWindow& w : texts->windows) ids.emplace_back(w.ids.begin(), w.ids.end());

  absl::StatusOr<std::vector<ConfigPositions>> result =
      RunFormatsOverWindows(*model, ids, flags.context, positions, *formats, Say);
  if (!result.ok()) return Fail(result.status());

  gates::Target target;
  target.model = weights->model_name;
  target.weights_sha256 = weights->weights_sha256;
  target.context = flags.context;
  target.dtype = flags.dtype;
  target.device = flags.device;
  absl::StatusOr<std::vector<gates::Record>> records =
      FormatRecords(*result, target, static_cast<uint64_t>(flags.seed));
  if (!records.ok()) return Fail(records.status());
  const std::string path = RecordsPath(flags.out, kQualityV2Experiment);
  absl::StatusOr<std::vector<gates::RecordAt>> before = gates::ReadRecordsFile(path);
  const size_t offset = before.ok() ? before->size() : 0;
  if (absl::StatusOr<std::vector<gates::Record>> judged =
          JudgeAndAppend(path, kFormatWindowsGate, *records, CurrentProvenance(flags.seed));
      !judged.ok()) {
    return Fail(judged.status());
  }
  absl::StatusOr<std::vector<gates::RecordAt>> after = gates::ReadRecordsFile(path);
  if (!after.ok()) return Fail(after.status());
  std::vector<std::string> verdicts;
  for (size_t i = offset; i < after->size(); ++i) {
    const gates::Record& r = (*after)[i].record;
    verdicts.push_back(absl::StrCat(gates::VerdictName(r.gate.verdict),
                                    r.gate.failed.empty() ? "" : ": ",
                                    absl::StrJoin(r.gate.failed, "; ")));
  }
  std::cout << "\n## KV formats over " << windows << " windows x " << positions
            << " positions (" << target.model << ", context " << flags.context << ", "
            << flags.dtype << ", " << flags.device << ")\n\n"
            << QualityTable(*records, verdicts) << "\n";
  Say(absl::StrCat(records->size(), " rows judged by ", kFormatWindowsGate, " -> ", path, " (",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                   " s)"));
  return 0;
}

}  // namespace
}  // namespace kvgate::experiments

int main(int argc, char** argv) {
  kvgate::experiments::ExperimentDefaults defaults;
  defaults.context = 512;
  defaults.decode_steps = 64;
  absl::StatusOr<kvgate::experiments::CommonFlags> flags =
      kvgate::experiments::ParseExperimentCommandLine(
          argc, argv,
          "quality_v2: KV formats against dense over many texts and teacher-forced positions "
          "(--decode_steps positions a window, --windows texts of --prompt_set), one record a "
          "format with mean, median, p95, p99 and 95% bootstrap intervals over windows, judged "
          "by kv_format_quality_over_windows.\n"
          "  tools/bazel run //experiments:quality_v2 -- --windows=32 --formats=all",
          defaults);
  if (!flags.ok()) {
    std::cerr << "quality_v2: " << flags.status().message() << "\n";
    return 2;
  }
  return kvgate::experiments::Run(*flags);
}
