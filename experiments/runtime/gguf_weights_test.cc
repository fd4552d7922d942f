// Tests of the GGUF model loader (gguf_weights.h, model_loader.h) on a small llama GGUF written by
// GgufBuilder with every supported tensor type: metadata to ModelConfig, Hugging Face names, exact
// dequantized values, the q/k row permutation undone (checked index by index against the formula
// of llama.cpp's convert_hf_to_gguf.py), weights_note, tied and untied output, and errors.
//
// Run: tools/bazel test //experiments/runtime:gguf_weights_test

#include "experiments/runtime/gguf_weights.h"

#include <string>
#include <vector>

#include "experiments/runtime/loader_test_util.h"
#include "experiments/runtime/model_loader.h"
#include "gates/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using testing::GgufBuilder;
using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// hidden 32, 2 heads of 16, 1 kv head, intermediate 64, vocab 40, one layer.
constexpr int64_t kHidden = 32, kHeads = 2, kKvHeads = 1, kHeadDim = 16, kFfn = 64, kVocab = 40;

std::vector<float> Ramp(int64_t n, float scale, float offset) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = offset + scale * static_cast<float>(i % 61 - 30);
  return v;
}

// `rows` rows of Q8_0 blocks (ne0 = cols, a multiple of 32), codes from the row and column.
std::string Q8Rows(int64_t rows, int64_t cols) {
  std::string out;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      std::vector<int8_t> q(32);
      for (int j = 0; j < 32; ++j) q[j] = static_cast<int8_t>((r * 7 + b * 3 + j) % 255 - 127);
      out += testing::Q8_0Block(0.5f, q);
    }
  }
  return out;
}

std::string Q4_1Rows(int64_t rows, int64_t cols) {
  std::string out;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      std::vector<uint8_t> q(32);
      for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>((r + b + j) % 16);
      out += testing::Q4_1Block(0.125f, -1.0f + 0.25f * static_cast<float>(r % 4), q);
    }
  }
  return out;
}

std::string Q4_0Rows(int64_t rows, int64_t cols) {
  std::string out;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      std::vector<uint8_t> q(32);
      for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>((r * 5 + j) % 16);
      out += testing::Q4_0Block(0.25f, q);
    }
  }
  return out;
}

// The HF q weight [heads * head_dim, hidden], then as convert_hf_to_gguf.py writes it.
torch::Tensor HfQ() {
  return torch::tensor(Ramp(kHeads * kHeadDim * kHidden, 0.5f, 0.0f))
      .reshape({kHeads * kHeadDim, kHidden});
}
torch::Tensor Permute(const torch::Tensor& w, int64_t n_head) {
  return w.reshape({n_head, 2, w.size(0) / n_head / 2, w.size(1)})
      .transpose(1, 2)
      .reshape(w.sizes())
      .contiguous();
}
std::string F32Of(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return testing::F32Bytes(
      std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel()));
}

GgufBuilder TinyLlama(bool with_output = false) {
  GgufBuilder b;
  b.String("general.architecture", "llama")
      .String("general.name", "tiny")
      .Uint32("llama.block_count", 1)
      .Uint32("llama.context_length", 128)
      .Uint32("llama.embedding_length", kHidden)
      .Uint32("llama.feed_forward_length", kFfn)
      .Uint32("llama.attention.head_count", kHeads)
      .Uint32("llama.attention.head_count_kv", kKvHeads)
      .Uint32("llama.rope.dimension_count", kHeadDim)
      .Float32("llama.rope.freq_base", 100000.0f)
      .Float32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
      .Uint32("llama.vocab_size", kVocab)
      .Uint32("tokenizer.ggml.bos_token_id", 1)
      .Uint32("tokenizer.ggml.eos_token_id", 2)
      .Tensor("token_embd.weight", 3, {kHidden, kVocab}, Q4_1Rows(kVocab, kHidden))
      .Tensor("output_norm.weight", 0, {kHidden}, testing::F32Bytes(Ramp(kHidden, 0.125f, 1.0f)))
      .Tensor("blk.0.attn_norm.weight", 0, {kHidden}, testing::F32Bytes(Ramp(kHidden, 0.25f, 1.0f)))
      .Tensor("blk.0.ffn_norm.weight", 1, {kHidden}, testing::F16Bytes(Ramp(kHidden, 0.5f, 2.0f)))
      .Tensor("blk.0.attn_q.weight", 0, {kHidden, kHeads * kHeadDim}, F32Of(Permute(HfQ(), kHeads)))
      .Tensor("blk.0.attn_k.weight", 8, {kHidden, kKvHeads * kHeadDim},
              Q8Rows(kKvHeads * kHeadDim, kHidden))
      .Tensor("blk.0.attn_v.weight", 2, {kHidden, kKvHeads * kHeadDim},
              Q4_0Rows(kKvHeads * kHeadDim, kHidden))
      .Tensor("blk.0.attn_output.weight", 1, {kHeads * kHeadDim, kHidden},
              testing::F16Bytes(Ramp(kHidden * kHeads * kHeadDim, 0.25f, 0.0f)))
      .Tensor("blk.0.ffn_gate.weight", 30, {kHidden, kFfn},
              testing::Bf16Bytes(Ramp(kHidden * kFfn, 0.5f, 0.0f)))
      .Tensor("blk.0.ffn_up.weight", 8, {kHidden, kFfn}, Q8Rows(kFfn, kHidden))
      .Tensor("blk.0.ffn_down.weight", 3, {kFfn, kHidden}, Q4_1Rows(kHidden, kFfn));
  if (with_output)
    b.Tensor("output.weight", 0, {kHidden, kVocab},
             testing::F32Bytes(Ramp(kHidden * kVocab, 0.5f, 0.0f)));
  return b;
}

