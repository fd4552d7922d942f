// decode_benchmark: prefill and decode tokens/s of the experiments/runtime model on the CPU, for a
// SmolLM2-135M-shaped model with seeded random weights (speed does not depend on the weights).
//
//   OMP_WAIT_POLICY=PASSIVE tools/bazel run //experiments/runtime:decode_benchmark --
//       --prefill_tokens=2048 --decode_tokens=64
//
// Method: build the model (float32 by default), warm up with a short prefill and a few decode
// steps, then `--repeats` times: a fresh cache's prefill of --prefill_tokens random token ids
// (timed), then --decode_tokens greedy steps after it (timed, argmax included). Prints each repeat
// and the best; napkin math: a decode step reads every weight once (tied embeddings count once,
// for the lm_head) plus the K/V of the context, so bytes per step / seconds per step is the
// achieved bandwidth.
//
// On a shared machine (other builds running), libgomp's spinning barriers make every one of the
// ~600 parallel regions of a decode step wait for a descheduled thread: set OMP_WAIT_POLICY=PASSIVE
// (it is read when libgomp loads, so it must come from the environment) or --threads=1. The
// header prints the load average and the wait policy so a record says which it was.

#include <ATen/Parallel.h>
#include <torch/types.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_configs.h"

ABSL_FLAG(int64_t, prefill_tokens, 2048, "Prompt length of the timed prefill.");
ABSL_FLAG(int64_t, decode_tokens, 64, "Greedy decode steps timed after the prefill.");
ABSL_FLAG(int32_t, repeats, 3, "Timed repeats; the best is reported.");
ABSL_FLAG(int32_t, threads, 0, "LibTorch CPU threads; 0 uses every core.");
ABSL_FLAG(std::string, dtype, "float32", "float32, bfloat16 or float16.");
ABSL_FLAG(int64_t, layers, 0, "Override num_hidden_layers (0: SmolLM2-135M's 30).");

namespace kvgate::runtime {
namespace {

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five;
  in >> one >> five;
  return one.empty() ? "unknown" : one + " (1 min), " + five + " (5 min)";
}

std::string CpuName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int Run() {
  const int threads = absl::GetFlag(FLAGS_threads) > 0
                          ? absl::GetFlag(FLAGS_threads)
                          : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  ModelConfig config = *ModelConfigNamed("smollm2-135m");
  if (absl::GetFlag(FLAGS_layers) > 0) config.num_hidden_layers = absl::GetFlag(FLAGS_layers);
  ModelOptions options;
  const std::string dtype = absl::GetFlag(FLAGS_dtype);
  options.dtype = dtype == "bfloat16"  ? torch::kBFloat16
                  : dtype == "float16" ? torch::kFloat16
                                       : torch::kFloat32;
  absl::StatusOr<Model> model = Model::Create(RandomModelWeights(config, /*seed=*/1), options);
  if (!model.ok()) {
    std::cerr << model.status() << "\n";
    return 1;
  }
  const int64_t prefill_n = absl::GetFlag(FLAGS_prefill_tokens);
  const int64_t decode_n = absl::GetFlag(FLAGS_decode_tokens);
  const torch::Tensor prompt_t = torch::randint(1, config.vocab_size, {prefill_n},
                                                at::detail::createCPUGenerator(2), torch::kLong);
  const std::vector<int64_t> prompt(prompt_t.data_ptr<int64_t>(),
                                    prompt_t.data_ptr<int64_t>() + prefill_n);

  const int64_t elem = torch::elementSize(options.dtype);
  int64_t params = config.vocab_size * config.hidden_size * (config.tie_word_embeddings ? 1 : 2) +
                   config.hidden_size;
  const int64_t nq = config.num_attention_heads * config.head_dim,
                nkv = config.num_key_value_heads * config.head_dim;
  params +=
      config.num_hidden_layers * (2 * config.hidden_size + config.hidden_size * (2 * nq + 2 * nkv) +
                                  3 * config.hidden_size * config.intermediate_size);
  std::cout << "decode_benchmark: SmolLM2-135M shape (" << config.num_hidden_layers
            << " layers, hidden " << config.hidden_size << ", " << config.num_attention_heads << "/"
            << config.num_key_value_heads << " heads, vocab " << config.vocab_size << "), "
            << params / 1e6 << "M parameters, " << dtype << ", seeded random weights\n"
            << "host: " << CpuName() << ", " << threads << " LibTorch threads, torch "
            << TORCH_VERSION << ", load average " << LoadAverage() << ", OMP_WAIT_POLICY="
            << (std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(unset)")
            << "\n";

  {  // warm-up
    KvCache cache = model->NewCache(64 + 8);
    absl::StatusOr<torch::Tensor> logits =
        Prefill(*model, cache, std::vector<int64_t>(prompt.begin(), prompt.begin() + 64));
    if (!logits.ok() || !DecodeN(*model, cache, 1, 8).ok()) return 1;
  }
  double best_prefill = 1e30, best_decode = 1e30;
  for (int r = 0; r < absl::GetFlag(FLAGS_repeats); ++r) {
    KvCache cache = model->NewCache(prefill_n + decode_n);
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<torch::Tensor> logits = Prefill(*model, cache, prompt);
    if (!logits.ok()) {
      std::cerr << logits.status() << "\n";
      return 1;
    }
    const int64_t first = logits->argmax().item<int64_t>();
    const double prefill_s = Seconds(start);
    DecodeOptions decode_options;
    decode_options.capture_logits = false;
    absl::StatusOr<DecodeResult> decode = DecodeN(*model, cache, first, decode_n, decode_options);
    if (!decode.ok()) {
      std::cerr << decode.status() << "\n";
      return 1;
    }
    best_prefill = std::min(best_prefill, prefill_s);
    best_decode = std::min(best_decode, decode->seconds);
    std::cout << "repeat " << r << ": prefill " << prefill_n << " tokens " << prefill_s << " s ("
              << prefill_n / prefill_s << " tokens/s); decode " << decode_n << " tokens at context "
              << prefill_n << ".." << prefill_n + decode_n << " " << decode->seconds << " s ("
              << decode_n / decode->seconds << " tokens/s)\n";
  }
  const double step_s = best_decode / decode_n;
  const double kv_bytes =
      2.0 * config.num_hidden_layers * nkv * elem * (prefill_n + decode_n / 2.0);
  const double step_bytes = params * elem + kv_bytes;
  std::cout << "best: prefill " << prefill_n / best_prefill << " tokens/s, decode "
            << decode_n / best_decode << " tokens/s (" << step_s * 1e3 << " ms/token; "
            << step_bytes / 1e6 << " MB read a step -> " << step_bytes / step_s / 1e9 << " GB/s)\n";
  return 0;
}

}  // namespace
}  // namespace kvgate::runtime

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Prefill and decode tokens/s of a SmolLM2-135M-shaped model (CPU).");
  absl::ParseCommandLine(argc, argv);
  return kvgate::runtime::Run();
}
