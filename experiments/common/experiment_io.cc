#include "experiments/common/experiment_io.h"

#include <torch/version.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "gates/record_io.h"
#include "gates/spec_registry.h"
#include "gates/verdict.h"

namespace kvgate::experiments {
namespace {

// When this process started (static initialization, before main): the provenance's start time,
// whenever a run builds its provenance (most build it as they write, after hours of measuring).
const std::time_t kProcessStart = std::time(nullptr);

std::string Env(const char* name) {
  const char* value = name == nullptr ? nullptr : std::getenv(name);
  return value == nullptr ? "" : value;
}

// Standard output of a shell command, trimmed; "" when it fails.
std::string Run(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return "";
  std::string out;
  std::array<char, 256> buffer;
  while (fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) out += buffer.data();
  return std::string(absl::StripAsciiWhitespace(out));
}

// Paths a runfile may have: under `bazel run` the working folder is the main repository's
// runfiles, under `bazel test` $TEST_SRCDIR names the runfiles root.
std::vector<std::string> RunfileCandidates(const std::string& repo, const std::string& path) {
  std::vector<std::string> candidates;
  for (const char* root : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (std::string dir = Env(root); !dir.empty()) {
      candidates.push_back(absl::StrCat(dir, "/", repo, "/", path));
      candidates.push_back(absl::StrCat(dir, "/kvgate/external/", repo, "/", path));
    }
  }
  candidates.push_back(absl::StrCat("../", repo, "/", path));
  candidates.push_back(absl::StrCat("external/", repo, "/", path));
  return candidates;
}

}  // namespace

absl::StatusOr<ModelChoice> ChooseModel(const std::string& flag, const char* env_var) {
  if (!flag.empty()) {
    if (!std::filesystem::exists(flag)) {
      return absl::NotFoundError(absl::StrCat("--model=", flag, ": no such file or folder"));
    }
    return ModelChoice{flag, false, absl::StrCat("model: ", flag)};
  }
  if (std::string from_env = Env(env_var); !from_env.empty()) {
    if (!std::filesystem::exists(from_env)) {
      return absl::NotFoundError(
          absl::StrCat("$", env_var, "=", from_env, ": no such file or folder"));
    }
    return ModelChoice{from_env, false,
                       absl::StrCat("model: ", from_env, " (from $", env_var, ")")};
  }
  std::vector<std::string> tried = RunfileCandidates("smollm2", kEmbeddedModelFile);
  for (const std::string& path : tried) {
    if (std::filesystem::exists(path)) {
      return ModelChoice{
          path, true,
          absl::StrCat("model: the embedded default ", kEmbeddedModelName,
                       " (Q4_1 GGUF, weights Q4_1-dequantized to float32)",
                       env_var != nullptr
                           ? absl::StrCat("; set --model or $", env_var, " for the real target")
                           : std::string())};
    }
  }
  return absl::NotFoundError(absl::StrCat(
      "no model: --model is empty",
      env_var != nullptr ? absl::StrCat(", $", env_var, " unset") : "", ", and the embedded ",
      kEmbeddedModelFile, " is not in the runfiles (add data = [\"@smollm2//:gguf\"])"));
}

std::string RecordsPath(const std::string& flag, const std::string& experiment) {
  if (!flag.empty()) return flag;
  if (std::string workspace = Env("BUILD_WORKSPACE_DIRECTORY"); !workspace.empty()) {
    return absl::StrCat(workspace, "/reports/records/", experiment, ".jsonl");
  }
  if (std::string outputs = Env("TEST_UNDECLARED_OUTPUTS_DIR"); !outputs.empty()) {
    return absl::StrCat(outputs, "/", experiment, ".jsonl");
  }
  return absl::StrCat(experiment, ".jsonl");
}

gates::Provenance CurrentProvenance(int64_t seed) {
  gates::Provenance p;
  if (std::string workspace = Env("BUILD_WORKSPACE_DIRECTORY"); !workspace.empty()) {
    p.git_commit = Run(absl::StrCat("git -C '", workspace, "' rev-parse HEAD 2>/dev/null"));
    p.dirty = !Run(absl::StrCat("git -C '", workspace,
                                "' status --porcelain --untracked-files=no 2>/dev/null"))
                   .empty();
  } else {
    p.git_commit = Env("KVGATE_GIT_COMMIT");
    p.dirty = Env("KVGATE_GIT_DIRTY") == "1";
  }
  if (p.git_commit.empty()) p.git_commit = "unknown";
#ifdef KVGATE_CUDA_BUILD
  p.build_config = "opt --config=cuda";
#else
  p.build_config = "opt";
#endif
  p.torch_version = TORCH_VERSION;
  p.cuda_version = "";
  std::array<char, 256> host{};
  p.host = gethostname(host.data(), host.size() - 1) == 0 ? host.data() : "unknown";
  std::array<char, 32> stamp{};
  std::strftime(stamp.data(), stamp.size(), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&kProcessStart));
  p.start_time = stamp.data();
  p.seed = seed;
  return p;
}

