// Decode attention primitives on the CPU (see attention.h): input checks, the batched-matmul
// variant, and the blocked split-K loop shared by dense variant 2, int4-direct and selected
// attention. A device kernel dispatches from here.
//
// The loop: a task is (a span of one token list, the kv heads attending to it, each with the query
// heads reading it). Tokens are its outer loop, so a token's K rows of all those kv heads are read
// together (contiguous when the list is shared by every head), each row once for all its query
// heads. It computes the span's logits, a local max m and sum l of exp(logit - m) a head, and
// acc = sum of exp(logit - m) * v; tasks run under
// at::parallel_for and are merged per head by log-sum-exp: M = max m, L = sum l e^(m - M),
// out = sum acc e^(m - M) / L. The task body is compiled twice on x86-64 (target "avx2,fma", with
// a vectorized exp, and the baseline) and picked at run time (__builtin_cpu_supports), so the build
// stays portable. Int4 rows are decoded in a permuted order (per block of 32: the 16 low nibbles,
// then the 16 high ones, i.e. elements 0,2,..,30 then 1,3,..,31) so the unpacking vectorizes; q is
// permuted the same way before and the output un-permuted after, which leaves every dot product
// and weighted sum the same up to summation order.

#include "kernels/attention/attention.h"

#include <ATen/Parallel.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kernels/common/tensor_checks.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KVGATE_X86_AVX2 1
#define KVGATE_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define KVGATE_X86_AVX2 0
#endif

namespace kvgate::kernels {
namespace {

bool IsFloat(const torch::Tensor& t) {
  const torch::ScalarType s = t.scalar_type();
  return s == torch::kFloat32 || s == torch::kBFloat16 || s == torch::kFloat16;
}

// The sizes every primitive needs.
struct Dims {
  int64_t heads = 0, kv_heads = 0, tokens = 0, head_dim = 0;
  int64_t group() const { return heads / kv_heads; }
};

// Checks q [heads, D] against a K/V shape [T, kv_heads, D] (already known to be rank 3).
absl::Status CheckQuery(const std::string& who, const torch::Tensor& q,
                        const std::vector<int64_t>& kv_shape, Dims* dims) {
  if (!q.defined() || !q.device().is_cpu() || !IsFloat(q) || q.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": q must be float32/bfloat16/float16 [heads, head_dim] on cpu, got ",
                     DescribeTensor(q)));
  }
  dims->heads = q.size(0);
  dims->tokens = kv_shape[0];
  dims->kv_heads = kv_shape[1];
  dims->head_dim = kv_shape[2];
  if (q.size(1) != dims->head_dim || dims->head_dim < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: q's head_dim %d differs from K/V's %d (K/V [%s])", who, q.size(1),
                        dims->head_dim, absl::StrJoin(kv_shape, ", ")));
  }
  if (dims->kv_heads < 1 || dims->heads < 1 || dims->heads % dims->kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: heads %d must be a positive multiple of kv_heads %d", who, dims->heads,
                        dims->kv_heads));
  }
  if (dims->tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": no history (K/V have 0 tokens)"));
  }
  return absl::OkStatus();
}

// Checks dense q, k, v.
absl::Status CheckDense(const std::string& who, const torch::Tensor& q, const torch::Tensor& k,
                        const torch::Tensor& v, Dims* dims) {
  for (auto [name, t] : {std::pair{"k", &k}, std::pair{"v", &v}}) {
    if (!t->defined() || !t->device().is_cpu() || !IsFloat(*t) || t->dim() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": ", name,
          " must be float32/bfloat16/float16 [tokens, kv_heads, head_dim] on cpu, got ",
          DescribeTensor(*t)));
    }
  }
  if (k.sizes() != v.sizes()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": k and v differ: ", DescribeTensor(k), " and ", DescribeTensor(v)));
  }
  return CheckQuery(who, q, k.sizes().vec(), dims);
}

absl::StatusOr<float> Scale(const std::string& who, const AttentionOptions& options,
                            int64_t head_dim) {
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(head_dim)));
  if (!std::isfinite(scale)) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": scale ", scale, " is not finite"));
  }
  return static_cast<float>(scale);
}

torch::Tensor Float32(const torch::Tensor& t) { return t.to(torch::kFloat32).contiguous(); }

// ---------------------------------------------------------------------------------------------
// The blocked loop.

// Rows of a dense float32 [T, kv_heads, D] tensor.
struct DenseRows {
  const float* data;
  int64_t kv_heads, head_dim;
  template <bool kAvx2>
  const float* Row(int64_t t, int64_t g, float* /*scratch*/) const {
    return data + (t * kv_heads + g) * head_dim;
  }
  void Prefetch(int64_t t, int64_t g) const {
    const char* p = reinterpret_cast<const char*>(data + (t * kv_heads + g) * head_dim);
    for (int64_t b = 0; b < head_dim * 4; b += 64) __builtin_prefetch(p + b);
  }
};