std::string WriteGguf(const std::string& bytes, const std::string& name = "tiny-llama.Q4_1.gguf") {
  const std::string path = testing::MakeTempDir("gguf") + "/" + name;
  testing::WriteFile(path, bytes);
  return path;
}

TEST(GgufWeightsTest, NameMapping) {
  EXPECT_EQ(*GgufToHfName("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(*GgufToHfName("output.weight"), "lm_head.weight");
  EXPECT_EQ(*GgufToHfName("output_norm.weight"), "model.norm.weight");
  EXPECT_EQ(*GgufToHfName("blk.12.attn_output.weight"), "model.layers.12.self_attn.o_proj.weight");
  EXPECT_EQ(*GgufToHfName("blk.0.attn_q.bias"), "model.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(*GgufToHfName("blk.3.ffn_norm.weight"),
            "model.layers.3.post_attention_layernorm.weight");
  EXPECT_FALSE(GgufToHfName("blk.01.attn_q.weight").ok());
  EXPECT_FALSE(GgufToHfName("blk.0.attn_qkv.weight").ok());
  EXPECT_FALSE(GgufToHfName("rope_freqs.weight").ok());
  EXPECT_EQ(GgufModelName("/x/SmolLM2-135M-Instruct.Q4_1.gguf"), "SmolLM2-135M-Instruct");
  EXPECT_EQ(GgufModelName("model-f16.gguf"), "model-f16");
  EXPECT_EQ(GgufModelName("m.bf16.gguf"), "m");
}

TEST(GgufWeightsTest, LoadsConfigNamesAndValues) {
  const std::string path = WriteGguf(TinyLlama().Build());
  absl::StatusOr<ModelWeights> w = LoadModel(path);
  ASSERT_TRUE(w.ok()) << w.status();
  const ModelConfig& c = w->config;
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.hidden_size, kHidden);
  EXPECT_EQ(c.num_attention_heads, kHeads);
  EXPECT_EQ(c.num_key_value_heads, kKvHeads);
  EXPECT_EQ(c.head_dim, kHeadDim);
  EXPECT_EQ(c.intermediate_size, kFfn);
  EXPECT_EQ(c.vocab_size, kVocab);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);  // the float 9.99999975e-06 read back as the config's 1e-5
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.max_position_embeddings, 128);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_EQ(w->model_name, "tiny-llama");
  EXPECT_EQ(w->source, path);
  EXPECT_EQ(w->weights_sha256, gates::Sha256Hex(testing::ReadTestFile(path)));
  EXPECT_EQ(w->weights_note,
            "Q4_1-dequantized to float32 (GGUF tensor types: 3 F32, 2 F16, 2 Q4_1, 2 Q8_0, 1 Q4_0, "
            "1 BF16)");
  EXPECT_EQ(w->tensors.size(), 11u);
  for (const auto& [name, t] : w->tensors) EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;

  // Values: F32/F16/BF16 as written; quantized ones as DequantizeToTensor (tested in gguf_test).
  EXPECT_TRUE(
      torch::equal(w->tensors.at("model.norm.weight"), torch::tensor(Ramp(kHidden, 0.125f, 1.0f))));
  EXPECT_TRUE(torch::equal(w->tensors.at("model.layers.0.post_attention_layernorm.weight"),
                           torch::tensor(Ramp(kHidden, 0.5f, 2.0f))));
  EXPECT_TRUE(
      torch::equal(w->tensors.at("model.layers.0.mlp.gate_proj.weight"),
                   torch::tensor(Ramp(kHidden * kFfn, 0.5f, 0.0f)).reshape({kFfn, kHidden})));
  const torch::Tensor embed = w->tensors.at("model.embed_tokens.weight");
  EXPECT_EQ(embed.sizes().vec(), (std::vector<int64_t>{kVocab, kHidden}));
  EXPECT_EQ(embed[3][5].item<float>(), 0.125f * ((3 + 0 + 5) % 16) + (-1.0f + 0.25f * 3));
  EXPECT_EQ(w->tensors.at("model.layers.0.mlp.down_proj.weight").sizes().vec(),
            (std::vector<int64_t>{kHidden, kFfn}));
}

