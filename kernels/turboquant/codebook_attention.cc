// Fused packed-codebook attention (see codebook_attention.h): variants 1 and 2, and the dense
// float32 baseline with variant 2's loops. One thread; float32 arithmetic (softmax sums in double).

#include "kernels/turboquant/codebook_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kvgate::kernels {
namespace {

// ---------------------------------------------------------------------------------------------
// Small loops shared by the fused variant 2 and the dense baseline.

// sum a[i] b[i], four accumulators.
inline float Dot(const float* a, const float* b, int64_t n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// y += w x.
inline void Axpy(float w, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += w * x[i];
}

// In place: l <- softmax(scale * l) over n entries (sum in double).
void Softmax(float* l, int64_t n, float scale) {
  float max = -INFINITY;
  for (int64_t t = 0; t < n; ++t) max = std::max(max, scale * l[t]);
  double sum = 0.0;
  for (int64_t t = 0; t < n; ++t) {
    l[t] = std::exp(scale * l[t] - max);
    sum += l[t];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t t = 0; t < n; ++t) l[t] *= inv;
}

// ---------------------------------------------------------------------------------------------
// Unpacking one row of codes.

// d codes of B bits from a row (layout of turboquant.h) into out[d].
template <int B>
void UnpackRowT(const uint8_t* p, int64_t d, uint8_t* out) {
  constexpr uint32_t kMask = (1u << B) - 1;
  int64_t j = 0;
  for (; j + 8 <= d; j += 8, p += B) {  // 8 codes are B whole bytes
    uint32_t w = 0;
    for (int b = 0; b < B; ++b) w |= static_cast<uint32_t>(p[b]) << (8 * b);
    for (int k = 0; k < 8; ++k) out[j + k] = static_cast<uint8_t>((w >> (B * k)) & kMask);
  }
  if (j < d) UnpackCodes(p, d - j, B, out + j);
}

void UnpackRow(const uint8_t* p, int64_t d, int bits, uint8_t* out) {
  switch (bits) {
    case 1:
      return UnpackRowT<1>(p, d, out);
    case 2:
      return UnpackRowT<2>(p, d, out);
    case 3:
      return UnpackRowT<3>(p, d, out);
    case 4:
      return UnpackRowT<4>(p, d, out);
  }
  UnpackCodes(p, d, bits, out);
}

// Expands rows of codes to the values they name (centroids, or -1/+1 for signs): a table of 256
// entries of 8/B values for B in {1, 2, 4} (one memcpy a byte), 8 codes from 3 bytes for B = 3.
class RowExpander {
 public:
  RowExpander(int bits, const std::vector<float>& values) : bits_(bits), values_(values) {
    if (bits == 1 || bits == 2 || bits == 4) {
      per_byte_ = 8 / bits;
      table_.resize(256 * per_byte_);
      for (int byte = 0; byte < 256; ++byte) {
        for (int k = 0; k < per_byte_; ++k) {
          table_[byte * per_byte_ + k] = values[(byte >> (bits * k)) & ((1 << bits) - 1)];
        }
      }
    }
    codes_.resize(8);
  }

  void Expand(const uint8_t* p, int64_t d, float* out) {
    int64_t j = 0;
    if (per_byte_ > 0) {
      const int64_t whole = d / per_byte_;
      for (int64_t b = 0; b < whole; ++b, j += per_byte_) {
        std::memcpy(out + j, table_.data() + p[b] * per_byte_, per_byte_ * sizeof(float));
      }
      p += whole;
    } else if (bits_ == 3) {
      for (; j + 8 <= d; j += 8, p += 3) {
        const uint32_t w =
            p[0] | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16);
        for (int k = 0; k < 8; ++k) out[j + k] = values_[(w >> (3 * k)) & 7];
      }
    }
    if (j < d) {  // a tail that is not whole bytes (or other widths): bit by bit
      if (static_cast<int64_t>(codes_.size()) < d) codes_.resize(d);
      UnpackCodes(p, d - j, bits_, codes_.data());
      for (int64_t k = j; k < d; ++k) out[k] = values_[codes_[k - j]];
    }
  }

 private:
  int bits_;
  std::vector<float> values_;
  int per_byte_ = 0;
  std::vector<float> table_;
  std::vector<uint8_t> codes_;
};

// Values for an expander that is never used (a group without codes).
const std::vector<float> kNoValues = {0.0f, 0.0f};

// ---------------------------------------------------------------------------------------------
// Views of the inputs.

// One group of K or V as raw row-major pointers (tensors kept alive in `keep`).
struct GroupView {
  const TurboQuantCodec* codec = nullptr;
  int64_t d = 0, m = 0;
  int mse_bits = 0;
  bool exact = false, prod = false;
  const uint8_t* codes = nullptr;
  const c10::Half* norms = nullptr;
  const float* rotated = nullptr;
  const uint8_t* qjl = nullptr;
  const c10::Half* rnorms = nullptr;
  std::vector<std::vector<int64_t>> channels;  // per kv head
  std::vector<torch::Tensor> keep;
};

GroupView View(const TurboQuant& tq, const TurboQuantTensor& t, int g) {
  GroupView v;
  v.codec = &tq.codec(g);
  v.d = v.codec->dim();
  v.m = v.codec->sketch_dim();
  v.mse_bits = v.codec->mse_bits();
  v.exact = t.exact_cleanup;
  v.prod = v.codec->kind() == TurboQuantKind::kProd;
  const TurboQuantGroupCodes& p = t.groups[g];
  auto keep = [&v](const torch::Tensor& x) -> const torch::Tensor& {
    v.keep.push_back(x.contiguous());
    return v.keep.back();
  };
  if (v.exact) {
    v.rotated = keep(p.rotated).data_ptr<float>();
  } else if (v.mse_bits > 0) {
    v.codes = keep(p.codes).data_ptr<uint8_t>();
    v.norms = keep(p.norms).data_ptr<c10::Half>();
  }
  if (v.prod) {
    v.qjl = keep(p.qjl).data_ptr<uint8_t>();
    v.rnorms = keep(p.residual_norms).data_ptr<c10::Half>();
  }
  for (int64_t h = 0; h < t.shape[1]; ++h) v.channels.push_back(tq.GroupChannels(t, g, h));
  return v;
}

// q [heads, D] as contiguous float32, after checks.
absl::StatusOr<torch::Tensor> CheckQuery(const torch::Tensor& q, int64_t head_dim, int64_t kv_heads,
                                         const std::string& where) {
  auto bad = [&](const std::string& what) { return absl::InvalidArgumentError(where + what); };
  if (!q.defined()) return bad("q is undefined");
  if (!q.device().is_cpu()) return bad("q must be a CPU tensor");
  if (q.scalar_type() != torch::kFloat32 && q.scalar_type() != torch::kBFloat16 &&
      q.scalar_type() != torch::kFloat16) {
    return bad("q's dtype must be float32, bfloat16 or float16");
  }
  if (q.dim() != 2 || q.size(1) != head_dim) {
    return bad(absl::StrFormat("q must be [heads, %d], got [%s]", head_dim,
                               absl::StrJoin(q.sizes(), ", ")));
  }
  if (kv_heads <= 0 || q.size(0) <= 0 || q.size(0) % kv_heads != 0) {
    return bad(absl::StrFormat("heads (%d) must be a positive multiple of kv_heads (%d)", q.size(0),
                               kv_heads));
  }
  torch::Tensor qf = q.to(torch::kFloat32).contiguous();
  const float* p = qf.data_ptr<float>();
  for (int64_t i = 0; i < qf.numel(); ++i) {
    if (!std::isfinite(p[i])) {
      return bad(absl::StrFormat("q[%d, %d] is not finite", i / head_dim, i % head_dim));
    }
  }
  return qf;
}

// ---------------------------------------------------------------------------------------------
// The fused loops.

// Adds group g's share of the logits of query heads h0..h0+G (which read kv head hk) to
// logits[(h0 + i) * T + t].
void GroupLogits(int variant, const GroupView& kg, const float* q, int64_t D, int64_t h0, int64_t G,
                 int64_t hk, int64_t T, int64_t H, float* logits) {
  const TurboQuantCodec& c = *kg.codec;
  const int64_t d = kg.d, m = kg.m;
  const int levels = 1 << kg.mse_bits;
  const std::vector<int64_t>& channels = kg.channels[hk];
  std::vector<float> qg(d), q_rot(G * d), sq(G * m), lut;
  for (int64_t i = 0; i < G; ++i) {
    for (int64_t j = 0; j < d; ++j) qg[j] = q[(h0 + i) * D + channels[j]];
    c.rotation().Apply(qg.data(), q_rot.data() + i * d);
    for (int64_t r = 0; r < m; ++r) sq[i * m + r] = Dot(c.sketch().data() + r * d, qg.data(), d);
  }
  const bool codes = !kg.exact && kg.mse_bits > 0;
  if (variant == 1 && codes) {
    lut.resize(G * d * levels);
    for (int64_t i = 0; i < G; ++i) {
      for (int64_t j = 0; j < d; ++j) {
        for (int k = 0; k < levels; ++k) {
          lut[(i * d + j) * levels + k] = q_rot[i * d + j] * c.centroids()[k];
        }
      }
    }
  }
  const int64_t code_bytes = c.code_bytes(), qjl_bytes = c.qjl_bytes();
  const float qjl_scale = c.qjl_scale();
  std::vector<uint8_t> code(std::max(d, m));
  std::vector<float> values(std::max(d, m));
  RowExpander centroids(codes ? kg.mse_bits : 1, codes ? c.centroids() : kNoValues);
  RowExpander signs(1, {-1.0f, 1.0f});
  for (int64_t t = 0; t < T; ++t) {
    const int64_t row = t * H + hk;
    float* out = logits + h0 * T + t;  // out[i * T] for query head h0 + i
    if (kg.exact) {
      const float* k = kg.rotated + row * d;
      if (variant == 1) {
        for (int64_t i = 0; i < G; ++i) {
          float s = 0.0f;
          for (int64_t j = 0; j < d; ++j) s += q_rot[i * d + j] * k[j];
          out[i * T] += s;
        }
      } else {
        for (int64_t i = 0; i < G; ++i) out[i * T] += Dot(q_rot.data() + i * d, k, d);
      }
    } else if (codes) {
      const float nu = static_cast<float>(kg.norms[row]);
      const uint8_t* packed = kg.codes + row * code_bytes;
      if (variant == 1) {
        UnpackRow(packed, d, kg.mse_bits, code.data());
        for (int64_t i = 0; i < G; ++i) {
          const float* table = lut.data() + i * d * levels;
          float s = 0.0f;
          for (int64_t j = 0; j < d; ++j) s += table[j * levels + code[j]];
          out[i * T] += nu * s;
        }
      } else {
        centroids.Expand(packed, d, values.data());
        for (int64_t i = 0; i < G; ++i)
          out[i * T] += nu * Dot(q_rot.data() + i * d, values.data(), d);
      }
    }
    if (kg.prod) {
      const float w = static_cast<float>(kg.rnorms[row]) * qjl_scale;
      const uint8_t* packed = kg.qjl + row * qjl_bytes;
      if (variant == 1) {
        UnpackRow(packed, m, 1, code.data());
        for (int64_t i = 0; i < G; ++i) {
          const float* s_q = sq.data() + i * m;
          float s = 0.0f;
          for (int64_t r = 0; r < m; ++r) s += code[r] ? s_q[r] : -s_q[r];
          out[i * T] += w * s;
        }
      } else {
        signs.Expand(packed, m, values.data());
        for (int64_t i = 0; i < G; ++i) out[i * T] += w * Dot(sq.data() + i * m, values.data(), m);
      }
    }
  }
}

// Adds group g of V's share of the outputs of query heads h0..h0+G (probabilities p[(h0+i) * T +
// t]) into out[(h0 + i) * D + channel].
void GroupValues(int variant, const GroupView& vg, const float* p, int64_t D, int64_t h0, int64_t G,
                 int64_t hk, int64_t T, int64_t H, float* out) {
  const TurboQuantCodec& c = *vg.codec;
  const int64_t d = vg.d, m = vg.m;
  std::vector<float> acc(G * d, 0.0f), accs(G * m, 0.0f);
  const bool codes = !vg.exact && vg.mse_bits > 0;
  const int64_t code_bytes = c.code_bytes(), qjl_bytes = c.qjl_bytes();
  std::vector<uint8_t> code(std::max(d, m));
  std::vector<float> values(std::max(d, m));
  RowExpander centroids(codes ? vg.mse_bits : 1, codes ? c.centroids() : kNoValues);
  RowExpander signs(1, {-1.0f, 1.0f});
  const float* centroid = c.centroids().data();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t row = t * H + hk;
    const float* pt = p + h0 * T + t;  // pt[i * T]
    if (vg.exact) {
      const float* v = vg.rotated + row * d;
      for (int64_t i = 0; i < G; ++i) Axpy(pt[i * T], v, acc.data() + i * d, d);
    } else if (codes) {
      const float nu = static_cast<float>(vg.norms[row]);
      const uint8_t* packed = vg.codes + row * code_bytes;
      if (variant == 1) {
        UnpackRow(packed, d, vg.mse_bits, code.data());
        for (int64_t i = 0; i < G; ++i) {
          const float w = pt[i * T] * nu;
          float* a = acc.data() + i * d;
          for (int64_t j = 0; j < d; ++j) a[j] += w * centroid[code[j]];
        }
      } else {
        centroids.Expand(packed, d, values.data());
        for (int64_t i = 0; i < G; ++i) Axpy(pt[i * T] * nu, values.data(), acc.data() + i * d, d);
      }
    }
    if (vg.prod) {
      const float rho = static_cast<float>(vg.rnorms[row]);
      const uint8_t* packed = vg.qjl + row * qjl_bytes;
      if (variant == 1) {
        UnpackRow(packed, m, 1, code.data());
        for (int64_t i = 0; i < G; ++i) {
          const float w = pt[i * T] * rho;
          float* a = accs.data() + i * m;
          for (int64_t r = 0; r < m; ++r) a[r] += code[r] ? w : -w;
        }
      } else {
        signs.Expand(packed, m, values.data());
        for (int64_t i = 0; i < G; ++i)
          Axpy(pt[i * T] * rho, values.data(), accs.data() + i * m, m);
      }
    }
  }
  // Once a query head: unrotate, add the QJL part, scatter to the group's channels.
  std::vector<float> o(d), sketch_part(d);
  const std::vector<int64_t>& channels = vg.channels[hk];
  for (int64_t i = 0; i < G; ++i) {
    c.rotation().ApplyTranspose(acc.data() + i * d, o.data());
    if (vg.prod) {
      std::fill(sketch_part.begin(), sketch_part.end(), 0.0f);
      for (int64_t r = 0; r < m; ++r) {
        Axpy(accs[i * m + r], c.sketch().data() + r * d, sketch_part.data(), d);
      }
      for (int64_t j = 0; j < d; ++j) o[j] += c.qjl_scale() * sketch_part[j];
    }
    for (int64_t j = 0; j < d; ++j) out[(h0 + i) * D + channels[j]] += o[j];
  }
}

