// The tensor API of TurboQuant (see turboquant.h) and the codec's CPU fast path: the rotation by
// two fast Walsh-Hadamard transforms (or the dense product for rotation=dense), float32
// arithmetic, codes by counting boundaries. The reference loops are in turboquant_ref.cc.

#include "kernels/turboquant/turboquant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/turboquant/lloyd_max.h"

namespace kvgate::kernels {
namespace {

absl::Status CheckUndefined(const std::string& name, const torch::Tensor& t, const char* why) {
  if (t.defined()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s must be undefined (%s), got %s", name, why, DescribeTensor(t)));
  }
  return absl::OkStatus();
}

float Norm(const float* x, int64_t d) {
  double sum = 0.0;
  for (int64_t j = 0; j < d; ++j) sum += static_cast<double>(x[j]) * x[j];
  return static_cast<float>(std::sqrt(sum));
}

absl::Status ToHalf(float value, const char* what, int64_t v, int64_t n, c10::Half* out) {
  const c10::Half h(value);
  if (std::isinf(static_cast<float>(h))) {
    return absl::OutOfRangeError(absl::StrFormat(
        "vector %d of %d: %s = %g is beyond fp16 range (<= 65504)", v, n, what, value));
  }
  *out = h;
  return absl::OkStatus();
}

constexpr const char* kGroupNames[2] = {"outlier", "rest"};

}  // namespace

std::string_view TurboQuantKindName(TurboQuantKind kind) {
  return kind == TurboQuantKind::kMse ? "turboquant_mse" : "turboquant_prod";
}

std::string TurboQuantName(const TurboQuantOptions& o) {
  return absl::StrCat(std::string(TurboQuantKindName(o.kind)), o.split ? "_split" : "",
                      ":bits=", o.bits, o.split ? ".5" : "",
                      ":rotation=", std::string(RotationKindName(o.rotation)), ":seed=", o.seed);
}

void PackCodes(const uint8_t* codes, int64_t count, int bits, uint8_t* packed) {
  std::memset(packed, 0, static_cast<size_t>(PackedBytes(count, bits)));
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t bit = j * bits;
    const uint32_t value = (codes[j] & mask) << (bit & 7);
    packed[bit >> 3] |= static_cast<uint8_t>(value);
    if ((bit & 7) + bits > 8) packed[(bit >> 3) + 1] |= static_cast<uint8_t>(value >> 8);
  }
}

void UnpackCodes(const uint8_t* packed, int64_t count, int bits, uint8_t* codes) {
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t bit = j * bits;
    uint32_t value = packed[bit >> 3];
    if ((bit & 7) + bits > 8) value |= static_cast<uint32_t>(packed[(bit >> 3) + 1]) << 8;
    codes[j] = static_cast<uint8_t>((value >> (bit & 7)) & mask);
  }
}

// ---------------------------------------------------------------------------------------------
// TurboQuantCodec

absl::StatusOr<TurboQuantCodec> TurboQuantCodec::Make(TurboQuantKind kind, int bits, int64_t dim,
                                                      uint64_t seed, RotationKind rotation) {
  if (bits < 1 || bits > 4) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: bits=%d is not supported (1, 2, 3 or 4)",
                                                      TurboQuantKindName(kind), bits));
  }
  if (dim < 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: dimension %d is too small (>= 2)", TurboQuantKindName(kind), dim));
  }
  absl::StatusOr<Rotation> r = Rotation::Make(rotation, dim, seed);
  if (!r.ok()) return r.status();
  TurboQuantCodec c;
  c.kind_ = kind;
  c.bits_ = bits;
  c.mse_bits_ = kind == TurboQuantKind::kMse ? bits : bits - 1;
  c.dim_ = dim;
  c.seed_ = seed;
  c.rotation_ = *std::move(r);
  const SphereCodebook& cb = CachedSphereCodebook(dim, c.mse_bits_);
  for (double v : cb.centroids) c.centroids_.push_back(static_cast<float>(v));
  for (double v : cb.boundaries) c.boundaries_.push_back(static_cast<float>(v));
  if (kind == TurboQuantKind::kProd) {
    c.sketch_ = GaussianMatrix(seed, kStreamQjl, dim, dim);
    c.qjl_scale_ = static_cast<float>(kSqrtHalfPi / static_cast<double>(dim));
  }
  return c;
}

