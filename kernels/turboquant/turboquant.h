// TurboQuant (Zandieh et al., arXiv 2504.19874) as a KV-cache format: a seeded random rotation,
// then a per-coordinate Lloyd-Max codebook for the law of a rotated unit vector's coordinate
// (TurboQuant_mse), optionally plus a 1-bit QJL sketch of the residual (TurboQuant_prod), with an
// fp16 norm a vector and bit-packed codes. Tensors [tokens, kv_heads, head_dim] in and out.
//
// One vector x in R^d through a TurboQuantCodec of b bits (kind kMse: b codebook bits; kind kProd:
// b - 1 codebook bits and a 1-bit QJL sketch; the codebook of 0 bits is {0}, i.e. no codes):
//
//   n      = ||x||_2 (accumulated in double), stored as nu = fp16(n)        "norms"
//   u      = x / n (0 when n = 0);  y = R u                                 (R: rotation.h)
//   code_j = #{k : y_j > t_k}, t the codebook's boundaries, so y_j gets its nearest centroid
//            (a value exactly on a boundary goes to the lower cell)         "codes"
//   x_mse  = nu * R^T c[code]                                               (c: lloyd_max.h)
//  kProd only (S: m x d seeded N(0,1), m = d; stream kStreamQjl):
//   r      = x - x_mse; rho = ||r||, stored as fp16(rho)                    "residual_norms"
//   s_i    = sign((S r)_i), +1 for >= 0, stored as one bit (1 = +1)         "qjl"
//
//   Decode:  x_hat = x_mse                                                    (kMse)
//            x_hat = x_mse + fp16(rho) * sqrt(pi/2)/m * S^T s                 (kProd)
//
// For kProd, Decode returns that full reconstruction (the codebook part plus the QJL part): its
// inner product with any q is exactly the paper's estimator
//   <q, x_hat> = <q, x_mse> + fp16(rho) sqrt(pi/2)/m <S q, s>,
// unbiased over S (E_S <q, x_hat> = <q, x>, up to the fp16 rounding of rho: relative <= 2^-11 of
// the residual term). As a vector it is noisy (E||x_hat - x||^2 = rho^2 (pi/2 - 1/m) more than the
// codebook part alone): kProd is meant for inner products (keys); use kMse where the vector itself
// matters. The fused attention of codebook_attention.h computes with the same quantities.
//
// Outlier split (options.split; "turboquant_mse_split:bits=2.5"): per kv head, the head_dim/2
// channels with the largest sum of x^2 over the tokens encoded (ties: the lower channel) are the
// outliers; they are gathered in ascending channel order and quantized by an independent codec of
// bits + 1 bits, the other head_dim/2 channels by one of `bits` bits, so code bits average exactly
// bits + 0.5 a channel. (The paper splits channels into an outlier and a non-outlier set, each
// quantized by its own TurboQuant instance, the outliers at more bits; its exact outlier count was
// not checked here: with one extra bit, only half the channels average b + 0.5, and the byte
// counts below are this code's, not the paper's.) The norms count extra: two a vector. Encode picks
// the set from the tensor it encodes; EncodeWithOutliers takes a set (e.g. chosen at prefill and
// kept for every later token). The set is stored as a bitmask, uint8 [kv_heads, ceil(head_dim/8)],
// counted in the bytes. Each group has its own seed (SeededBits(seed, kStreamGroup, g)), rotation,
// norms and, for kProd, its own QJL sketch and residual norm.
//
// Layout of a TurboQuantTensor for x of shape [T, H, D] (all tensors contiguous, on the CPU). For
// group g of dimension d_g (D, or D/2 for each split group) with m_g codebook bits:
//   codes           uint8   [T, H, ceil(d_g m_g / 8)]  code j of vector (t, h) occupies bits
//                   j*m_g .. j*m_g + m_g - 1 of the row's little-endian bit stream (stream bit k is
//                   bit k%8 of byte k/8); padding bits are 0. Undefined when m_g = 0.
//   norms           float16 [T, H]                     nu. Undefined when m_g = 0.
//   qjl             uint8   [T, H, ceil(m/8)]          kProd: bit i (same bit order) is s_i = +1.
//   residual_norms  float16 [T, H]                     kProd: fp16(rho).
// and, split only, outlier_mask uint8 [H, ceil(D/8)]: bit c of head h (byte c/8, bit c%8) is 1 when
// channel c is an outlier; exactly D/2 bits a head. Group 0 is the outliers, group 1 the rest.
// Bytes a vector, D = 128, no split: mse b=1..4: 18, 34, 50, 66; prod b=1..4: 18, 36, 52, 68
// (codes + 2 for the norm + 16 QJL bytes + 2 for rho; prod b=1 has no codes and no norm), against
// 256 in bf16. Bytes(T, H) = T * H * BytesPerVector() + (split ? H * ceil(D/8) : 0), exactly.
//
// Exact cleanup (EncodeExactCleanup): the same tensor with every approximation removed, for
// separating the cost of the fused integration from its error: rotated = R x in float32
// [T, H, d_g] replaces codes and norms (the norm is 1), and for kProd the residual is exactly 0
// (qjl all +1, residual_norms 0), so the fused path computes exact attention through its own loops.
//
// Errors: x undefined, not on the CPU, of a dtype other than float32/bfloat16/float16, not of rank
// 3, of the wrong head_dim, or holding a NaN/Inf (named by [token, head, channel]) is
// InvalidArgument; a norm beyond fp16 range (> 65504) is OutOfRange naming the vector. Make()
// rejects bits outside 1..4 (1..3 split), a head_dim the rotation cannot take (hadamard: a power of
// two; split hadamard: D/2 a power of two), naming the problem.
//
// Usage:
//   TurboQuantOptions options;  // kMse, hadamard
//   options.bits = 3;
//   options.seed = 7;
//   absl::StatusOr<TurboQuant> tq = TurboQuant::Make(options, /*head_dim=*/128);
//   absl::StatusOr<TurboQuantTensor> k = tq->Encode(keys);        // keys [T, H, 128]
//   absl::StatusOr<torch::Tensor> k_hat = tq->Decode(*k);         // float32 [T, H, 128]
//   int64_t bytes = tq->Bytes(T, H);                              // == k->bytes()
//
// The reference (EncodeRef/DecodeRef; the codec's loops in turboquant_ref.cc) rotates by the dense
// matrix one vector at a time in double; the fast path (turboquant.cc) uses the FWHT. They agree up
// to float rounding: codes may differ only where y_j lies within float rounding of a boundary.
// Tests: tools/bazel test //kernels/turboquant:turboquant_test
// Benchmark: tools/bazel run //kernels/turboquant:turboquant_benchmark -- --benchmark_min_time=0.1