struct Problem {
  torch::Tensor q;  // contiguous float32 [heads, D]
  int64_t heads = 0, kv_heads = 0, tokens = 0, D = 0;
};

absl::StatusOr<Problem> CheckProblem(const torch::Tensor& q, const TurboQuant& kq,
                                     const TurboQuantTensor& k, const TurboQuant* vq,
                                     const TurboQuantTensor* v, int variant,
                                     const std::string& where) {
  if (variant != 1 && variant != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "variant ", variant, " does not exist (1 or 2)"));
  }
  if (absl::Status s = kq.Check(k); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, "K: ", s.message()));
  }
  Problem pr;
  pr.tokens = k.shape[0];
  pr.kv_heads = k.shape[1];
  pr.D = kq.head_dim();
  if (vq != nullptr) {
    if (absl::Status s = vq->Check(*v); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "V: ", s.message()));
    }
    if (v->shape != k.shape) {
      return absl::InvalidArgumentError(absl::StrFormat("%sK is [%s] but V is [%s]", where,
                                                        absl::StrJoin(k.shape, ", "),
                                                        absl::StrJoin(v->shape, ", ")));
    }
    if (pr.tokens == 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, "attention over 0 tokens"));
    }
  }
  absl::StatusOr<torch::Tensor> qf = CheckQuery(q, pr.D, pr.kv_heads, where);
  if (!qf.ok()) return qf.status();
  pr.q = *qf;
  pr.heads = pr.q.size(0);
  return pr;
}

