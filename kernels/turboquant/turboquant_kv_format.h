// TurboQuant (turboquant.h) behind the KvFormat interface, registered in
// kernels/kv_format/kv_format_registry.cc under four names:
//
//   turboquant_mse:bits=B:rotation=R:seed=S        B in 1..4 (default 3)
//   turboquant_prod:bits=B:rotation=R:seed=S       B in 1..4 (default 3): B-1 codebook bits + QJL
//   turboquant_mse_split:bits=B:rotation=R:seed=S  B in 1.5, 2.5, 3.5 (default 3.5): the outlier
//   split turboquant_prod_split:bits=B:rotation=R:seed=S B in 1.5, 2.5, 3.5 (default 3.5)
//
// R is hadamard (default; head_dim a power of two, D/2 for the split) or dense (any head_dim); S
// is a non-negative integer (default 0). Keys and values are encoded alike (the role is recorded,
// not used). Decode of a turboquant_prod tensor returns the codebook part plus the QJL
// reconstruction: an unbiased estimate of x for inner products, noisier than the codebook part as
// a vector (see turboquant.h).
//
// EncodedKv parts: "codes", "norms", "qjl", "residual_norms" (those the kind has), or for the split
// "outlier_mask" and each of those prefixed by "outlier." and "rest.".
//
// Usage:
//   auto format = MakeKvFormat("turboquant_mse:bits=3:seed=7");
//   absl::StatusOr<EncodedKv> k = (*format)->Encode(keys, KvRole::kKey);
//   // For the fused attention of codebook_attention.h:
//   absl::StatusOr<TurboQuant> tq = TurboQuantForSpec(k->format, /*head_dim=*/128);
//   absl::StatusOr<TurboQuantTensor> codes = TurboQuantTensorFromEncodedKv(*k);

#ifndef KVGATE_KERNELS_TURBOQUANT_TURBOQUANT_KV_FORMAT_H_
#define KVGATE_KERNELS_TURBOQUANT_TURBOQUANT_KV_FORMAT_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/kv_format/kv_format.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::kernels {

// The options a spec names (its name must be the one kind and split give). InvalidArgument naming
// the spec on an unknown or bad parameter.
absl::StatusOr<TurboQuantOptions> TurboQuantOptionsFromSpec(const KvFormatSpec& spec,
                                                            TurboQuantKind kind, bool split);

// The factory the registry calls.
absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantKvFormat(const KvFormatSpec& spec,
                                                                 TurboQuantKind kind, bool split);

// The same, one a registry name: turboquant_mse, turboquant_prod, turboquant_mse_split,
// turboquant_prod_split.
absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantMseKvFormat(const KvFormatSpec& spec);
absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantProdKvFormat(const KvFormatSpec& spec);
absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantMseSplitKvFormat(const KvFormatSpec& spec);
absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantProdSplitKvFormat(const KvFormatSpec& spec);

// TurboQuant for a spec of any of the four names, at one head_dim.
absl::StatusOr<TurboQuant> TurboQuantForSpec(absl::string_view spec, int64_t head_dim);

// The named parts of an EncodedKv and back (no copies). Exact-cleanup tensors have no EncodedKv.
absl::StatusOr<EncodedKv> TurboQuantTensorToEncodedKv(const TurboQuantTensor& t, KvRole role);
absl::StatusOr<TurboQuantTensor> TurboQuantTensorFromEncodedKv(const EncodedKv& encoded);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_TURBOQUANT_TURBOQUANT_KV_FORMAT_H_
