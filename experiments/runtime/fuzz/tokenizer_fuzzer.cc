// libFuzzer target: the tokenizer loader. Bytes starting with "GGUF" are a GGUF file whose
// embedded vocabulary is loaded (Tokenizer::FromGguf); anything else is a tokenizer.json
// (Tokenizer::FromTokenizerJson). A tokenizer that loads then encodes a fixed text (added-token
// look-alikes, digits, accents, invalid UTF-8, bytes absent from small vocabularies) and the
// input's first 256 bytes, and decodes the ids, with and without special tokens.

#include <cstddef>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "experiments/runtime/gguf.h"
#include "experiments/runtime/tokenizer.h"

namespace {

constexpr absl::string_view kText =
    "<|im_start|>user\nHello, wörld! 12345 don't\t\t  x\xC3\x28\xFF\x04<|im_end|>\n"
    "<|endoftext|><s></s> 東京 é e\xCC\x81 <|im_start|";

void Exercise(const kvgate::runtime::Tokenizer& tokenizer, absl::string_view input) {
  for (absl::string_view text : {kText, input.substr(0, 256)}) {
    for (bool parse_special : {true, false}) {
      const std::vector<int32_t> ids = tokenizer.Encode(text, parse_special);
      (void)tokenizer.Decode(ids, /*skip_special=*/false);
      (void)tokenizer.Decode(ids, /*skip_special=*/true);
    }
  }
  // Ids outside the vocabulary decode to nothing, never out of bounds.
  const std::vector<int32_t> odd = {-1, 0, static_cast<int32_t>(tokenizer.vocab_size()),
                                    tokenizer.bos_id(), tokenizer.eos_id(), INT32_MAX};
  (void)tokenizer.Decode(odd, false);
  (void)tokenizer.Decode(odd, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvgate::runtime;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  if (absl::StartsWith(input, "GGUF")) {
    absl::StatusOr<GgufFile> gguf = ParseGguf(input, "fuzz.gguf");
    if (!gguf.ok()) return 0;
    absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromGguf(*gguf);
    if (tokenizer.ok()) Exercise(*tokenizer, input);
    return 0;
  }
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromTokenizerJson(input, "fuzz.json");
  if (tokenizer.ok()) Exercise(*tokenizer, input);
  return 0;
}