// Rows of an int4 [T, kv_heads, D] tensor, decoded into scratch[D] with DequantizeInt4Ref's
// values, in the permuted order of each block: scratch[32b + i] is element 32b + 2i (low nibble of
// byte i) and scratch[32b + 16 + i] element 32b + 2i + 1 (high nibble), for i < 16.
struct Int4Rows {
  const uint8_t* codes;
  const c10::Half* scales;
  const c10::Half* zeros;  // null for symmetric
  int64_t kv_heads, head_dim;
  template <bool kAvx2>
  const float* Row(int64_t t, int64_t g, float* scratch) const;
  void Prefetch(int64_t t, int64_t g) const {
    const char* p = reinterpret_cast<const char*>(codes + (t * kv_heads + g) * (head_dim / 2));
    for (int64_t b = 0; b < head_dim / 2; b += 64) __builtin_prefetch(p + b);
  }
};

template <>
inline const float* Int4Rows::Row<false>(int64_t t, int64_t g, float* scratch) const {
  const int64_t vec = t * kv_heads + g;
  const int64_t blocks = head_dim / kInt4BlockSize;
  const uint8_t* c = codes + vec * (head_dim / 2);
  for (int64_t b = 0; b < blocks; ++b) {
    const float scale = static_cast<float>(scales[vec * blocks + b]);
    const uint8_t* bc = c + b * (kInt4BlockSize / 2);
    float* lo = scratch + b * kInt4BlockSize;
    float* hi = lo + kInt4BlockSize / 2;
    if (zeros == nullptr) {
      for (int i = 0; i < kInt4BlockSize / 2; ++i) {
        lo[i] = static_cast<float>((bc[i] & 0xF) - 8) * scale;
      }
      for (int i = 0; i < kInt4BlockSize / 2; ++i) {
        hi[i] = static_cast<float>((bc[i] >> 4) - 8) * scale;
      }
    } else {
      const float zero = static_cast<float>(zeros[vec * blocks + b]);
      for (int i = 0; i < kInt4BlockSize / 2; ++i) {
        lo[i] = static_cast<float>(bc[i] & 0xF) * scale + zero;
      }
      for (int i = 0; i < kInt4BlockSize / 2; ++i) {
        hi[i] = static_cast<float>(bc[i] >> 4) * scale + zero;
      }
    }
  }
  return scratch;
}

#if KVGATE_X86_AVX2
// The same values with AVX2: per block, 16 bytes split into low and high nibbles, widened eight
// at a time to int32, converted, scaled (nibble * scale is exact, so an fma adding the zero point
// rounds once, as the reference's multiply-then-add does).
template <>
KVGATE_TARGET_AVX2 inline const float* Int4Rows::Row<true>(int64_t t, int64_t g,
                                                           float* scratch) const {
  const int64_t vec = t * kv_heads + g;
  const int64_t blocks = head_dim / kInt4BlockSize;
  const uint8_t* c = codes + vec * (head_dim / 2);
  const __m128i low_mask = _mm_set1_epi8(0x0F);
  const __m256 eight = _mm256_set1_ps(8.0f);
  for (int64_t b = 0; b < blocks; ++b) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + b * 16));
    const __m128i lo = _mm_and_si128(bytes, low_mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_mask);
    const __m256 scale = _mm256_set1_ps(static_cast<float>(scales[vec * blocks + b]));
    const __m256 nibbles[4] = {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)),
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))),
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)),
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))),
    };
    float* out = scratch + b * kInt4BlockSize;
    if (zeros == nullptr) {
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(out + 8 * i, _mm256_mul_ps(_mm256_sub_ps(nibbles[i], eight), scale));
      }
    } else {
      const __m256 zero = _mm256_set1_ps(static_cast<float>(zeros[vec * blocks + b]));
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(out + 8 * i, _mm256_fmadd_ps(nibbles[i], scale, zero));
      }
    }
  }
  return scratch;
}
#endif

// [rows, D] with each block of 32 permuted as Int4Rows decodes (inverse = false), or back.
void PermuteInt4Blocks(const float* in, int64_t rows, int64_t head_dim, bool inverse, float* out) {
  for (int64_t r = 0; r < rows * head_dim; r += kInt4BlockSize) {
    for (int64_t i = 0; i < kInt4BlockSize / 2; ++i) {
      for (int64_t odd = 0; odd < 2; ++odd) {
        const int64_t natural = r + 2 * i + odd, permuted = r + odd * kInt4BlockSize / 2 + i;
        if (inverse) {
          out[natural] = in[permuted];
        } else {
          out[permuted] = in[natural];
        }
      }
    }
  }
}

// n query heads h0.. that read kv head g and attend to one token list (null: every token).
struct Unit {
  int64_t g, h0, n;
  const std::vector<int64_t>* list;
};

// Consecutive units (so consecutive heads) sharing one list, over positions [begin, end) of it.
// Tokens are the outer loop, so one task reads each token's rows of all its kv heads together
// (contiguous memory when every kv head is in the task).
struct Task {
  const Unit* units;
  int64_t num_units;
  int64_t begin, end;
  int64_t h0() const { return units[0].h0; }
  int64_t heads() const { return units[num_units - 1].h0 + units[num_units - 1].n - units[0].h0; }
  const std::vector<int64_t>* list() const { return units[0].list; }
};

// Tokens a chunk: sums over a span are summed a chunk at a time (two-level summation).
constexpr int64_t kChunk = 64;

// Tokens a task at most: its logits (heads x span floats) stay in cache between the two passes.
constexpr int64_t kMaxSpan = 512;

