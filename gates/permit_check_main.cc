// permit_check: decides the permission to implement (gates/permit.h) from records files and spec
// files. gated_cc_library (gates/gated.bzl) runs it as a build action; a refusal fails the build
// and prints which gate failed, with the numbers.
//
// Usage:
//   bazel-bin/gates/permit_check --label=//kernels/select:select
//       --model=Qwen2.5-7B-Instruct --context=8192 --dtype=bfloat16
//       --device="NVIDIA H100 80GB HBM3" --specs_dir=gates/specs reports/records/*.jsonl
//   (one command line)
// Exit status: 0 permitted (and --out written), 1 refused (the reasons on stderr), 2 wrong flags
// or unreadable specs.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "gates/evidence.h"
#include "gates/file_io.h"
#include "gates/permit.h"

ABSL_FLAG(std::string, label, "", "The target asking for permission, for the messages.");
ABSL_FLAG(std::string, model, "", "Target model name, as records name it.");
ABSL_FLAG(int64_t, context, 0, "Target context length in tokens.");
ABSL_FLAG(std::string, dtype, "", "Target dtype, e.g. bfloat16.");
ABSL_FLAG(std::string, device, "", "Target device name, e.g. \"NVIDIA H100 80GB HBM3\".");
ABSL_FLAG(std::vector<std::string>, gates,
          std::vector<std::string>({"speed_ceiling", "work_reduction_oracle"}),
          "Comma-separated gate ids that must all pass, each at its latest spec version.");
ABSL_FLAG(bool, same_variant, true, "Require one variant to pass every gate.");
ABSL_FLAG(std::vector<std::string>, specs, {}, "Comma-separated spec files.");
ABSL_FLAG(std::string, specs_dir, "", "Folder of spec files (instead of --specs).");
ABSL_FLAG(std::string, out, "", "Where to write the permit header when permitted.");

namespace {

int Usage(const std::string& why) {
  std::cerr << "permit_check: " << why << " (see --help)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Decides the permission to implement from records and gate specs.\n"
      "Usage: permit_check --label=L --model=M --context=N --dtype=D --device=DEV\n"
      "       (--specs=A.json,B.json | --specs_dir=DIR) [--out=permit.h] RECORDS.jsonl ...");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::vector<std::string> records(args.begin() + 1, args.end());

  kvgate::gates::PermitRequest request;
  request.label = absl::GetFlag(FLAGS_label);
  request.model = absl::GetFlag(FLAGS_model);
  request.context = absl::GetFlag(FLAGS_context);
  request.dtype = absl::GetFlag(FLAGS_dtype);
  request.device = absl::GetFlag(FLAGS_device);
  request.gates = absl::GetFlag(FLAGS_gates);
  request.same_variant = absl::GetFlag(FLAGS_same_variant);
  if (request.model.empty() || request.context <= 0 || request.dtype.empty() ||
      request.device.empty()) {
    return Usage("--model, --context, --dtype and --device name the target; all are required");
  }
  if (request.gates.empty()) return Usage("--gates is empty");

  std::vector<std::string> spec_files = absl::GetFlag(FLAGS_specs);
  const std::string specs_dir = absl::GetFlag(FLAGS_specs_dir);
  if (spec_files.empty() == specs_dir.empty()) return Usage("give one of --specs or --specs_dir");
  if (!specs_dir.empty()) {
    absl::StatusOr<std::vector<std::string>> listed = kvgate::gates::ListFiles(specs_dir, ".json");
    if (!listed.ok()) return Usage(std::string(listed.status().message()));
    spec_files = *listed;
  }

  absl::StatusOr<kvgate::gates::Evidence> evidence =
      kvgate::gates::LoadEvidence(spec_files, records);
  if (!evidence.ok()) return Usage(std::string(evidence.status().message()));
  const kvgate::gates::PermitDecision decision = kvgate::gates::DecidePermit(*evidence, request);
  if (!decision.permitted) {
    std::cerr << decision.message;
    return 1;
  }
  const std::string out = absl::GetFlag(FLAGS_out);
  if (!out.empty()) {
    absl::Status written = kvgate::gates::AtomicWriteFile(
        out, kvgate::gates::PermitHeader(request.label, decision.message));
    if (!written.ok()) {
      std::cerr << "permit_check: " << written.message() << "\n";
      return 2;
    }
  }
  std::cout << decision.message;
  return 0;
}
