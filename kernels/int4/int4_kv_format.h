// The int4 formats of int4.h behind the KvFormat interface: "symmetric_int4:block=32" and
// "affine_int4:block=32" (the block is fixed at 32; the parameter is accepted so specs say it).

#ifndef KVGATE_KERNELS_INT4_INT4_KV_FORMAT_H_
#define KVGATE_KERNELS_INT4_INT4_KV_FORMAT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/int4/int4.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::kernels {

absl::StatusOr<std::unique_ptr<KvFormat>> MakeInt4KvFormat(const KvFormatSpec& spec,
                                                           Int4Scheme scheme);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_INT4_INT4_KV_FORMAT_H_
