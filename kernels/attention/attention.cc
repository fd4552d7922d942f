// Decode attention primitives on the CPU (see attention.h): input checks, the batched-matmul
// variant, and the blocked split-K loop shared by dense variant 2, int4-direct and selected
// attention. A device kernel dispatches from here.
//
// The loop: a task is (kv head g, n query heads that share g and one token list, a span of that
// list). It computes the span's logits for its n heads (each key row read once for all n), a local
// max m and sum l of exp(logit - m), and acc = sum of exp(logit - m) * v; tasks run under
// at::parallel_for and are merged per head by log-sum-exp: M = max m, L = sum l e^(m - M),
// out = sum acc e^(m - M) / L. Hot functions are compiled twice on x86-64 (AVX2+FMA and baseline)
// and picked at load time, so the build stays portable.

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

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KVGATE_HOT_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define KVGATE_HOT_CLONES
#endif

namespace kvgate::kernels {
namespace {

// e.g. "float32 [5, 4, 128] on cpu", or "an undefined tensor".
std::string Describe(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  return absl::StrFormat("%s [%s] on %s", c10::toString(t.scalar_type()),
                         absl::StrJoin(t.sizes(), ", "), t.device().str());
}

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
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": q must be float32/bfloat16/float16 [heads, head_dim] on cpu, got ", Describe(q)));
  }
  dims->heads = q.size(0);
  dims->tokens = kv_shape[0];
  dims->kv_heads = kv_shape[1];
  dims->head_dim = kv_shape[2];
  if (q.size(1) != dims->head_dim || dims->head_dim < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: q's head_dim %d differs from K/V's %d (K/V [%s])", who, q.size(1), dims->head_dim,
        absl::StrJoin(kv_shape, ", ")));
  }
  if (dims->kv_heads < 1 || dims->heads < 1 || dims->heads % dims->kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: heads %d must be a positive multiple of kv_heads %d", who, dims->heads,
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
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": ", name,
                       " must be float32/bfloat16/float16 [tokens, kv_heads, head_dim] on cpu, got ",
                       Describe(*t)));
    }
  }
  if (k.sizes() != v.sizes()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": k and v differ: ", Describe(k), " and ", Describe(v)));
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
  const float* Row(int64_t t, int64_t g, float* /*scratch*/) const {
    return data + (t * kv_heads + g) * head_dim;
  }
};

// Rows of an int4 [T, kv_heads, D] tensor, decoded into scratch[D] exactly as DequantizeInt4Ref.
struct Int4Rows {
  const uint8_t* codes;
  const c10::Half* scales;
  const c10::Half* zeros;  // null for symmetric
  int64_t kv_heads, head_dim;
  const float* Row(int64_t t, int64_t g, float* scratch) const {
    const int64_t vec = t * kv_heads + g;
    const int64_t blocks = head_dim / kInt4BlockSize;
    const uint8_t* c = codes + vec * (head_dim / 2);
    for (int64_t b = 0; b < blocks; ++b) {
      const float scale = static_cast<float>(scales[vec * blocks + b]);
      const uint8_t* bc = c + b * (kInt4BlockSize / 2);
      float* out = scratch + b * kInt4BlockSize;
      if (zeros == nullptr) {
        for (int i = 0; i < kInt4BlockSize / 2; ++i) {
          out[2 * i] = static_cast<float>((bc[i] & 0xF) - 8) * scale;
          out[2 * i + 1] = static_cast<float>((bc[i] >> 4) - 8) * scale;
        }
      } else {
        const float zero = static_cast<float>(zeros[vec * blocks + b]);
        for (int i = 0; i < kInt4BlockSize / 2; ++i) {
          out[2 * i] = static_cast<float>(bc[i] & 0xF) * scale + zero;
          out[2 * i + 1] = static_cast<float>(bc[i] >> 4) * scale + zero;
        }
      }
    }
    return scratch;
  }
};

// n query heads h0.. sharing kv head g and one token list (null: the range), over [begin, end).
struct Task {
  int64_t g, h0, n;
  const std::vector<int64_t>* list;
  int64_t begin, end;
};

// Tokens a chunk: sums over a span are summed a chunk at a time (two-level summation).
constexpr int64_t kChunk = 64;

// A task's partial softmax state: m[n], l[n], acc[n * D].
struct Partial {
  std::vector<float> m, l, acc;
};

// Eight independent sums, so the compiler can keep them in one vector register.
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

