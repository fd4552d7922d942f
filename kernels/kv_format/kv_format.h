// KvFormat: the one interface every KV-cache format of kernels/ implements, so experiments and the
// eager attention path can take any format by name.
//
// A format encodes one layer's keys or values, a tensor [tokens, kv_heads, head_dim], into parts
// (named tensors: codes, scales, norms, ...) and decodes them back to float32. It counts its bytes
// exactly, metadata included. Formats are stateless after construction (seeded rotations and
// codebooks are built once, in the constructor), so one instance may encode many layers.
//
// Usage (MakeKvFormat is in kv_format_registry.h):
//   absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKvFormat("symmetric_int4:block=32");
//   absl::StatusOr<EncodedKv> k = (*format)->Encode(keys, KvRole::kKey);  // keys [T, H, D]
//   absl::StatusOr<torch::Tensor> k_hat = (*format)->Decode(*k);        // float32 [T, H, D]
//   double bytes = KvBytesVsBf16(**format, /*tokens=*/2048, /*kv_heads=*/4, /*head_dim=*/128);
//
// A spec is `name` or `name:key=value:key=value`; a format's name() returns its canonical spec
// (every parameter, in a fixed order), which records use as the variant. New formats register in
// kv_format_registry.cc.

#ifndef KVGATE_KERNELS_KV_FORMAT_KV_FORMAT_H_
#define KVGATE_KERNELS_KV_FORMAT_KV_FORMAT_H_

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::kernels {

// Keys and values may be encoded differently (KIVI: keys per channel, values per token).
enum class KvRole { kKey, kValue };

// An encoded [tokens, kv_heads, head_dim] tensor: the format's named parts, all on one device.
struct EncodedKv {
  std::string format;  // the canonical spec of the format that made it
  KvRole role = KvRole::kKey;
  std::vector<int64_t> shape;  // [tokens, kv_heads, head_dim] of the tensor encoded
  std::map<std::string, torch::Tensor> parts;

  // Exact bytes of all parts.
  int64_t bytes() const;
};

class KvFormat {
 public:
  virtual ~KvFormat() = default;

  // The canonical spec, e.g. "symmetric_int4:block=32" or "turboquant_mse:bits=3:seed=7".
  virtual std::string name() const = 0;

  // x: [tokens, kv_heads, head_dim], float32/bfloat16/float16. InvalidArgument on a bad shape,
  // dtype or a non-finite value (naming where); OutOfRange when a value cannot be represented.
  virtual absl::StatusOr<EncodedKv> Encode(const torch::Tensor& x, KvRole role) const = 0;

  // float32 [tokens, kv_heads, head_dim] on the parts' device. InvalidArgument when encoded was
  // made by another format or its parts are inconsistent.
  virtual absl::StatusOr<torch::Tensor> Decode(const EncodedKv& encoded) const = 0;

  // Exact bytes `tokens` tokens of one layer's keys (or values) take, metadata included.
  virtual int64_t Bytes(int64_t tokens, int64_t kv_heads, int64_t head_dim, KvRole role) const = 0;

  // True when a token's encoding depends on that token alone (per-token scales, a fixed rotation
  // and codebook), so encoding [T0 + T1] tokens equals encoding the first T0 and the last T1 apart,
  // bit for bit (kv_format_test checks it for every format that says so). A cache may then encode
  // each token once, when it is written. False (the default) for formats that share something
  // across tokens: a per-head scale, KIVI's per-channel key groups and recent window, an outlier
  // set chosen from the tensor.
  virtual bool EncodesTokensIndependently() const { return false; }
};

// A parsed spec: "kivi:bits=2:group=32" -> {"kivi", {{"bits", "2"}, {"group", "32"}}}.
struct KvFormatSpec {
  std::string name;
  std::map<std::string, std::string> params;
};

// InvalidArgument naming the spec on an empty name, an item without '=', or a repeated key.
absl::StatusOr<KvFormatSpec> ParseKvFormatSpec(absl::string_view spec);

// For a format's factory: InvalidArgument naming the spec when it has a parameter outside allowed.
absl::Status CheckParamsKnown(const KvFormatSpec& spec, const std::vector<std::string>& allowed);

// The integer parameter `key`, or fallback when absent; InvalidArgument naming the spec when the
// value is not an integer in [min, max].
absl::StatusOr<int64_t> IntParam(const KvFormatSpec& spec, const std::string& key, int64_t fallback,
                                 int64_t min, int64_t max);

// bytes_vs_bf16, the one KV-size convention of kvgate (a record's `kv_ratio` metric): the bytes
// of keys plus values in the format over the same keys plus values in bf16, one layer, at a given
// history length (formats with a full-precision window of recent tokens depend on it). Smaller is
// smaller: 0.28125 for symmetric int4 with blocks of 32 (28% of bf16, 3.56x compression). NaN for
// a non-positive size.
double KvBytesVsBf16(const KvFormat& format, int64_t tokens, int64_t kv_heads, int64_t head_dim);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_KV_FORMAT_KV_FORMAT_H_
