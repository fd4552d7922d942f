// generate: greedy generation with the experiments/runtime model, with prefill and decode tokens/s.
//
//   tools/bazel run //experiments/runtime:generate                      (embedded SmolLM2-135M)
//   tools/bazel run //experiments/runtime:generate -- --model=/path/to/Qwen2.5-7B-Instruct
//       --prompt="Write a haiku about caches." --max_new_tokens=64 --dtype=bfloat16
//   tools/bazel run //experiments/runtime:generate -- --random_model=smollm2-135m
//       --prompt_ids=1,504,3158 --max_new_tokens=32        (speed runs; the text is meaningless)
//
// The prompt is wrapped in the model's chat template (chat_template.h; SmolLM2 and Qwen2.5) unless
// --raw, encoded with the model's tokenizer (tokenizer.h), prefilled in one forward and decoded
// greedily (decode.h). Prints the model line first, then the text, the ids and the timings.

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/common/experiment_io.h"
#include "experiments/runtime/chat_template.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_configs.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/tokenizer.h"
#include "experiments/runtime/wall_clock.h"

ABSL_FLAG(std::string, model, "",
          "Model to load: a Hugging Face snapshot folder (config.json, *.safetensors, "
          "tokenizer.json) or a GGUF file. Empty: the embedded default SmolLM2-135M-Instruct "
          "(Q4_1 GGUF, dequantized to float32), found in the runfiles.");
ABSL_FLAG(std::string, random_model, "",
          "Instead of --model, seeded random weights of a known shape: 'smollm2-135m'. For smoke "
          "tests and speed runs; the text is meaningless. The prompt is tokenized with the "
          "embedded SmolLM2 tokenizer unless --prompt_ids is given.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of --random_model's weights.");
ABSL_FLAG(std::string, prompt, "What is the capital of France? Answer in one sentence.",
          "Prompt text. Wrapped in the model's chat template (a user message after the "
          "template's default system prompt, then the assistant header) unless --raw.");
ABSL_FLAG(bool, raw, false,
          "Encode --prompt as it is, without the chat template (special tokens in the text, e.g. "
          "<|im_start|>, are still recognized).");
ABSL_FLAG(std::string, prompt_ids, "",
          "Instead of --prompt: comma-separated token ids, e.g. '1,504,3158', fed as they are.");
ABSL_FLAG(int64_t, max_new_tokens, 64,
          "Tokens to generate after the prompt (greedy; the first comes from the prefill).");
ABSL_FLAG(bool, stop_at_eos, true, "Stop early when the model predicts its eos_token_id.");
ABSL_FLAG(std::string, dtype, "float32",
          "Weights and activations: float32, bfloat16 or float16 (loaded weights are converted).");
ABSL_FLAG(std::string, device, "cpu", "LibTorch device: 'cpu', 'cuda' or 'cuda:N' (CUDA builds).");
ABSL_FLAG(int32_t, threads, 0,
          "CPU threads for LibTorch's intra-op pool (at::set_num_threads); 0 uses every core. "
          "On a shared machine also set OMP_WAIT_POLICY=PASSIVE.");

namespace kvgate::runtime {
namespace {

absl::StatusOr<std::vector<int64_t>> ParseIds(const std::string& text) {
  std::vector<int64_t> ids;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int64_t id;
    if (!absl::SimpleAtoi(piece, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--prompt_ids: '", piece, "' is not an id"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("--prompt_ids is empty");
  return ids;
}

absl::StatusOr<torch::Dtype> ParseDtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("--dtype=", name, ": expected float32, bfloat16 or float16"));
}

absl::Status Run() {
  if (absl::GetFlag(FLAGS_max_new_tokens) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_new_tokens=", absl::GetFlag(FLAGS_max_new_tokens), " must be >= 0"));
  }
  if (absl::GetFlag(FLAGS_threads) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads=", absl::GetFlag(FLAGS_threads), " must be >= 0"));
  }
  const int threads = absl::GetFlag(FLAGS_threads) > 0
                          ? absl::GetFlag(FLAGS_threads)
                          : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  absl::StatusOr<torch::Dtype> dtype = ParseDtype(absl::GetFlag(FLAGS_dtype));
  if (!dtype.ok()) return dtype.status();

  // Weights, and the path the tokenizer and chat template come from.
  const std::string random = absl::GetFlag(FLAGS_random_model);
  if (!random.empty() && !absl::GetFlag(FLAGS_model).empty()) {
    return absl::InvalidArgumentError("give at most one of --model and --random_model");
  }
  absl::StatusOr<experiments::ModelChoice> choice =
      experiments::ChooseModel(absl::GetFlag(FLAGS_model), nullptr);
  ModelWeights weights;
  if (!random.empty()) {
    if (random != "smollm2-135m") {
      return absl::InvalidArgumentError(absl::StrCat("unknown --random_model '", random, "'"));
    }
    std::cout << "model: random weights of SmolLM2-135M's shape (seed "
              << absl::GetFlag(FLAGS_seed) << ")\n";
    weights = RandomModelWeights(*ModelConfigNamed(random), absl::GetFlag(FLAGS_seed));
  } else {
    if (!choice.ok()) return choice.status();
    std::cout << choice->note << "\n";
    LoadOptions load_options;
    load_options.compute_sha256 = false;
    absl::StatusOr<ModelWeights> loaded = LoadModel(choice->path, load_options);
    if (!loaded.ok()) return loaded.status();
    weights = *std::move(loaded);
  }

  // The prompt.
  std::optional<Tokenizer> tokenizer;
  std::vector<int64_t> prompt;
  if (!absl::GetFlag(FLAGS_prompt_ids).empty()) {
    absl::StatusOr<std::vector<int64_t>> ids = ParseIds(absl::GetFlag(FLAGS_prompt_ids));
    if (!ids.ok()) return ids.status();
    prompt = *std::move(ids);
  }
  // The tokenizer of the model (of the embedded SmolLM2 for --random_model, which has its vocab).
  if (random.empty() || choice.ok()) {
    absl::StatusOr<Tokenizer> tok = LoadTokenizer(choice.ok() ? choice->path : "");
    if (tok.ok()) {
      tokenizer = *std::move(tok);
    } else if (prompt.empty()) {
      return tok.status();
    }
  }
  if (prompt.empty()) {
    if (!tokenizer.has_value()) {
      return absl::FailedPreconditionError("no tokenizer for --prompt; give --prompt_ids");
    }
    std::string text = absl::GetFlag(FLAGS_prompt);
    if (!absl::GetFlag(FLAGS_raw)) {
      if (!choice.ok()) return choice.status();
      absl::StatusOr<ChatTemplate> chat = LoadChatTemplate(choice->path);
      if (!chat.ok()) {
        return absl::Status(chat.status().code(),
                            absl::StrCat(chat.status().message(), " (use --raw to skip it)"));
      }
      absl::StatusOr<std::string> wrapped =
          ApplyChatTemplate(*chat, {{"user", text}}, /*add_generation_prompt=*/true);
      if (!wrapped.ok()) return wrapped.status();
      text = *std::move(wrapped);
    }
    for (int32_t id : tokenizer->Encode(text)) prompt.push_back(id);
    if (prompt.empty()) return absl::InvalidArgumentError("--prompt encodes to no tokens");
  }

  const int64_t max_positions = weights.config.max_position_embeddings;
  if (max_positions > 0 && static_cast<int64_t>(prompt.size()) +
                                   absl::GetFlag(FLAGS_max_new_tokens) > max_positions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_new_tokens=", absl::GetFlag(FLAGS_max_new_tokens), " plus the prompt's ",
        prompt.size(), " tokens exceed the model's max_position_embeddings ", max_positions));
  }
  ModelOptions options;
  options.dtype = *dtype;
  try {
    options.device = torch::Device(absl::GetFlag(FLAGS_device));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--device=", absl::GetFlag(FLAGS_device), " is not a LibTorch device (cpu, cuda, cuda:N)"));
  }
  absl::StatusOr<Model> model = Model::Create(weights, options);
  if (!model.ok()) return model.status();
  weights.tensors.clear();  // the model holds its own copies