template <class Rows>
inline __attribute__((always_inline)) void RunTaskImpl(const Task& task, const float* q,
                                                       const Rows& k, const Rows& v,
                                                       int64_t head_dim, float scale,
                                                       float* raw_logits /*[heads, T] or null*/,
                                                       int64_t tokens, float* logits,
                                                       float* scratch, float* chunk_acc,
                                                       Partial* partial) {
  const int64_t span = task.end - task.begin;
  const int64_t n = task.n;
  const auto token = [&](int64_t i) {
    return task.list ? (*task.list)[task.begin + i] : task.begin + i;
  };
  // Logits, each key row read once for the n heads.
  for (int64_t i = 0; i < span; ++i) {
    const float* row = k.Row(token(i), task.g, scratch);
    for (int64_t j = 0; j < n; ++j) {
      logits[j * span + i] = scale * Dot(q + (task.h0 + j) * head_dim, row, head_dim);
    }
  }
  // Local softmax: m, l, and logits replaced by exp(logit - m).
  for (int64_t j = 0; j < n; ++j) {
    float* lj = logits + j * span;
    if (raw_logits != nullptr) {
      float* dst = raw_logits + (task.h0 + j) * tokens;
      for (int64_t i = 0; i < span; ++i) dst[token(i)] = lj[i];
    }
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < span; ++i) m = std::max(m, lj[i]);
    float l = 0.0f;
    for (int64_t c = 0; c < span; c += kChunk) {  // two-level sum: float error ~ sqrt, not n
      float chunk = 0.0f;
      for (int64_t i = c; i < std::min(span, c + kChunk); ++i) {
        lj[i] = std::exp(lj[i] - m);
        chunk += lj[i];
      }
      l += chunk;
    }
    partial->m[j] = m;
    partial->l[j] = l;
  }
  // Values, summed a chunk of tokens at a time into chunk_acc, then into acc.
  std::fill(partial->acc.begin(), partial->acc.end(), 0.0f);
  for (int64_t c = 0; c < span; c += kChunk) {
    std::fill(chunk_acc, chunk_acc + n * head_dim, 0.0f);
    for (int64_t i = c; i < std::min(span, c + kChunk); ++i) {
      const float* row = v.Row(token(i), task.g, scratch);
      for (int64_t j = 0; j < n; ++j) {
        const float p = logits[j * span + i];
        float* acc = chunk_acc + j * head_dim;
        for (int64_t d = 0; d < head_dim; ++d) acc[d] += p * row[d];
      }
    }
    for (int64_t e = 0; e < n * head_dim; ++e) partial->acc[e] += chunk_acc[e];
  }
}

KVGATE_HOT_CLONES void RunDenseTask(const Task& task, const float* q, const DenseRows& k,
                                    const DenseRows& v, int64_t head_dim, float scale,
                                    float* raw_logits, int64_t tokens, float* logits,
                                    float* scratch, float* chunk_acc, Partial* partial) {
  RunTaskImpl(task, q, k, v, head_dim, scale, raw_logits, tokens, logits, scratch, chunk_acc,
              partial);
}

KVGATE_HOT_CLONES void RunInt4Task(const Task& task, const float* q, const Int4Rows& k,
                                   const Int4Rows& v, int64_t head_dim, float scale,
                                   float* raw_logits, int64_t tokens, float* logits,
                                   float* scratch, float* chunk_acc, Partial* partial) {
  RunTaskImpl(task, q, k, v, head_dim, scale, raw_logits, tokens, logits, scratch, chunk_acc,
              partial);
}

void RunTask(const Task& task, const float* q, const DenseRows& k, const DenseRows& v,
             int64_t head_dim, float scale, float* raw_logits, int64_t tokens, float* logits,
             float* scratch, float* chunk_acc, Partial* partial) {
  RunDenseTask(task, q, k, v, head_dim, scale, raw_logits, tokens, logits, scratch, chunk_acc,
               partial);
}