// The logits of every query head into logits [heads, T] (zeroed here).
void AllLogits(int variant, const Problem& pr, const TurboQuant& kq, const TurboQuantTensor& k,
               float* logits) {
  std::fill(logits, logits + pr.heads * pr.tokens, 0.0f);
  const int64_t group = pr.heads / pr.kv_heads;
  for (int g = 0; g < kq.num_groups(); ++g) {
    const GroupView view = View(kq, k, g);
    for (int64_t hk = 0; hk < pr.kv_heads; ++hk) {
      GroupLogits(variant, view, pr.q.data_ptr<float>(), pr.D, hk * group, group, hk, pr.tokens,
                  pr.kv_heads, logits);
    }
  }
}

// [T, H, D] float32 contiguous, after checks.
absl::StatusOr<torch::Tensor> CheckDense(const char* name, const torch::Tensor& x,
                                         const std::string& where) {
  if (!x.defined() || !x.device().is_cpu() || x.dim() != 3 || x.scalar_type() != torch::kFloat32) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, name, " must be float32 [tokens, kv_heads, head_dim] on cpu"));
  }
  return x.contiguous();
}

}  // namespace

absl::StatusOr<torch::Tensor> CodebookLogits(const torch::Tensor& q, const TurboQuant& kq,
                                             const TurboQuantTensor& k, int variant) {
  absl::StatusOr<Problem> pr =
      CheckProblem(q, kq, k, nullptr, nullptr, variant, "CodebookLogits: ");
  if (!pr.ok()) return pr.status();
  torch::Tensor logits = torch::empty({pr->heads, pr->tokens}, torch::kFloat32);
  AllLogits(variant, *pr, kq, k, logits.data_ptr<float>());
  return logits;
}

