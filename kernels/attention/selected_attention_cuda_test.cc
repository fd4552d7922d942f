// The CUDA selected-blocks attention against the CPU float64 reference (DecodeAttentionReference
// with HistorySelection::Blocks, attention.h) on fresh random inputs each run (seed printed;
// KVGATE_SEED replays one). Outputs and workspaces are poisoned with NaN before each launch so an
// unwritten element fails. Tag `gpu`: runs on a GPU host through tools/gpu_bundle.

#include "kernels/attention/selected_attention_cuda.h"

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/attention/attention.h"

namespace kvgate::kernels {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// $KVGATE_SEED or a fresh seed (the failure message prints it); the same few lines as
// turboquant/codebook_attention_cuda_test.cc's: gpu-only tests with no shared test library to hold them.
uint64_t Seed() {
  if (const char* env = std::getenv("KVGATE_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

// `rows` rows of n distinct block ids out of `blocks`, in random order.
torch::Tensor RandomIds(int64_t rows, int64_t n, int64_t blocks, std::mt19937_64& rng) {
  torch::Tensor ids = torch::empty({rows, n}, torch::kInt32);
  std::vector<int32_t> all(blocks);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) all[b] = static_cast<int32_t>(b);
    std::shuffle(all.begin(), all.end(), rng);
    for (int64_t i = 0; i < n; ++i) ids[r][i] = all[i];
  }
  return ids;
}

// The block mask [rows, blocks] of ids [rows, n] (ids outside [0, blocks) select nothing).
torch::Tensor MaskOf(const torch::Tensor& ids, int64_t blocks) {
  torch::Tensor mask = torch::zeros({ids.size(0), blocks}, torch::kBool);
  for (int64_t r = 0; r < ids.size(0); ++r) {
    for (int64_t i = 0; i < ids.size(1); ++i) {
      const int64_t b = ids[r][i].item<int32_t>();
      if (b >= 0 && b < blocks) mask[r][b] = true;
    }
  }
  return mask;
}

double RelativeError(const torch::Tensor& got, const torch::Tensor& expected) {
  const torch::Tensor g = got.cpu().to(torch::kFloat64), e = expected.to(torch::kFloat64);
  return ((g - e).norm() / e.norm()).item<double>();
}

struct Case {
  int64_t heads, kv_heads, tokens, block_size;
  double fraction;
  bool per_kv_head;
};

std::string Name(const Case& c) {
  return "h" + std::to_string(c.heads) + "x" + std::to_string(c.kv_heads) + "_t" +
         std::to_string(c.tokens) + "_b" + std::to_string(c.block_size) + "_f" +
         std::to_string(static_cast<int>(c.fraction * 100)) + (c.per_kv_head ? "_perkv" : "_shared");
}

class SelectedAttentionCudaTest : public ::testing::TestWithParam<Case> {};

TEST_P(SelectedAttentionCudaTest, MatchesFloat64Reference) {
  ASSERT_TRUE(torch::cuda::is_available());
  const Case c = GetParam();
  const uint64_t seed = Seed();
  torch::manual_seed(seed);
  std::mt19937_64 rng(seed);
  SCOPED_TRACE(testing::Message() << Name(c) << " seed " << seed);
  const torch::Tensor q = torch::randn({c.heads, 128}).to(torch::kBFloat16);
  const torch::Tensor k =
      (torch::randn({c.tokens, c.kv_heads, 128}) * 1.5 + 0.3).to(torch::kBFloat16);
  const torch::Tensor v = torch::randn({c.tokens, c.kv_heads, 128}).to(torch::kBFloat16);
  const int64_t blocks = (c.tokens + c.block_size - 1) / c.block_size;
  const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(c.fraction * blocks));
  const torch::Tensor ids = RandomIds(c.per_kv_head ? c.kv_heads : 1, n, blocks, rng);
  AttentionOptions options;
  const HistorySelection selection = HistorySelection::Blocks(MaskOf(ids, blocks), c.block_size);
  absl::StatusOr<AttentionOutput> expected =
      DecodeAttentionReference(q, k, v, options, &selection);
  ASSERT_TRUE(expected.ok()) << expected.status();

  const torch::Tensor qd = q.cuda(), kd = k.cuda(), vd = v.cuda();
  const torch::Tensor idd = (c.per_kv_head ? ids : ids.view({n})).cuda();
  absl::StatusOr<torch::Tensor> workspace =
      SelectedAttentionCudaWorkspace(qd, c.kv_heads, n, c.block_size);
  ASSERT_TRUE(workspace.ok()) << workspace.status();
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    SCOPED_TRACE(dtype == torch::kFloat32 ? "float32 out" : "bf16 out");
    torch::Tensor out = torch::full({c.heads, 128}, kNaN, qd.options().dtype(dtype));
    workspace->fill_(kNaN);
    const absl::Status s = SelectedAttentionCudaInto(qd, kd, vd, idd, c.block_size, out, *workspace);
    ASSERT_TRUE(s.ok()) << s;
    torch::cuda::synchronize();
    ASSERT_TRUE(torch::isfinite(out).all().item<bool>()) << "an output element was not written";
    // bf16 inputs are exact; p is rounded to bf16 for the value mma (2^-9 relative a weight).
    EXPECT_LT(RelativeError(out, expected->out), dtype == torch::kFloat32 ? 4e-3 : 6e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SelectedAttentionCudaTest,
    ::testing::Values(Case{28, 4, 1, 16, 1.0, false}, Case{28, 4, 5, 16, 1.0, true},
                      Case{28, 4, 1000, 16, 0.25, false}, Case{28, 4, 8192, 16, 0.05, false},
                      Case{28, 4, 8192, 16, 0.1, true}, Case{28, 4, 8192, 16, 0.5, true},
                      Case{28, 4, 8192, 16, 1.0, false}, Case{28, 4, 32768 + 17, 16, 0.25, true},
                      Case{28, 4, 999, 7, 0.3, true}, Case{28, 4, 5000, 64, 0.2, false},
                      Case{8, 1, 3001, 16, 0.5, false}, Case{4, 4, 333, 16, 0.5, true},
                      Case{16, 2, 131072, 16, 0.05, true}),
    [](const testing::TestParamInfo<Case>& info) { return Name(info.param); });

// Ids out of range select nothing; a prefix of a larger cache; a CUDA graph replays the same.
TEST(SelectedAttentionCudaTest, OutOfRangeIdsPrefixAndGraph) {
  ASSERT_TRUE(torch::cuda::is_available());
  const uint64_t seed = Seed();
  torch::manual_seed(seed);
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  const int64_t rows = 6000, tokens = 4001, bs = 16, blocks = (tokens + bs - 1) / bs;
  const torch::Tensor q = torch::randn({28, 128}).to(torch::kBFloat16);
  const torch::Tensor k = (torch::randn({rows, 4, 128}) * 1.5).to(torch::kBFloat16);
  const torch::Tensor v = torch::randn({rows, 4, 128}).to(torch::kBFloat16);
  // Row 0 of the ids names blocks past the history (inside the cache's rows) and -1.
  torch::Tensor ids = torch::tensor({3, 250, -1, 7, 251, 300, 100, 0}, torch::kInt32);
  const HistorySelection selection = HistorySelection::Blocks(MaskOf(ids.view({1, 8}), blocks), bs);
  const torch::Tensor kp = k.slice(0, 0, tokens), vp = v.slice(0, 0, tokens);
  absl::StatusOr<AttentionOutput> expected =
      DecodeAttentionReference(q, kp, vp, AttentionOptions{}, &selection);
  ASSERT_TRUE(expected.ok()) << expected.status();
  const torch::Tensor qd = q.cuda(), kd = k.cuda(), vd = v.cuda(), idd = ids.cuda();
  torch::Tensor workspace = *SelectedAttentionCudaWorkspace(qd, 4, 8, bs);
  torch::Tensor out = torch::full({28, 128}, kNaN, qd.options().dtype(torch::kFloat32));
  ASSERT_TRUE(SelectedAttentionCudaInto(qd, kd, vd, idd, bs, out, workspace, 0.0, tokens).ok());
  torch::cuda::synchronize();
  EXPECT_LT(RelativeError(out, expected->out), 4e-3);

  torch::Tensor graph_out = torch::full_like(out, kNaN);
  at::cuda::CUDAGraph graph;
  {
    const c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool());
    graph.capture_begin();
    const absl::Status s =
        SelectedAttentionCudaInto(qd, kd, vd, idd, bs, graph_out, workspace, 0.0, tokens);
    graph.capture_end();
    ASSERT_TRUE(s.ok()) << s;
  }
  graph.replay();
  torch::cuda::synchronize();
  ASSERT_TRUE(torch::isfinite(graph_out).all().item<bool>());
  EXPECT_LT(RelativeError(graph_out, expected->out), 4e-3);
}

TEST(SelectedAttentionCudaTest, BadInputsNameTheTensor) {
  ASSERT_TRUE(torch::cuda::is_available());
  const auto bf16 = torch::dtype(torch::kBFloat16).device(torch::kCUDA);
  const torch::Tensor q = torch::randn({28, 128}, bf16), k = torch::randn({100, 4, 128}, bf16),
                      v = torch::randn({100, 4, 128}, bf16);
  const torch::Tensor ids = torch::arange(3, torch::dtype(torch::kInt32).device(torch::kCUDA));
  torch::Tensor out = torch::empty_like(q);
  torch::Tensor workspace = *SelectedAttentionCudaWorkspace(q, 4, 3, 16);
  auto expect_invalid = [](const absl::Status& s, const std::string& needle) {
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(needle));
  };
  expect_invalid(SelectedAttentionCudaInto(q.to(torch::kFloat32), k, v, ids, 16, out, workspace),
                 "q must be");
  expect_invalid(SelectedAttentionCudaInto(q, k.slice(2, 0, 64), v, ids, 16, out, workspace),
                 "k must be");
  expect_invalid(SelectedAttentionCudaInto(q, k, v.slice(0, 0, 50), ids, 16, out, workspace),
                 "v ");
  expect_invalid(SelectedAttentionCudaInto(q, k, v, ids.to(torch::kInt64), 16, out, workspace),
                 "block_ids");
  expect_invalid(SelectedAttentionCudaInto(q, k, v, ids.view({1, 3}).expand({3, 3}).contiguous(),
                                           16, out, workspace),
                 "block_ids");
  expect_invalid(SelectedAttentionCudaInto(q, k, v, ids.cpu(), 16, out, workspace), "block_ids");
  expect_invalid(SelectedAttentionCudaInto(q, k, v, ids, 0, out, workspace), "block_size");
  torch::Tensor bad_out = torch::empty({28, 64}, bf16);
  expect_invalid(SelectedAttentionCudaInto(q, k, v, ids, 16, bad_out, workspace), "out must be");
  torch::Tensor small = workspace.slice(0, 0, 8);
  expect_invalid(SelectedAttentionCudaInto(q, k, v, ids, 16, out, small), "workspace must be");
  expect_invalid(SelectedAttentionCudaInto(q, k, v, ids, 16, out, workspace, 0.0, 101), "tokens");
  const torch::Tensor q30 = torch::randn({30, 128}, bf16);
  torch::Tensor out30 = torch::empty_like(q30);
  expect_invalid(SelectedAttentionCudaInto(q30, k, v, ids, 16, out30, workspace), "heads");
}

}  // namespace
}  // namespace kvgate::kernels
