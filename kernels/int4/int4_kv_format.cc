#include "kernels/int4/int4_kv_format.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvgate::kernels {
namespace {

class Int4KvFormat : public KvFormat {
 public:
  explicit Int4KvFormat(Int4Scheme scheme) : scheme_(scheme) {}

  std::string name() const override {
    return absl::StrCat(std::string(Int4SchemeName(scheme_)), ":block=", kInt4BlockSize);
  }

  absl::StatusOr<EncodedKv> Encode(const torch::Tensor& x, KvRole role) const override {
    if (x.dim() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(name(), ": expected [tokens, kv_heads, head_dim], got rank ", x.dim()));
    }
    absl::StatusOr<Int4Tensor> q = QuantizeInt4(x, scheme_);
    if (!q.ok()) return q.status();
    EncodedKv encoded{name(), role, x.sizes().vec(), {{"codes", q->codes}, {"scales", q->scales}}};
    if (q->zeros.defined()) encoded.parts["zeros"] = q->zeros;
    return encoded;
  }

  absl::StatusOr<torch::Tensor> Decode(const EncodedKv& encoded) const override {
    if (encoded.format != name()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name(), ": cannot decode a tensor encoded as ", encoded.format));
    }
    Int4Tensor q;
    q.scheme = scheme_;
    for (const char* part : {"codes", "scales"}) {
      if (!encoded.parts.count(part)) {
        return absl::InvalidArgumentError(absl::StrCat(name(), ": encoded tensor lacks ", part));
      }
    }
    q.codes = encoded.parts.at("codes");
    q.scales = encoded.parts.at("scales");
    if (auto it = encoded.parts.find("zeros"); it != encoded.parts.end()) q.zeros = it->second;
    return DequantizeInt4(q);
  }

  int64_t Bytes(int64_t tokens, int64_t kv_heads, int64_t head_dim, KvRole) const override {
    return tokens * kv_heads * Int4BytesPerVector(head_dim, scheme_);
  }

  // Scales (and zeros) per block of 32 along head_dim, within one token.
  bool EncodesTokensIndependently() const override { return true; }

 private:
  Int4Scheme scheme_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvFormat>> MakeInt4KvFormat(const KvFormatSpec& spec,
                                                           Int4Scheme scheme) {
  if (absl::Status s = CheckParamsKnown(spec, {"block"}); !s.ok()) return s;
  absl::StatusOr<int64_t> block =
      IntParam(spec, "block", kInt4BlockSize, kInt4BlockSize, kInt4BlockSize);
  if (!block.ok()) return block.status();
  return std::make_unique<Int4KvFormat>(scheme);
}

}  // namespace kvgate::kernels
