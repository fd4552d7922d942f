// The KIVI-style format of kivi.h behind the KvFormat interface: "kivi:bits=B:group=G:residual=R"
// (defaults bits=2, group=32, residual=128). Parts: "codes", "scales", "zeros", "residual"; keys
// and values are encoded differently (EncodedKv::role says which).

#ifndef KVGATE_KERNELS_KIVI_KIVI_KV_FORMAT_H_
#define KVGATE_KERNELS_KIVI_KIVI_KV_FORMAT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/kivi/kivi.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::kernels {

absl::StatusOr<std::unique_ptr<KvFormat>> MakeKiviKvFormat(const KvFormatSpec& spec);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_KIVI_KIVI_KV_FORMAT_H_
