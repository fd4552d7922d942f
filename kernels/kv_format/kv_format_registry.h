// Every KV format of kernels/ by name: the one place an experiment turns a spec into a KvFormat.
//
// Usage:
//   for (const std::string& spec : KnownKvFormats()) {
//     absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKvFormat(spec);
//     ...
//   }

#ifndef KVGATE_KERNELS_KV_FORMAT_KV_FORMAT_REGISTRY_H_
#define KVGATE_KERNELS_KV_FORMAT_KV_FORMAT_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::kernels {

// The format a spec names, e.g. "affine_int4" or "affine_int4:block=32". InvalidArgument naming
// the spec and listing the known formats when it names none, or when a parameter is unknown or bad.
absl::StatusOr<std::unique_ptr<KvFormat>> MakeKvFormat(absl::string_view spec);

// The canonical spec of every registered format at its default parameters, in a stable order.
std::vector<std::string> KnownKvFormats();

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_KV_FORMAT_KV_FORMAT_REGISTRY_H_
