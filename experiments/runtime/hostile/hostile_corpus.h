// The adversarial corpus in experiments/runtime/testdata/hostile/: crafted safetensors, GGUF,
// tokenizer.json and config.json files, each with the loader that must read it, the error it must
// produce (status code and a message fragment naming the field) and one line on what it attacks.
// The bytes come only from here: generate_hostile_corpus writes them and README.md, and
// testdata/hostile's golden test fails if the committed files differ from what this generates.
//
// Usage (regenerate after changing the table):
//   tools/bazel run //experiments/runtime/hostile:generate_hostile_corpus
//   (writes into experiments/runtime/testdata/hostile/ of the workspace; --out=DIR to change)

#ifndef KVGATE_EXPERIMENTS_RUNTIME_HOSTILE_HOSTILE_CORPUS_H_
#define KVGATE_EXPERIMENTS_RUNTIME_HOSTILE_HOSTILE_CORPUS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kvgate::runtime::hostile {

// Which public loader reads the file.
enum class HostileLoader {
  kSafetensors,    // SafetensorsFile::Open
  kGguf,           // GgufFile::Open
  kGgufTokenizer,  // LoadTokenizer on a .gguf file (GgufFile::Open, then Tokenizer::FromGguf)
  kTokenizerJson,  // Tokenizer::FromTokenizerJsonFile
  kConfigJson,     // ReadJsonFile (config.json, as LoadHfSnapshot and LoadTokenizer read it)
};

struct HostileFile {
  std::string name;  // file name in testdata/hostile/
  HostileLoader loader;
  std::string bytes;
  absl::StatusCode code;  // kOk: the file is valid and must load
  std::string fragment;   // must appear in the error message ("" for kOk)
  std::string attack;     // what the file attacks, one line for README.md
};

// "safetensors", "gguf", ... for messages and README.md.
absl::string_view HostileLoaderName(HostileLoader loader);

// Every file of the corpus, in README order. Deterministic: same bytes on every call and host.
std::vector<HostileFile> HostileCorpus();

// README.md of the folder: one line per file (name, loader, attack, expected error).
std::string HostileCorpusReadme(const std::vector<HostileFile>& corpus);

// Writes every file and README.md into `dir` (which must exist); errors name the file.
absl::Status WriteHostileCorpus(const std::string& dir);

}  // namespace kvgate::runtime::hostile

#endif  // KVGATE_EXPERIMENTS_RUNTIME_HOSTILE_HOSTILE_CORPUS_H_
