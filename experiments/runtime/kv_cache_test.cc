// Tests of the KV cache (kv_cache.h): preallocation, in-place updates and the views they return.
//
// Run: tools/bazel test //experiments/runtime:kv_cache_test

#include "experiments/runtime/kv_cache.h"

#include <torch/types.h>

#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

TEST(KvCacheTest, PreallocatesEveryLayer) {
  KvCache cache = MakeKvCache(3, 16, 2, 8, torch::dtype(torch::kBFloat16));
  EXPECT_EQ(cache.layers(), 3);
  EXPECT_EQ(cache.capacity(), 16);
  EXPECT_EQ(cache.length, 0);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(cache.k[i].sizes(), (std::vector<int64_t>{16, 2, 8}));
    EXPECT_EQ(cache.v[i].scalar_type(), torch::kBFloat16);
  }
}

TEST(KvCacheTest, UpdateWritesInPlaceAndReturnsThePrefix) {
  KvCache cache = MakeKvCache(2, 8, 2, 4, torch::dtype(torch::kFloat32));
  const void* k_buffer = cache.k[1].data_ptr();
  const torch::Tensor k0 = torch::randn({3, 2, 4}), v0 = torch::randn({3, 2, 4});
  auto [k, v] = cache.Update(1, 0, k0, v0);
  EXPECT_EQ(k.sizes(), (std::vector<int64_t>{3, 2, 4}));
  EXPECT_TRUE(torch::equal(k, k0));
  EXPECT_TRUE(torch::equal(v, v0));
  EXPECT_EQ(k.data_ptr(), k_buffer) << "a view of the buffer, not a copy";
  cache.length = 3;
  const torch::Tensor k1 = torch::randn({1, 2, 4}), v1 = torch::randn({1, 2, 4});
  auto [k_all, v_all] = cache.Update(1, 3, k1, v1);
  EXPECT_EQ(k_all.size(0), 4);
  EXPECT_TRUE(torch::equal(k_all.narrow(0, 0, 3), k0));
  EXPECT_TRUE(torch::equal(k_all[3], k1[0]));
  EXPECT_TRUE(torch::equal(v_all[3], v1[0]));
  EXPECT_EQ(cache.k[1].data_ptr(), k_buffer);
  EXPECT_EQ(cache.Keys(1).size(0), 3) << "length is the caller's to advance";
  EXPECT_TRUE(torch::equal(cache.k[0], torch::zeros({8, 2, 4}))) << "other layers untouched";
}

TEST(KvCacheTest, UpdateChecksShapesAndCapacity) {
  KvCache cache = MakeKvCache(1, 4, 2, 4, torch::dtype(torch::kFloat32));
  EXPECT_THROW(cache.Update(0, 3, torch::zeros({2, 2, 4}), torch::zeros({2, 2, 4})), c10::Error);
  EXPECT_THROW(cache.Update(0, 0, torch::zeros({1, 3, 4}), torch::zeros({1, 3, 4})), c10::Error);
  EXPECT_THROW(cache.Update(0, 0, torch::zeros({1, 2, 4}), torch::zeros({2, 2, 4})), c10::Error);
  EXPECT_THROW(cache.Update(1, 0, torch::zeros({1, 2, 4}), torch::zeros({1, 2, 4})), c10::Error);
}

// A clone owns its tensors: writing the original after cloning leaves the clone as it was.
TEST(KvCacheTest, CloneIsDeep) {
  KvCache cache = MakeKvCache(2, 8, 2, 4, torch::dtype(torch::kFloat32));
  cache.Update(1, 0, torch::ones({3, 2, 4}), torch::full({3, 2, 4}, 2.0f));
  cache.length = 3;
  const KvCache clone = cache.Clone();
  EXPECT_EQ(clone.length, 3);
  EXPECT_EQ(clone.layers(), 2);
  EXPECT_EQ(clone.capacity(), 8);
  cache.Update(1, 0, torch::zeros({3, 2, 4}), torch::zeros({3, 2, 4}));
  EXPECT_TRUE(torch::equal(clone.Keys(1), torch::ones({3, 2, 4})));
  EXPECT_TRUE(torch::equal(clone.Values(1), torch::full({3, 2, 4}, 2.0f)));
}

}  // namespace
}  // namespace kvgate::runtime
