// See prompt_corpus.h.

#include "experiments/runtime/prompt_corpus.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "experiments/runtime/json_limits.h"
#include "gates/sha256.h"

namespace kvgate::runtime {
namespace {

// sha256sum of /usr/share/common-licenses on Debian 12 (base-files 12.4+deb12u11) and Ubuntu
// 24.04 (base-files 13ubuntu10.3); the same on both. The symlinks GPL, LGPL and GFDL are left out.
constexpr CorpusFile kFiles[] = {
    {"GPL-3", "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986", 35149},
    {"Apache-2.0", "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30", 11358},
    {"MPL-2.0", "fab3dd6bdab226f1c08630b1dd917e11fcb4ec5e1e020e2c16f83a0a13863e85", 16726},
    {"LGPL-2.1", "dc626520dcd53a22f727af3ee42c770e56c97a64fe3adb063799d8ab032fe551", 26530},
    {"GFDL-1.3", "110535522396708cea37c72a802c5e7e81391139f5f7985631c93ef242b206a4", 22955},
    {"GPL-2", "8177f97513213526df2cf6184d8ff986c675afb514d4e68a404010521b880643", 18092},
    {"MPL-1.1", "f849fc26a7a99981611a3a370e83078deb617d12a45776d6c4cada4d338be469", 25755},
    {"LGPL-2", "681e386e44a19d7d0674b4320272c90e66b6610b741e7e6305f8219c42e85366", 25381},
    {"GFDL-1.2", "d8e94ae5fdb5433fcae2961aeb1a8cf17174d6f4a0465d24bf37dd8a038bd439", 20432},
    {"GPL-1", "d77d235e41d54594865151f4751e835c5a82322b0e87ace266567c3391a4b912", 12632},
    {"LGPL-3", "e3a994d82e644b03a792a930f574002658412f62407f5fee083f2555c5f23118", 7652},
    {"CC0-1.0", "a2010f343487d3f7618affe54f789f5487602331c0a8d03f49e9a7c547cf0499", 7048},
    {"Artistic", "b7fd9b73ea99602016a326e0b62e6646060d18febdd065ceca8bb482208c3d88", 6111},
    {"BSD", "5d588eb3b157d52112afea935c88a7ff9efddc1e2d95a42c25d3b96ad9055008", 1499},
};

constexpr char kSeparator[] = "\n\n";

}  // namespace

absl::Span<const CorpusFile> LicenseCorpusFiles() { return absl::MakeConstSpan(kFiles); }

absl::StatusOr<std::string> LoadLicenseCorpus(const std::string& dir) {
  std::string corpus;
  for (const CorpusFile& file : kFiles) {
    const std::string path = absl::StrCat(dir, "/", file.name);
    absl::StatusOr<std::string> text = ReadFileToString(path, 1 << 20);
    if (!text.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("prompt corpus: ", text.status().message(),
                       " (it comes with Debian's base-files package)"));
    }
    const std::string digest = gates::Sha256Hex(*text);
    if (digest != file.sha256) {
      return absl::FailedPreconditionError(absl::StrCat(
          "prompt corpus: ", path, " has sha256 ", digest, " (", text->size(), " bytes), pinned ",
          file.sha256, " (", file.bytes, " bytes): this machine's license text differs"));
    }
    if (!corpus.empty()) corpus += kSeparator;
    corpus += *text;
  }
  return corpus;
}

absl::StatusOr<CorpusPrompt> LicenseCorpusPrompt(const Tokenizer& tokenizer, int64_t num_tokens,
                                                 const std::string& dir) {
  if (num_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt corpus: asked for ", num_tokens, " tokens"));
  }
  absl::StatusOr<std::string> corpus = LoadLicenseCorpus(dir);
  if (!corpus.ok()) return corpus.status();
  CorpusPrompt prompt;
  prompt.corpus_sha256 = gates::Sha256Hex(*corpus);
  prompt.ids = tokenizer.Encode(*corpus, /*parse_special=*/false);
  prompt.corpus_tokens = static_cast<int64_t>(prompt.ids.size());
  if (prompt.corpus_tokens == 0) return absl::InternalError("prompt corpus: tokenized to nothing");
  std::string text = *corpus;
  while (static_cast<int64_t>(prompt.ids.size()) < num_tokens) {
    // Whole text re-tokenized, so tokens at the joins are the tokenizer's own.
    const int64_t more =
        (num_tokens - static_cast<int64_t>(prompt.ids.size())) / prompt.corpus_tokens + 1;
    for (int64_t i = 0; i < more; ++i) text += kSeparator + *corpus;
    prompt.copies = static_cast<int64_t>(text.size() / corpus->size());
    prompt.ids = tokenizer.Encode(text, /*parse_special=*/false);
  }
  prompt.ids.resize(num_tokens);
  prompt.note = absl::StrCat("license corpus (", sizeof(kFiles) / sizeof(kFiles[0]),
                             " files of /usr/share/common-licenses, ", corpus->size(), " bytes, ",
                             prompt.corpus_tokens, " tokens, sha256 ",
                             prompt.corpus_sha256.substr(0, 12), ")");
  if (prompt.copies > 1) {
    absl::StrAppend(&prompt.note, " repeated ", prompt.copies, " times (joined by a blank line)");
  }
  absl::StrAppend(&prompt.note, ", cut to ", num_tokens, " tokens");
  return prompt;
}

}  // namespace kvgate::runtime