TEST(GgufWeightsTest, UndoesTheRopePermutationOfQAndK) {
  absl::StatusOr<GgufFile> gguf =
      GgufFile::Parse(MappedFile::FromBytes(TinyLlama().Build(), "t.gguf"));
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  absl::StatusOr<ModelWeights> w = GgufToModelWeights(*gguf);
  ASSERT_TRUE(w.ok()) << w.status();
  // q: written as permute(HF q); loading gives HF q back exactly.
  EXPECT_TRUE(torch::equal(w->tensors.at("model.layers.0.self_attn.q_proj.weight"), HfQ()));
  // k: GGUF row h*hd + 2j + t is HF row h*hd + t*hd/2 + j (convert_hf_to_gguf.py's permute).
  const torch::Tensor stored = *DequantizeToTensor(*gguf->FindTensor("blk.0.attn_k.weight"));
  const torch::Tensor k = w->tensors.at("model.layers.0.self_attn.k_proj.weight");
  for (int64_t h = 0; h < kKvHeads; ++h) {
    for (int64_t j = 0; j < kHeadDim / 2; ++j) {
      for (int64_t t = 0; t < 2; ++t) {
        EXPECT_TRUE(
            torch::equal(k[h * kHeadDim + t * kHeadDim / 2 + j], stored[h * kHeadDim + 2 * j + t]));
      }
    }
  }
  // v is not permuted.
  EXPECT_TRUE(torch::equal(w->tensors.at("model.layers.0.self_attn.v_proj.weight"),
                           *DequantizeToTensor(*gguf->FindTensor("blk.0.attn_v.weight"))));
  // A bias permutes like its weight's rows.
  const torch::Tensor bias = torch::arange(8, torch::kFloat32);
  EXPECT_TRUE(torch::equal(UndoGgufRopePermutation(bias, 2),
                           torch::tensor({0.f, 2.f, 1.f, 3.f, 4.f, 6.f, 5.f, 7.f})));
}

TEST(GgufWeightsTest, UntiedOutputBecomesLmHead) {
  absl::StatusOr<ModelWeights> w = LoadModel(WriteGguf(TinyLlama(/*with_output=*/true).Build()));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_FALSE(w->config.tie_word_embeddings);
  EXPECT_EQ(w->tensors.at("lm_head.weight").sizes().vec(), (std::vector<int64_t>{kVocab, kHidden}));
}

TEST(GgufWeightsTest, ErrorsNameTheKeyOrTensor) {
  auto load = [](const GgufBuilder& b) { return LoadModel(WriteGguf(b.Build())).status(); };
  {
    GgufBuilder b = TinyLlama();
    b.Tensor("blk.0.attn_qkv.weight", 0, {8}, testing::F32Bytes(Ramp(8, 1, 0)));
    EXPECT_THAT(Message(load(b)),
                HasSubstr("tensor \"blk.0.attn_qkv.weight\" has no Hugging Face name"));
  }
  {
    GgufBuilder b = TinyLlama();
    b.Tensor("blk.1.ffn_up.weight", 0, {8}, testing::F32Bytes(Ramp(8, 1, 0)));
    EXPECT_THAT(Message(load(b)), HasSubstr("unexpected tensor model.layers.1.mlp.up_proj.weight"));
  }
  {
    GgufBuilder b = TinyLlama();
    b.String("llama.rope.scaling.type", "linear");
    EXPECT_THAT(Message(load(b)),
                HasSubstr("llama.rope.scaling.type is set: RoPE scaling is not implemented"));
  }
  {
    GgufBuilder b;
    b.String("general.architecture", "llama").Uint32("llama.block_count", 1);
    EXPECT_THAT(Message(load(b)), HasSubstr("missing metadata key \"llama.embedding_length\""));
  }
  {
    GgufBuilder b;
    b.String("general.architecture", "gpt2");
    EXPECT_THAT(Message(load(b)), HasSubstr("general.architecture \"gpt2\" is not implemented"));
  }
  {
    GgufBuilder b = TinyLlama();
    b.Uint32("llama.rope.dimension_count", 8);  // duplicate key: the parser refuses it first
    EXPECT_THAT(Message(load(b)), HasSubstr("duplicate metadata key"));
  }
  {
    GgufBuilder b = TinyLlama();
    b.Tensor("blk.0.attn_q.bias", 12, {256}, std::string(144, '\0'));  // Q4_K
    EXPECT_THAT(
        Message(load(b)),
        HasSubstr("tensor \"blk.0.attn_q.bias\" is Q4_K; only F32, F16, BF16, Q8_0, Q4_0, Q4_1"));
  }
  EXPECT_THAT(Message(LoadModel(WriteGguf("not a model", "x.bin")).status()),
              HasSubstr("expected a Hugging Face snapshot folder"));
}

}  // namespace
}  // namespace kvgate::runtime