#ifndef KVGATE_KERNELS_TURBOQUANT_TURBOQUANT_H_
#define KVGATE_KERNELS_TURBOQUANT_TURBOQUANT_H_

#include <c10/util/Half.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/turboquant/rotation.h"

namespace kvgate::kernels {

enum class TurboQuantKind { kMse, kProd };

// "turboquant_mse" or "turboquant_prod".
std::string_view TurboQuantKindName(TurboQuantKind kind);

inline constexpr uint64_t kStreamGroup = 0x47524f5550000005ULL;

// sqrt(pi/2): the QJL de-biasing constant, E|g| = sqrt(2/pi) for g ~ N(0, 1).
inline constexpr double kSqrtHalfPi = 1.2533141373155002512;

// bits packed little-endian into bytes: ceil(count * bits / 8).
inline int64_t PackedBytes(int64_t count, int bits) { return (count * bits + 7) / 8; }

// Packs count codes of `bits` bits (1..8) into PackedBytes(count, bits) bytes (layout above).
void PackCodes(const uint8_t* codes, int64_t count, int bits, uint8_t* packed);
// The inverse.
void UnpackCodes(const uint8_t* packed, int64_t count, int bits, uint8_t* codes);

// One TurboQuant quantizer of d-dimensional vectors (one group of channels): rotation, codebook,
// and for kProd the QJL sketch. Immutable.
class TurboQuantCodec {
 public:
  // bits 1..4 (kProd: b - 1 codebook bits, so bits 1 is the sketch alone). InvalidArgument naming
  // the problem (bits, or a dimension the rotation cannot take).
  static absl::StatusOr<TurboQuantCodec> Make(TurboQuantKind kind, int bits, int64_t dim,
                                              uint64_t seed, RotationKind rotation);

