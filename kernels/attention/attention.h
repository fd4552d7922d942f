// Decode attention for one step: the newest query of every head against a history of keys and
// values, grouped-query, on the CPU, with a float64 reference every primitive is checked against.
//
// Shapes: q [heads, D]; k, v [T, kv_heads, D]; heads a multiple of kv_heads (G = heads / kv_heads
// query heads share a kv head: head h reads kv head h / G); any head_dim D >= 1; T >= 1 tokens, all
// of them causal history. For each head h:
//   logit[h, t] = scale * q[h] . k[t, h / G]          scale = 1 / sqrt(D) unless options.scale
//   p[h, t]     = softmax over t of logit[h, t]
//   out[h]      = sum over t of p[h, t] * v[t, h / G]   float32 [heads, D]
//
// The primitives (attention.cc, float32 arithmetic; a device kernel dispatches from there later):
//   DecodeAttentionReference  plain float64 loops (attention_ref.cc): the exact answer
//   DenseDecodeAttention      the baseline, in numbered variants (options.dense_kernel):
//                               1 kBatchedMatmul: torch::bmm for logits, torch::softmax, torch::bmm
//                               2 kBlockedLoop:   split-K loop: tasks of (span of <= 512 tokens,
//                                                 the kv heads and query heads attending to it)
//                                                 over at::parallel_for, each a logits pass, a
//                                                 local softmax and a values pass, merged by
//                                                 log-sum-exp; AVX2/FMA when the CPU has it
//   EagerDecodeAttention      decodes K and V of any KvFormat to float32, then DenseDecodeAttention
//                             (the formats' decoders are their scalar references: that is its cost)
//   Int4DecodeAttention       variant 2's loop reading int4 blocks (int4.h) directly: each token's
//                             row is decoded into a head_dim scratch buffer as it is read (exactly
//                             DequantizeInt4's values), never the whole K/V
//   SelectedDecodeAttention   variant 2's loop over a subset of history (HistorySelection): token
//                             index lists or block masks, shared by all heads, per kv head or per
//                             query head
// Every primitive can also return the probabilities p [heads, T] (options.return_probs), zero at
// tokens a head did not attend; oracle selectors read them.
//
// Accuracy (attention_test.cc): on float32 input every primitive matches the float64 reference to
// 1e-5 (absolute, outputs of order 1); Int4DecodeAttention matches EagerDecodeAttention over the
// same int4 tensors to 1e-5; SelectedDecodeAttention matches the reference restricted to the same
// tokens. bfloat16/float16 inputs are converted to float32 first (a copy). NaN/Inf inputs are not
// checked (a pass over K/V would cost as much as the attention): they propagate to the output.
//
// Errors (InvalidArgument, naming the tensor and shapes): ranks, a head_dim or kv_heads mismatch,
// heads not a multiple of kv_heads, T = 0, non-CPU tensors, dtypes other than float32/bfloat16/
// float16, and for selections: indices out of range or repeated, a row that keeps nothing, a row
// count other than 1, kv_heads or heads, a block mask of the wrong length.
//
// Usage:
//   torch::Tensor q = torch::randn({16, 128});                                   // [heads, D]
//   torch::Tensor k = torch::randn({8192, 4, 128}), v = torch::randn({8192, 4, 128});
//   absl::StatusOr<AttentionOutput> dense = DenseDecodeAttention(q, k, v);  // out [16, 128]
//   HistorySelection recent = HistorySelection::Tokens(torch::arange(6144, 8192));  // shared
//   absl::StatusOr<AttentionOutput> sub = SelectedDecodeAttention(q, k, v, recent);
//
// Tests: tools/bazel test //kernels/attention:attention_test
// Benchmark: tools/bazel run //kernels/attention:attention_benchmark -- --benchmark_min_time=0.2