// Tokens ahead whose rows are prefetched (lists jump around; the hardware prefetcher cannot tell).
constexpr int64_t kPrefetch = 8;

// Query heads handled together for one key or value row (a task's n is split into groups of this).
constexpr int64_t kMaxGroup = 16;

// A task's partial softmax state over its heads: m[heads], l[heads], acc[heads * D].
struct Partial {
  std::vector<float> m, l, acc;
};

// Eight independent sums, so the compiler can keep them in one vector register (SLP).
inline __attribute__((always_inline)) float Dot(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  }
  float total = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  for (; i < n; ++i) total += a[i] * b[i];
  return total;
}

// acc[0..n) += p * x[0..n), eight lanes at a time (SLP-vectorized).
inline __attribute__((always_inline)) void Axpy(float p, const float* __restrict x, int64_t n,
                                                float* __restrict acc) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[i + j] += p * x[i + j];
  }
  for (; i < n; ++i) acc[i] += p * x[i];
}

#if KVGATE_X86_AVX2
// exp of eight floats <= 0 (Cephes expf: range reduction by ln 2 in two parts, a degree-6
// polynomial, 2^n by exponent bits); about 1 ulp on [-87, 0], 0-ish (~1e-38) below.
KVGATE_TARGET_AVX2 inline __m256 Exp8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365447504f));
  __m256 n = _mm256_floor_ps(
      _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// x[i] = exp(x[i] - m) for i < n, returning their sum (summed in eight lanes, then across).
KVGATE_TARGET_AVX2 inline float ExpMinusAvx2(float* x, int64_t n, float m) {
  const __m256 vm = _mm256_set1_ps(m);
  __m256 sum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  float total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) +
                ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    total += x[i];
  }
  return total;
}

KVGATE_TARGET_AVX2 inline float HorizontalSum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// out[j] = q_j . k for the n (<= 4) rows q_j = q + j * d: one load of k for every head, each
// head its own accumulator chain.
template <int kN>
KVGATE_TARGET_AVX2 inline void DotHeadsAvx2(const float* q, int64_t d, const float* k, float* out) {
  __m256 acc[kN];
  for (int j = 0; j < kN; ++j) acc[j] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 kv = _mm256_loadu_ps(k + i);
    for (int j = 0; j < kN; ++j)
      acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q + j * d + i), kv, acc[j]);
  }
  for (int j = 0; j < kN; ++j) {
    float total = HorizontalSum(acc[j]);
    for (int64_t r = i; r < d; ++r) total += q[j * d + r] * k[r];
    out[j] = total;
  }
}

// acc_j += p[j] * v for the n (<= 4) rows acc_j = acc + j * d.
template <int kN>
KVGATE_TARGET_AVX2 inline void AxpyHeadsAvx2(const float* p, const float* v, int64_t d,
                                             float* acc) {
  __m256 pj[kN];
  for (int j = 0; j < kN; ++j) pj[j] = _mm256_set1_ps(p[j]);
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 vv = _mm256_loadu_ps(v + i);
    for (int j = 0; j < kN; ++j) {
      float* a = acc + j * d + i;
      _mm256_storeu_ps(a, _mm256_fmadd_ps(pj[j], vv, _mm256_loadu_ps(a)));
    }
  }
  for (; i < d; ++i) {
    for (int j = 0; j < kN; ++j) acc[j * d + i] += p[j] * v[i];
  }
}

// The same for any n, four heads at a time.
KVGATE_TARGET_AVX2 inline void DotHeads(const float* q, int64_t n, int64_t d, const float* k,
                                        float* out) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) DotHeadsAvx2<4>(q + j * d, d, k, out + j);
  switch (n - j) {
    case 3:
      DotHeadsAvx2<3>(q + j * d, d, k, out + j);
      break;
    case 2:
      DotHeadsAvx2<2>(q + j * d, d, k, out + j);
      break;
    case 1:
      DotHeadsAvx2<1>(q + j * d, d, k, out + j);
      break;
  }
}

KVGATE_TARGET_AVX2 inline void AxpyHeads(const float* p, int64_t n, const float* v, int64_t d,
                                         float* acc) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) AxpyHeadsAvx2<4>(p + j, v, d, acc + j * d);
  switch (n - j) {
    case 3:
      AxpyHeadsAvx2<3>(p + j, v, d, acc + j * d);
      break;
    case 2:
      AxpyHeadsAvx2<2>(p + j, v, d, acc + j * d);
      break;
    case 1:
      AxpyHeadsAvx2<1>(p + j, v, d, acc + j * d);
      break;
  }
}
#endif

// x[i] = exp(x[i] - m) for i < n, returning their sum.
template <bool kAvx2>
inline __attribute__((always_inline)) float ExpMinus(float* x, int64_t n, float m) {
#if KVGATE_X86_AVX2
  if constexpr (kAvx2) return ExpMinusAvx2(x, n, m);
#endif
  float total = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    total += x[i];
  }
  return total;
}

