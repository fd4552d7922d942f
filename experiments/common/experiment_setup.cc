#include "experiments/common/experiment_setup.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "experiments/common/device_label.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/prompt_corpus.h"
#include "experiments/runtime/tokenizer.h"
#include "experiments/runtime/wall_clock.h"

namespace kvgate::experiments {

absl::StatusOr<RunSetup> SetUpRun(const CommonFlags& command_line,
                                  const std::function<void(const std::string&)>& progress) {
  if (absl::Status s = CheckCommonFlags(command_line); !s.ok()) return s;
  CommonFlags flags = command_line;
  const auto start = std::chrono::steady_clock::now();
  RunSetup setup;
  absl::StatusOr<ModelChoice> choice = ChooseModel(flags.model, nullptr);
  if (!choice.ok()) return choice.status();
  setup.choice = *choice;
  progress(setup.choice.note);

  absl::StatusOr<runtime::ModelWeights> weights = runtime::LoadModel(setup.choice.path);
  if (!weights.ok()) return weights.status();
  // Before building the model; the corpus is checked once it is tokenized.
  absl::StatusOr<std::string> context_note =
      FitContextToModel(&flags, weights->config.max_position_embeddings);
  if (!context_note.ok()) return context_note.status();
  setup.context_note = *context_note;
  runtime::ModelOptions options;
  options.dtype = *ParseDtype(flags.dtype);
  options.device = *ParseDevice(flags.device);
  options.allow_non_finite_weights = flags.allow_non_finite_weights;
  absl::StatusOr<runtime::Model> model = runtime::Model::Create(*weights, options);
  if (!model.ok()) return model.status();
  setup.model.emplace(std::move(*model));

  absl::StatusOr<runtime::Tokenizer> tokenizer = runtime::LoadTokenizer(setup.choice.path);
  if (!tokenizer.ok()) return tokenizer.status();
  absl::StatusOr<runtime::CorpusPrompt> prompt =
      runtime::LicenseCorpusPrompt(*tokenizer, flags.context);
  if (!prompt.ok()) return prompt.status();
  if (absl::Status s = CheckContextFits(flags, 0, prompt->corpus_tokens); !s.ok()) return s;
  setup.prompt.assign(prompt->ids.begin(), prompt->ids.end());
  setup.prompt_note = prompt->note;

  setup.target.model = weights->model_name;
  setup.target.weights_sha256 = weights->weights_sha256;
  setup.target.context = flags.context;
  setup.target.dtype = flags.dtype;
  setup.target.device = DeviceLabel(*options.device);
  setup.load_seconds =
      SecondsSince(start);
  progress(absl::StrCat("loaded ", weights->model_name, " (", weights->config.num_hidden_layers,
                        " layers, ", weights->config.num_attention_heads, "/",
                        weights->config.num_key_value_heads, " heads, head_dim ",
                        weights->config.head_dim, ", ", weights->weights_note, ") as ",
                        flags.dtype, " on ", flags.device, "; ", setup.context_note, "; prompt: ",
                        setup.prompt_note));
  return setup;
}

}  // namespace kvgate::experiments
