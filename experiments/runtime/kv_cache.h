// The KV cache of experiments/runtime: per layer, the post-RoPE keys and values of every token seen
// so far, preallocated to a capacity, in the layout KV formats encode:
// [tokens, kv_heads, head_dim].
//
// Like gpt-fast's KVCache: one buffer a layer, written in place at the positions of each forward
// call; attention reads views of the filled prefix, so a decode step allocates nothing here.
//
// Usage:
//   KvCache cache = MakeKvCache(/*layers=*/30, /*capacity=*/4096, /*kv_heads=*/3, /*head_dim=*/64,
//                               torch::dtype(torch::kFloat32));
//   auto [k, v] = cache.Update(layer, /*pos=*/cache.length, k_new, v_new);  // k: [pos + T, 3, 64]
//   cache.length += T;  // Model::Forward does this once all layers are written
//   cache.length = 0;   // reuse the buffers for another prompt

#ifndef KVGATE_EXPERIMENTS_RUNTIME_KV_CACHE_H_
#define KVGATE_EXPERIMENTS_RUNTIME_KV_CACHE_H_

#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace kvgate::runtime {

struct KvCache {
  std::vector<torch::Tensor> k;  // per layer [capacity, kv_heads, head_dim], post-RoPE
  std::vector<torch::Tensor> v;  // per layer [capacity, kv_heads, head_dim]
  int64_t length = 0;            // positions [0, length) hold tokens

  int64_t layers() const { return static_cast<int64_t>(k.size()); }
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(0); }

  // Writes k_new, v_new [T, kv_heads, head_dim] at positions [pos, pos + T) of `layer` and returns
  // views of that layer's keys and values at positions [0, pos + T). Leaves `length` alone.
  std::pair<torch::Tensor, torch::Tensor> Update(int64_t layer, int64_t pos,
                                                 const torch::Tensor& k_new,
                                                 const torch::Tensor& v_new);

  // A deep copy (same capacity, dtype and device): a run that must start again from the same
  // history (each configuration of an experiment after one shared prefill) decodes on a clone.
  KvCache Clone() const;

  // Views [length, kv_heads, head_dim] of one layer's keys / values.
  torch::Tensor Keys(int64_t layer) const { return k[layer].narrow(0, 0, length); }
  torch::Tensor Values(int64_t layer) const { return v[layer].narrow(0, 0, length); }
};

// A zeroed cache of `layers` layers, each [capacity, kv_heads, head_dim] with `options` (dtype and
// device).
KvCache MakeKvCache(int64_t layers, int64_t capacity, int64_t kv_heads, int64_t head_dim,
                    const torch::TensorOptions& options);

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_KV_CACHE_H_
