// Attention policies: what one layer's attention does with its queries and the cached history.
//
// The model calls a policy once a layer a forward call, after writing the new tokens' keys and
// values into the KV cache, with the post-RoPE queries and the cache's views. A policy is a plain
// std::function, so a caller can wrap, mix or switch policies by layer and step with a lambda:
//
//   AttentionPolicy dense = DenseAttention();
//   AttentionPolicy int4 = KvRoundTripAttention(*MakeKvFormat("symmetric_int4"));
//   AttentionPolicy mixed = [=](const AttentionCall& call) {
//     return call.layer < 2 ? dense(call) : int4(call);  // keep the first two layers dense
//   };
//   AttentionPolicy recent = SelectedHistoryAttention(
//       [](const AttentionCall& call) -> absl::StatusOr<torch::Tensor> {
//         const int64_t s = call.k.size(0);
//         return KeepTokens(torch::arange(std::max<int64_t>(0, s - 64), s), s);  // last 64 only
//       });
//
// Policies here:
//   DenseAttention         causal softmax attention over the whole history (the reference).
//   KvRoundTripAttention   encodes the history's K and V with a KvFormat of kernels/, decodes them
//                          and attends densely: the quality of a compressed cache, not its speed.
//                          A format whose tokens encode independently (EncodesTokensIndependently:
//                          int4, fp8/int8 per token, TurboQuant without the split) encodes each
//                          layer's new rows only, which equals re-encoding the whole history; a
//                          format that shares across tokens re-encodes the full history each call.
//                          The formats encode CPU tensors: on another device K and V are copied to
//                          the CPU for the round trip and the decoded ones back to q's device.
//   SelectedHistoryAttention  attends only to the history positions a selector keeps (token
//                          indices or block masks, per head group if wanted); the rest is masked
//                          out of the softmax. For an oracle's quality, not for speed.

#ifndef KVGATE_EXPERIMENTS_RUNTIME_ATTENTION_POLICY_H_
#define KVGATE_EXPERIMENTS_RUNTIME_ATTENTION_POLICY_H_

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::runtime {

// One layer's attention for T query tokens at positions [position, position + T).
struct AttentionCall {
  int64_t layer = 0;
  int64_t step = -1;     // decode step (0-based) of DecodeN / DecodeForced; -1 otherwise (prefill)
  int64_t position = 0;  // the first query's position; S = position + T
  torch::Tensor q;       // [T, heads, head_dim], post-RoPE, the model's dtype
  torch::Tensor k;       // [S, kv_heads, head_dim], post-RoPE: the cache, new tokens included
  torch::Tensor v;       // [S, kv_heads, head_dim]
  bool want_probs = false;  // fill AttentionResult::probs
};

struct AttentionResult {
  // [T, heads, head_dim], q's dtype; head h reads kv head h / (heads / kv_heads).
  torch::Tensor out;
  // float32 [T, heads, S] when want_probs (0 where not attended), else undefined.
  torch::Tensor probs;
};

using AttentionPolicy = std::function<absl::StatusOr<AttentionResult>(const AttentionCall&)>;

// Causal softmax attention of q [T, heads, D] over k, v [S, kv_heads, D], the queries at positions
// [S - T, S), scaled by 1/sqrt(D), softmax in float32. keep: undefined (everything) or bool [R, S]
// with R = 1 (all heads), kv_heads (a head group each) or heads: position s is attended by head h
// only where keep allows it. Shapes are checked (TORCH_CHECK). With T > 1, position 0, no keep and
// no probs it takes at::scaled_dot_product_attention; otherwise explicit matmuls, so DenseAttention
// and a selection keeping everything give bitwise-equal results at decode steps.
AttentionResult Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& keep, bool want_probs);

// Attend over the whole history.
AttentionPolicy DenseAttention();

// Encode call.k (KvRole::kKey) and call.v (KvRole::kValue) with `format` (on the CPU), decode,
// cast back to q's dtype and device and Attend. Errors of the format come back as they are. The
// policy keeps each layer's decoded history between calls when the format encodes tokens
// independently (see above), so make one policy a decode; it checks that the rows it kept are
// still the cache's and starts over when not. Calls are serialized by a mutex.
AttentionPolicy KvRoundTripAttention(std::shared_ptr<const kernels::KvFormat> format);

// x [tokens, kv_heads, D], on any device, encoded with `format` on the CPU and decoded, as like's
// dtype and device. Errors of the format come back as they are; Internal on a changed shape.
absl::StatusOr<torch::Tensor> KvRoundTrip(const kernels::KvFormat& format, const torch::Tensor& x,
                                          kernels::KvRole role, const torch::Tensor& like);

// A selector returns the keep mask for a call: bool [R, S] as Attend takes it (see KeepTokens,
// KeepBlocks), or an undefined tensor to keep everything.
using HistorySelector = std::function<absl::StatusOr<torch::Tensor>(const AttentionCall&)>;

// Attend only where the selector's mask keeps. InvalidArgument when the mask has the wrong shape
// or dtype, or leaves some query head with nothing to attend.
AttentionPolicy SelectedHistoryAttention(HistorySelector selector);

// Keep mask bool [R, history] from token positions: indices int64 [n] (R = 1) or [R, n], each in
// [0, history). Duplicates are harmless.
torch::Tensor KeepTokens(const torch::Tensor& indices, int64_t history);

// Keep mask bool [R, history] from a block mask bool [num_blocks] (R = 1) or [R, num_blocks] with
// num_blocks = ceil(history / block_size): block b covers positions [b * block_size, (b + 1) *
// block_size).
torch::Tensor KeepBlocks(const torch::Tensor& block_mask, int64_t block_size, int64_t history);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_ATTENTION_POLICY_H_