int64_t TurboQuantCodec::bytes_per_vector() const {
  int64_t bytes = code_bytes() + (has_norms() ? 2 : 0);
  if (kind_ == TurboQuantKind::kProd) bytes += qjl_bytes() + 2;
  return bytes;
}

absl::Status TurboQuantCodec::Encode(const float* x, int64_t n, uint8_t* codes, c10::Half* norms,
                                     uint8_t* qjl, c10::Half* residual_norms) const {
  const int64_t d = dim_;
  const int64_t m = sketch_dim();
  const int levels_minus_one = static_cast<int>(boundaries_.size());
  std::vector<float> u(d), y(d), x_mse(d, 0.0f), residual(d);
  std::vector<uint8_t> code(d), signs(m);
  for (int64_t v = 0; v < n; ++v) {
    const float* xv = x + v * d;
    if (mse_bits_ > 0) {
      const float norm = Norm(xv, d);
      if (absl::Status s = ToHalf(norm, "norm ||x||", v, n, &norms[v]); !s.ok()) return s;
      if (norm > 0.0f) {
        for (int64_t j = 0; j < d; ++j) u[j] = xv[j] / norm;
      } else {
        std::fill(u.begin(), u.end(), 0.0f);
      }
      rotation_.Apply(u.data(), y.data());
      for (int64_t i = 0; i < d; ++i) {
        int c = 0;
        for (int k = 0; k < levels_minus_one; ++k) c += y[i] > boundaries_[k] ? 1 : 0;
        code[i] = static_cast<uint8_t>(c);
      }
      PackCodes(code.data(), d, mse_bits_, codes + v * code_bytes());
      if (kind_ == TurboQuantKind::kProd) {
        for (int64_t i = 0; i < d; ++i) y[i] = centroids_[code[i]];
        rotation_.ApplyTranspose(y.data(), x_mse.data());
        const float nu = static_cast<float>(norms[v]);
        for (int64_t j = 0; j < d; ++j) x_mse[j] *= nu;
      }
    }
    if (kind_ == TurboQuantKind::kProd) {
      for (int64_t j = 0; j < d; ++j) residual[j] = xv[j] - x_mse[j];
      const float rho = Norm(residual.data(), d);
      if (absl::Status s = ToHalf(rho, "residual norm ||r||", v, n, &residual_norms[v]); !s.ok()) {
        return s;
      }
      for (int64_t i = 0; i < m; ++i) {
        const float* row = sketch_.data() + i * d;
        float acc = 0.0f;
        for (int64_t j = 0; j < d; ++j) acc += row[j] * residual[j];
        signs[i] = acc >= 0.0f ? 1 : 0;
      }
      PackCodes(signs.data(), m, 1, qjl + v * qjl_bytes());
    }
  }
  return absl::OkStatus();
}

void TurboQuantCodec::Decode(const uint8_t* codes, const c10::Half* norms, const uint8_t* qjl,
                             const c10::Half* residual_norms, int64_t n, float* out) const {
  const int64_t d = dim_;
  const int64_t m = sketch_dim();
  std::vector<uint8_t> code(d), signs(m);
  std::vector<float> y(d), acc(d);
  for (int64_t v = 0; v < n; ++v) {
    float* ov = out + v * d;
    if (mse_bits_ > 0) {
      UnpackCodes(codes + v * code_bytes(), d, mse_bits_, code.data());
      for (int64_t i = 0; i < d; ++i) y[i] = centroids_[code[i]];
      rotation_.ApplyTranspose(y.data(), ov);
      const float nu = static_cast<float>(norms[v]);
      for (int64_t j = 0; j < d; ++j) ov[j] *= nu;
    } else {
      std::fill(ov, ov + d, 0.0f);
    }
    if (kind_ == TurboQuantKind::kProd) {
      UnpackCodes(qjl + v * qjl_bytes(), m, 1, signs.data());
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t i = 0; i < m; ++i) {
        const float* row = sketch_.data() + i * d;
        if (signs[i]) {
          for (int64_t j = 0; j < d; ++j) acc[j] += row[j];
        } else {
          for (int64_t j = 0; j < d; ++j) acc[j] -= row[j];
        }
      }
      const float scale = static_cast<float>(residual_norms[v]) * qjl_scale_;
      for (int64_t j = 0; j < d; ++j) ov[j] += scale * acc[j];
    }
  }
}