// One task: logits, local softmax, values; see the file comment.
template <bool kAvx2, class Rows>
inline __attribute__((always_inline)) void RunTaskImpl(
    const Task& task, const float* q, const Rows& k, const Rows& v, int64_t head_dim, float scale,
    float* raw_logits /*[heads, T] or null*/, int64_t tokens, float* logits, float* scratch,
    float* chunk_acc, Partial* partial) {
  const int64_t span = task.end - task.begin;
  const int64_t n = task.heads();
  const int64_t h_first = task.h0();
  const std::vector<int64_t>* list = task.list();
  const auto token = [&](int64_t i) { return list ? (*list)[task.begin + i] : task.begin + i; };
  float dots[kMaxGroup];
  // Logits: for each token, each unit's key row read once for the unit's heads.
  for (int64_t i = 0; i < span; ++i) {
    const int64_t t = token(i);
    for (int64_t u = 0; u < task.num_units; ++u) {
      const Unit& unit = task.units[u];
      if (i + kPrefetch < span) k.Prefetch(token(i + kPrefetch), unit.g);
      const float* row = k.template Row<kAvx2>(t, unit.g, scratch);
      for (int64_t j0 = 0; j0 < unit.n; j0 += kMaxGroup) {
        const int64_t nj = unit.n - j0 < kMaxGroup ? unit.n - j0 : kMaxGroup;
        const float* qj = q + (unit.h0 + j0) * head_dim;
#if KVGATE_X86_AVX2
        if constexpr (kAvx2) {
          DotHeads(qj, nj, head_dim, row, dots);
        } else
#endif
        {
          for (int64_t j = 0; j < nj; ++j) dots[j] = Dot(qj + j * head_dim, row, head_dim);
        }
        float* out = logits + (unit.h0 + j0 - h_first) * span + i;
        for (int64_t j = 0; j < nj; ++j) out[j * span] = scale * dots[j];
      }
    }
  }
  // Local softmax: m, l, and logits replaced by exp(logit - m); l summed a chunk at a time
  // (two-level summation: float error grows like the chunk count, not the span).
  for (int64_t j = 0; j < n; ++j) {
    float* lj = logits + j * span;
    if (raw_logits != nullptr) {
      float* dst = raw_logits + (h_first + j) * tokens;
      for (int64_t i = 0; i < span; ++i) dst[token(i)] = lj[i];
    }
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < span; ++i) m = lj[i] > m ? lj[i] : m;
    float l = 0.0f;
    for (int64_t c = 0; c < span; c += kChunk) {
      l += ExpMinus<kAvx2>(lj + c, (c + kChunk < span ? kChunk : span - c), m);
    }
    partial->m[j] = m;
    partial->l[j] = l;
  }
  // Values, summed a chunk of tokens at a time into chunk_acc, then into acc. The token and unit
  // loops are the logits loop's above, on purpose: the weights need every logit of the span (its
  // max) first, so V is a second pass over the same tokens, with its own prefetch.
  float* acc = partial->acc.data();
  for (int64_t e = 0; e < n * head_dim; ++e) acc[e] = 0.0f;
  for (int64_t c = 0; c < span; c += kChunk) {
    for (int64_t e = 0; e < n * head_dim; ++e) chunk_acc[e] = 0.0f;
    const int64_t end = c + kChunk < span ? c + kChunk : span;
    for (int64_t i = c; i < end; ++i) {
      const int64_t t = token(i);
      for (int64_t u = 0; u < task.num_units; ++u) {
        const Unit& unit = task.units[u];
        if (i + kPrefetch < span) v.Prefetch(token(i + kPrefetch), unit.g);
        const float* row = v.template Row<kAvx2>(t, unit.g, scratch);
        for (int64_t j0 = 0; j0 < unit.n; j0 += kMaxGroup) {
          const int64_t nj = unit.n - j0 < kMaxGroup ? unit.n - j0 : kMaxGroup;
          const int64_t first = unit.h0 + j0 - h_first;
          for (int64_t j = 0; j < nj; ++j) dots[j] = logits[(first + j) * span + i];
          float* accj = chunk_acc + first * head_dim;
#if KVGATE_X86_AVX2
          if constexpr (kAvx2) {
            AxpyHeads(dots, nj, row, head_dim, accj);
          } else
#endif
          {
            for (int64_t j = 0; j < nj; ++j) Axpy(dots[j], row, head_dim, accj + j * head_dim);
          }
        }
      }
    }
    for (int64_t e = 0; e < n * head_dim; ++e) acc[e] += chunk_acc[e];
  }
}

#if KVGATE_X86_AVX2
template <class Rows>
KVGATE_TARGET_AVX2 void RunTaskAvx2(const Task& task, const float* q, const Rows& k, const Rows& v,
                                    int64_t head_dim, float scale, float* raw_logits,
                                    int64_t tokens, float* logits, float* scratch, float* chunk_acc,
                                    Partial* partial) {
  RunTaskImpl<true>(task, q, k, v, head_dim, scale, raw_logits, tokens, logits, scratch, chunk_acc,
                    partial);
}
#endif

template <class Rows>
void RunTaskBaseline(const Task& task, const float* q, const Rows& k, const Rows& v,
                     int64_t head_dim, float scale, float* raw_logits, int64_t tokens,
                     float* logits, float* scratch, float* chunk_acc, Partial* partial) {
  RunTaskImpl<false>(task, q, k, v, head_dim, scale, raw_logits, tokens, logits, scratch, chunk_acc,
                     partial);
}

