// libFuzzer target: any bytes as a GGUF file (ParseGguf). On success,
// every metadata value is read through the typed getters, each tensor's first and last byte is
// read (ASan reports a tensor the validation let through past the buffer), and tensors of a type
// DequantizeGgufTensor supports are dequantized (at most 2^22 values each, to keep runs fast).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "experiments/runtime/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvgate::runtime;
  absl::StatusOr<GgufFile> gguf =
      ParseGguf(absl::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!gguf.ok()) return 0;
  for (const auto& [key, value] : gguf->metadata()) {
    (void)gguf->GetUint(key);
    (void)gguf->GetFloat(key);
    (void)gguf->GetString(key);
    (void)gguf->GetBool(key);
    (void)gguf->GetStringArray(key);
    (void)gguf->GetIntArray(key);
  }
  volatile uint8_t sink = 0;
  std::vector<float> values;
  for (const GgufTensorInfo& t : gguf->tensors()) {
    if (gguf->FindTensor(t.name) != &t) __builtin_trap();  // the index must find every tensor
    (void)t.TorchShape();
    if (t.bytes > 0) sink = sink ^ t.data[0] ^ t.data[t.bytes - 1];
    if (GgmlTypeDequantizable(t.type) && t.numel <= (int64_t{1} << 22)) {
      values.assign(static_cast<size_t>(t.numel), 0.0f);
      (void)DequantizeGgufTensor(t, values.data());
    }
  }
  return 0;
}
