#include "experiments/runtime/kv_cache.h"

#include <c10/util/Exception.h>

namespace kvgate::runtime {

std::pair<torch::Tensor, torch::Tensor> KvCache::Update(int64_t layer, int64_t pos,
                                                        const torch::Tensor& k_new,
                                                        const torch::Tensor& v_new) {
  TORCH_CHECK(layer >= 0 && layer < layers(), "KvCache: layer ", layer, " of ", layers());
  const torch::Tensor& k_buf = k[layer];  // [capacity, kv_heads, head_dim]
  const torch::Tensor& v_buf = v[layer];
  const int64_t t = k_new.size(0);
  TORCH_CHECK(k_new.dim() == 3 && k_new.size(1) == k_buf.size(1) && k_new.size(2) == k_buf.size(2),
              "KvCache: k_new ", k_new.sizes(), " does not fit ", k_buf.sizes());
  TORCH_CHECK(v_new.sizes() == k_new.sizes(), "KvCache: v_new ", v_new.sizes(), " != k_new ",
              k_new.sizes());
  TORCH_CHECK(pos >= 0 && pos + t <= k_buf.size(0), "KvCache: positions [", pos, ", ", pos + t,
              ") exceed the capacity ", k_buf.size(0));
  k_buf.narrow(0, pos, t).copy_(k_new);
  v_buf.narrow(0, pos, t).copy_(v_new);
  return {k_buf.narrow(0, 0, pos + t), v_buf.narrow(0, 0, pos + t)};
}

KvCache KvCache::Clone() const {
  KvCache out;
  for (const torch::Tensor& layer_k : k) out.k.push_back(layer_k.clone());
  for (const torch::Tensor& layer_v : v) out.v.push_back(layer_v.clone());
  out.length = length;
  return out;
}

KvCache MakeKvCache(int64_t layers, int64_t capacity, int64_t kv_heads, int64_t head_dim,
                    const torch::TensorOptions& options) {
  KvCache cache;
  for (int64_t i = 0; i < layers; ++i) {
    cache.k.push_back(torch::zeros({capacity, kv_heads, head_dim}, options));
    cache.v.push_back(torch::zeros({capacity, kv_heads, head_dim}, options));
  }
  return cache;
}

}  // namespace kvgate::runtime