// Whether this CPU runs the avx2,fma build of the task body.
bool UseAvx2() {
#if KVGATE_X86_AVX2
  static const bool use = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return use;
#else
  return false;
#endif
}

template <class Rows>
void RunTask(const Task& task, const float* q, const Rows& k, const Rows& v, int64_t head_dim,
             float scale, float* raw_logits, int64_t tokens, float* logits, float* scratch,
             float* chunk_acc, Partial* partial) {
#if KVGATE_X86_AVX2
  if (UseAvx2()) {
    return RunTaskAvx2(task, q, k, v, head_dim, scale, raw_logits, tokens, logits, scratch,
                       chunk_acc, partial);
  }
#endif
  RunTaskBaseline(task, q, k, v, head_dim, scale, raw_logits, tokens, logits, scratch, chunk_acc,
                  partial);
}

// Runs the loop over rows (per query head token lists; empty = every token) and fills out (and
// probs, when defined: [heads, T] float32).
template <class Rows>
void BlockedAttention(const float* q, const Rows& k, const Rows& v, const Dims& dims, float scale,
                      const std::vector<std::vector<int64_t>>& rows, float* out,
                      torch::Tensor probs) {
  const int64_t group = dims.group();
  const int64_t num_rows = static_cast<int64_t>(rows.size());
  // Units: (kv head, the query heads that share its list), in head order.
  std::vector<Unit> units;
  if (num_rows == 0 || num_rows <= dims.kv_heads) {  // every head of a kv head shares a list
    for (int64_t g = 0; g < dims.kv_heads; ++g) {
      const std::vector<int64_t>* list =
          num_rows == 0 ? nullptr : &rows[g * group * num_rows / dims.heads];
      units.push_back({g, g * group, group, list});
    }
  } else {
    for (int64_t h = 0; h < dims.heads; ++h) units.push_back({h / group, h, 1, &rows[h]});
  }
  // Runs of consecutive units with the same list, each cut into spans: a few tasks a thread.
  std::vector<std::pair<int64_t, int64_t>> runs;  // [first unit, end unit)
  for (int64_t u = 0; u < static_cast<int64_t>(units.size()); ++u) {
    if (runs.empty() || units[u].list != units[runs.back().first].list) runs.push_back({u, u});
    runs.back().second = u + 1;
  }
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t splits =
      std::max<int64_t>(1, (4 * threads + static_cast<int64_t>(runs.size()) - 1) / runs.size());
  std::vector<Task> tasks;
  for (const auto& [first, end] : runs) {
    const std::vector<int64_t>* list = units[first].list;
    const int64_t len = list ? static_cast<int64_t>(list->size()) : dims.tokens;
    const int64_t span =
        std::min<int64_t>(kMaxSpan, std::max<int64_t>(256, (len + splits - 1) / splits));
    for (int64_t b = 0; b < len; b += span) {
      tasks.push_back({&units[first], end - first, b, std::min(len, b + span)});
    }
  }
  std::vector<Partial> partials(tasks.size());
  float* raw_logits = probs.defined() ? probs.data_ptr<float>() : nullptr;
  at::parallel_for(0, static_cast<int64_t>(tasks.size()), 1, [&](int64_t begin, int64_t end) {
    std::vector<float> logits, scratch(dims.head_dim), chunk_acc;
    for (int64_t i = begin; i < end; ++i) {
      const Task& task = tasks[i];
      const int64_t n = task.heads();
      Partial& partial = partials[i];
      partial.m.resize(n);
      partial.l.resize(n);
      partial.acc.resize(n * dims.head_dim);
      logits.resize(n * (task.end - task.begin));
      chunk_acc.resize(n * dims.head_dim);
      RunTask(task, q, k, v, dims.head_dim, scale, raw_logits, dims.tokens, logits.data(),
              scratch.data(), chunk_acc.data(), &partial);
    }
  });
  // Merge, head by head, the partials of every task holding it.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> holders(dims.heads);  // (task, local)
  for (int64_t t = 0; t < static_cast<int64_t>(tasks.size()); ++t) {
    for (int64_t j = 0; j < tasks[t].heads(); ++j) holders[tasks[t].h0() + j].push_back({t, j});
  }
  for (int64_t h = 0; h < dims.heads; ++h) {
    float max = -std::numeric_limits<float>::infinity();
    for (const auto& [t, j] : holders[h]) max = std::max(max, partials[t].m[j]);
    float sum = 0.0f;
    float* oh = out + h * dims.head_dim;
    std::fill(oh, oh + dims.head_dim, 0.0f);
    for (const auto& [t, j] : holders[h]) {
      const float w = std::exp(partials[t].m[j] - max);
      sum += partials[t].l[j] * w;
      const float* acc = partials[t].acc.data() + j * dims.head_dim;
      for (int64_t d = 0; d < dims.head_dim; ++d) oh[d] += w * acc[d];
    }
    for (int64_t d = 0; d < dims.head_dim; ++d) oh[d] /= sum;
    if (raw_logits != nullptr) {
      float* ph = raw_logits + h * dims.tokens;
      const std::vector<int64_t>* list =
          units[h * static_cast<int64_t>(units.size()) / dims.heads].list;
      const int64_t len = list ? static_cast<int64_t>(list->size()) : dims.tokens;
      for (int64_t i = 0; i < len; ++i) {
        const int64_t t = list ? (*list)[i] : i;
        ph[t] = std::exp(ph[t] - max) / sum;
      }
    }
  }
}

