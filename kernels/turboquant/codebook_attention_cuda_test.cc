// The CUDA codebook logits and attention against the CPU references of codebook_attention.h
// (DenseLogitsRef / EagerAttentionRef: TurboQuant Decode, then float64 loops), on fresh random
// inputs each run (seed printed; KVGATE_SEED replays one). Outputs and workspaces are poisoned
// with NaN before each launch so an unwritten element fails. Tag `gpu`: runs on a GPU host through
// tools/gpu_bundle.

#include "kernels/turboquant/codebook_attention_cuda.h"

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdlib>
#include <limits>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/turboquant/codebook_attention.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::kernels {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// $KVGATE_SEED or a fresh seed (the failure message prints it); the same few lines as
// attention/selected_attention_cuda_test.cc's: gpu-only tests with no shared test library to hold them.
uint64_t Seed() {
  if (const char* env = std::getenv("KVGATE_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

TurboQuant MakeTq(TurboQuantKind kind, int bits, uint64_t seed) {
  TurboQuantOptions o;
  o.kind = kind;
  o.bits = bits;
  o.seed = seed;
  absl::StatusOr<TurboQuant> tq = TurboQuant::Make(o, 128);
  EXPECT_TRUE(tq.ok()) << tq.status();
  return *tq;
}

// Keys and values with an offset and spread like real ones.
torch::Tensor RandomKv(int64_t tokens, int64_t kv_heads, double spread, double offset) {
  return torch::randn({tokens, kv_heads, 128}) * spread + offset;
}

double RelativeError(const torch::Tensor& got, const torch::Tensor& expected) {
  const torch::Tensor g = got.cpu().to(torch::kFloat64), e = expected.to(torch::kFloat64);
  return ((g - e).norm() / e.norm()).item<double>();
}

struct Case {
  TurboQuantKind k_kind;
  int k_bits;
  int v_bits;
  int64_t heads, kv_heads, tokens;
};

std::string Name(const Case& c) {
  return std::string(c.k_kind == TurboQuantKind::kProd ? "prod" : "mse") + std::to_string(c.k_bits) +
         "_v" + std::to_string(c.v_bits) + "_h" + std::to_string(c.heads) + "x" +
         std::to_string(c.kv_heads) + "_t" + std::to_string(c.tokens);
}

class CodebookCudaTest : public ::testing::TestWithParam<Case> {};

TEST_P(CodebookCudaTest, LogitsAndAttentionMatchCpuReferences) {
  ASSERT_TRUE(torch::cuda::is_available());
  const Case c = GetParam();
  const uint64_t seed = Seed();
  torch::manual_seed(seed);
  SCOPED_TRACE(testing::Message() << Name(c) << " seed " << seed);
  const TurboQuant kq = MakeTq(c.k_kind, c.k_bits, seed % 1000);
  const TurboQuant vq = MakeTq(TurboQuantKind::kMse, c.v_bits, seed % 1000 + 1);
  const torch::Tensor q = torch::randn({c.heads, 128}).to(torch::kBFloat16);
  const torch::Tensor qf = q.to(torch::kFloat32);
  absl::StatusOr<TurboQuantTensor> k = kq.Encode(RandomKv(c.tokens, c.kv_heads, 1.5, 0.3));
  absl::StatusOr<TurboQuantTensor> v = vq.Encode(RandomKv(c.tokens, c.kv_heads, 1.0, 0.0));
  ASSERT_TRUE(k.ok() && v.ok());
  const torch::Device cuda(torch::kCUDA);
  absl::StatusOr<CodebookCudaFormat> kf = CodebookCudaFormat::Make(kq, cuda);
  absl::StatusOr<CodebookCudaFormat> vf = CodebookCudaFormat::Make(vq, cuda);
  ASSERT_TRUE(kf.ok()) << kf.status();
  ASSERT_TRUE(vf.ok()) << vf.status();
  absl::StatusOr<TurboQuantTensor> kd = TurboQuantTensorToCuda(*k, cuda);
  absl::StatusOr<TurboQuantTensor> vd = TurboQuantTensorToCuda(*v, cuda);
  ASSERT_TRUE(kd.ok() && vd.ok());
  const torch::Tensor qd = q.cuda();

  // Logits: the decoded keys' inner products in float64.
  absl::StatusOr<torch::Tensor> k_hat = kq.Decode(*k);
  ASSERT_TRUE(k_hat.ok());
  absl::StatusOr<torch::Tensor> expected_logits = DenseLogitsRef(qf, *k_hat);
  ASSERT_TRUE(expected_logits.ok());
  absl::StatusOr<torch::Tensor> workspace = CodebookCudaWorkspace(qd, c.kv_heads, c.tokens);
  ASSERT_TRUE(workspace.ok()) << workspace.status();
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    SCOPED_TRACE(dtype == torch::kFloat32 ? "float32 out" : "bf16 out");
    torch::Tensor logits = torch::full({c.heads, c.tokens}, kNaN, qd.options().dtype(dtype));
    workspace->fill_(kNaN);
    const absl::Status s = CodebookLogitsCudaInto(qd, *kf, *kd, logits, *workspace);
    ASSERT_TRUE(s.ok()) << s;
    torch::cuda::synchronize();
    ASSERT_TRUE(torch::isfinite(logits).all().item<bool>()) << "a logit was not written";
    // fp16 codebook values and an fp16 query scaled to max 1: about 2^-11 relative a term.
    EXPECT_LT(RelativeError(logits, *expected_logits), dtype == torch::kFloat32 ? 2e-3 : 5e-3);
  }

  // Attention: decode K and V, then float64 attention.
  const double scale = 1.0 / std::sqrt(128.0);
  absl::StatusOr<torch::Tensor> expected = EagerAttentionRef(qf, kq, *k, vq, *v, scale);
  ASSERT_TRUE(expected.ok()) << expected.status();
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    SCOPED_TRACE(dtype == torch::kFloat32 ? "float32 out" : "bf16 out");
    torch::Tensor out = torch::full({c.heads, 128}, kNaN, qd.options().dtype(dtype));
    workspace->fill_(kNaN);
    const absl::Status s = CodebookAttentionCudaInto(qd, *kf, *kd, *vf, *vd, out, *workspace);
    ASSERT_TRUE(s.ok()) << s;
    torch::cuda::synchronize();
    ASSERT_TRUE(torch::isfinite(out).all().item<bool>()) << "an output element was not written";
    EXPECT_LT(RelativeError(out, *expected), dtype == torch::kFloat32 ? 4e-3 : 8e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, CodebookCudaTest,
    ::testing::Values(Case{TurboQuantKind::kMse, 4, 4, 28, 4, 1},
                      Case{TurboQuantKind::kMse, 4, 4, 28, 4, 5},
                      Case{TurboQuantKind::kMse, 4, 4, 28, 4, 8192},
                      Case{TurboQuantKind::kMse, 3, 3, 28, 4, 333},
                      Case{TurboQuantKind::kMse, 2, 2, 28, 4, 1027},
                      Case{TurboQuantKind::kMse, 1, 1, 28, 4, 77},
                      Case{TurboQuantKind::kMse, 3, 4, 28, 4, 8192},
                      Case{TurboQuantKind::kProd, 4, 4, 28, 4, 8192},
                      Case{TurboQuantKind::kProd, 3, 3, 28, 4, 513},
                      Case{TurboQuantKind::kProd, 2, 2, 28, 4, 31},
                      Case{TurboQuantKind::kProd, 1, 2, 28, 4, 200},
                      Case{TurboQuantKind::kMse, 4, 2, 8, 1, 3001},
                      Case{TurboQuantKind::kMse, 2, 4, 4, 4, 129},
                      Case{TurboQuantKind::kProd, 4, 3, 16, 2, 40000}),
    [](const testing::TestParamInfo<Case>& info) { return Name(info.param); });

// Shared set-up for the remaining tests: 28/4 heads, 4-bit keys and values.
struct Fixture {
  TurboQuant kq = MakeTq(TurboQuantKind::kMse, 4, 3), vq = MakeTq(TurboQuantKind::kMse, 4, 4);
  CodebookCudaFormat kf, vf;
  TurboQuantTensor k, v, kd, vd;
  torch::Tensor q, qd, workspace;

  explicit Fixture(int64_t tokens) {
    torch::manual_seed(Seed());
    q = torch::randn({28, 128}).to(torch::kBFloat16);
    qd = q.cuda();
    k = *kq.Encode(RandomKv(tokens, 4, 1.5, 0.3));
    v = *vq.Encode(RandomKv(tokens, 4, 1.0, 0.0));
    kf = *CodebookCudaFormat::Make(kq, torch::kCUDA);
    vf = *CodebookCudaFormat::Make(vq, torch::kCUDA);
    kd = *TurboQuantTensorToCuda(k, torch::kCUDA);
    vd = *TurboQuantTensorToCuda(v, torch::kCUDA);
    workspace = *CodebookCudaWorkspace(qd, 4, tokens);
  }
};

// A cache of 5000 rows attended up to 3001 equals a tensor of 3001 rows; and a CUDA graph captured
// once replays to the same output.
TEST(CodebookCudaTest, PrefixOfCacheAndGraphReplay) {
  ASSERT_TRUE(torch::cuda::is_available());
  Fixture f(5000);
  TurboQuantTensor k_prefix = f.k, v_prefix = f.v;
  for (TurboQuantTensor* t : {&k_prefix, &v_prefix}) {
    t->shape[0] = 3001;
    t->groups[0].codes = t->groups[0].codes.slice(0, 0, 3001).contiguous();
    t->groups[0].norms = t->groups[0].norms.slice(0, 0, 3001).contiguous();
  }
  const double scale = 1.0 / std::sqrt(128.0);
  absl::StatusOr<torch::Tensor> expected =
      EagerAttentionRef(f.q.to(torch::kFloat32), f.kq, k_prefix, f.vq, v_prefix, scale);
  ASSERT_TRUE(expected.ok());

  torch::Tensor out = torch::full({28, 128}, kNaN, f.qd.options().dtype(torch::kFloat32));
  ASSERT_TRUE(CodebookAttentionCudaInto(f.qd, f.kf, f.kd, f.vf, f.vd, out, f.workspace, 0.0, 3001)
                  .ok());
  torch::cuda::synchronize();
  EXPECT_LT(RelativeError(out, *expected), 4e-3);

  // Capture on a side stream, replay, compare.
  torch::Tensor graph_out = torch::full_like(out, kNaN);
  at::cuda::CUDAGraph graph;
  {
    const c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool());
    graph.capture_begin();
    const absl::Status s =
        CodebookAttentionCudaInto(f.qd, f.kf, f.kd, f.vf, f.vd, graph_out, f.workspace, 0.0, 3001);
    graph.capture_end();
    ASSERT_TRUE(s.ok()) << s;
  }
  graph.replay();
  torch::cuda::synchronize();
  ASSERT_TRUE(torch::isfinite(graph_out).all().item<bool>());
  EXPECT_LT(RelativeError(graph_out, *expected), 4e-3);
}

TEST(CodebookCudaTest, BadInputsNameTheTensor) {
  ASSERT_TRUE(torch::cuda::is_available());
  Fixture f(100);
  torch::Tensor out = torch::empty({28, 128}, f.qd.options().dtype(torch::kFloat32));
  torch::Tensor logits = torch::empty({28, 100}, f.qd.options().dtype(torch::kFloat32));
  auto expect_invalid = [](const absl::Status& s, const std::string& needle) {
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(needle));
  };
  // q: float32, on the CPU, wrong head_dim.
  expect_invalid(CodebookAttentionCudaInto(f.qd.to(torch::kFloat32), f.kf, f.kd, f.vf, f.vd, out,
                                           f.workspace),
                 "q must be");
  expect_invalid(CodebookLogitsCudaInto(f.q, f.kf, f.kd, logits, f.workspace), "q must be");
  // k's codes of the wrong dtype and on the CPU.
  TurboQuantTensor bad = f.kd;
  bad.groups[0].codes = bad.groups[0].codes.to(torch::kInt32);
  expect_invalid(CodebookLogitsCudaInto(f.qd, f.kf, bad, logits, f.workspace), "k.codes");
  expect_invalid(CodebookLogitsCudaInto(f.qd, f.kf, f.k, logits, f.workspace), "k.codes");
  bad = f.vd;
  bad.groups[0].norms = bad.groups[0].norms.to(torch::kFloat32);
  expect_invalid(CodebookAttentionCudaInto(f.qd, f.kf, f.kd, f.vf, bad, out, f.workspace),
                 "v.norms");
  // A tensor of another format.
  expect_invalid(CodebookAttentionCudaInto(f.qd, f.kf, f.vd, f.vf, f.vd, out, f.workspace),
                 "k is encoded as");
  // Values must be kMse.
  const TurboQuant prod = MakeTq(TurboQuantKind::kProd, 3, 5);
  const CodebookCudaFormat pf = *CodebookCudaFormat::Make(prod, torch::kCUDA);
  const TurboQuantTensor pv = *TurboQuantTensorToCuda(*prod.Encode(RandomKv(100, 4, 1, 0)),
                                                      torch::kCUDA);
  expect_invalid(CodebookAttentionCudaInto(f.qd, f.kf, f.kd, pf, pv, out, f.workspace),
                 "v's format");
  // out: wrong shape, wrong dtype; workspace too small; tokens out of range; heads not a multiple.
  torch::Tensor bad_out = torch::empty({28, 64}, out.options());
  expect_invalid(CodebookAttentionCudaInto(f.qd, f.kf, f.kd, f.vf, f.vd, bad_out, f.workspace),
                 "out must be");
  bad_out = torch::empty({28, 100}, out.options().dtype(torch::kInt32));
  expect_invalid(CodebookLogitsCudaInto(f.qd, f.kf, f.kd, bad_out, f.workspace), "out must be");
  torch::Tensor small = f.workspace.slice(0, 0, 10);
  expect_invalid(CodebookAttentionCudaInto(f.qd, f.kf, f.kd, f.vf, f.vd, out, small),
                 "workspace must be");
  expect_invalid(CodebookAttentionCudaInto(f.qd, f.kf, f.kd, f.vf, f.vd, out, f.workspace, 0.0, 101),
                 "tokens");
  expect_invalid(CodebookAttentionCudaInto(f.qd, f.kf, f.kd, f.vf, f.vd, out, f.workspace, 0.0, 0),
                 "tokens");
  const torch::Tensor q30 = torch::randn({30, 128}, f.qd.options());
  torch::Tensor out30 = torch::empty({30, 128}, out.options());
  expect_invalid(CodebookAttentionCudaInto(q30, f.kf, f.kd, f.vf, f.vd, out30, f.workspace),
                 "heads");
  // The outlier split has no CUDA kernel.
  TurboQuantOptions split;
  split.split = true;
  split.bits = 2;
  const absl::StatusOr<CodebookCudaFormat> sf =
      CodebookCudaFormat::Make(*TurboQuant::Make(split, 128), torch::kCUDA);
  EXPECT_TRUE(absl::IsInvalidArgument(sf.status())) << sf.status();
}

}  // namespace
}  // namespace kvgate::kernels
