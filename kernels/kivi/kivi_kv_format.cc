#include "kernels/kivi/kivi_kv_format.h"

#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvgate::kernels {
namespace {

class KiviKvFormat : public KvFormat {
 public:
  explicit KiviKvFormat(const KiviParams& params) : params_(params) {}

  std::string name() const override { return params_.Name(); }

  absl::StatusOr<EncodedKv> Encode(const torch::Tensor& x, KvRole role) const override {
    if (!x.defined() || x.dim() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          name(), ": expected [tokens, kv_heads, head_dim], got rank ", x.defined() ? x.dim() : 0));
    }
    absl::StatusOr<KiviTensor> q = QuantizeKivi(x, role, params_);
    if (!q.ok()) return q.status();
    return EncodedKv{name(),
                     role,
                     x.sizes().vec(),
                     {{"codes", q->codes},
                      {"scales", q->scales},
                      {"zeros", q->zeros},
                      {"residual", q->residual}}};
  }

  absl::StatusOr<torch::Tensor> Decode(const EncodedKv& encoded) const override {
    if (encoded.format != name()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name(), ": cannot decode a tensor encoded as ", encoded.format));
    }
    for (const char* part : {"codes", "scales", "zeros", "residual"}) {
      if (!encoded.parts.count(part)) {
        return absl::InvalidArgumentError(absl::StrCat(name(), ": encoded tensor lacks ", part));
      }
    }
    KiviTensor q;
    q.role = encoded.role;
    q.params = params_;
    q.codes = encoded.parts.at("codes");
    q.scales = encoded.parts.at("scales");
    q.zeros = encoded.parts.at("zeros");
    q.residual = encoded.parts.at("residual");
    return DequantizeKivi(q);
  }

  int64_t Bytes(int64_t tokens, int64_t kv_heads, int64_t head_dim, KvRole role) const override {
    return KiviBytes(tokens, kv_heads, head_dim, role, params_);
  }

 private:
  KiviParams params_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvFormat>> MakeKiviKvFormat(const KvFormatSpec& spec) {
  if (absl::Status s = CheckParamsKnown(spec, {"bits", "group", "residual"}); !s.ok()) return s;
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  absl::StatusOr<int64_t> bits = IntParam(spec, "bits", 2, 1, 64);
  if (!bits.ok()) return bits.status();
  absl::StatusOr<int64_t> group = IntParam(spec, "group", 32, 1, kMax);
  if (!group.ok()) return group.status();
  absl::StatusOr<int64_t> residual = IntParam(spec, "residual", 128, 0, kMax);
  if (!residual.ok()) return residual.status();
  const KiviParams params{static_cast<int>(*bits), *group, *residual};
  if (absl::Status s = params.Check(); !s.ok()) return s;
  return std::make_unique<KiviKvFormat>(params);
}

}  // namespace kvgate::kernels