void TurboQuantCodec::EncodeExactCleanup(const float* x, int64_t n, float* rotated, uint8_t* qjl,
                                         c10::Half* residual_norms) const {
  const int64_t d = dim_;
  const int64_t m = sketch_dim();
  std::vector<uint8_t> all_positive(m, 1);
  for (int64_t v = 0; v < n; ++v) {
    rotation_.Apply(x + v * d, rotated + v * d);
    if (kind_ == TurboQuantKind::kProd) {
      PackCodes(all_positive.data(), m, 1, qjl + v * qjl_bytes());
      residual_norms[v] = c10::Half(0.0f);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// TurboQuantTensor and TurboQuant

int64_t TurboQuantTensor::bytes() const {
  auto size = [](const torch::Tensor& t) -> int64_t {
    return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
  };
  int64_t total = size(outlier_mask);
  for (const TurboQuantGroupCodes& g : groups) {
    total += size(g.codes) + size(g.norms) + size(g.qjl) + size(g.residual_norms) + size(g.rotated);
  }
  return total;
}

absl::StatusOr<TurboQuant> TurboQuant::Make(const TurboQuantOptions& options, int64_t head_dim) {
  TurboQuant tq;
  tq.options_ = options;
  tq.head_dim_ = head_dim;
  const std::string name = TurboQuantName(options);
  if (options.split) {
    if (options.bits < 1 || options.bits > 3) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: bits=%d.5 is not supported (1.5, 2.5 or 3.5)", name, options.bits));
    }
    if (head_dim < 4 || head_dim % 2 != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: the outlier split needs an even head_dim >= 4, got %d", name, head_dim));
    }
    for (int g = 0; g < 2; ++g) {
      absl::StatusOr<TurboQuantCodec> codec =
          TurboQuantCodec::Make(options.kind, options.bits + (g == 0 ? 1 : 0), head_dim / 2,
                                SeededBits(options.seed, kStreamGroup, g), options.rotation);
      if (!codec.ok()) {
        return absl::InvalidArgumentError(absl::StrFormat("%s at head_dim %d (%s channels: %d): %s",
                                                          name, head_dim, kGroupNames[g],
                                                          head_dim / 2, codec.status().message()));
      }
      tq.codecs_.push_back(std::make_shared<const TurboQuantCodec>(*std::move(codec)));
    }
  } else {
    absl::StatusOr<TurboQuantCodec> codec =
        TurboQuantCodec::Make(options.kind, options.bits, head_dim, options.seed, options.rotation);
    if (!codec.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s at head_dim %d: %s", name, head_dim, codec.status().message()));
    }
    tq.codecs_.push_back(std::make_shared<const TurboQuantCodec>(*std::move(codec)));
  }
  return tq;
}

int64_t TurboQuant::BytesPerVector() const {
  int64_t bytes = 0;
  for (const auto& c : codecs_) bytes += c->bytes_per_vector();
  return bytes;
}

int64_t TurboQuant::Bytes(int64_t tokens, int64_t kv_heads) const {
  const int64_t mask_bytes = options_.split ? kv_heads * PackedBytes(head_dim_, 1) : 0;
  return tokens * kv_heads * BytesPerVector() + mask_bytes;
}

std::vector<int64_t> TurboQuant::GroupChannels(const TurboQuantTensor& t, int group,
                                               int64_t head) const {
  std::vector<int64_t> channels;
  if (!options_.split) {
    channels.resize(head_dim_);
    std::iota(channels.begin(), channels.end(), 0);
    return channels;
  }
  const torch::Tensor contiguous = t.outlier_mask.contiguous();
  const uint8_t* mask = contiguous.data_ptr<uint8_t>() + head * PackedBytes(head_dim_, 1);
  for (int64_t c = 0; c < head_dim_; ++c) {
    const bool outlier = (mask[c >> 3] >> (c & 7)) & 1;
    if (outlier == (group == 0)) channels.push_back(c);
  }
  return channels;
}

absl::StatusOr<torch::Tensor> TurboQuant::ChooseOutliers(const torch::Tensor& x) const {
  if (!options_.split) {
    return absl::InvalidArgumentError(absl::StrCat(name(), ": no outlier split"));
  }
  absl::StatusOr<TurboQuantTensor> encoded = EncodeImpl(x, nullptr, Path::kExact);
  if (!encoded.ok()) return encoded.status();
  return encoded->outlier_mask;
}

absl::Status TurboQuant::Check(const TurboQuantTensor& t) const {
  const std::string where = absl::StrCat(name(), ": ");
  auto bad = [&](const std::string& what) { return absl::InvalidArgumentError(where + what); };
  if (t.format != name()) {
    return bad(absl::StrCat("cannot take a tensor encoded as '", t.format, "'"));
  }
  if (t.shape.size() != 3 || t.shape[0] < 0 || t.shape[1] < 0 || t.shape[2] != head_dim_) {
    return bad(absl::StrFormat("shape must be [tokens, kv_heads, %d], got [%s]", head_dim_,
                               absl::StrJoin(t.shape, ", ")));
  }
  const int64_t tokens = t.shape[0], heads = t.shape[1];
  if (static_cast<int>(t.groups.size()) != num_groups()) {
    return bad(absl::StrFormat("%d groups of codes, expected %d", t.groups.size(), num_groups()));
  }
  if (options_.split) {
    const int64_t row = PackedBytes(head_dim_, 1);
    if (absl::Status s =
            CheckCpuTensor("outlier_mask", t.outlier_mask, torch::kUInt8, {heads, row});
        !s.ok()) {
      return bad(std::string(s.message()));
    }
    const torch::Tensor mask = t.outlier_mask.contiguous();
    const uint8_t* bits = mask.data_ptr<uint8_t>();
    for (int64_t h = 0; h < heads; ++h) {
      int64_t count = 0;
      for (int64_t c = 0; c < row * 8; ++c) {
        const bool set = (bits[h * row + (c >> 3)] >> (c & 7)) & 1;
        if (set && c >= head_dim_)
          return bad(absl::StrFormat("outlier_mask head %d sets padding bit %d", h, c));
        count += set ? 1 : 0;
      }
      if (count != head_dim_ / 2) {
        return bad(absl::StrFormat("outlier_mask head %d has %d outlier channels, expected %d", h,
                                   count, head_dim_ / 2));
      }
    }
  } else if (absl::Status s = CheckUndefined("outlier_mask", t.outlier_mask, "no split"); !s.ok()) {
    return bad(std::string(s.message()));
  }
  for (int g = 0; g < num_groups(); ++g) {
    const TurboQuantCodec& c = codec(g);
    const TurboQuantGroupCodes& p = t.groups[g];
    const std::string prefix = options_.split ? absl::StrCat(kGroupNames[g], ".") : "";
    std::vector<absl::Status> checks;
    if (t.exact_cleanup) {
      checks.push_back(
          CheckCpuTensor(prefix + "rotated", p.rotated, torch::kFloat32, {tokens, heads, c.dim()}));
      checks.push_back(CheckUndefined(prefix + "codes", p.codes, "exact cleanup"));
      checks.push_back(CheckUndefined(prefix + "norms", p.norms, "exact cleanup"));
    } else {
      checks.push_back(CheckUndefined(prefix + "rotated", p.rotated, "not exact cleanup"));
      if (c.mse_bits() > 0) {
        checks.push_back(CheckCpuTensor(prefix + "codes", p.codes, torch::kUInt8,
                                        {tokens, heads, c.code_bytes()}));
        checks.push_back(
            CheckCpuTensor(prefix + "norms", p.norms, torch::kFloat16, {tokens, heads}));
      } else {
        checks.push_back(CheckUndefined(prefix + "codes", p.codes, "0 codebook bits"));
        checks.push_back(CheckUndefined(prefix + "norms", p.norms, "0 codebook bits"));
      }
    }
    if (c.kind() == TurboQuantKind::kProd) {
      checks.push_back(
          CheckCpuTensor(prefix + "qjl", p.qjl, torch::kUInt8, {tokens, heads, c.qjl_bytes()}));
      checks.push_back(CheckCpuTensor(prefix + "residual_norms", p.residual_norms, torch::kFloat16,
                                      {tokens, heads}));
    } else {
      checks.push_back(CheckUndefined(prefix + "qjl", p.qjl, "turboquant_mse"));
      checks.push_back(
          CheckUndefined(prefix + "residual_norms", p.residual_norms, "turboquant_mse"));
    }
    for (const absl::Status& s : checks) {
      if (!s.ok()) return bad(std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TurboQuantTensor> TurboQuant::Encode(const torch::Tensor& x) const {
  return EncodeImpl(x, nullptr, Path::kFast);
}

absl::StatusOr<TurboQuantTensor> TurboQuant::EncodeWithOutliers(
    const torch::Tensor& x, const torch::Tensor& outlier_mask) const {
  if (!options_.split) {
    return absl::InvalidArgumentError(
        absl::StrCat(name(), ": an outlier set was given, but this format has no split"));
  }
  return EncodeImpl(x, &outlier_mask, Path::kFast);
}

absl::StatusOr<TurboQuantTensor> TurboQuant::EncodeRef(const torch::Tensor& x) const {
  return EncodeImpl(x, nullptr, Path::kRef);
}

absl::StatusOr<TurboQuantTensor> TurboQuant::EncodeExactCleanup(const torch::Tensor& x) const {
  return EncodeImpl(x, nullptr, Path::kExact);
}

absl::StatusOr<torch::Tensor> TurboQuant::Decode(const TurboQuantTensor& t) const {
  return DecodeImpl(t, Path::kFast);
}

absl::StatusOr<torch::Tensor> TurboQuant::DecodeRef(const TurboQuantTensor& t) const {
  return DecodeImpl(t, Path::kRef);
}

absl::StatusOr<TurboQuantTensor> TurboQuant::EncodeImpl(const torch::Tensor& x,
                                                        const torch::Tensor* mask,
                                                        Path path) const {
  const std::string where = absl::StrFormat("%s Encode of %s: ", name(), DescribeTensor(x));
  auto bad = [&](const std::string& what) { return absl::InvalidArgumentError(where + what); };
  if (!x.defined()) return bad("x is undefined");
  if (!x.device().is_cpu()) return bad("x must be a CPU tensor");
  const torch::ScalarType dtype = x.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16) {
    return bad("dtype must be float32, bfloat16 or float16");
  }
  if (x.dim() != 3) return bad("x must be [tokens, kv_heads, head_dim] (rank 3)");
  if (x.size(2) != head_dim_) {
    return bad(
        absl::StrFormat("head_dim is %d, this format was made for %d", x.size(2), head_dim_));
  }
  const int64_t tokens = x.size(0), heads = x.size(1), d = head_dim_;
  const torch::Tensor xf = x.to(torch::kFloat32).contiguous();
  const float* xs = xf.data_ptr<float>();
  for (int64_t i = 0; i < xf.numel(); ++i) {
    if (!std::isfinite(xs[i])) {
      const char* what = std::isnan(xs[i]) ? "NaN" : (xs[i] > 0 ? "+Inf" : "-Inf");
      return bad(absl::StrFormat("x[%d, %d, %d] is %s: TurboQuant takes finite values only",
                                 i / (heads * d), (i / d) % heads, i % d, what));
    }
  }

  TurboQuantTensor t;
  t.format = name();
  t.shape = {tokens, heads, d};
  t.exact_cleanup = path == Path::kExact;
  if (options_.split) {
    const int64_t row = PackedBytes(d, 1);
    if (mask != nullptr) {
      t.outlier_mask = mask->contiguous();
    } else {
      // Per head: the d/2 channels of largest sum of squares over the tokens, ties to the lower.
      t.outlier_mask = torch::zeros({heads, row}, torch::kUInt8);
      uint8_t* bits = t.outlier_mask.data_ptr<uint8_t>();
      std::vector<double> score(d);
      std::vector<int64_t> order(d);
      for (int64_t h = 0; h < heads; ++h) {
        std::fill(score.begin(), score.end(), 0.0);
        for (int64_t tok = 0; tok < tokens; ++tok) {
          const float* v = xs + (tok * heads + h) * d;
          for (int64_t c = 0; c < d; ++c) score[c] += static_cast<double>(v[c]) * v[c];
        }
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t b) { return score[a] > score[b]; });
        for (int64_t k = 0; k < d / 2; ++k) {
          bits[h * row + (order[k] >> 3)] |= static_cast<uint8_t>(1u << (order[k] & 7));
        }
      }
    }
  }

  t.groups.resize(num_groups());
  // Check the mask (given or chosen) before gathering by it: an empty tensor of the right layout.
  {
    TurboQuantTensor layout = t;
    layout.shape = {0, heads, d};
    for (int g = 0; g < num_groups(); ++g) {
      const TurboQuantCodec& c = codec(g);
      TurboQuantGroupCodes& p = layout.groups[g];
      if (t.exact_cleanup) {
        p.rotated = torch::empty({0, heads, c.dim()}, torch::kFloat32);
      } else if (c.mse_bits() > 0) {
        p.codes = torch::empty({0, heads, c.code_bytes()}, torch::kUInt8);
        p.norms = torch::empty({0, heads}, torch::kFloat16);
      }
      if (c.kind() == TurboQuantKind::kProd) {
        p.qjl = torch::empty({0, heads, c.qjl_bytes()}, torch::kUInt8);
        p.residual_norms = torch::empty({0, heads}, torch::kFloat16);
      }
    }
    if (absl::Status s = Check(layout); !s.ok()) {
      return bad(absl::StrCat("bad outlier set: ", s.message()));
    }
  }

  const int64_t n = tokens * heads;
  std::vector<float> gathered;
  for (int g = 0; g < num_groups(); ++g) {
    const TurboQuantCodec& c = codec(g);
    const int64_t dg = c.dim();
    TurboQuantGroupCodes& p = t.groups[g];
    const float* input = xs;
    if (options_.split) {
      gathered.resize(static_cast<size_t>(n * dg));
      for (int64_t h = 0; h < heads; ++h) {
        const std::vector<int64_t> channels = GroupChannels(t, g, h);
        for (int64_t tok = 0; tok < tokens; ++tok) {
          const float* src = xs + (tok * heads + h) * d;
          float* dst = gathered.data() + (tok * heads + h) * dg;
          for (int64_t i = 0; i < dg; ++i) dst[i] = src[channels[i]];
        }
      }
      input = gathered.data();
    }
    uint8_t* qjl = nullptr;
    c10::Half* residual_norms = nullptr;
    if (c.kind() == TurboQuantKind::kProd) {
      p.qjl = torch::empty({tokens, heads, c.qjl_bytes()}, torch::kUInt8);
      p.residual_norms = torch::empty({tokens, heads}, torch::kFloat16);
      qjl = p.qjl.data_ptr<uint8_t>();
      residual_norms = p.residual_norms.data_ptr<c10::Half>();
    }
    if (path == Path::kExact) {
      p.rotated = torch::empty({tokens, heads, dg}, torch::kFloat32);
      c.EncodeExactCleanup(input, n, p.rotated.data_ptr<float>(), qjl, residual_norms);
      continue;
    }
    uint8_t* codes = nullptr;
    c10::Half* norms = nullptr;
    if (c.mse_bits() > 0) {
      p.codes = torch::empty({tokens, heads, c.code_bytes()}, torch::kUInt8);
      p.norms = torch::empty({tokens, heads}, torch::kFloat16);
      codes = p.codes.data_ptr<uint8_t>();
      norms = p.norms.data_ptr<c10::Half>();
    }
    const absl::Status s = path == Path::kRef
                               ? c.EncodeRef(input, n, codes, norms, qjl, residual_norms)
                               : c.Encode(input, n, codes, norms, qjl, residual_norms);
    if (!s.ok()) {
      return absl::Status(
          s.code(),
          absl::StrFormat("%s%s%s (vector v is token v / %d, head v %% %d)", where,
                          options_.split ? absl::StrCat(kGroupNames[g], " channels: ") : "",
                          s.message(), heads, heads));
    }
  }
  return t;
}

absl::StatusOr<torch::Tensor> TurboQuant::DecodeImpl(const TurboQuantTensor& t, Path path) const {
  if (absl::Status s = Check(t); !s.ok()) return s;
  const int64_t tokens = t.shape[0], heads = t.shape[1], d = head_dim_;
  const int64_t n = tokens * heads;
  torch::Tensor out = torch::empty({tokens, heads, d}, torch::kFloat32);
  float* os = out.data_ptr<float>();
  std::vector<float> group_out;
  for (int g = 0; g < num_groups(); ++g) {
    const TurboQuantCodec& c = codec(g);
    const int64_t dg = c.dim();
    const TurboQuantGroupCodes& p = t.groups[g];
    float* dst = os;
    if (options_.split) {
      group_out.resize(static_cast<size_t>(n * dg));
      dst = group_out.data();
    }
    if (t.exact_cleanup) {
      const torch::Tensor rotated = p.rotated.contiguous();
      for (int64_t v = 0; v < n; ++v) {
        c.rotation().ApplyTranspose(rotated.data_ptr<float>() + v * dg, dst + v * dg);
      }
    } else {
      const torch::Tensor codes = p.codes.defined() ? p.codes.contiguous() : torch::Tensor();
      const torch::Tensor norms = p.norms.defined() ? p.norms.contiguous() : torch::Tensor();
      const torch::Tensor qjl = p.qjl.defined() ? p.qjl.contiguous() : torch::Tensor();
      const torch::Tensor rn =
          p.residual_norms.defined() ? p.residual_norms.contiguous() : torch::Tensor();
      const uint8_t* codes_ptr = codes.defined() ? codes.data_ptr<uint8_t>() : nullptr;
      const c10::Half* norms_ptr = norms.defined() ? norms.data_ptr<c10::Half>() : nullptr;
      const uint8_t* qjl_ptr = qjl.defined() ? qjl.data_ptr<uint8_t>() : nullptr;
      const c10::Half* rn_ptr = rn.defined() ? rn.data_ptr<c10::Half>() : nullptr;
      if (path == Path::kRef) {
        c.DecodeRef(codes_ptr, norms_ptr, qjl_ptr, rn_ptr, n, dst);
      } else {
        c.Decode(codes_ptr, norms_ptr, qjl_ptr, rn_ptr, n, dst);
      }
    }
    if (options_.split) {
      for (int64_t h = 0; h < heads; ++h) {
        const std::vector<int64_t> channels = GroupChannels(t, g, h);
        for (int64_t tok = 0; tok < tokens; ++tok) {
          const float* src = group_out.data() + (tok * heads + h) * dg;
          float* o = os + (tok * heads + h) * d;
          for (int64_t i = 0; i < dg; ++i) o[channels[i]] = src[i];
        }
      }
    }
  }
  return out;
}

}  // namespace kvgate::kernels
