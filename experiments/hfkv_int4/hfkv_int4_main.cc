// //experiments:hfkv_int4 — does a compressed KV cache keep a real model's next-token logits?
//
//   tools/bazel run //experiments:hfkv_int4 -- --context=2048
//
// Prefill the license corpus (exactly --context tokens) densely, quantize the whole cache (every
// layer, K and V) in each format, decode with it and compare the logits with the dense run's at
// every step; rows of the steps the `hfkv_real_kv_quality` gate reads (step 0) are judged and
// appended to reports/records/hfkv_int4.jsonl (or --out). The synthetic K0-prep numbers of the
// same formats are printed beside them (K0-prep has no gate, so no records).

#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/common/experiment_io.h"
#include "experiments/hfkv_int4/experiment_setup.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "gates/record_io.h"
#include "kernels/k0_prep/k0_prep.h"

ABSL_FLAG(std::string, model, "",
          "Hugging Face snapshot folder or .gguf file; empty: the embedded default "
          "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to float32).");
ABSL_FLAG(int64_t, context, 2048, "Prompt tokens (the license corpus cut to exactly this many).");
ABSL_FLAG(int64_t, decode_steps, 1,
          "Decode steps compared with dense; the gate reads step 0 only, so only step 0 is "
          "recorded, later steps are printed.");
ABSL_FLAG(std::string, dtype, "float32", "Model dtype: float32, bfloat16 or float16.");
ABSL_FLAG(std::string, device, "cpu", "cpu, or cuda[:n] in a CUDA build.");
ABSL_FLAG(int64_t, seed, 0, "torch::manual_seed and the records' provenance seed.");
ABSL_FLAG(std::string, out, "",
          "Records file; empty: reports/records/hfkv_int4.jsonl of the workspace under bazel run.");
ABSL_FLAG(std::string, formats, "",
          "Comma-separated KV format specs; empty: symmetric/affine int4 (block 32), every format "
          "of kernels/, TurboQuant mse/prod at 2-4 bits.");
ABSL_FLAG(bool, k0_prep, true, "Print the synthetic K0-prep table of the same formats.");

namespace kvgate::experiments {
namespace {

void Say(const std::string& line) {
  std::cout << line << std::endl;
}

int Run() {
  CommonFlags flags;
  flags.model = absl::GetFlag(FLAGS_model);
  flags.context = absl::GetFlag(FLAGS_context);
  flags.decode_steps = absl::GetFlag(FLAGS_decode_steps);
  flags.dtype = absl::GetFlag(FLAGS_dtype);
  flags.device = absl::GetFlag(FLAGS_device);
  flags.seed = absl::GetFlag(FLAGS_seed);
  flags.out = absl::GetFlag(FLAGS_out);
  if (absl::Status s = CheckCommonFlags(flags); !s.ok()) {
    std::cerr << "hfkv_int4: " << s.message() << "\n";
    return 2;
  }
  std::vector<std::string> specs =
      absl::GetFlag(FLAGS_formats).empty()
          ? DefaultFormatSpecs()
          : std::vector<std::string>(absl::StrSplit(absl::GetFlag(FLAGS_formats), ',',
                                                    absl::SkipWhitespace()));
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> formats =
      MakeFormats(specs);
  if (!formats.ok()) {
    std::cerr << "hfkv_int4: --formats: " << formats.status().message() << "\n";
    return 2;
  }
  torch::manual_seed(flags.seed);
  // The first line says which model runs (the embedded default unless --model).
  absl::StatusOr<RunSetup> setup = SetUpRun(flags, [](const std::string& l) {
    Say("hfkv_int4: " + l);
  });
  if (!setup.ok()) {
    std::cerr << "hfkv_int4: " << setup.status() << "\n";
    return 1;
  }
  const gates::Provenance provenance = CurrentProvenance(flags.seed);
  Say(absl::StrCat("hfkv_int4: ", formats->size(), " formats, context ", flags.context,
                   ", decode steps ", flags.decode_steps, ", gate ", kHfkvGate,
                   " (decode_logit_mse <= 0.25, top10_overlap >= 0.8, argmax_agreement == 1, "
                   "every step)"));

  absl::StatusOr<HfkvResult> result =
      RunHfkvQuality(*setup->model, setup->prompt, *formats, flags.decode_steps, Say);
  if (!result.ok()) {
    std::cerr << "hfkv_int4: " << result.status() << "\n";
    return 1;
  }
  for (const std::string& f : result->failures) Say("hfkv_int4: format failed, no rows: " + f);

  // Judge and write the steps the gate reads; print the verdicts the records carry.
  const std::string path = RecordsPath(flags.out, kHfkvExperiment);
  const int64_t gate_steps = 1;  // gates/specs/hfkv_real_kv_quality.json: decode_steps 1
  std::vector<gates::Record> records = HfkvRecords(result->rows, setup->target, gate_steps);
  absl::StatusOr<std::vector<gates::RecordAt>> before = gates::ReadRecordsFile(path);
  const size_t offset = before.ok() ? before->size() : 0;
  if (absl::Status s = JudgeAndAppend(path, kHfkvGate, records, provenance); !s.ok()) {
    std::cerr << "hfkv_int4: " << s << "\n";
    return 1;
  }
  absl::StatusOr<std::vector<gates::RecordAt>> after = gates::ReadRecordsFile(path);
  if (!after.ok()) {
    std::cerr << "hfkv_int4: " << after.status() << "\n";
    return 1;
  }
  std::vector<std::string> verdicts(result->rows.size(), "(not recorded)");
  size_t next = offset;  // the rows just appended, in order
  for (size_t i = 0; i < result->rows.size(); ++i) {
    if (result->rows[i].step >= gate_steps) continue;
    const gates::Record& r = (*after)[next++].record;
    verdicts[i] = std::string(gates::VerdictName(r.gate.verdict));
    if (!r.gate.failed.empty()) {
      absl::StrAppend(&verdicts[i], ": ", absl::StrJoin(r.gate.failed, "; "));
    }
  }
  Say(absl::StrCat("\n## Real-KV quality (", setup->target.model, ", context ", flags.context,
                   ", ", flags.dtype, ", ", flags.device, ")\n"));
  std::cout << HfkvTable(result->rows, verdicts);
  Say(absl::StrCat("\nhfkv_int4: ", records.size(), " rows judged by ", kHfkvGate, " -> ", path));

  if (absl::GetFlag(FLAGS_k0_prep)) {
    kernels::K0PrepConfig k0;
    k0.formats = specs;
    k0.seed = static_cast<uint64_t>(20261127);
    absl::StatusOr<std::vector<kernels::K0PrepRow>> k0_rows = kernels::RunK0Prep(k0);
    if (!k0_rows.ok()) {
      std::cerr << "hfkv_int4: K0-prep: " << k0_rows.status() << "\n";
      return 1;
    }
    Say("\n## Synthetic K0-prep (seeded Gaussian K/V; no gate, no records)\n");
    std::cout << kernels::K0PrepTable(*k0_rows);
  }
  Say(absl::StrCat("\nhfkv_int4: prefill ", result->prefill_seconds, " s, dense decode ",
                   result->dense_decode_seconds, " s, load ", setup->load_seconds, " s"));
  return 0;
}

}  // namespace
}  // namespace kvgate::experiments

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "hfkv_int4: real-KV quality of compressed KV caches vs dense, judged by "
      "hfkv_real_kv_quality.\n  tools/bazel run //experiments:hfkv_int4 -- --context=2048");
  absl::ParseCommandLine(argc, argv);
  return kvgate::experiments::Run();
}