#ifndef KVGATE_KERNELS_ATTENTION_ATTENTION_H_
#define KVGATE_KERNELS_ATTENTION_ATTENTION_H_

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/int4/int4.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::kernels {

// The numbered variants of dense attention (records name them: "dense:kernel=2").
enum class DenseKernel { kBatchedMatmul = 1, kBlockedLoop = 2 };

struct AttentionOptions {
  std::optional<double> scale;  // softmax scale; 1 / sqrt(head_dim) when unset
  bool return_probs = false;    // also return p [heads, T]
  DenseKernel dense_kernel = DenseKernel::kBatchedMatmul;  // Dense and Eager only
};

struct AttentionOutput {
  torch::Tensor out;  // float32 [heads, D] (float64 from DecodeAttentionReference)
  torch::Tensor
      probs;  // float32 [heads, T] when asked (float64 from the reference), else undefined
};

// Which history tokens each head attends to: exactly one of token_indices or block_mask.
//   token_indices  int64 [n] (shared by all heads) or [rows, n]: token positions in [0, T), no
//                  repeats within a row, any order
//   block_mask     bool [B] or [rows, B] with B = ceil(T / block_size): block j covers tokens
//                  j*b .. min((j+1)*b, T) - 1 (the last block may be partial)
// rows is 1 (shared), kv_heads (query head h uses row h / G) or heads (one row a query head).
struct HistorySelection {
  torch::Tensor token_indices;
  torch::Tensor block_mask;
  int64_t block_size = 0;

  static HistorySelection Tokens(torch::Tensor indices);
  static HistorySelection Blocks(torch::Tensor mask, int64_t block_size);
};

// The selection's rows as ascending token lists, after checking it against a history of `tokens`
// (InvalidArgument as above; the row count is checked against heads by the attention calls).
absl::StatusOr<std::vector<std::vector<int64_t>>> SelectionRows(const HistorySelection& selection,
                                                                int64_t tokens);

// Tokens kept over tokens of history, averaged over rows (so over query heads too): the active
// history fraction. InvalidArgument as SelectionRows.
absl::StatusOr<double> ActiveFraction(const HistorySelection& selection, int64_t tokens);

// The exact answer, float64 throughout: out and probs are float64. With a selection, each head
// attends only to its tokens.
absl::StatusOr<AttentionOutput> DecodeAttentionReference(
    const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
    const AttentionOptions& options = {}, const HistorySelection* selection = nullptr);

// The baseline: variant options.dense_kernel.
absl::StatusOr<AttentionOutput> DenseDecodeAttention(const torch::Tensor& q, const torch::Tensor& k,
                                                     const torch::Tensor& v,
                                                     const AttentionOptions& options = {});

// Decodes k and v (encoded by format, roles key and value) to float32, then attends densely.
absl::StatusOr<AttentionOutput> EagerDecodeAttention(const torch::Tensor& q, const KvFormat& format,
                                                     const EncodedKv& k, const EncodedKv& v,
                                                     const AttentionOptions& options = {});

// Attends over int4 K and V ([T, kv_heads, D] each, either scheme, D a multiple of 32) without
// dequantizing them to memory.
absl::StatusOr<AttentionOutput> Int4DecodeAttention(const torch::Tensor& q, const Int4Tensor& k,
                                                    const Int4Tensor& v,
                                                    const AttentionOptions& options = {});

// Attends over the tokens `selection` keeps (each head its row's).
absl::StatusOr<AttentionOutput> SelectedDecodeAttention(const torch::Tensor& q,
                                                        const torch::Tensor& k,
                                                        const torch::Tensor& v,
                                                        const HistorySelection& selection,
                                                        const AttentionOptions& options = {});

// The plain float64 loops behind DecodeAttentionReference, over contiguous buffers q[heads * D],
// k and v [tokens * kv_heads * D]. rows: per query head (row h * R / heads of R rows), the tokens
// it attends; empty means every token. Writes out[heads * D] and, if probs is not null,
// probs[heads * tokens] (0 where not attended).
void DecodeAttentionRef(const double* q, const double* k, const double* v, int64_t heads,
                        int64_t kv_heads, int64_t tokens, int64_t head_dim, double scale,
                        const std::vector<std::vector<int64_t>>& rows, double* out, double* probs);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_ATTENTION_ATTENTION_H_
