// K0-prep on the command line: every known KV format on seeded Gaussian K/V (see k0_prep.h),
// printed as a markdown table, and as CSV with --csv_out.
//
// Run: tools/bazel run //kernels/k0_prep:k0_prep -- [--tokens=4096] [--queries=64] [--seed=N]
//      [--formats=spec,spec] [--csv_out=-|path]

#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "kernels/k0_prep/k0_prep.h"

ABSL_FLAG(int64_t, tokens, 4096, "tokens of history for every shape");
ABSL_FLAG(int64_t, queries, 64, "random queries a kv head for the inner-product error");
ABSL_FLAG(uint64_t, seed, 20261127, "torch seed of the first shape (shape i uses seed + i)");
ABSL_FLAG(std::string, formats, "", "comma-separated format specs; empty: every known format");
ABSL_FLAG(std::string, csv_out, "", "also write CSV rows to this path ('-': stdout)");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  kvgate::kernels::K0PrepConfig config;
  for (kvgate::kernels::K0PrepShape& shape : config.shapes)
    shape.tokens = absl::GetFlag(FLAGS_tokens);
  config.queries = absl::GetFlag(FLAGS_queries);
  config.seed = absl::GetFlag(FLAGS_seed);
  const std::string formats = absl::GetFlag(FLAGS_formats);
  if (!formats.empty()) config.formats = absl::StrSplit(formats, ',');
  absl::StatusOr<std::vector<kvgate::kernels::K0PrepRow>> rows = kvgate::kernels::RunK0Prep(config);
  if (!rows.ok()) {
    std::cerr << "k0_prep: " << rows.status() << "\n";
    return 1;
  }
  std::cout << kvgate::kernels::K0PrepTable(*rows);
  const std::string csv_out = absl::GetFlag(FLAGS_csv_out);
  if (csv_out == "-") {
    std::cout << "\n" << kvgate::kernels::K0PrepCsv(*rows);
  } else if (!csv_out.empty()) {
    std::ofstream(csv_out) << kvgate::kernels::K0PrepCsv(*rows);
  }
  return 0;
}