  TurboQuantKind kind() const { return kind_; }
  int bits() const { return bits_; }
  int mse_bits() const { return mse_bits_; }  // codebook bits: bits (kMse) or bits - 1 (kProd)
  int64_t dim() const { return dim_; }
  int64_t sketch_dim() const { return kind_ == TurboQuantKind::kProd ? dim_ : 0; }  // m
  uint64_t seed() const { return seed_; }
  const Rotation& rotation() const { return rotation_; }
  const std::vector<float>& centroids() const { return centroids_; }    // 2^mse_bits ascending
  const std::vector<float>& boundaries() const { return boundaries_; }  // 2^mse_bits - 1
  const std::vector<float>& sketch() const { return sketch_; }  // S, m x d row-major (kProd)
  float qjl_scale() const { return qjl_scale_; }                // sqrt(pi/2) / m

  int64_t code_bytes() const { return PackedBytes(dim_, mse_bits_); }  // 0 when mse_bits = 0
  int64_t qjl_bytes() const { return PackedBytes(sketch_dim(), 1); }
  bool has_norms() const { return mse_bits_ > 0; }
  // code_bytes + 2 (norm, when mse_bits > 0) + qjl_bytes + 2 (rho, kProd).
  int64_t bytes_per_vector() const;

  // The reference (turboquant_ref.cc): n vectors x[n * d] (finite) to codes[n * code_bytes],
  // norms[n], qjl[n * qjl_bytes], residual_norms[n] (those a kind lacks may be null). OutOfRange
  // naming the vector when a norm overflows fp16.
  absl::Status EncodeRef(const float* x, int64_t n, uint8_t* codes, c10::Half* norms, uint8_t* qjl,
                         c10::Half* residual_norms) const;
  void DecodeRef(const uint8_t* codes, const c10::Half* norms, const uint8_t* qjl,
                 const c10::Half* residual_norms, int64_t n, float* out) const;

  // The CPU fast path (turboquant.cc), same contract.
  absl::Status Encode(const float* x, int64_t n, uint8_t* codes, c10::Half* norms, uint8_t* qjl,
                      c10::Half* residual_norms) const;
  void Decode(const uint8_t* codes, const c10::Half* norms, const uint8_t* qjl,
              const c10::Half* residual_norms, int64_t n, float* out) const;

  // Exact cleanup: rotated[n * d] = R x; for kProd qjl all +1 and residual_norms 0.
  void EncodeExactCleanup(const float* x, int64_t n, float* rotated, uint8_t* qjl,
                          c10::Half* residual_norms) const;

 private:
  TurboQuantCodec() = default;
  TurboQuantKind kind_ = TurboQuantKind::kMse;
  int bits_ = 0, mse_bits_ = 0;
  int64_t dim_ = 0;
  uint64_t seed_ = 0;
  Rotation rotation_;
  std::vector<float> centroids_, boundaries_, sketch_;
  float qjl_scale_ = 0;
};

struct TurboQuantOptions {
  TurboQuantKind kind = TurboQuantKind::kMse;
  int bits = 3;        // 1..4; split: 1..3, the outliers get bits + 1
  bool split = false;  // outlier split (see above): bits + 0.5 a channel on average
  uint64_t seed = 0;
  RotationKind rotation = RotationKind::kHadamard;
};

// The canonical spec: "turboquant_mse:bits=3:rotation=hadamard:seed=7",
// "turboquant_prod_split:bits=2.5:rotation=hadamard:seed=7".
std::string TurboQuantName(const TurboQuantOptions& options);

// One group's share of every vector of a [T, H, D] tensor; see the layout above.
struct TurboQuantGroupCodes {
  torch::Tensor codes;           // uint8 [T, H, code_bytes]; undefined when mse_bits = 0
  torch::Tensor norms;           // float16 [T, H]; undefined when mse_bits = 0
  torch::Tensor qjl;             // uint8 [T, H, qjl_bytes]; kProd only
  torch::Tensor residual_norms;  // float16 [T, H]; kProd only
  torch::Tensor rotated;         // float32 [T, H, d]; exact cleanup only (no codes, no norms)
};

struct TurboQuantTensor {
  std::string format;                        // TurboQuantName of the options that made it
  std::vector<int64_t> shape;                // [T, H, D] of the tensor encoded
  torch::Tensor outlier_mask;                // uint8 [H, ceil(D/8)]; split only
  std::vector<TurboQuantGroupCodes> groups;  // 1, or 2 when split (0: outliers, 1: the rest)
  bool exact_cleanup = false;