// probs [heads, T] float32 zeros, or undefined when not asked.
torch::Tensor MaybeProbs(const AttentionOptions& options, const Dims& dims) {
  return options.return_probs ? torch::zeros({dims.heads, dims.tokens}, torch::kFloat32)
                              : torch::Tensor();
}

absl::Status CheckRowCount(const std::string& who, int64_t num_rows, const Dims& dims) {
  if (num_rows != 1 && num_rows != dims.kv_heads && num_rows != dims.heads) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: the selection has %d rows; it must have 1 (shared), kv_heads = %d or heads = %d", who,
        num_rows, dims.kv_heads, dims.heads));
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Selections.

HistorySelection HistorySelection::Tokens(torch::Tensor indices) {
  HistorySelection s;
  s.token_indices = std::move(indices);
  return s;
}

HistorySelection HistorySelection::Blocks(torch::Tensor mask, int64_t block_size) {
  HistorySelection s;
  s.block_mask = std::move(mask);
  s.block_size = block_size;
  return s;
}

absl::StatusOr<std::vector<std::vector<int64_t>>> SelectionRows(const HistorySelection& selection,
                                                                int64_t tokens) {
  std::vector<std::vector<int64_t>> rows;
  if (selection.token_indices.defined() == selection.block_mask.defined()) {
    return absl::InvalidArgumentError(
        "selection: give exactly one of token_indices and block_mask");
  }
  if (selection.token_indices.defined()) {
    const torch::Tensor& idx = selection.token_indices;
    if (!idx.device().is_cpu() || idx.scalar_type() != torch::kInt64 || idx.dim() < 1 ||
        idx.dim() > 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("selection: token_indices must be int64 [n] or [rows, n] on cpu, got ",
                       DescribeTensor(idx)));
    }
    const torch::Tensor t2 = (idx.dim() == 1 ? idx.unsqueeze(0) : idx).contiguous();
    const int64_t n = t2.size(1);
    const int64_t* data = t2.data_ptr<int64_t>();
    std::vector<char> seen(tokens);
    for (int64_t r = 0; r < t2.size(0); ++r) {
      std::vector<int64_t> row(data + r * n, data + (r + 1) * n);
      std::fill(seen.begin(), seen.end(), 0);
      for (int64_t t : row) {
        if (t < 0 || t >= tokens) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "selection: row %d has token %d, outside the history [0, %d)", r, t, tokens));
        }
        if (seen[t]) {
          return absl::InvalidArgumentError(
              absl::StrFormat("selection: row %d repeats token %d", r, t));
        }
        seen[t] = 1;
      }
      std::sort(row.begin(), row.end());
      rows.push_back(std::move(row));
    }
  } else {
    const torch::Tensor& mask = selection.block_mask;
    const int64_t b = selection.block_size;
    if (b < 1) {
      return absl::InvalidArgumentError(absl::StrCat("selection: block_size ", b, " must be >= 1"));
    }
    const int64_t blocks = (tokens + b - 1) / b;
    if (!mask.device().is_cpu() || mask.scalar_type() != torch::kBool || mask.dim() < 1 ||
        mask.dim() > 2 || mask.size(-1) != blocks) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "selection: block_mask must be bool [%d] or [rows, %d] on cpu (ceil(%d tokens / block "
          "%d)), got %s",
          blocks, blocks, tokens, b, DescribeTensor(mask)));
    }
    const torch::Tensor m2 = (mask.dim() == 1 ? mask.unsqueeze(0) : mask).contiguous();
    const bool* data = m2.data_ptr<bool>();
    for (int64_t r = 0; r < m2.size(0); ++r) {
      std::vector<int64_t> row;
      for (int64_t j = 0; j < blocks; ++j) {
        if (!data[r * blocks + j]) continue;
        for (int64_t t = j * b; t < std::min(tokens, (j + 1) * b); ++t) row.push_back(t);
      }
      rows.push_back(std::move(row));
    }
  }
  if (rows.empty()) return absl::InvalidArgumentError("selection: no rows");
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("selection: row %d keeps no token (attention over nothing)", r));
    }
  }
  return rows;
}

absl::StatusOr<double> ActiveFraction(const HistorySelection& selection, int64_t tokens) {
  absl::StatusOr<std::vector<std::vector<int64_t>>> rows = SelectionRows(selection, tokens);
  if (!rows.ok()) return rows.status();
  double kept = 0;
  for (const std::vector<int64_t>& row : *rows) kept += static_cast<double>(row.size());
  return kept / (static_cast<double>(rows->size()) * static_cast<double>(tokens));
}

// ---------------------------------------------------------------------------------------------
// Primitives.

