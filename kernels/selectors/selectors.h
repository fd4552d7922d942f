// Selectors: which history tokens a decode step attends to. Each is a function from what it may
// see (attention probabilities, accumulated scores, the query and block key bounds, or only the
// history length) to a Selection: a HistorySelection for SelectedDecodeAttention (attention.h)
// plus the fraction of history it actually keeps. Kernels know nothing about models: the caller
// (the runtime) gathers the inputs; oracles see what no deployable method can (this step's dense
// attention).
//
// "Fraction of history" is always a fraction of tokens: tokens kept / tokens of history T,
// averaged over the selection's rows (rows = 1 shared, kv_heads or heads). Selection::kept and
// ::active_fraction are counted from the selection itself, so they are what attention will read.
// Rankings are by score, highest first; exact ties go to the lower index (the earlier token or
// block): a stable sort, so every selection is deterministic. Scores are summed in float64.
//
// Variants, by canonical name (records use these; every parameter, fixed order; f has 4 decimals):
//   global_block_mass:f=0.3760:b=16   ORACLE. Sees step_probs [layers, heads, T], this decode
//       step's dense attention probabilities of every layer and head. Block j holds tokens
//       j*b .. min((j+1)*b, T) - 1 (the last may be partial); its mass is the sum of step_probs
//       over all layers, heads and its tokens. Blocks are kept in rank order until the kept tokens
//       reach ceil(f * T) (f exactly its 4-decimal value; a partial block counts its real tokens),
//       at least one block. One block mask shared by every layer and head. The kept fraction is
//       >= f and overshoots by less than b / T.
//   layer_block_mass:f=0.3760:b=16    ORACLE, per layer: layer l's selection ranks blocks by
//       step_probs[l] summed over heads (SelectLayerBlockMass gives every layer's; Select, the one
//       of inputs.layer).
//   recent_sink:sink=4:recent=1020    the first `sink` and the last `recent` tokens (their union).
//       Sees only T.
//   streaming_llm:sink=4:window=1020  StreamingLLM's attention sinks plus a sliding window: the
//       same tokens as recent_sink:sink=S:recent=W (StreamingLLM also renumbers positions inside
//       its cache; keys here are already rotated, so that part belongs to the runtime).
//   h2o:heavy=256:recent=256          H2O heavy hitters, per row: the `recent` newest tokens, every
//       token without a score yet, and the `heavy` tokens of highest accumulated attention among
//       the rest. Sees accumulated [rows, T'] (T' <= T): the attention probabilities each token
//       received, summed over all earlier queries (prompt and decode steps) of that row; tokens
//       T'..T-1 have no score. Unlike H2O's cache, nothing is evicted for good: each step picks
//       afresh from the whole history.
//   tova:budget=512                   TOVA: one row; keeps min(T, budget) tokens: the unscored
//       (newest) tokens T'..T-1 first, then the highest of the previous step's attention averaged
//       over its rows (last_probs [rows, T'], heads as TOVA averages them).
//   snapkv:budget=320:window=64:kernel=5:pool=avg  SnapKV, per row: sees window_probs
//       [rows, W, P]: the attention of the last W prompt queries over the P prompt tokens. Scores
//       of the prompt tokens before the window (t < P - W) are summed over the W queries, then
//       pooled along t (kernel odd, stride 1, padding kernel/2; avg counts padding as zeros, like
//       torch's avg_pool1d; or max); keeps the top budget - W of them, the W window tokens and
//       every token after the prompt (P..T-1).
//   quest:budget=1024:b=16            Quest, per query head: sees q [heads, D] and QuestMetadata
//       (per block, kv head and channel: min and max of the keys). A block's bound
//       U = sum_d max(q_d min_d, q_d max_d) >= q . k for each key k of the block; keeps the
//       ceil(budget / b) blocks of highest bound.
//
// Usage:
//   SelectorInputs in;
//   in.tokens = 8192;
//   in.step_probs = probs;  // [layers, heads, 8192], from DenseDecodeAttention(..., return_probs)
//   absl::StatusOr<Selection> s = Select("global_block_mass:f=0.25:b=16", in);
//   // s->variant == "global_block_mass:f=0.2500:b=16", s->active_fraction >= 0.25
//   absl::StatusOr<AttentionOutput> o = SelectedDecodeAttention(q, k, v, s->history);
//
// Tests: tools/bazel test //kernels/selectors:selectors_test