std::string SpecsDir() {
  if (std::string dir = Env("KVGATE_SPECS_DIR"); !dir.empty()) return dir;
  for (const std::string& candidate : RunfileCandidates("kvgate", "gates/specs")) {
    if (std::filesystem::exists(candidate + "/speed_ceiling.json")) return candidate;
  }
  return "gates/specs";
}

namespace {

// Once rows land in the workspace's tracked reports/records/, the committed reports lag them until
// the report tool runs (reports_check_test fails until then). The run's last line says so: an
// atexit handler, registered on the first such append, so every way a main returns prints it.
void SayReportsLagAtExit(const std::string& path) {
  static std::string* records = nullptr;
  if (records != nullptr) return;
  records = new std::string(path);
  std::atexit([] {
    std::fflush(stdout);
    std::printf(
        "\nrecords: appended to %s; regenerate reports/ with: tools/bazel run //tools/report "
        "(until then tools/bazel test //... fails its reports check)\n",
        records->c_str());
    std::fflush(stdout);
  });
}

}  // namespace

absl::StatusOr<gates::RegisteredSpec> LatestGateSpec(const std::string& gate_id) {
  absl::StatusOr<gates::SpecRegistry> specs = gates::LoadSpecDir(SpecsDir());
  if (!specs.ok()) return specs.status();
  const gates::RegisteredSpec* spec = gates::LatestSpec(*specs, gate_id);
  if (spec == nullptr) {
    return absl::NotFoundError(absl::StrCat("no gate spec '", gate_id, "' in ", SpecsDir()));
  }
  return *spec;
}

std::string DescribeThresholds(const gates::GateSpec& spec) {
  return absl::StrJoin(spec.thresholds, ", ", [](std::string* out, const gates::Condition& c) {
    out->append(gates::DescribeCondition(c));
  });
}

namespace {

// Appends rows that are complete (gate and provenance set) to path: see JudgeAndAppend.
absl::StatusOr<std::vector<gates::Record>> AppendFinished(
    const std::string& path, std::vector<gates::Record> rows,
    const gates::AtomicWriteOptions& write_options) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path().empty()
                                          ? std::filesystem::path(".")
                                          : std::filesystem::path(path).parent_path());
  gates::AtomicWriteOptions options = write_options;
  if (const std::string marker = Env("KVGATE_TEST_PAUSE_BEFORE_RENAME"); !marker.empty()) {
    options.before_rename = [marker, next = write_options.before_rename] {
      if (FILE* f = std::fopen(marker.c_str(), "w")) std::fclose(f);
      std::this_thread::sleep_for(std::chrono::seconds(60));  // the test kills us here
      if (next) next();
    };
  }
  if (absl::Status s = gates::AppendRecords(path, rows, options); !s.ok()) return s;
  if (const std::string workspace = Env("BUILD_WORKSPACE_DIRECTORY");
      !workspace.empty() && absl::StartsWith(path, workspace + "/reports/records/")) {
    SayReportsLagAtExit(path.substr(workspace.size() + 1));
  }
  return rows;
}

}  // namespace

absl::StatusOr<std::vector<gates::Record>> JudgeRows(const std::string& gate_id,
                                                     std::vector<gates::Record> rows,
                                                     const gates::Provenance& provenance) {
  absl::StatusOr<gates::RegisteredSpec> spec = LatestGateSpec(gate_id);
  if (!spec.ok()) return spec.status();
  for (gates::Record& row : rows) {
    row.provenance = provenance;
    row.gate = {spec->spec.id, spec->spec.version, spec->sha256};
    const gates::Judgement judgement = gates::JudgeRow(spec->spec, row);
    row.gate.verdict = judgement.verdict;
    row.gate.failed = judgement.failed;
  }
  return rows;
}

absl::StatusOr<std::vector<gates::Record>> AppendJudged(
    const std::string& path, std::vector<gates::Record> rows,
    const gates::AtomicWriteOptions& write_options) {
  return AppendFinished(path, std::move(rows), write_options);
}

absl::StatusOr<std::vector<gates::Record>> JudgeAndAppend(
    const std::string& path, const std::string& gate_id, std::vector<gates::Record> rows,
    const gates::Provenance& provenance, const gates::AtomicWriteOptions& write_options) {
  absl::StatusOr<std::vector<gates::Record>> judged =
      JudgeRows(gate_id, std::move(rows), provenance);
  if (!judged.ok()) return judged.status();
  return AppendFinished(path, *std::move(judged), write_options);
}

absl::StatusOr<std::vector<gates::Record>> AppendWithoutGate(const std::string& path,
                                                             std::vector<gates::Record> rows,
                                                             const gates::Provenance& provenance) {
  for (gates::Record& row : rows) {
    row.provenance = provenance;
    row.gate = gates::GateResult();
  }
  return AppendFinished(path, std::move(rows), {});
}

std::string VerdictInWords(const gates::Record& row) {
  return absl::StrCat(gates::VerdictName(row.gate.verdict), row.gate.failed.empty() ? "" : ": ",
                      absl::StrJoin(row.gate.failed, "; "));
}

}  // namespace kvgate::experiments
