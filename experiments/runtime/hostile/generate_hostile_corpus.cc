// Writes the hostile corpus (hostile_corpus.h) and its README.md into a folder.
//
// Run: tools/bazel run //experiments/runtime/hostile:generate_hostile_corpus
//      (default --out: experiments/runtime/testdata/hostile of the workspace `bazel run` ran in)

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "experiments/runtime/hostile/hostile_corpus.h"

ABSL_FLAG(std::string, out, "",
          "folder to write into (default: experiments/runtime/testdata/hostile of the workspace)");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
    if (workspace == nullptr) {
      std::fprintf(stderr, "generate_hostile_corpus: --out is required outside `bazel run`\n");
      return 2;
    }
    out = std::string(workspace) + "/experiments/runtime/testdata/hostile";
  }
  const absl::Status written = kvgate::runtime::hostile::WriteHostileCorpus(out);
  if (!written.ok()) {
    std::fprintf(stderr, "generate_hostile_corpus: %s\n", std::string(written.message()).c_str());
    return 1;
  }
  std::printf("wrote %zu files and README.md into %s\n",
              kvgate::runtime::hostile::HostileCorpus().size(), out.c_str());
  return 0;
}