absl::StatusOr<AttentionOutput> DecodeAttentionReference(const torch::Tensor& q,
                                                         const torch::Tensor& k,
                                                         const torch::Tensor& v,
                                                         const AttentionOptions& options,
                                                         const HistorySelection* selection) {
  const std::string who = "DecodeAttentionReference";
  Dims dims;
  if (absl::Status s = CheckDense(who, q, k, v, &dims); !s.ok()) return s;
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(dims.head_dim)));
  std::vector<std::vector<int64_t>> rows;
  if (selection != nullptr) {
    absl::StatusOr<std::vector<std::vector<int64_t>>> r = SelectionRows(*selection, dims.tokens);
    if (!r.ok())
      return absl::Status(r.status().code(), absl::StrCat(who, ": ", r.status().message()));
    rows = *std::move(r);
    if (absl::Status s = CheckRowCount(who, static_cast<int64_t>(rows.size()), dims); !s.ok()) {
      return s;
    }
  }
  const torch::Tensor q64 = q.to(torch::kFloat64).contiguous();
  const torch::Tensor k64 = k.to(torch::kFloat64).contiguous();
  const torch::Tensor v64 = v.to(torch::kFloat64).contiguous();
  AttentionOutput result;
  result.out = torch::empty({dims.heads, dims.head_dim}, torch::kFloat64);
  if (options.return_probs) result.probs = torch::empty({dims.heads, dims.tokens}, torch::kFloat64);
  DecodeAttentionRef(q64.data_ptr<double>(), k64.data_ptr<double>(), v64.data_ptr<double>(),
                     dims.heads, dims.kv_heads, dims.tokens, dims.head_dim, scale, rows,
                     result.out.data_ptr<double>(),
                     options.return_probs ? result.probs.data_ptr<double>() : nullptr);
  return result;
}

absl::StatusOr<AttentionOutput> DenseDecodeAttention(const torch::Tensor& q, const torch::Tensor& k,
                                                     const torch::Tensor& v,
                                                     const AttentionOptions& options) {
  const std::string who =
      absl::StrCat("DenseDecodeAttention(kernel=", static_cast<int>(options.dense_kernel), ")");
  Dims dims;
  if (absl::Status s = CheckDense(who, q, k, v, &dims); !s.ok()) return s;
  absl::StatusOr<float> scale = Scale(who, options, dims.head_dim);
  if (!scale.ok()) return scale.status();
  const torch::Tensor qf = Float32(q);
  const torch::Tensor kf = k.scalar_type() == torch::kFloat32 ? k : k.to(torch::kFloat32);
  const torch::Tensor vf = v.scalar_type() == torch::kFloat32 ? v : v.to(torch::kFloat32);
  AttentionOutput result;
  if (options.dense_kernel == DenseKernel::kBatchedMatmul) {
    // [kv, G, D] x [kv, D, T] -> [kv, G, T]; softmax; [kv, G, T] x [kv, T, D] -> [kv, G, D].
    const torch::Tensor qg = (qf * *scale).view({dims.kv_heads, dims.group(), dims.head_dim});
    const torch::Tensor logits = torch::bmm(qg, kf.permute({1, 2, 0}));
    const torch::Tensor p = torch::softmax(logits, -1);
    result.out = torch::bmm(p, vf.permute({1, 0, 2})).reshape({dims.heads, dims.head_dim});
    if (options.return_probs) result.probs = p.reshape({dims.heads, dims.tokens});
    return result;
  }
  const torch::Tensor kc = kf.contiguous(), vc = vf.contiguous();
  result.out = torch::empty({dims.heads, dims.head_dim}, torch::kFloat32);
  result.probs = MaybeProbs(options, dims);
  BlockedAttention(qf.data_ptr<float>(),
                   DenseRows{kc.data_ptr<float>(), dims.kv_heads, dims.head_dim},
                   DenseRows{vc.data_ptr<float>(), dims.kv_heads, dims.head_dim}, dims, *scale, {},
                   result.out.data_ptr<float>(), result.probs);
  return result;
}

absl::StatusOr<AttentionOutput> EagerDecodeAttention(const torch::Tensor& q, const KvFormat& format,
                                                     const EncodedKv& k, const EncodedKv& v,
                                                     const AttentionOptions& options) {
  const std::string who = absl::StrCat("EagerDecodeAttention(", format.name(), ")");
  if (k.role != KvRole::kKey || v.role != KvRole::kValue) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": k must be encoded as keys and v as values"));
  }
  absl::StatusOr<torch::Tensor> k_hat = format.Decode(k);
  if (!k_hat.ok()) {
    return absl::Status(k_hat.status().code(),
                        absl::StrCat(who, ": k: ", k_hat.status().message()));
  }
  absl::StatusOr<torch::Tensor> v_hat = format.Decode(v);
  if (!v_hat.ok()) {
    return absl::Status(v_hat.status().code(),
                        absl::StrCat(who, ": v: ", v_hat.status().message()));
  }
  return DenseDecodeAttention(q, *k_hat, *v_hat, options);
}