  const int64_t n = std::max<int64_t>(absl::GetFlag(FLAGS_max_new_tokens), 0);
  KvCache cache = model->NewCache(static_cast<int64_t>(prompt.size()) + n);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<torch::Tensor> logits = Prefill(*model, cache, prompt);
  if (!logits.ok()) return logits.status();
  const int64_t first = logits->argmax().item<int64_t>();
  const double prefill_s =
      SecondsSince(start);

  DecodeOptions decode_options;
  decode_options.capture_logits = false;
  const int64_t eos = model->config().eos_token_id;
  if (absl::GetFlag(FLAGS_stop_at_eos)) decode_options.stop_token = eos;
  // The first generated token comes from the prefill; n - 1 steps make the rest (none after eos).
  const bool first_is_eos = absl::GetFlag(FLAGS_stop_at_eos) && eos >= 0 && first == eos;
  const int64_t steps = (n == 0 || first_is_eos) ? 0 : n - 1;
  absl::StatusOr<DecodeResult> decode = DecodeN(*model, cache, first, steps, decode_options);
  if (!decode.ok()) return decode.status();

  std::vector<int64_t> generated;
  if (n > 0) generated.push_back(first);
  for (int64_t t : decode->TokensOut()) generated.push_back(t);
  if (tokenizer.has_value()) {
    std::vector<int32_t> ids(generated.begin(), generated.end());
    std::cout << "text: " << tokenizer->Decode(ids, /*skip_special=*/true) << "\n";
  }
  std::cout << "weights: " << weights.model_name << " (" << model->config().architecture << ", "
            << absl::GetFlag(FLAGS_dtype) << ", " << model->device() << ", " << threads
            << " threads)\n"
            << "prompt_ids: " << absl::StrJoin(prompt, ",") << "\n"
            << "generated_ids: " << absl::StrJoin(generated, ",") << "\n"
            << "prefill: " << prompt.size() << " tokens in " << prefill_s << " s, "
            << prompt.size() / prefill_s << " tokens/s (first token included)\n"
            << "decode: " << decode->steps.size() << " tokens in " << decode->seconds << " s, "
            << decode->TokensPerSecond() << " tokens/s\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace kvgate::runtime

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Greedy generation with the experiments/runtime model; the default model is the embedded "
      "SmolLM2-135M-Instruct (Q4_1 GGUF).\n"
      "  generate [--model=PATH] [--prompt=TEXT | --raw | --prompt_ids=IDS] "
      "[--max_new_tokens=N] [--dtype=float32] [--threads=N]\n"
      "Prints the model, the generated text and ids, and prefill / decode tokens per second.");
  const std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    std::cerr << "generate: unexpected argument '" << args[1] << "' (flags only; see --help)\n";
    return 2;
  }
  // Run directly (bazel-bin/.../generate) rather than under `bazel run`: the embedded model is in
  // the binary's runfiles folder next to it.
  if (std::getenv("RUNFILES_DIR") == nullptr && std::getenv("TEST_SRCDIR") == nullptr) {
    const std::string runfiles = std::string(argv[0]) + ".runfiles";
    if (std::filesystem::is_directory(runfiles)) setenv("RUNFILES_DIR", runfiles.c_str(), 0);
  }
  const absl::Status status = kvgate::runtime::Run();
  if (!status.ok()) {
    std::cerr << "generate: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
