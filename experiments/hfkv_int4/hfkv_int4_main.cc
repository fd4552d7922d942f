// //experiments:hfkv_int4 — does a compressed KV cache keep a real model's next-token logits?
//
//   tools/bazel run //experiments:hfkv_int4 -- --context=2048
//
// Prefill the license corpus (exactly --context tokens) densely, quantize the whole cache (every
// layer, K and V) in each format, decode with it and compare the logits with the dense run's at
// every step; rows of the steps the `hfkv_real_kv_quality` gate reads (step 0) are judged and
// appended to reports/records/hfkv_int4.jsonl (or --out). The synthetic K0-prep suite of the same
// formats is its own run (//experiments:k0_prep); the hfkv summary shows both side by side.

#include <torch/types.h>
#include <torch/utils.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/common/experiment_flags.h"
#include "experiments/common/experiment_io.h"
#include "experiments/common/experiment_setup.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "gates/record.h"

ABSL_FLAG(std::string, formats, "",
          "Comma-separated KV format specs; empty: symmetric/affine int4 (block 32), every format "
          "of kernels/, TurboQuant mse/prod at 2-4 bits.");

namespace kvgate::experiments {
namespace {

void Say(const std::string& line) {
  std::cout << line << std::endl;
}

int Run(const CommonFlags& flags) {
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
    std::cerr << "hfkv_int4: " << setup.status().message() << "\n";
    return absl::IsInvalidArgument(setup.status()) ? 2 : 1;
  }
  const gates::Provenance provenance = CurrentProvenance(flags.seed);
  absl::StatusOr<gates::RegisteredSpec> gate = LatestGateSpec(kHfkvGate);
  if (!gate.ok()) {
    std::cerr << "hfkv_int4: " << gate.status().message() << "\n";
    return 1;
  }
  // The gate judges decode steps 0 .. decode_steps - 1 of the spec; later steps are printed only.
  const int64_t gate_steps = gate->spec.target.decode_steps.value_or(1);
  Say(absl::StrCat("hfkv_int4: ", formats->size(), " formats, context ", setup->target.context,
                   ", decode steps ", flags.decode_steps, ", gate ", kHfkvGate, " v",
                   gate->spec.version, " (", DescribeThresholds(gate->spec), ", steps 0..",
                   gate_steps - 1, ")"));

  absl::StatusOr<HfkvResult> result =
      RunHfkvQuality(*setup->model, setup->prompt, *formats, flags.decode_steps, Say);
  if (!result.ok()) {
    std::cerr << "hfkv_int4: " << result.status() << "\n";
    return 1;
  }
  for (const std::string& f : result->failures) Say("hfkv_int4: format failed, no rows: " + f);
  if (!result->reference_nonfinite.empty()) {
    Say("hfkv_int4: dense reference NON-FINITE from " + result->reference_nonfinite);
  }

  // Judge and write the steps the gate reads; print the verdicts the records carry.
  const std::string path = RecordsPath(flags.out, kHfkvExperiment);
  std::vector<gates::Record> records = HfkvRecords(result->rows, setup->target, gate_steps);
  absl::StatusOr<std::vector<gates::Record>> judged =
      JudgeAndAppend(path, kHfkvGate, records, provenance);
  if (!judged.ok()) {
    std::cerr << "hfkv_int4: writing records: " << judged.status().message() << "\n";
    return 1;
  }
  std::vector<std::string> verdicts(result->rows.size(), "(not recorded)");
  size_t next = 0;  // the judged rows, in the order of result->rows
  for (size_t i = 0; i < result->rows.size(); ++i) {
    if (result->rows[i].step >= gate_steps) continue;
    const gates::Record& r = (*judged)[next++];
    verdicts[i] = std::string(gates::VerdictName(r.gate.verdict));
    if (!r.gate.failed.empty()) {
      absl::StrAppend(&verdicts[i], ": ", absl::StrJoin(r.gate.failed, "; "));
    }
  }
  Say(absl::StrCat("\n## Real-KV quality (", setup->target.model, ", context ", setup->target.context,
                   ", ", flags.dtype, ", ", flags.device, ")\n"));
  std::cout << HfkvTable(result->rows, verdicts);
  Say(absl::StrCat("\nhfkv_int4: ", records.size(), " rows judged by ", kHfkvGate, " -> ", path));

  Say(absl::StrCat("\nhfkv_int4: prefill ", result->prefill_seconds, " s, dense decode ",
                   result->dense_decode_seconds, " s, load ", setup->load_seconds, " s"));
  if (!result->reference_nonfinite.empty()) {
    // The rows are written (invalid: the evidence of a broken reference); the run failed.
    std::cerr << "hfkv_int4: dense reference non-finite from " << result->reference_nonfinite
              << "; its rows in " << path << " are invalid\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kvgate::experiments

// Every experiment's main has this shape (its defaults and usage text, the shared parser of
// experiments/common, then Run, whose last lines print the table and the time): the lines repeat
// across the experiments' mains on purpose, since what differs is the data they pass.
int main(int argc, char** argv) {
  kvgate::experiments::ExperimentDefaults defaults;
  defaults.context = 2048;
  defaults.decode_steps = 1;
  absl::StatusOr<kvgate::experiments::CommonFlags> flags =
      kvgate::experiments::ParseExperimentCommandLine(
          argc, argv,
          "hfkv_int4: real-KV quality of compressed KV caches vs dense, judged by "
          "hfkv_real_kv_quality (which reads decode step 0: only step 0 is recorded, later steps "
          "are printed).\n  tools/bazel run //experiments:hfkv_int4 -- --context=2048",
          defaults);
  if (!flags.ok()) {
    std::cerr << "hfkv_int4: " << flags.status().message() << "\n";
    return 2;
  }
  return kvgate::experiments::Run(*flags);
}
