// //experiments:k0_prep — the synthetic K0-prep suite (kernels/k0_prep/k0_prep.h): the KV formats
// hfkv_int4 runs on real K/V, on seeded Gaussian K/V of four single-layer shapes: vector and
// inner-product error and bytes against bf16. No gate judges it: the rows are appended to
// reports/records/k0_prep.jsonl (or --out) with `"gate": null`, and the hfkv summary shows them
// beside the real-K/V quality verdicts of the same formats. Also printed as a markdown table (and
// as CSV with --csv_out).
//
//   tools/bazel run //experiments:k0_prep
//   tools/bazel run //experiments:k0_prep -- --tokens=1024 --formats=symmetric_int4 \
//       --out=/tmp/k0.jsonl

#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "experiments/common/experiment_io.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "kernels/k0_prep/k0_prep.h"

ABSL_FLAG(int64_t, tokens, 4096, "Tokens of history for every shape (>= 1).");
ABSL_FLAG(int64_t, queries, 64, "Random queries a kv head for the inner-product error (>= 1).");
ABSL_FLAG(uint64_t, seed, 20261127, "Torch seed of the first shape (shape i uses seed + i).");
ABSL_FLAG(std::string, formats, "",
          "Comma-separated KV format specs; empty: hfkv_int4's formats (int4 symmetric and affine, "
          "every format of kernels/, TurboQuant mse/prod at 2-4 bits), so that each has a real-K/V "
          "run to stand beside.");
ABSL_FLAG(std::string, csv_out, "", "Also write the rows as CSV to this path ('-': stdout).");
ABSL_FLAG(std::string, out, "",
          "Records file; empty: reports/records/k0_prep.jsonl under `bazel run`.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "k0_prep: every KV format on seeded Gaussian K/V (error, bytes vs bf16); records without a "
      "gate.\n  tools/bazel run //experiments:k0_prep -- [--tokens=4096] [--formats=spec,spec]");
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::cerr << "k0_prep: unexpected argument '" << positional[1] << "' (flags only)\n";
    return 2;
  }
  namespace k = kvgate::kernels;
  k::K0PrepConfig config;
  for (k::K0PrepShape& shape : config.shapes) shape.tokens = absl::GetFlag(FLAGS_tokens);
  config.queries = absl::GetFlag(FLAGS_queries);
  config.seed = absl::GetFlag(FLAGS_seed);
  const std::string formats = absl::GetFlag(FLAGS_formats);
  config.formats =
      formats.empty()
          ? kvgate::experiments::DefaultFormatSpecs()
          : std::vector<std::string>(absl::StrSplit(formats, ',', absl::SkipWhitespace()));
  std::cout << "k0_prep: " << config.formats.size() << " formats, " << config.shapes.size()
            << " shapes of " << absl::GetFlag(FLAGS_tokens) << " tokens, " << config.queries
            << " queries a head, seed " << config.seed << std::endl;
  absl::StatusOr<std::vector<k::K0PrepRow>> rows = k::RunK0Prep(config);
  if (!rows.ok()) {
    std::cerr << "k0_prep: " << rows.status().message() << "\n";
    return absl::IsInvalidArgument(rows.status()) ? 2 : 1;
  }
  std::cout << k::K0PrepTable(*rows);
  if (const std::string csv_out = absl::GetFlag(FLAGS_csv_out); csv_out == "-") {
    std::cout << "\n" << k::K0PrepCsv(*rows);
  } else if (!csv_out.empty()) {
    std::ofstream csv(csv_out);
    csv << k::K0PrepCsv(*rows);
    if (!csv) {
      std::cerr << "k0_prep: --csv_out: cannot write " << csv_out << "\n";
      return 1;
    }
  }
  const std::string path = kvgate::experiments::RecordsPath(absl::GetFlag(FLAGS_out), "k0_prep");
  absl::StatusOr<std::vector<kvgate::gates::Record>> written =
      kvgate::experiments::AppendWithoutGate(
          path, k::K0PrepRecords(*rows),
          kvgate::experiments::CurrentProvenance(static_cast<int64_t>(config.seed)));
  if (!written.ok()) {
    std::cerr << "k0_prep: writing records: " << written.status().message() << "\n";
    return 1;
  }
  std::cout << "\nk0_prep: " << written->size() << " rows (no gate) -> " << path << std::endl;
  return 0;
}
