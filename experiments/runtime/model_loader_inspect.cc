// inspect_model: loads a model the way experiments do and prints what was loaded, as JSON: the
// config, tensor count, parameters and dtypes, weights_sha256 and weights_note, load and hash
// times; optionally float64 sums of chosen tensors, token ids of a prompt, the chat template.
//
// Usage:
//   tools/bazel run //experiments/runtime:inspect_model -- --path=/models/Qwen2.5-7B-Instruct \
//       [--sha256=false] [--sum=model.norm.weight,lm_head.weight] [--prompt="Hello"]
//   (with no --path: the embedded SmolLM2 GGUF)

#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "experiments/runtime/chat_template.h"
#include "experiments/runtime/model_loader.h"
#include "experiments/runtime/tokenizer.h"

ABSL_FLAG(std::string, path, "", "a Hugging Face snapshot folder or a .gguf file");
ABSL_FLAG(bool, sha256, true, "compute weights_sha256");
ABSL_FLAG(std::string, sum, "", "comma-separated tensor names whose float64 sums to print");
ABSL_FLAG(std::string, prompt, "", "text to tokenize with the model's tokenizer");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string path = absl::GetFlag(FLAGS_path);
  if (path.empty()) path = "external/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  using Clock = std::chrono::steady_clock;
  nlohmann::ordered_json out;
  out["path"] = path;

  kvgate::runtime::LoadOptions options;
  options.compute_sha256 = false;
  auto start = Clock::now();
  absl::StatusOr<kvgate::runtime::ModelWeights> w = kvgate::runtime::LoadModel(path, options);
  out["load_seconds"] = std::chrono::duration<double>(Clock::now() - start).count();
  if (!w.ok()) {
    std::fprintf(stderr, "inspect_model: %s\n", std::string(w.status().message()).c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_sha256)) {  // timed on its own: the same hashing LoadModel does
    options.compute_sha256 = true;
    start = Clock::now();
    absl::StatusOr<kvgate::runtime::ModelWeights> hashed =
        kvgate::runtime::LoadModel(path, options);
    out["load_and_sha256_seconds"] = std::chrono::duration<double>(Clock::now() - start).count();
    if (!hashed.ok()) return 1;
    w->weights_sha256 = hashed->weights_sha256;
  }
  const kvgate::runtime::ModelConfig& c = w->config;
  out["model_name"] = w->model_name;
  out["config"] = {{"architecture", c.architecture},
                   {"vocab_size", c.vocab_size},
                   {"hidden_size", c.hidden_size},
                   {"intermediate_size", c.intermediate_size},
                   {"num_hidden_layers", c.num_hidden_layers},
                   {"num_attention_heads", c.num_attention_heads},
                   {"num_key_value_heads", c.num_key_value_heads},
                   {"head_dim", c.head_dim},
                   {"rms_norm_eps", c.rms_norm_eps},
                   {"rope_theta", c.rope_theta},
                   {"max_position_embeddings", c.max_position_embeddings},
                   {"tie_word_embeddings", c.tie_word_embeddings},
                   {"attention_bias", c.attention_bias},
                   {"bos_token_id", c.bos_token_id},
                   {"eos_token_id", c.eos_token_id}};
  int64_t params = 0;
  std::map<std::string, int64_t> dtypes;
  for (const auto& [name, t] : w->tensors) {
    params += t.numel();
    ++dtypes[std::string(c10::toString(t.scalar_type()))];
  }
  out["tensors"] = w->tensors.size();
  out["parameters"] = params;
  out["dtypes"] = dtypes;
  out["weights_sha256"] = w->weights_sha256;
  out["weights_note"] = w->weights_note;
  if (!absl::GetFlag(FLAGS_sum).empty()) {
    start = Clock::now();
    for (const std::string& name :
         std::vector<std::string>(absl::StrSplit(absl::GetFlag(FLAGS_sum), ','))) {
      auto it = w->tensors.find(name);
      out["sums"][name] =
          it == w->tensors.end()
              ? nlohmann::ordered_json(nullptr)
              : nlohmann::ordered_json(it->second.to(torch::kFloat64).sum().item<double>());
    }
    out["sum_seconds"] = std::chrono::duration<double>(Clock::now() - start).count();
  }
  absl::StatusOr<kvgate::runtime::Tokenizer> tok = kvgate::runtime::LoadTokenizer(path);
  out["tokenizer"] = tok.ok() ? nlohmann::ordered_json{{"vocab", tok->vocab_size()},
                                                       {"pre", tok->pre_tokenizer_name()},
                                                       {"bos", tok->bos_id()},
                                                       {"eos", tok->eos_id()}}
                              : nlohmann::ordered_json(std::string(tok.status().message()));
  if (tok.ok() && !absl::GetFlag(FLAGS_prompt).empty())
    out["prompt_ids"] = tok->Encode(absl::GetFlag(FLAGS_prompt));
  absl::StatusOr<kvgate::runtime::ChatTemplate> chat = kvgate::runtime::LoadChatTemplate(path);
  out["chat_template"] = chat.ok() ? std::string(kvgate::runtime::ChatTemplateName(*chat))
                                   : std::string(chat.status().message());
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
