// The embedded default model, @smollm2//:gguf (SmolLM2-135M-Instruct, Q4_1): LoadModel gives the
// published configuration and tensor shapes, says the weights are Q4_1-dequantized, and its
// dequantized values equal those of the `gguf` Python package (testdata/smollm2_dequant.json,
// written by testdata/make_references.py): chosen elements bit for bit, sums to 1e-9 relative.
//
// Run: tools/bazel test //experiments/runtime:smollm2_test

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "experiments/runtime/gguf_weights.h"
#include "experiments/runtime/loader_test_util.h"
#include "experiments/runtime/model_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;

constexpr char kPinnedSha256[] = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

// Loads the model once for all tests.
class SmolLM2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = testing::SmolLM2GgufPath();
    ASSERT_FALSE(path.empty()) << "@smollm2//:gguf is not in the runfiles";
    absl::StatusOr<ModelWeights> w = LoadModel(path);
    ASSERT_TRUE(w.ok()) << w.status();
    weights_ = new ModelWeights(*std::move(w));
    absl::StatusOr<GgufFile> gguf = GgufFile::Open(path);
    ASSERT_TRUE(gguf.ok()) << gguf.status();
    gguf_ = new GgufFile(*std::move(gguf));
  }
  static void TearDownTestSuite() {
    delete weights_;
    delete gguf_;
  }
  static ModelWeights* weights_;
  static GgufFile* gguf_;
};
ModelWeights* SmolLM2Test::weights_ = nullptr;
GgufFile* SmolLM2Test::gguf_ = nullptr;

TEST_F(SmolLM2Test, ConfigShapesAndNote) {
  const ModelWeights* w = weights_;
  const ModelConfig& c = w->config;
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.num_attention_heads, 9);
  EXPECT_EQ(c.num_key_value_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_EQ(w->model_name, "SmolLM2-135M-Instruct");
  EXPECT_EQ(w->weights_sha256, kPinnedSha256);
  EXPECT_EQ(w->weights_note,
            "Q4_1-dequantized to float32 (GGUF tensor types: 210 Q4_1, 61 F32, 1 Q8_0)");
  EXPECT_EQ(w->tensors.size(), 272u);
  EXPECT_EQ(w->tensors.count("lm_head.weight"), 0u);
  auto shape = [&](const std::string& name) { return w->tensors.at(name).sizes().vec(); };
  EXPECT_EQ(shape("model.embed_tokens.weight"), (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(shape("model.layers.0.self_attn.q_proj.weight"), (std::vector<int64_t>{576, 576}));
  EXPECT_EQ(shape("model.layers.29.self_attn.k_proj.weight"), (std::vector<int64_t>{192, 576}));
  EXPECT_EQ(shape("model.layers.7.mlp.down_proj.weight"), (std::vector<int64_t>{576, 1536}));
  EXPECT_EQ(shape("model.norm.weight"), (std::vector<int64_t>{576}));
  int64_t params = 0;
  for (const auto& [name, t] : w->tensors) params += t.numel();
  EXPECT_EQ(params, 134515008);
}

TEST_F(SmolLM2Test, DequantizationMatchesTheGgufPythonPackage) {
  const GgufFile* gguf = gguf_;
  const nlohmann::json refs =
      nlohmann::json::parse(testing::ReadTestFile(testing::TestDataPath("smollm2_dequant.json")));
  ASSERT_EQ(refs.size(), 5u);
  for (const nlohmann::json& ref : refs) {
    const std::string name = ref["name"].get<std::string>();
    const GgufTensorInfo* info = gguf->FindTensor(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(GgmlTypeName(info->type), ref["type"].get<std::string>());
    absl::StatusOr<torch::Tensor> t = DequantizeToTensor(*info);  // rows as stored
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->sizes().vec(), ref["torch_shape"].get<std::vector<int64_t>>());
    const torch::Tensor flat = t->reshape({-1});
    const float* v = flat.data_ptr<float>();
    for (const nlohmann::json& pick : ref["picks"]) {
      const int64_t i = pick["index"].get<int64_t>();
      uint32_t bits;
      std::memcpy(&bits, &v[i], 4);
      EXPECT_EQ(bits, pick["bits"].get<uint32_t>())
          << name << "[" << i << "] = " << v[i] << ", gguf-py " << pick["value"].get<double>();
    }
    double sum = 0, sum_squares = 0;
    float min = v[0], max = v[0];
    for (int64_t i = 0; i < flat.numel(); ++i) {
      sum += v[i];
      sum_squares += static_cast<double>(v[i]) * v[i];
      min = std::min(min, v[i]);
      max = std::max(max, v[i]);
    }
    EXPECT_NEAR(sum, ref["sum"].get<double>(), 1e-9 * ref["sum_squares"].get<double>()) << name;
    EXPECT_NEAR(sum_squares, ref["sum_squares"].get<double>(),
                1e-9 * ref["sum_squares"].get<double>())
        << name;
    EXPECT_EQ(min, ref["min"].get<float>()) << name;
    EXPECT_EQ(max, ref["max"].get<float>()) << name;
  }
}

TEST_F(SmolLM2Test, LoadedQAndKAreTheStoredRowsUnpermuted) {
  const GgufFile* gguf = gguf_;
  const ModelWeights* w = weights_;
  const torch::Tensor q = *DequantizeToTensor(*gguf->FindTensor("blk.0.attn_q.weight"));
  const torch::Tensor k = *DequantizeToTensor(*gguf->FindTensor("blk.0.attn_k.weight"));
  EXPECT_TRUE(torch::equal(w->tensors.at("model.layers.0.self_attn.q_proj.weight"),
                           UndoGgufRopePermutation(q, 9)));
  EXPECT_TRUE(torch::equal(w->tensors.at("model.layers.0.self_attn.k_proj.weight"),
                           UndoGgufRopePermutation(k, 3)));
  // Row 1 of HF q (head 0, first half, pair 1) is stored row 2.
  EXPECT_TRUE(torch::equal(w->tensors.at("model.layers.0.self_attn.q_proj.weight")[1], q[2]));
  EXPECT_TRUE(torch::equal(w->tensors.at("model.layers.0.self_attn.q_proj.weight")[32], q[1]));
}

}  // namespace
}  // namespace kvgate::runtime