  // Exact bytes of every defined tensor.
  int64_t bytes() const;
};

// TurboQuant for one head_dim: one codec, or two for the split. Cheap to copy (shares its codecs).
class TurboQuant {
 public:
  static absl::StatusOr<TurboQuant> Make(const TurboQuantOptions& options, int64_t head_dim);

  const TurboQuantOptions& options() const { return options_; }
  std::string name() const { return TurboQuantName(options_); }
  int64_t head_dim() const { return head_dim_; }
  int num_groups() const { return static_cast<int>(codecs_.size()); }
  const TurboQuantCodec& codec(int group) const { return *codecs_[group]; }

  // x [T, H, head_dim] (float32/bfloat16/float16, CPU, any strides) -> codes; the split picks its
  // outliers from x. The fast path.
  absl::StatusOr<TurboQuantTensor> Encode(const torch::Tensor& x) const;
  // With a given outlier set (split only): uint8 [H, ceil(D/8)], D/2 bits a head.
  absl::StatusOr<TurboQuantTensor> EncodeWithOutliers(const torch::Tensor& x,
                                                      const torch::Tensor& outlier_mask) const;
  // float32 [T, H, head_dim]. InvalidArgument when t was made by other options or its tensors are
  // not of the layout above.
  absl::StatusOr<torch::Tensor> Decode(const TurboQuantTensor& t) const;

  // The same through the codec's reference loops.
  absl::StatusOr<TurboQuantTensor> EncodeRef(const torch::Tensor& x) const;
  absl::StatusOr<torch::Tensor> DecodeRef(const TurboQuantTensor& t) const;

  // See "Exact cleanup" above. Decode of it returns x up to float rounding.
  absl::StatusOr<TurboQuantTensor> EncodeExactCleanup(const torch::Tensor& x) const;

  // The per-head outlier set Encode would choose for x (split only; checked like Encode).
  absl::StatusOr<torch::Tensor> ChooseOutliers(const torch::Tensor& x) const;

  // InvalidArgument unless t is of this format and the layout above (exact cleanup included).
  absl::Status Check(const TurboQuantTensor& t) const;

  // The channels of group g in head h, ascending: 0..D-1 without the split.
  std::vector<int64_t> GroupChannels(const TurboQuantTensor& t, int group, int64_t head) const;

  // Exact bytes of T tokens x H heads (exact cleanup aside): see the layout above.
  int64_t BytesPerVector() const;
  int64_t Bytes(int64_t tokens, int64_t kv_heads) const;

 private:
  enum class Path { kFast, kRef, kExact };
  absl::StatusOr<TurboQuantTensor> EncodeImpl(const torch::Tensor& x, const torch::Tensor* mask,
                                              Path path) const;
  absl::StatusOr<torch::Tensor> DecodeImpl(const TurboQuantTensor& t, Path path) const;

  TurboQuantOptions options_;
  int64_t head_dim_ = 0;
  std::vector<std::shared_ptr<const TurboQuantCodec>> codecs_;
};

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_TURBOQUANT_TURBOQUANT_H_
