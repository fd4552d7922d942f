// libFuzzer target: any bytes as a safetensors file (ParseSafetensorsHeader: header and layout).
// A parse that succeeds must describe tensors inside the bytes: the first and last byte of each
// are read, so ASan reports any offset the validation let through past the buffer.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "experiments/runtime/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<kvgate::runtime::SafetensorsFile> st = kvgate::runtime::ParseSafetensorsHeader(
      absl::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!st.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const kvgate::runtime::SafetensorsTensor& t : st->tensors()) {
    if (st->Find(t.name) != &t) __builtin_trap();  // the index must find every tensor
    if (t.end > t.begin) sink = sink ^ t.data[0] ^ t.data[t.end - t.begin - 1];
  }
  return 0;
}
