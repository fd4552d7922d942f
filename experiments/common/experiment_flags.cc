#include "experiments/common/experiment_flags.h"

#include <torch/cuda.h>

#include <exception>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, model, "",
          "Model: a Hugging Face snapshot folder (config.json, *.safetensors, tokenizer.json) or a "
          ".gguf file. Empty: the embedded default SmolLM2-135M-Instruct (Q4_1 GGUF, weights "
          "dequantized), which the run's first line names (qwen_oracle reads $KVGATE_QWEN_DIR "
          "first).");
ABSL_FLAG(int64_t, context, 0,
          "Prompt tokens: the license corpus (runtime/prompt_corpus.h) cut to exactly this many. "
          "At most one copy of the corpus, and with --decode_steps at most the model's "
          "max_position_embeddings (else an error). 0, the default: the experiment's target "
          "context (its usage above says which), capped to the model's max_position_embeddings "
          "minus --decode_steps; the run says so in its first lines.");
ABSL_FLAG(int64_t, decode_steps, 1,
          "Decode steps after the prompt, at least 1 (the usage above says which steps the gate "
          "reads). The default depends on the experiment ('currently' in --help).");
ABSL_FLAG(std::string, dtype, "float32",
          "Weights and activations: float32, bfloat16 or float16. The default depends on the "
          "experiment ('currently' in --help).");
ABSL_FLAG(std::string, device, "cpu", "LibTorch device: cpu, or cuda / cuda:N in a CUDA build.");
ABSL_FLAG(int64_t, seed, 0, "torch::manual_seed (and the formats' seed where they take one) and "
                            "the records' provenance seed.");
ABSL_FLAG(std::string, out, "",
          "Records file (JSON Lines, appended atomically). Empty: "
          "reports/records/<experiment>.jsonl of the workspace under bazel run, "
          "$TEST_UNDECLARED_OUTPUTS_DIR under bazel test.");
ABSL_FLAG(bool, allow_non_finite_weights, false,
          "Load weights holding NaN or an infinity instead of refusing them (the dense reference "
          "is then non-finite and the run's rows invalid; for testing the numerical guards).");

namespace kvgate::experiments {

absl::StatusOr<torch::Dtype> ParseDtype(const std::string& dtype) {
  if (dtype == "float32") return torch::kFloat32;
  if (dtype == "bfloat16") return torch::kBFloat16;
  if (dtype == "float16") return torch::kFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("--dtype=", dtype, " is not one of float32, bfloat16, float16"));
}

absl::StatusOr<torch::Device> ParseDevice(const std::string& device) {
  if (device == "cpu") return torch::Device(torch::kCPU);
  if (device.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--device=", device, ": this build or machine has no CUDA device (use --device=cpu)"));
    }
    try {
      return torch::Device(device);
    } catch (const std::exception&) {
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--device=", device, " is not one of cpu, cuda, cuda:<n>"));
}

absl::Status CheckCommonFlags(const CommonFlags& flags) {
  if (flags.context < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--context=", flags.context, " must be at least 1 token (or 0: the target context)"));
  }
  if (flags.decode_steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--decode_steps=", flags.decode_steps, " must be at least 1"));
  }
  if (absl::StatusOr<torch::Dtype> d = ParseDtype(flags.dtype); !d.ok()) return d.status();
  if (absl::StatusOr<torch::Device> d = ParseDevice(flags.device); !d.ok()) return d.status();
  return absl::OkStatus();
}

absl::Status CheckContextFits(const CommonFlags& flags, int64_t max_position_embeddings,
                              int64_t corpus_tokens) {
  if (max_position_embeddings > 0 &&
      flags.context + flags.decode_steps > max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--context=", flags.context, " plus --decode_steps=", flags.decode_steps,
        " exceeds the model's max_position_embeddings ", max_position_embeddings));
  }
  if (flags.context > corpus_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("--context=", flags.context,
                                                   " is longer than the prompt corpus (",
                                                   corpus_tokens, " tokens)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FitContextToModel(CommonFlags* flags, int64_t max_position_embeddings) {
  const int64_t room = max_position_embeddings - flags->decode_steps;
  if (!flags->context_is_target || max_position_embeddings <= 0 || flags->context <= room) {
    if (absl::Status s = CheckContextFits(*flags, max_position_embeddings, flags->context);
        !s.ok()) {
      return s;
    }
    return absl::StrCat("context ", flags->context, " tokens (",
                        flags->context_is_target ? "the target's" : "--context", ")");
  }
  if (room < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--decode_steps=", flags->decode_steps, " leaves no context within the model's ",
        "max_position_embeddings ", max_position_embeddings));
  }
  const std::string note = absl::StrCat(
      "context ", room, " tokens: the target's ", flags->context,
      " capped to the model's max_position_embeddings ", max_position_embeddings, " minus ",
      flags->decode_steps, " decode steps");
  flags->context = room;
  return note;
}

absl::StatusOr<CommonFlags> ParseExperimentCommandLine(int argc, char** argv, const char* usage,
                                                       const ExperimentDefaults& defaults) {
  absl::SetProgramUsageMessage(absl::StrCat(
      usage, "\nTarget context (--context=0, the default): ", defaults.context,
      " tokens, capped to the model's max_position_embeddings minus --decode_steps."));
  absl::SetFlag(&FLAGS_decode_steps, defaults.decode_steps);
  absl::SetFlag(&FLAGS_dtype, defaults.dtype);
  const std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", args[1], "' (flags only; see --help)"));
  }
  CommonFlags flags;
  flags.model = absl::GetFlag(FLAGS_model);
  flags.context = absl::GetFlag(FLAGS_context);
  flags.context_is_target = flags.context == 0;
  if (flags.context_is_target) flags.context = defaults.context;
  flags.decode_steps = absl::GetFlag(FLAGS_decode_steps);
  flags.dtype = absl::GetFlag(FLAGS_dtype);
  flags.device = absl::GetFlag(FLAGS_device);
  flags.seed = absl::GetFlag(FLAGS_seed);
  flags.out = absl::GetFlag(FLAGS_out);
  flags.allow_non_finite_weights = absl::GetFlag(FLAGS_allow_non_finite_weights);
  if (absl::Status s = CheckCommonFlags(flags); !s.ok()) return s;
  return flags;
}

}  // namespace kvgate::experiments
