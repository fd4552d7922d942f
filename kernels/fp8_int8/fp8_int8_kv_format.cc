#include "kernels/fp8_int8/fp8_int8_kv_format.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvgate::kernels {
namespace {

class Fp8Int8KvFormat : public KvFormat {
 public:
  Fp8Int8KvFormat(Fp8Int8Code code, ScaleGranularity granularity)
      : code_(code), granularity_(granularity) {}

  std::string name() const override {
    return absl::StrCat(Fp8Int8CodeName(code_), ":scale=", ScaleGranularityName(granularity_));
  }

  absl::StatusOr<EncodedKv> Encode(const torch::Tensor& x, KvRole role) const override {
    if (!x.defined() || x.dim() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          name(), ": expected [tokens, kv_heads, head_dim], got rank ", x.defined() ? x.dim() : 0));
    }
    absl::StatusOr<Fp8Int8Tensor> q = QuantizeFp8Int8(x, code_, granularity_);
    if (!q.ok()) return q.status();
    return EncodedKv{name(), role, x.sizes().vec(), {{"codes", q->codes}, {"scales", q->scales}}};
  }

  absl::StatusOr<torch::Tensor> Decode(const EncodedKv& encoded) const override {
    if (encoded.format != name()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name(), ": cannot decode a tensor encoded as ", encoded.format));
    }
    for (const char* part : {"codes", "scales"}) {
      if (!encoded.parts.count(part)) {
        return absl::InvalidArgumentError(absl::StrCat(name(), ": encoded tensor lacks ", part));
      }
    }
    Fp8Int8Tensor q;
    q.code = code_;
    q.granularity = granularity_;
    q.codes = encoded.parts.at("codes");
    q.scales = encoded.parts.at("scales");
    return DequantizeFp8Int8(q);
  }

  int64_t Bytes(int64_t tokens, int64_t kv_heads, int64_t head_dim, KvRole) const override {
    return Fp8Int8Bytes(tokens, kv_heads, head_dim, granularity_);
  }

  // scale=token: one scale per token and head; scale=head shares one over all tokens.
  bool EncodesTokensIndependently() const override {
    return granularity_ == ScaleGranularity::kToken;
  }

 private:
  Fp8Int8Code code_;
  ScaleGranularity granularity_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvFormat>> MakeFp8Int8KvFormat(const KvFormatSpec& spec,
                                                              Fp8Int8Code code) {
  if (absl::Status s = CheckParamsKnown(spec, {"scale"}); !s.ok()) return s;
  ScaleGranularity granularity = ScaleGranularity::kToken;
  if (auto it = spec.params.find("scale"); it != spec.params.end()) {
    if (it->second == "token") {
      granularity = ScaleGranularity::kToken;
    } else if (it->second == "head") {
      granularity = ScaleGranularity::kHead;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("KV format '", spec.name, "': scale=", it->second, " is not token or head"));
    }
  }
  return std::make_unique<Fp8Int8KvFormat>(code, granularity);
}

}  // namespace kvgate::kernels