absl::StatusOr<torch::Tensor> CodebookAttention(const torch::Tensor& q, const TurboQuant& kq,
                                                const TurboQuantTensor& k, const TurboQuant& vq,
                                                const TurboQuantTensor& v, float scale,
                                                int variant) {
  const std::string where = "CodebookAttention: ";
  if (vq.head_dim() != kq.head_dim()) {
    return absl::InvalidArgumentError(absl::StrFormat("%sK's format has head_dim %d, V's %d", where,
                                                      kq.head_dim(), vq.head_dim()));
  }
  absl::StatusOr<Problem> pr = CheckProblem(q, kq, k, &vq, &v, variant, where);
  if (!pr.ok()) return pr.status();
  torch::Tensor p = torch::empty({pr->heads, pr->tokens}, torch::kFloat32);
  float* ps = p.data_ptr<float>();
  AllLogits(variant, *pr, kq, k, ps);
  for (int64_t h = 0; h < pr->heads; ++h) Softmax(ps + h * pr->tokens, pr->tokens, scale);
  torch::Tensor out = torch::zeros({pr->heads, pr->D}, torch::kFloat32);
  const int64_t group = pr->heads / pr->kv_heads;
  for (int g = 0; g < vq.num_groups(); ++g) {
    const GroupView view = View(vq, v, g);
    for (int64_t hk = 0; hk < pr->kv_heads; ++hk) {
      GroupValues(variant, view, ps, pr->D, hk * group, group, hk, pr->tokens, pr->kv_heads,
                  out.data_ptr<float>());
    }
  }
  return out;
}

