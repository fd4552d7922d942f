// The KvFormat adapter of TurboQuant (see turboquant_kv_format.h): spec parsing, a TurboQuant per
// head_dim made once and kept, and the mapping between TurboQuantTensor and EncodedKv parts.

#include "kernels/turboquant/turboquant_kv_format.h"

#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvgate::kernels {
namespace {

std::string BaseName(TurboQuantKind kind, bool split) {
  return absl::StrCat(std::string(TurboQuantKindName(kind)), split ? "_split" : "");
}

// "" or "outlier." / "rest." for group g.
std::string Prefix(bool split, int g) {
  if (!split) return "";
  return g == 0 ? "outlier." : "rest.";
}

class TurboQuantKvFormat : public KvFormat {
 public:
  explicit TurboQuantKvFormat(const TurboQuantOptions& options) : options_(options) {}

  std::string name() const override { return TurboQuantName(options_); }

  absl::StatusOr<EncodedKv> Encode(const torch::Tensor& x, KvRole role) const override {
    if (!x.defined() || x.dim() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          name(), ": expected [tokens, kv_heads, head_dim], got ",
          x.defined() ? absl::StrCat("rank ", x.dim()) : std::string("an undefined tensor")));
    }
    absl::StatusOr<std::shared_ptr<const TurboQuant>> tq = For(x.size(2));
    if (!tq.ok()) return tq.status();
    absl::StatusOr<TurboQuantTensor> t = (*tq)->Encode(x);
    if (!t.ok()) return t.status();
    return TurboQuantTensorToEncodedKv(*t, role);
  }

  absl::StatusOr<torch::Tensor> Decode(const EncodedKv& encoded) const override {
    if (encoded.format != name()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name(), ": cannot decode a tensor encoded as ", encoded.format));
    }
    if (encoded.shape.size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(name(), ": encoded shape is not rank 3"));
    }
    absl::StatusOr<std::shared_ptr<const TurboQuant>> tq = For(encoded.shape[2]);
    if (!tq.ok()) return tq.status();
    absl::StatusOr<TurboQuantTensor> t = TurboQuantTensorFromEncodedKv(encoded);
    if (!t.ok()) return t.status();
    return (*tq)->Decode(*t);
  }

  int64_t Bytes(int64_t tokens, int64_t kv_heads, int64_t head_dim, KvRole) const override {
    absl::StatusOr<std::shared_ptr<const TurboQuant>> tq = For(head_dim);
    return tq.ok() ? (*tq)->Bytes(tokens, kv_heads) : 0;
  }

  // A seeded rotation, codebook and sketch, a norm per vector; the split chooses its outlier
  // channels from all the tokens it encodes.
  bool EncodesTokensIndependently() const override { return !options_.split; }

 private:
  // The TurboQuant of one head_dim, made once (its rotations, codebooks and sketch) and kept.
  absl::StatusOr<std::shared_ptr<const TurboQuant>> For(int64_t head_dim) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(head_dim);
    if (it != cache_.end()) return it->second;
    absl::StatusOr<TurboQuant> tq = TurboQuant::Make(options_, head_dim);
    if (!tq.ok()) return tq.status();
    auto made = std::make_shared<const TurboQuant>(*std::move(tq));
    cache_.emplace(head_dim, made);
    return made;
  }

  TurboQuantOptions options_;
  mutable std::mutex mutex_;
  mutable std::map<int64_t, std::shared_ptr<const TurboQuant>> cache_;
};

}  // namespace

absl::StatusOr<TurboQuantOptions> TurboQuantOptionsFromSpec(const KvFormatSpec& spec,
                                                            TurboQuantKind kind, bool split) {
  if (spec.name != BaseName(kind, split)) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV format '", spec.name, "' is not '", BaseName(kind, split), "'"));
  }
  if (absl::Status s = CheckParamsKnown(spec, {"bits", "rotation", "seed"}); !s.ok()) return s;
  TurboQuantOptions options;
  options.kind = kind;
  options.split = split;
  if (split) {
    auto it = spec.params.find("bits");
    const std::string bits = it == spec.params.end() ? "3.5" : it->second;
    if (bits == "1.5" || bits == "2.5" || bits == "3.5") {
      options.bits = bits[0] - '0';
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("KV format '", spec.name, "': bits=", bits,
                       " is not supported (1.5, 2.5 or 3.5: half the channels get one bit more)"));
    }
  } else {
    absl::StatusOr<int64_t> bits = IntParam(spec, "bits", 3, 1, 4);
    if (!bits.ok()) return bits.status();
    options.bits = static_cast<int>(*bits);
  }
  absl::StatusOr<int64_t> seed = IntParam(spec, "seed", 0, 0, std::numeric_limits<int64_t>::max());
  if (!seed.ok()) return seed.status();
  options.seed = static_cast<uint64_t>(*seed);
  auto it = spec.params.find("rotation");
  if (it == spec.params.end() || it->second == "hadamard") {
    options.rotation = RotationKind::kHadamard;
  } else if (it->second == "dense") {
    options.rotation = RotationKind::kDense;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV format '", spec.name, "': rotation=", it->second, " is not hadamard or dense"));
  }
  return options;
}

absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantKvFormat(const KvFormatSpec& spec,
                                                                 TurboQuantKind kind, bool split) {
  absl::StatusOr<TurboQuantOptions> options = TurboQuantOptionsFromSpec(spec, kind, split);
  if (!options.ok()) return options.status();
  return std::make_unique<TurboQuantKvFormat>(*options);
}

absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantMseKvFormat(const KvFormatSpec& spec) {
  return MakeTurboQuantKvFormat(spec, TurboQuantKind::kMse, /*split=*/false);
}
absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantProdKvFormat(const KvFormatSpec& spec) {
  return MakeTurboQuantKvFormat(spec, TurboQuantKind::kProd, /*split=*/false);
}
absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantMseSplitKvFormat(const KvFormatSpec& spec) {
  return MakeTurboQuantKvFormat(spec, TurboQuantKind::kMse, /*split=*/true);
}
absl::StatusOr<std::unique_ptr<KvFormat>> MakeTurboQuantProdSplitKvFormat(
    const KvFormatSpec& spec) {
  return MakeTurboQuantKvFormat(spec, TurboQuantKind::kProd, /*split=*/true);
}

absl::StatusOr<TurboQuant> TurboQuantForSpec(absl::string_view spec, int64_t head_dim) {
  absl::StatusOr<KvFormatSpec> parsed = ParseKvFormatSpec(spec);
  if (!parsed.ok()) return parsed.status();
  for (TurboQuantKind kind : {TurboQuantKind::kMse, TurboQuantKind::kProd}) {
    for (bool split : {false, true}) {
      if (parsed->name != BaseName(kind, split)) continue;
      absl::StatusOr<TurboQuantOptions> options = TurboQuantOptionsFromSpec(*parsed, kind, split);
      if (!options.ok()) return options.status();
      return TurboQuant::Make(*options, head_dim);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("'", spec, "' is not a TurboQuant format"));
}

absl::StatusOr<EncodedKv> TurboQuantTensorToEncodedKv(const TurboQuantTensor& t, KvRole role) {
  if (t.exact_cleanup) {
    return absl::InvalidArgumentError("an exact-cleanup TurboQuantTensor has no EncodedKv");
  }
  EncodedKv encoded;
  encoded.format = t.format;
  encoded.role = role;
  encoded.shape = t.shape;
  const bool split = t.groups.size() == 2;
  if (t.outlier_mask.defined()) encoded.parts["outlier_mask"] = t.outlier_mask;
  for (int g = 0; g < static_cast<int>(t.groups.size()); ++g) {
    const TurboQuantGroupCodes& p = t.groups[g];
    const std::string prefix = Prefix(split, g);
    if (p.codes.defined()) encoded.parts[prefix + "codes"] = p.codes;
    if (p.norms.defined()) encoded.parts[prefix + "norms"] = p.norms;
    if (p.qjl.defined()) encoded.parts[prefix + "qjl"] = p.qjl;
    if (p.residual_norms.defined()) encoded.parts[prefix + "residual_norms"] = p.residual_norms;
  }
  return encoded;
}

absl::StatusOr<TurboQuantTensor> TurboQuantTensorFromEncodedKv(const EncodedKv& encoded) {
  absl::StatusOr<KvFormatSpec> parsed = ParseKvFormatSpec(encoded.format);
  if (!parsed.ok()) return parsed.status();
  const bool split =
      parsed->name == "turboquant_mse_split" || parsed->name == "turboquant_prod_split";
  if (!split && parsed->name != "turboquant_mse" && parsed->name != "turboquant_prod") {
    return absl::InvalidArgumentError(
        absl::StrCat("'", encoded.format, "' is not a TurboQuant format"));
  }
  TurboQuantTensor t;
  t.format = encoded.format;
  t.shape = encoded.shape;
  t.groups.resize(split ? 2 : 1);
  std::map<std::string, torch::Tensor*> slots;
  if (split) slots["outlier_mask"] = &t.outlier_mask;
  for (int g = 0; g < static_cast<int>(t.groups.size()); ++g) {
    TurboQuantGroupCodes& p = t.groups[g];
    const std::string prefix = Prefix(split, g);
    slots[prefix + "codes"] = &p.codes;
    slots[prefix + "norms"] = &p.norms;
    slots[prefix + "qjl"] = &p.qjl;
    slots[prefix + "residual_norms"] = &p.residual_norms;
  }
  for (const auto& [name, part] : encoded.parts) {
    auto it = slots.find(name);
    if (it == slots.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(encoded.format, ": unexpected part '", name, "'"));
    }
    *it->second = part;
  }
  return t;  // TurboQuant::Check (in Decode and the attention) checks the parts present
}

}  // namespace kvgate::kernels
