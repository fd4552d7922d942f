// generate: greedy decoding from token ids with the experiments/runtime model, with tokens/s.
//
//   tools/bazel run //experiments/runtime:generate -- --random_model=smollm2-135m
//       --prompt_ids=1,504,3158 --max_new_tokens=32     (one command line)
//
// Until the loaders and tokenizer land (experiments/runtime/model_loader.h, tokenizer), --model
// reports that it is not available and prompts are token ids; see the TODOs below.

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <cstdint>
#include <iostream>
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
#include "experiments/runtime/decode.h"
#include "experiments/runtime/model.h"

ABSL_FLAG(std::string, model, "",
          "Model to load: a Hugging Face snapshot folder (config.json, *.safetensors) or a GGUF "
          "file. Needs the loader (experiments/runtime/model_loader.h), not merged yet.");
ABSL_FLAG(std::string, random_model, "",
          "Instead of --model, seeded random weights of a known shape: 'smollm2-135m'. For smoke "
          "tests and speed; the text is meaningless.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of --random_model's weights.");
ABSL_FLAG(std::string, prompt_ids, "1",
          "Prompt as comma-separated token ids, e.g. '1,504,3158'. (Text prompts need the "
          "tokenizer, not merged yet.)");
ABSL_FLAG(int64_t, max_new_tokens, 32, "Tokens to generate after the prompt (greedy).");
ABSL_FLAG(bool, stop_at_eos, true, "Stop early when the model predicts its eos_token_id.");
ABSL_FLAG(std::string, dtype, "float32", "Weights and activations: float32, bfloat16 or float16.");
ABSL_FLAG(std::string, device, "cpu", "LibTorch device: 'cpu', 'cuda' or 'cuda:N' (CUDA builds).");
ABSL_FLAG(int32_t, threads, 0, "CPU threads for LibTorch; 0 uses every core.");

namespace kvgate::runtime {
namespace {

absl::StatusOr<ModelWeights> LoadWeights() {
  const std::string random = absl::GetFlag(FLAGS_random_model);
  const std::string path = absl::GetFlag(FLAGS_model);
  if (random.empty() == path.empty()) {
    return absl::InvalidArgumentError("give exactly one of --model and --random_model");
  }
  if (!random.empty()) {
    if (random != "smollm2-135m") {
      return absl::InvalidArgumentError(absl::StrCat("unknown --random_model '", random, "'"));
    }
    return RandomModelWeights(SmolLM2_135MConfig(), absl::GetFlag(FLAGS_seed));
  }
  // TODO(issue 3): plug in the loader once experiments/runtime/model_loader.h lands:
  //   #include "experiments/runtime/model_loader.h"   (and ":model_loader" in generate's deps)
  //   return LoadModel(path);   // absl::StatusOr<ModelWeights> LoadModel(absl::string_view path)
  return absl::UnimplementedError(
      absl::StrCat("--model=", path,
                   ": the loader (experiments/runtime/model_loader.h) is not merged yet; "
                   "use --random_model"));
}

// TODO(issue 3): with the tokenizer, add --prompt (text) and print decoded text next to the ids.
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
  return absl::InvalidArgumentError(absl::StrCat("--dtype=", name));
}

absl::Status Run() {
  const int threads = absl::GetFlag(FLAGS_threads) > 0
                          ? absl::GetFlag(FLAGS_threads)
                          : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  absl::StatusOr<std::vector<int64_t>> prompt = ParseIds(absl::GetFlag(FLAGS_prompt_ids));
  if (!prompt.ok()) return prompt.status();
  absl::StatusOr<torch::Dtype> dtype = ParseDtype(absl::GetFlag(FLAGS_dtype));
  if (!dtype.ok()) return dtype.status();
  absl::StatusOr<ModelWeights> weights = LoadWeights();
  if (!weights.ok()) return weights.status();
  ModelOptions options;
  options.dtype = *dtype;
  try {
    options.device = torch::Device(absl::GetFlag(FLAGS_device));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("--device: ", e.what_without_backtrace()));
  }
  absl::StatusOr<Model> model = Model::Create(*weights, options);
  if (!model.ok()) return model.status();
  weights->tensors.clear();  // the model holds its own copies

  const int64_t n = absl::GetFlag(FLAGS_max_new_tokens);
  KvCache cache = model->NewCache(static_cast<int64_t>(prompt->size()) + std::max<int64_t>(n, 0));
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<torch::Tensor> logits = Prefill(*model, cache, *prompt);
  if (!logits.ok()) return logits.status();
  const int64_t first = logits->argmax().item<int64_t>();
  const double prefill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  DecodeOptions decode_options;
  decode_options.capture_logits = false;
  if (absl::GetFlag(FLAGS_stop_at_eos)) decode_options.stop_token = model->config().eos_token_id;
  // The first generated token comes from the prefill; n - 1 steps make the rest.
  absl::StatusOr<DecodeResult> decode =
      DecodeN(*model, cache, first, std::max<int64_t>(n - 1, 0), decode_options);
  if (!decode.ok()) return decode.status();

  std::vector<int64_t> generated;
  if (n > 0) generated.push_back(first);
  for (int64_t t : decode->TokensOut()) generated.push_back(t);
  std::cout << "model: " << weights->model_name << " (" << model->config().architecture << ", "
            << absl::GetFlag(FLAGS_dtype) << ", " << model->device() << ", " << threads
            << " threads)\n"
            << "prompt_ids: " << absl::StrJoin(*prompt, ",") << "\n"
            << "generated_ids: " << absl::StrJoin(generated, ",") << "\n"
            << "prefill: " << prompt->size() << " tokens in " << prefill_s << " s, "
            << prompt->size() / prefill_s << " tokens/s\n"
            << "decode: " << decode->steps.size() << " tokens in " << decode->seconds << " s, "
            << decode->TokensPerSecond() << " tokens/s\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace kvgate::runtime

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Greedy generation with the experiments/runtime model.\n"
      "  generate --random_model=smollm2-135m --prompt_ids=1,504,3158 --max_new_tokens=32\n"
      "Prints the generated token ids and prefill / decode tokens per second.");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = kvgate::runtime::Run();
  if (!status.ok()) {
    std::cerr << "generate: " << status << "\n";
    return 1;
  }
  return 0;
}
