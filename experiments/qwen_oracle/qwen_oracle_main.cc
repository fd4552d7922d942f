// qwen_oracle: the work-reduction oracle. See oracle.h for what it measures.
//
//   tools/bazel run //experiments:qwen_oracle -- --context=2048
//   tools/bazel run //experiments:qwen_oracle -- --model=/models/Qwen2.5-7B-Instruct
//       --device=cuda --context=8192   (one command line)          (or KVGATE_QWEN_DIR=/models/Qwen2.5-7B-Instruct)
//
// Target: Qwen2.5-7B-Instruct, 8192 tokens, 4 decode steps, bfloat16. Without --model and
// $KVGATE_QWEN_DIR it runs on the embedded SmolLM2-135M-Instruct and says so in its first line
// (and every record's target names that model). Rows are judged by `work_reduction_oracle` and
// appended to --out (default: reports/records/qwen_oracle.jsonl of the workspace under bazel run).

#include <torch/types.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/common/device_label.h"
#include "experiments/common/experiment_flags.h"
#include "experiments/common/experiment_io.h"
#include "experiments/qwen_oracle/oracle.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/prompt_corpus.h"
#include "experiments/runtime/tokenizer.h"
#include "experiments/runtime/wall_clock.h"
#include "gates/metrics.h"
#include "gates/record.h"
#include "gates/spec_registry.h"
#include "gates/verdict.h"
#include "kernels/selectors/selectors.h"

ABSL_FLAG(std::string, selectors, "",
          "Comma-separated selector specs (kernels/selectors names, e.g. "
          "'global_block_mass:f=0.376:b=16,recent_sink:sink=4:recent=3072'). Empty: the study's "
          "set (global_block_mass f=0.376/0.350/0.337 b=16, recent_sink sink=4 recent=3072 scaled "
          "to the context) and every other selector of kernels/ at a comparable budget.");
ABSL_FLAG(int64_t, prefill_chunk, 256, "Prompt tokens per prefill forward (bounds memory).");

