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
// achieved bandwidth. --json_out writes the best figures and the machine as JSON (what
// tools/bench/runtime_vs_transformers.sh compares with transformers); --profile then runs one more
// prefill and decode under LibTorch's profiler and prints the ops that took the most time.
//
// On a shared machine (other builds running), libgomp's spinning barriers make every one of the
// ~600 parallel regions of a decode step wait for a descheduled thread: set OMP_WAIT_POLICY=PASSIVE
// (it is read when libgomp loads, so it must come from the environment) or --threads=1. The
// header prints the load average and the wait policy so a record says which it was.

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/types.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/host_info.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_configs.h"
#include "experiments/runtime/wall_clock.h"

ABSL_FLAG(int64_t, prefill_tokens, 2048, "Prompt length of the timed prefill.");
ABSL_FLAG(int64_t, decode_tokens, 64, "Greedy decode steps timed after the prefill.");
ABSL_FLAG(int32_t, repeats, 5, "Timed repeats; the best is reported.");
ABSL_FLAG(int32_t, threads, 0, "LibTorch CPU threads; 0 uses every core.");
ABSL_FLAG(std::string, dtype, "float32", "float32, bfloat16 or float16.");
ABSL_FLAG(int64_t, layers, 0, "Override num_hidden_layers (0: SmolLM2-135M's 30).");
ABSL_FLAG(std::string, json_out, "",
          "Also write the best prefill and decode tokens/s, the settings and the machine to this "
          "JSON file.");
ABSL_FLAG(bool, profile, false,
          "After the timed repeats, run one prefill and the decode steps under LibTorch's "
          "profiler and print the 15 ops with the most self time in each (calling thread's ops).");
ABSL_FLAG(int32_t, profile_top, 15, "How many ops --profile prints a phase.");

namespace kvgate::runtime {
namespace {

// Self and total CPU time by op name over the profiler's push/pop ranges of every thread.
struct OpTime {
  double self_us = 0, total_us = 0;
  int64_t calls = 0;
};

void PrintTopOps(const std::string& phase, const torch::autograd::profiler::thread_event_lists& lists,
                 int top) {
  using torch::autograd::profiler::EventKind;
  using torch::autograd::profiler::LegacyEvent;
  std::map<std::string, OpTime> ops;
  double wall_us = 0;
  for (const std::vector<LegacyEvent>& events : lists) {
    struct Open {
      const LegacyEvent* push;
      double children_us;
    };
    std::vector<Open> stack;
    for (const LegacyEvent& e : events) {
      if (e.kind() == EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == EventKind::PopRange && !stack.empty()) {
        const Open open = stack.back();
        stack.pop_back();
        const double us = open.push->cpuElapsedUs(e);
        OpTime& op = ops[open.push->name()];
        op.total_us += us;
        op.self_us += us - open.children_us;
        ++op.calls;
        if (stack.empty()) {
          wall_us += us;
        } else {
          stack.back().children_us += us;
        }
      }
    }
  }
  std::vector<std::pair<std::string, OpTime>> sorted(ops.begin(), ops.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  std::cout << "\nprofile, " << phase << ": " << wall_us / 1e3
            << " ms in top-level ops; by self time (ms, share of that, calls, total ms)\n";
  for (int i = 0; i < top && i < static_cast<int>(sorted.size()); ++i) {
    const OpTime& t = sorted[i].second;
    std::cout << absl::StrFormat("  %-40s %10.2f %6.1f%% %8d %10.2f\n", sorted[i].first,
                                 t.self_us / 1e3, wall_us > 0 ? 100 * t.self_us / wall_us : 0.0,
                                 t.calls, t.total_us / 1e3);
  }
}

// Runs `body` under LibTorch's CPU profiler and prints its top ops.
template <typename Body>
void Profile(const std::string& phase, int top, Body body) {
  torch::autograd::profiler::thread_event_lists lists;
  {
    torch::autograd::profiler::TLSLegacyProfilerGuard guard(
        torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU),
        [&lists](const torch::autograd::profiler::thread_event_lists& l) { lists = l; });
    body();
  }
  PrintTopOps(phase, lists, top);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
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
    const double prefill_s = SecondsSince(start);
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
  if (const std::string json_out = absl::GetFlag(FLAGS_json_out); !json_out.empty()) {
    std::ofstream out(json_out);
    out << absl::StrFormat(
        "{\"runtime\": \"kvgate experiments/runtime\", \"torch\": %s, \"dtype\": %s, "
        "\"threads\": %d, \"layers\": %d, \"prefill_tokens\": %d, \"decode_tokens\": %d, "
        "\"repeats\": %d, \"prefill_tokens_per_s\": %.6g, \"decode_tokens_per_s\": %.6g, "
        "\"cpu\": %s, \"load_average\": %s}\n",
        JsonString(TORCH_VERSION), JsonString(dtype), threads, config.num_hidden_layers, prefill_n,
        decode_n, absl::GetFlag(FLAGS_repeats), prefill_n / best_prefill, decode_n / best_decode,
        JsonString(CpuName()), JsonString(LoadAverage()));
    if (!out) {
      std::cerr << "decode_benchmark: --json_out: cannot write " << json_out << "\n";
      return 1;
    }
  }
  if (absl::GetFlag(FLAGS_profile)) {
    const int top = absl::GetFlag(FLAGS_profile_top);
    KvCache cache = model->NewCache(prefill_n + decode_n);
    int64_t first = 0;
    bool ok = true;
    Profile(absl::StrCat("prefill of ", prefill_n, " tokens"), top, [&] {
      absl::StatusOr<torch::Tensor> logits = Prefill(*model, cache, prompt);
      ok = logits.ok();
      if (ok) first = logits->argmax().item<int64_t>();
    });
    if (!ok) return 1;
    DecodeOptions decode_options;
    decode_options.capture_logits = false;
    Profile(absl::StrCat(decode_n, " decode steps"), top, [&] {
      ok = DecodeN(*model, cache, first, decode_n, decode_options).ok();
    });
    if (!ok) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kvgate::runtime

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Prefill and decode tokens/s of a SmolLM2-135M-shaped model (CPU).");
  absl::ParseCommandLine(argc, argv);
  return kvgate::runtime::Run();
}