#ifndef KVGATE_KERNELS_SELECTORS_SELECTORS_H_
#define KVGATE_KERNELS_SELECTORS_SELECTORS_H_

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/attention/attention.h"

namespace kvgate::kernels {

// What a selector chose.
struct Selection {
  std::string variant;         // canonical name, e.g. "global_block_mass:f=0.3760:b=16"
  HistorySelection history;    // for SelectedDecodeAttention
  int64_t tokens = 0;          // T, the history selected from
  int64_t rows = 1;            // 1 (shared), or one per kv head or query head
  int64_t kept = 0;            // tokens kept, summed over rows
  double active_fraction = 0;  // kept / (rows * tokens)
};

// Per-block key bounds for Quest: min and max over each block's tokens, float32
// [blocks, kv_heads, D], blocks of block_size tokens (the last may be partial).
struct QuestMetadata {
  int64_t block_size = 0;
  int64_t tokens = 0;
  torch::Tensor min, max;
};

// From keys [T, kv_heads, D] (any float dtype). InvalidArgument on a bad shape or block size.
absl::StatusOr<QuestMetadata> BuildQuestMetadata(const torch::Tensor& k, int64_t block_size);

// Everything a selector may see; each reads only its own fields (and says which it lacks).
struct SelectorInputs {
  int64_t tokens = 0;                    // T, history length at this decode step (every selector)
  torch::Tensor step_probs;              // [layers, heads, T]: global_/layer_block_mass
  int64_t layer = -1;                    // layer_block_mass
  torch::Tensor accumulated;             // [rows, T']: h2o
  torch::Tensor last_probs;              // [rows, T']: tova
  torch::Tensor window_probs;            // [rows, W, P]: snapkv
  torch::Tensor q;                       // [heads, D]: quest
  const QuestMetadata* quest = nullptr;  // quest
};

// The selection `spec` names, from inputs. InvalidArgument naming the problem: an unknown
// selector or parameter, a bad value, a missing or ill-shaped input, non-finite or negative
// probabilities.
absl::StatusOr<Selection> Select(absl::string_view spec, const SelectorInputs& inputs);

// The canonical name of a spec (parameters checked, defaults filled in), e.g.
// "global_block_mass:f=0.376:b=16" -> "global_block_mass:f=0.3760:b=16".
absl::StatusOr<std::string> CanonicalSelectorName(absl::string_view spec);

// The selectors as functions. f is a fraction in (0, 1] with at most 4 decimals.
absl::StatusOr<Selection> SelectGlobalBlockMass(const torch::Tensor& step_probs, double f,
                                                int64_t block_size);
absl::StatusOr<std::vector<Selection>> SelectLayerBlockMass(const torch::Tensor& step_probs,
                                                            double f, int64_t block_size);
absl::StatusOr<Selection> SelectRecentSink(int64_t tokens, int64_t sink, int64_t recent);
absl::StatusOr<Selection> SelectStreamingLlm(int64_t tokens, int64_t sink, int64_t window);
absl::StatusOr<Selection> SelectH2o(const torch::Tensor& accumulated, int64_t tokens, int64_t heavy,
                                    int64_t recent);
absl::StatusOr<Selection> SelectTova(const torch::Tensor& last_probs, int64_t tokens,
                                     int64_t budget);
enum class SnapKvPool { kAvg, kMax };
absl::StatusOr<Selection> SelectSnapKv(const torch::Tensor& window_probs, int64_t tokens,
                                       int64_t budget, int64_t kernel, SnapKvPool pool);
absl::StatusOr<Selection> SelectQuest(const torch::Tensor& q, const QuestMetadata& metadata,
                                      int64_t budget);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_SELECTORS_SELECTORS_H_