absl::StatusOr<AttentionOutput> Int4DecodeAttention(const torch::Tensor& q, const Int4Tensor& k,
                                                    const Int4Tensor& v,
                                                    const AttentionOptions& options) {
  const std::string who =
      absl::StrCat("Int4DecodeAttention(", std::string(Int4SchemeName(k.scheme)), ")");
  const std::vector<int64_t> shape = k.shape();
  if (shape.size() != 3 || v.shape() != shape || k.scheme != v.scheme) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: k and v must be int4 [tokens, kv_heads, head_dim] of one shape and scheme, got k "
        "[%s] %s and v [%s] %s",
        who, absl::StrJoin(shape, ", "), Int4SchemeName(k.scheme), absl::StrJoin(v.shape(), ", "),
        Int4SchemeName(v.scheme)));
  }
  Dims dims;
  if (absl::Status s = CheckQuery(who, q, shape, &dims); !s.ok()) return s;
  if (dims.head_dim % kInt4BlockSize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": head_dim ", dims.head_dim, " is not a multiple of 32"));
  }
  const bool affine = k.scheme == Int4Scheme::kAffine;
  const std::vector<int64_t> scales_shape = {dims.tokens, dims.kv_heads,
                                             dims.head_dim / kInt4BlockSize};
  for (auto [name, t] : {std::pair{"k", &k}, std::pair{"v", &v}}) {
    const bool ok = t->codes.device().is_cpu() && t->codes.scalar_type() == torch::kUInt8 &&
                    t->scales.defined() && t->scales.device().is_cpu() &&
                    t->scales.scalar_type() == torch::kFloat16 &&
                    t->scales.sizes() == c10::IntArrayRef(scales_shape) &&
                    (affine ? (t->zeros.defined() && t->zeros.device().is_cpu() &&
                               t->zeros.scalar_type() == torch::kFloat16 &&
                               t->zeros.sizes() == c10::IntArrayRef(scales_shape))
                            : !t->zeros.defined());
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: %s's tensors are not the int4 layout: codes %s, scales %s (want Half [%s]), "
          "zeros %s",
          who, name, DescribeTensor(t->codes), DescribeTensor(t->scales),
          absl::StrJoin(scales_shape, ", "), DescribeTensor(t->zeros)));
    }
  }
  absl::StatusOr<float> scale = Scale(who, options, dims.head_dim);
  if (!scale.ok()) return scale.status();
  const torch::Tensor qf = Float32(q);
  const torch::Tensor kc = k.codes.contiguous(), ks = k.scales.contiguous();
  const torch::Tensor vc = v.codes.contiguous(), vs = v.scales.contiguous();
  const torch::Tensor kz = affine ? k.zeros.contiguous() : torch::Tensor();
  const torch::Tensor vz = affine ? v.zeros.contiguous() : torch::Tensor();
  const Int4Rows k_rows{kc.data_ptr<uint8_t>(), ks.data_ptr<c10::Half>(),
                        affine ? kz.data_ptr<c10::Half>() : nullptr, dims.kv_heads, dims.head_dim};
  const Int4Rows v_rows{vc.data_ptr<uint8_t>(), vs.data_ptr<c10::Half>(),
                        affine ? vz.data_ptr<c10::Half>() : nullptr, dims.kv_heads, dims.head_dim};
  // Rows come in Int4Rows' permuted order: permute q to match, un-permute the output.
  torch::Tensor q_perm = torch::empty_like(qf), out_perm = torch::empty_like(qf);
  PermuteInt4Blocks(qf.data_ptr<float>(), dims.heads, dims.head_dim, /*inverse=*/false,
                    q_perm.data_ptr<float>());
  AttentionOutput result;
  result.out = torch::empty({dims.heads, dims.head_dim}, torch::kFloat32);
  result.probs = MaybeProbs(options, dims);
  BlockedAttention(q_perm.data_ptr<float>(), k_rows, v_rows, dims, *scale, {},
                   out_perm.data_ptr<float>(), result.probs);
  PermuteInt4Blocks(out_perm.data_ptr<float>(), dims.heads, dims.head_dim, /*inverse=*/true,
                    result.out.data_ptr<float>());
  return result;
}

absl::StatusOr<AttentionOutput> SelectedDecodeAttention(const torch::Tensor& q,
                                                        const torch::Tensor& k,
                                                        const torch::Tensor& v,
                                                        const HistorySelection& selection,
                                                        const AttentionOptions& options) {
  const std::string who = "SelectedDecodeAttention";
  Dims dims;
  if (absl::Status s = CheckDense(who, q, k, v, &dims); !s.ok()) return s;
  absl::StatusOr<float> scale = Scale(who, options, dims.head_dim);
  if (!scale.ok()) return scale.status();
  absl::StatusOr<std::vector<std::vector<int64_t>>> rows = SelectionRows(selection, dims.tokens);
  if (!rows.ok()) {
    return absl::Status(rows.status().code(), absl::StrCat(who, ": ", rows.status().message()));
  }
  if (absl::Status s = CheckRowCount(who, static_cast<int64_t>(rows->size()), dims); !s.ok()) {
    return s;
  }
  const torch::Tensor qf = Float32(q), kc = Float32(k), vc = Float32(v);
  AttentionOutput result;
  result.out = torch::empty({dims.heads, dims.head_dim}, torch::kFloat32);
  result.probs = MaybeProbs(options, dims);
  BlockedAttention(qf.data_ptr<float>(),
                   DenseRows{kc.data_ptr<float>(), dims.kv_heads, dims.head_dim},
                   DenseRows{vc.data_ptr<float>(), dims.kv_heads, dims.head_dim}, dims, *scale,
                   *rows, result.out.data_ptr<float>(), result.probs);
  return result;
}

}  // namespace kvgate::kernels