void RunTask(const Task& task, const float* q, const Int4Rows& k, const Int4Rows& v,
             int64_t head_dim, float scale, float* raw_logits, int64_t tokens, float* logits,
             float* scratch, float* chunk_acc, Partial* partial) {
  RunInt4Task(task, q, k, v, head_dim, scale, raw_logits, tokens, logits, scratch, chunk_acc,
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
  // Units: (kv head, the query heads that share its list).
  struct Unit {
    int64_t g, h0, n;
    const std::vector<int64_t>* list;
  };
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
  // Split each unit's list into spans so there are a few tasks a thread.
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t splits = std::max<int64_t>(1, (4 * threads + units.size() - 1) / units.size());
  std::vector<Task> tasks;
  std::vector<int64_t> first_task;  // of each unit
  for (const Unit& u : units) {
    first_task.push_back(static_cast<int64_t>(tasks.size()));
    const int64_t len = u.list ? static_cast<int64_t>(u.list->size()) : dims.tokens;
    const int64_t span = std::max<int64_t>(512, (len + splits - 1) / splits);
    for (int64_t b = 0; b < len; b += span) {
      tasks.push_back({u.g, u.h0, u.n, u.list, b, std::min(len, b + span)});
    }
  }
  first_task.push_back(static_cast<int64_t>(tasks.size()));
  std::vector<Partial> partials(tasks.size());
  float* raw_logits = probs.defined() ? probs.data_ptr<float>() : nullptr;
  at::parallel_for(0, static_cast<int64_t>(tasks.size()), 1, [&](int64_t begin, int64_t end) {
    std::vector<float> logits, scratch(dims.head_dim), chunk_acc;
    for (int64_t i = begin; i < end; ++i) {
      const Task& task = tasks[i];
      Partial& partial = partials[i];
      partial.m.resize(task.n);
      partial.l.resize(task.n);
      partial.acc.resize(task.n * dims.head_dim);
      logits.resize(task.n * (task.end - task.begin));
      chunk_acc.resize(task.n * dims.head_dim);
      RunTask(task, q, k, v, dims.head_dim, scale, raw_logits, dims.tokens, logits.data(),
              scratch.data(), chunk_acc.data(), &partial);
    }
  });
  // Merge the spans of each unit, head by head.
  for (size_t u = 0; u < units.size(); ++u) {
    for (int64_t j = 0; j < units[u].n; ++j) {
      const int64_t h = units[u].h0 + j;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t t = first_task[u]; t < first_task[u + 1]; ++t) max = std::max(max, partials[t].m[j]);
      float sum = 0.0f;
      float* oh = out + h * dims.head_dim;
      std::fill(oh, oh + dims.head_dim, 0.0f);
      for (int64_t t = first_task[u]; t < first_task[u + 1]; ++t) {
        const float w = std::exp(partials[t].m[j] - max);
        sum += partials[t].l[j] * w;
        const float* acc = partials[t].acc.data() + j * dims.head_dim;
        for (int64_t d = 0; d < dims.head_dim; ++d) oh[d] += w * acc[d];
      }
      for (int64_t d = 0; d < dims.head_dim; ++d) oh[d] /= sum;
      if (raw_logits != nullptr) {
        float* ph = raw_logits + h * dims.tokens;
        const std::vector<int64_t>* list = units[u].list;
        const int64_t len = list ? static_cast<int64_t>(list->size()) : dims.tokens;
        for (int64_t i = 0; i < len; ++i) {
          const int64_t t = list ? (*list)[i] : i;
          ph[t] = std::exp(ph[t] - max) / sum;
        }
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
      return absl::InvalidArgumentError(absl::StrCat(
          "selection: token_indices must be int64 [n] or [rows, n] on cpu, got ", Describe(idx)));
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
      return absl::InvalidArgumentError(
          absl::StrCat("selection: block_size ", b, " must be >= 1"));
    }
    const int64_t blocks = (tokens + b - 1) / b;
    if (!mask.device().is_cpu() || mask.scalar_type() != torch::kBool || mask.dim() < 1 ||
        mask.dim() > 2 || mask.size(-1) != blocks) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "selection: block_mask must be bool [%d] or [rows, %d] on cpu (ceil(%d tokens / block "
          "%d)), got %s",
          blocks, blocks, tokens, b, Describe(mask)));
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
    if (!r.ok()) return absl::Status(r.status().code(), absl::StrCat(who, ": ", r.status().message()));
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
                   DenseRows{vc.data_ptr<float>(), dims.kv_heads, dims.head_dim}, dims, *scale,
                   {}, result.out.data_ptr<float>(), result.probs);
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
    return absl::Status(k_hat.status().code(), absl::StrCat(who, ": k: ", k_hat.status().message()));
  }
  absl::StatusOr<torch::Tensor> v_hat = format.Decode(v);
  if (!v_hat.ok()) {
    return absl::Status(v_hat.status().code(), absl::StrCat(who, ": v: ", v_hat.status().message()));
  }
  return DenseDecodeAttention(q, *k_hat, *v_hat, options);
}

absl::StatusOr<AttentionOutput> Int4DecodeAttention(const torch::Tensor& q, const Int4Tensor& k,
                                                    const Int4Tensor& v,
                                                    const AttentionOptions& options) {
  const std::string who = absl::StrCat("Int4DecodeAttention(", std::string(Int4SchemeName(k.scheme)), ")");
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
    const bool ok =
        t->codes.device().is_cpu() && t->codes.scalar_type() == torch::kUInt8 &&
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
          who, name, Describe(t->codes), Describe(t->scales), absl::StrJoin(scales_shape, ", "),
          Describe(t->zeros)));
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
  AttentionOutput result;
  result.out = torch::empty({dims.heads, dims.head_dim}, torch::kFloat32);
  result.probs = MaybeProbs(options, dims);
  BlockedAttention(qf.data_ptr<float>(), k_rows, v_rows, dims, *scale, {},
                   result.out.data_ptr<float>(), result.probs);
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
