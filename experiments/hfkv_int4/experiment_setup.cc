#include "experiments/hfkv_int4/experiment_setup.h"

#include <torch/cuda.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/prompt_corpus.h"
#include "experiments/runtime/tokenizer.h"

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
    return absl::InvalidArgumentError(
        absl::StrCat("--context=", flags.context, " must be at least 1 token"));
  }
  if (flags.decode_steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--decode_steps=", flags.decode_steps, " must be at least 1"));
  }
  if (absl::StatusOr<torch::Dtype> d = ParseDtype(flags.dtype); !d.ok()) return d.status();
  if (absl::StatusOr<torch::Device> d = ParseDevice(flags.device); !d.ok()) return d.status();
  return absl::OkStatus();
}

absl::StatusOr<RunSetup> SetUpRun(const CommonFlags& flags,
                                  const std::function<void(const std::string&)>& progress) {
  if (absl::Status s = CheckCommonFlags(flags); !s.ok()) return s;
  const auto start = std::chrono::steady_clock::now();
  RunSetup setup;
  absl::StatusOr<ModelChoice> choice = ChooseModel(flags.model, nullptr);
  if (!choice.ok()) return choice.status();
  setup.choice = *choice;
  progress(setup.choice.note);

  absl::StatusOr<runtime::ModelWeights> weights = runtime::LoadModel(setup.choice.path);
  if (!weights.ok()) return weights.status();
  if (weights->config.max_position_embeddings > 0 &&
      flags.context + flags.decode_steps > weights->config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--context=", flags.context, " plus --decode_steps=", flags.decode_steps,
        " exceeds the model's max_position_embeddings ", weights->config.max_position_embeddings));
  }
  runtime::ModelOptions options;
  options.dtype = *ParseDtype(flags.dtype);
  options.device = *ParseDevice(flags.device);
  absl::StatusOr<runtime::Model> model = runtime::Model::Create(*weights, options);
  if (!model.ok()) return model.status();
  setup.model.emplace(std::move(*model));

  absl::StatusOr<runtime::Tokenizer> tokenizer = runtime::LoadTokenizer(setup.choice.path);
  if (!tokenizer.ok()) return tokenizer.status();
  absl::StatusOr<runtime::CorpusPrompt> prompt =
      runtime::LicenseCorpusPrompt(*tokenizer, flags.context);
  if (!prompt.ok()) return prompt.status();
  setup.prompt.assign(prompt->ids.begin(), prompt->ids.end());
  setup.prompt_note = prompt->note;

  setup.target.model = weights->model_name;
  setup.target.weights_sha256 = weights->weights_sha256;
  setup.target.context = flags.context;
  setup.target.dtype = flags.dtype;
  setup.target.device = flags.device == "cpu" ? "cpu" : torch::cuda::is_available() ? flags.device
                                                                                     : "cpu";
  setup.load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress(absl::StrCat("loaded ", weights->model_name, " (", weights->config.num_hidden_layers,
                        " layers, ", weights->config.num_attention_heads, "/",
                        weights->config.num_key_value_heads, " heads, head_dim ",
                        weights->config.head_dim, ", ", weights->weights_note, ") as ",
                        flags.dtype, " on ", flags.device, "; prompt: ", setup.prompt_note));
  return setup;
}

}  // namespace kvgate::experiments