namespace kvgate::experiments {
namespace {

int Fail(const std::string& line) {
  std::fprintf(stderr, "qwen_oracle: %s\n", line.c_str());
  return 2;
}

std::string Fixed(double v, int digits) { return absl::StrFormat("%.*f", digits, v); }

int Main(CommonFlags flags) {
  const int64_t steps = flags.decode_steps;
  const std::string dtype_name = flags.dtype;
  if (absl::GetFlag(FLAGS_prefill_chunk) < 1) {
    return Fail(absl::StrCat("--prefill_chunk=", absl::GetFlag(FLAGS_prefill_chunk),
                             " must be >= 1"));
  }
  const torch::Dtype dtype = *ParseDtype(flags.dtype);  // checked with the command line
  const std::optional<torch::Device> device = *ParseDevice(flags.device);
  const std::string selectors_flag = absl::GetFlag(FLAGS_selectors);
  std::vector<std::string> specs = absl::StrSplit(selectors_flag, ',', absl::SkipWhitespace());
  for (const std::string& spec : specs) {
    absl::StatusOr<std::string> canonical = kernels::CanonicalSelectorName(spec);
    if (!canonical.ok()) return Fail(absl::StrCat("--selectors: ", canonical.status().message()));
  }

  absl::StatusOr<ModelChoice> choice = ChooseModel(flags.model, "KVGATE_QWEN_DIR");
  if (!choice.ok()) return Fail(std::string(choice.status().message()));
  absl::StatusOr<runtime::ModelWeights> weights = runtime::LoadModel(choice->path);
  if (!weights.ok()) return Fail(std::string(weights.status().message()));
  absl::StatusOr<std::string> context_note =
      FitContextToModel(&flags, weights->config.max_position_embeddings);
  if (!context_note.ok()) return Fail(std::string(context_note.status().message()));
  const int64_t context = flags.context;
  // First line: which model, whether it is the target, and the context it runs at.
  std::printf("qwen_oracle: %s%s; %s\n",
              choice->embedded ? "NOT the target Qwen2.5-7B-Instruct -- " : "",
              choice->note.c_str(), context_note->c_str());
  std::fflush(stdout);
  std::string budget_note = "selectors from --selectors";
  if (selectors_flag.empty()) specs = DefaultSelectorSpecs(context, &budget_note);

  absl::StatusOr<runtime::Tokenizer> tokenizer = runtime::LoadTokenizer(choice->path);
  if (!tokenizer.ok()) return Fail(std::string(tokenizer.status().message()));
  absl::StatusOr<runtime::CorpusPrompt> prompt = runtime::LicenseCorpusPrompt(*tokenizer, context);
  if (!prompt.ok()) return Fail(std::string(prompt.status().message()));
  if (absl::Status fits = CheckContextFits(flags, 0, prompt->corpus_tokens); !fits.ok()) {
    return Fail(std::string(fits.message()));
  }
  std::printf("prompt: %s\n%s\n", prompt->note.c_str(), budget_note.c_str());

  runtime::ModelOptions model_options;
  model_options.dtype = dtype;
  model_options.device = *device;
  model_options.allow_non_finite_weights = flags.allow_non_finite_weights;
  absl::StatusOr<runtime::Model> model = runtime::Model::Create(*weights, model_options);
  if (!model.ok()) return Fail(std::string(model.status().message()));

  gates::Target target;
  target.model = choice->embedded ? kEmbeddedModelName : weights->model_name;
  target.weights_sha256 = weights->weights_sha256.empty() ? "unknown" : weights->weights_sha256;
  target.context = context;
  target.dtype = dtype_name;
  target.device = DeviceLabel(*device);
  weights = absl::UnknownError("released");  // the model holds its own copy

  std::printf("target: %s, weights sha256 %s, context %lld, %s, %s; %lld decode steps%s\n",
              target.model.c_str(), target.weights_sha256.c_str(),
              static_cast<long long>(context), target.dtype.c_str(), target.device.c_str(),
              static_cast<long long>(steps),
              choice->embedded ? " (embedded default, not the target)" : "");
  std::fflush(stdout);

  OracleOptions options;
  options.decode_steps = steps;
  options.selectors = specs;
  options.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  options.progress = [](const std::string& line) {
    std::fprintf(stderr, "qwen_oracle: %s\n", line.c_str());
  };
  std::vector<int64_t> ids(prompt->ids.begin(), prompt->ids.end());
  const gates::Provenance provenance = CurrentProvenance(flags.seed);
  absl::StatusOr<OracleResult> result = RunOracle(*model, ids, target, options);
  if (!result.ok()) return Fail(std::string(result.status().message()));

  const std::string path = RecordsPath(flags.out, kOracleExperiment);
  absl::StatusOr<std::vector<gates::Record>> judged =
      JudgeAndAppend(path, kOracleGate, result->rows, provenance);
  if (!judged.ok()) return Fail(absl::StrCat("writing records: ", judged.status().message()));

  // The per-configuration table of the rows as judged and written.
  absl::StatusOr<gates::RegisteredSpec> spec = LatestGateSpec(kOracleGate);
  if (!spec.ok()) return Fail(std::string(spec.status().message()));
  std::printf("\n%s v%d (every step must pass), %s:\n", kOracleGate, spec->spec.version,
              result->reference_finite
                  ? "dense reference finite"
                  : ("dense reference NON-FINITE from " + result->reference_nonfinite +
                     ": run invalid").c_str());
  std::printf("| variant | active f | passed | failed | invalid | max MSE | max layer L2 | main "
              "failure | verdict |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string& variant : result->variants) {
    int passed = 0, failed = 0, invalid = 0;
    double max_mse = 0, max_l2 = 0, f_sum = 0;
    int rows = 0;
    std::map<std::string, int> causes;
    for (gates::Record row : *judged) {
      if (row.variant != variant) continue;
      (row.gate.verdict == gates::Verdict::kPass ? passed
       : row.gate.verdict == gates::Verdict::kFail ? failed
                                                   : invalid)++;
      for (const std::string& why : row.gate.failed) {
        ++causes[std::string(why.substr(0, why.find(' ')))];
      }
      max_mse = std::max(max_mse, row.metrics[gates::kDecodeLogitMse]);
      max_l2 = std::max(max_l2, row.metrics[gates::kLayerMedianOProjRelL2]);
      f_sum += row.metrics[gates::kActiveHistoryFraction];
      ++rows;
    }
    std::string main_failure = "-";
    int most = 0;
    for (const auto& [cause, count] : causes) {
      if (count > most) {
        most = count;
        main_failure = absl::StrCat(cause, " (", count, "/", rows, " steps)");
      }
    }
    const char* verdict = invalid > 0 ? "invalid" : failed > 0 ? "fail" : "pass";
    std::printf("| %s | %s | %d | %d | %d | %s | %s | %s | %s |\n", variant.c_str(),
                Fixed(f_sum / std::max(rows, 1), 3).c_str(), passed, failed, invalid,
                absl::StrFormat("%.4g", max_mse).c_str(), Fixed(max_l2, 4).c_str(),
                main_failure.c_str(), verdict);
  }
  std::printf("\nprefill %.1f s, dense reference %.1f s, selectors %.1f s; %zu rows -> %s\n",
              result->prefill_seconds, result->reference_seconds, result->selectors_seconds,
              result->rows.size(), path.c_str());
  if (!result->reference_finite) {
    // The rows are written (invalid: the evidence of a broken reference); the run failed.
    std::fprintf(stderr, "qwen_oracle: dense reference non-finite from %s; its rows in %s are "
                 "invalid\n", result->reference_nonfinite.c_str(), path.c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kvgate::experiments

// Every experiment's main has this shape (its defaults and usage text, the shared parser of
// experiments/common, then Run, whose last lines print the table and the time): the lines repeat
// across the experiments' mains on purpose, since what differs is the data they pass.
int main(int argc, char** argv) {
  kvgate::experiments::ExperimentDefaults defaults;  // the target: 8192 tokens, 4 steps, bf16
  defaults.context = 8192;
  defaults.decode_steps = 4;
  defaults.dtype = "bfloat16";
  absl::StatusOr<kvgate::experiments::CommonFlags> flags =
      kvgate::experiments::ParseExperimentCommandLine(
          argc, argv,
          "The work-reduction oracle: dense reference, then each selector teacher-forced on its "
          "tokens; per-step rows judged by work_reduction_oracle (which judges 4 decode steps: "
          "other counts make its runs invalid). Without --model: $KVGATE_QWEN_DIR, else the "
          "embedded SmolLM2-135M-Instruct, which is not the target.\n  tools/bazel run "
          "//experiments:qwen_oracle -- --context=2048",
          defaults);
  if (!flags.ok()) return kvgate::experiments::Fail(std::string(flags.status().message()));
  // The whole run's wall time (load, prefill, reference, selectors, judging, writing), printed
  // whatever Main returns, so a run's log says what it cost.
  const auto start = std::chrono::steady_clock::now();
  const int status = kvgate::experiments::Main(*flags);
  std::printf("qwen_oracle: total %.1f s (exit status %d)\n",
              kvgate::SecondsSince(start), status);
  return status;
}
