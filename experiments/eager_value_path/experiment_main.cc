#include "experiments/eager_value_path/experiment_main.h"

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/common/experiment_flags.h"
#include "experiments/common/experiment_io.h"
#include "experiments/runtime/host_info.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/prompt_corpus.h"
#include "experiments/runtime/tokenizer.h"
#include "experiments/runtime/wall_clock.h"
#include "gates/record_io.h"

namespace kvgate::experiments {
namespace {

}  // namespace

int ExperimentMain(int argc, char** argv, KvPath path, const char* experiment,
                   const char* latency_gate, const char* usage) {
  ExperimentDefaults defaults;
  defaults.context = 2048;
  defaults.decode_steps = 16;  // quality rows read step 0; timings are medians over all steps
  absl::StatusOr<CommonFlags> flags = ParseExperimentCommandLine(argc, argv, usage, defaults);
  if (!flags.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, std::string(flags.status().message()).c_str());
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  int64_t context = flags->context;  // the target's until FitContextToModel
  const int64_t steps = flags->decode_steps;
  const std::string dtype = flags->dtype;
  const std::string device = flags->device;
  const int64_t seed = flags->seed;
  if (absl::Status s = CheckRunFlags(context, steps, dtype, device, seed); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, std::string(s.message()).c_str());
    return 2;
  }
  absl::StatusOr<ModelChoice> choice = ChooseModel(flags->model, nullptr);
  if (!choice.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, std::string(choice.status().message()).c_str());
    return 1;
  }
  std::printf("%s\n", choice->note.c_str());
  std::fflush(stdout);

  absl::StatusOr<runtime::ModelWeights> weights = runtime::LoadModel(choice->path);
  if (!weights.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, weights.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::string> context_note =
      FitContextToModel(&*flags, weights->config.max_position_embeddings);
  if (!context_note.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, std::string(context_note.status().message()).c_str());
    return 2;
  }
  context = flags->context;
  std::printf("%s: %s, %s, %lld decode steps, %s, %s, seed %lld; CPU timing, %d LibTorch "
              "threads, load average %s, OMP_WAIT_POLICY=%s\n",
              experiment,
              path == KvPath::kEager ? "eager dequantize-then-attend"
                                     : "fused codebook attention (+ exact cleanup)",
              context_note->c_str(), static_cast<long long>(steps), dtype.c_str(),
              device.c_str(), static_cast<long long>(seed), at::get_num_threads(),
              runtime::LoadAverage().c_str(),
              std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(unset)");
  std::fflush(stdout);
  absl::StatusOr<runtime::Tokenizer> tokenizer = runtime::LoadTokenizer(choice->path);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, tokenizer.status().ToString().c_str());
    return 1;
  }
  runtime::ModelOptions model_options;
  model_options.dtype = dtype == "bfloat16"  ? torch::kBFloat16
                        : dtype == "float16" ? torch::kFloat16
                                             : torch::kFloat32;
  model_options.device = torch::Device(torch::kCPU);
  model_options.allow_non_finite_weights = flags->allow_non_finite_weights;
  absl::StatusOr<runtime::Model> model = runtime::Model::Create(*weights, model_options);
  if (!model.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, model.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<runtime::CorpusPrompt> prompt = runtime::LicenseCorpusPrompt(*tokenizer, context);
  if (!prompt.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, prompt.status().ToString().c_str());
    return 1;
  }
  if (absl::Status fits = CheckContextFits(*flags, 0, prompt->corpus_tokens); !fits.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, std::string(fits.message()).c_str());
    return 2;
  }
  std::printf("model: %s (%s), weights sha256 %s\nprompt: %s\n", weights->model_name.c_str(),
              weights->weights_note.c_str(), weights->weights_sha256.c_str(),
              prompt->note.c_str());
  const std::vector<int64_t> ids(prompt->ids.begin(), prompt->ids.end());

  absl::StatusOr<std::vector<PathVariant>> variants = StandardVariants(path, seed);
  if (!variants.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, variants.status().ToString().c_str());
    return 1;
  }
  CompressedDecodeOptions options;
  options.decode_steps = steps;
  options.experiment = experiment;
  options.target.model = weights->model_name;
  options.target.weights_sha256 = weights->weights_sha256;
  options.target.context = context;
  options.target.dtype = dtype;
  options.target.device = device;
  options.progress = [](const std::string& line) {
    std::printf("  %s\n", line.c_str());
    std::fflush(stdout);
  };
  absl::StatusOr<CompressedDecodeOutput> out = RunCompressedDecode(*model, ids, *variants, options);
  if (!out.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, out.status().ToString().c_str());
    return 1;
  }
  const std::string records = RecordsPath(flags->out, experiment);
  const gates::Provenance provenance = CurrentProvenance(seed);
  absl::StatusOr<std::vector<gates::Record>> quality =
      JudgeAndAppend(records, "hfkv_real_kv_quality", out->quality, provenance);
  if (!quality.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, quality.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::vector<gates::Record>> latency =
      JudgeAndAppend(records, latency_gate, out->latency, provenance);
  if (!latency.ok()) {
    std::fprintf(stderr, "%s: %s\n", experiment, latency.status().ToString().c_str());
    return 1;
  }
  // Tables of the rows just written, with the verdicts they were judged with.
  const size_t mine = quality->size() + latency->size();
  auto metric = [](const gates::Record& r, const char* name) {
    auto it = r.metrics.find(name);
    return it == r.metrics.end() ? std::nan("") : it->second;
  };
  std::printf("\nquality (hfkv_real_kv_quality, step 0):\n%-58s %10s %6s %6s %9s %8s %s\n",
              "variant", "logit_mse", "top10", "argmax", "kl", "kv_ratio", "verdict");
  for (const gates::Record& r : *quality) {
    std::printf("%-58s %10.4g %6.2f %6.0f %9.4g %8.4f %s\n", r.variant.c_str(),
                metric(r, "decode_logit_mse"), metric(r, "top10_overlap"),
                metric(r, "argmax_agreement"), metric(r, "kl_divergence"), metric(r, "kv_ratio"),
                std::string(gates::VerdictName(r.gate.verdict)).c_str());
  }
  std::printf("\nlatency (%s; medians over %lld steps, ms):\n%-58s %9s %9s %9s %9s %7s %s\n",
              latency_gate, static_cast<long long>(steps), "variant", "dense_stp", "comp_stp",
              "dense_att", "comp_att", "ratio", "verdict");
  const bool step_gate = std::string(latency_gate) == "eager_value_path_latency";
  for (const gates::Record& r : *latency) {
    const double ratio =
        step_gate ? metric(r, "dense_decode_step_ms") / metric(r, "compressed_decode_step_ms")
                  : metric(r, "dense_attention_ms") / metric(r, "compressed_attention_ms");
    std::printf("%-58s %9.2f %9.2f %9.3f %9.3f %7.3f %s\n", r.variant.c_str(),
                metric(r, "dense_decode_step_ms"), metric(r, "compressed_decode_step_ms"),
                metric(r, "dense_attention_ms"), metric(r, "compressed_attention_ms"), ratio,
                std::string(gates::VerdictName(r.gate.verdict)).c_str());
  }
  std::printf("\n%zu rows appended to %s in %.1f s\n", mine, records.c_str(),
              SecondsSince(start));
  if (!out->reference_nonfinite.empty()) {
    // The rows are written (invalid: the evidence of a broken reference); the run failed.
    std::fprintf(stderr, "%s: dense reference non-finite from %s; its quality rows in %s are "
                 "invalid\n", experiment, out->reference_nonfinite.c_str(), records.c_str());
    return 1;
  }
  return 0;
}

}  // namespace kvgate::experiments
