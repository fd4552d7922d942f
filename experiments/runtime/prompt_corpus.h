// A long natural-language prompt that every Debian and Ubuntu machine has: the license texts of
// /usr/share/common-licenses (package base-files), fourteen files concatenated in a fixed order
// with "\n\n" between them, each pinned by sha256 (identical on Debian 12 and Ubuntu 24.04; checked
// at run time, an error names the file that differs). About 237 KB of English.
//
// LicenseCorpusPrompt cuts it to an exact number of tokens: the corpus text is repeated (joined by
// "\n\n") as many times as the count needs, tokenized whole, and cut; the result says whether and
// how often it repeated. No BOS or chat template is added.
//
// Usage:
//   absl::StatusOr<kvgate::runtime::CorpusPrompt> p =
//       kvgate::runtime::LicenseCorpusPrompt(tokenizer, 32768);
//   // p->ids.size() == 32768; p->note: "license corpus (14 files, ... tokens), cut to 32768
//   tokens"

#ifndef KVGATE_EXPERIMENTS_RUNTIME_PROMPT_CORPUS_H_
#define KVGATE_EXPERIMENTS_RUNTIME_PROMPT_CORPUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "experiments/runtime/tokenizer.h"

namespace kvgate::runtime {

inline constexpr char kCommonLicensesDir[] = "/usr/share/common-licenses";

struct CorpusFile {
  const char* name;    // file name under the folder
  const char* sha256;  // of its contents
  uint64_t bytes;
};

// The files, in corpus order.
absl::Span<const CorpusFile> LicenseCorpusFiles();

// The corpus text; FailedPrecondition naming the file if one is missing or has another sha256.
absl::StatusOr<std::string> LoadLicenseCorpus(const std::string& dir = kCommonLicensesDir);

struct CorpusPrompt {
  std::vector<int32_t> ids;   // exactly the requested count
  int64_t corpus_tokens = 0;  // tokens of one copy of the corpus
  int64_t copies = 1;         // copies of the corpus tokenized (1: no repetition)
  std::string corpus_sha256;  // of one copy of the corpus text
  std::string note;           // what was done, in words, for records
};

// `num_tokens` tokens of the corpus; InvalidArgument for num_tokens < 1.
absl::StatusOr<CorpusPrompt> LicenseCorpusPrompt(const Tokenizer& tokenizer, int64_t num_tokens,
                                                 const std::string& dir = kCommonLicensesDir);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_PROMPT_CORPUS_H_