absl::StatusOr<torch::Tensor> DenseLogits(const torch::Tensor& q, const torch::Tensor& k) {
  const std::string where = "DenseLogits: ";
  absl::StatusOr<torch::Tensor> kf = CheckDense("k", k, where);
  if (!kf.ok()) return kf.status();
  const int64_t T = kf->size(0), H = kf->size(1), D = kf->size(2);
  absl::StatusOr<torch::Tensor> qf = CheckQuery(q, D, H, where);
  if (!qf.ok()) return qf.status();
  const int64_t heads = qf->size(0), group = heads / H;
  torch::Tensor logits = torch::empty({heads, T}, torch::kFloat32);
  const float* qs = qf->data_ptr<float>();
  const float* ks = kf->data_ptr<float>();
  float* ls = logits.data_ptr<float>();
  for (int64_t hk = 0; hk < H; ++hk) {
    for (int64_t t = 0; t < T; ++t) {
      const float* krow = ks + (t * H + hk) * D;
      for (int64_t i = 0; i < group; ++i) {
        const int64_t h = hk * group + i;
        ls[h * T + t] = Dot(qs + h * D, krow, D);
      }
    }
  }
  return logits;
}

absl::StatusOr<torch::Tensor> DenseAttention(const torch::Tensor& q, const torch::Tensor& k,
                                             const torch::Tensor& v, float scale) {
  const std::string where = "DenseAttention: ";
  absl::StatusOr<torch::Tensor> vf = CheckDense("v", v, where);
  if (!vf.ok()) return vf.status();
  if (k.sizes() != v.sizes() || k.size(0) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "k and v must be of one non-empty shape"));
  }
  absl::StatusOr<torch::Tensor> p = DenseLogits(q, k);
  if (!p.ok()) return p.status();
  const int64_t T = vf->size(0), H = vf->size(1), D = vf->size(2);
  const int64_t heads = p->size(0), group = heads / H;
  float* ps = p->data_ptr<float>();
  for (int64_t h = 0; h < heads; ++h) Softmax(ps + h * T, T, scale);
  torch::Tensor out = torch::zeros({heads, D}, torch::kFloat32);
  float* os = out.data_ptr<float>();
  const float* vs = vf->data_ptr<float>();
  for (int64_t hk = 0; hk < H; ++hk) {
    for (int64_t t = 0; t < T; ++t) {
      const float* vrow = vs + (t * H + hk) * D;
      for (int64_t i = 0; i < group; ++i) {
        const int64_t h = hk * group + i;
        Axpy(ps[h * T + t], vrow, os + h * D, D);
      }
    }
  }
  return out;
}

}  // namespace kvgate::kernels
