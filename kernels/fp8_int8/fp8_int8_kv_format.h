// The 8-bit formats of fp8_int8.h behind the KvFormat interface: "fp8_e4m3:scale=token",
// "fp8_e4m3:scale=head", "int8:scale=token" and "int8:scale=head" (scale=token is the default).
// Parts: "codes" and "scales", as in fp8_int8.h.

#ifndef KVGATE_KERNELS_FP8_INT8_FP8_INT8_KV_FORMAT_H_
#define KVGATE_KERNELS_FP8_INT8_FP8_INT8_KV_FORMAT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/fp8_int8/fp8_int8.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::kernels {

// spec.name is "fp8_e4m3" or "int8" (code says which); its one parameter is scale=token|head.
absl::StatusOr<std::unique_ptr<KvFormat>> MakeFp8Int8KvFormat(const KvFormatSpec& spec,
                                                              Fp8Int8Code code);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_FP8_INT8_FP8_INT8_KV_FORMAT_H_
