// sha256 of bytes, as the 64 lowercase hex digits `sha256sum` prints. Records pin a gate spec by
// the sha256 of the spec file's exact bytes (see RECORDS.md). Backed by OpenSSL's libcrypto.
//
// Usage:
//   std::string digest = kvgate::gates::Sha256Hex("abc");  // "ba7816bf...f20015ad"

#ifndef KVGATE_GATES_SHA256_H_
#define KVGATE_GATES_SHA256_H_

#include <string>

#include "absl/strings/string_view.h"

namespace kvgate::gates {

// The sha256 of `bytes` in lowercase hex.
std::string Sha256Hex(absl::string_view bytes);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_SHA256_H_
