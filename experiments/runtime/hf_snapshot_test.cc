// Tests of the Hugging Face snapshot loader (hf_snapshot.h, model_loader.h) on small snapshots
// written here: config.json parsing (Llama, Qwen2 with biases, Qwen2.5-7B-Instruct's real config),
// exact tensor values in F32 and BF16 from one file and from an index with shards, memory-mapped
// tensors that stay writable without touching the file, weights_sha256, and errors for missing
// config fields, unsupported settings, missing/extra/misshapen tensors and bad indexes.
//
// Run: tools/bazel test //experiments/runtime:hf_snapshot_test

#include "experiments/runtime/hf_snapshot.h"

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/runtime/json_limits.h"
#include "experiments/runtime/loader_test_util.h"
#include "experiments/runtime/model_loader.h"
#include "gates/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;
using testing::StTensor;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

nlohmann::json TinyConfig(const std::string& arch = "LlamaForCausalLM") {
  return {{"architectures", {arch}},
          {"vocab_size", 16},
          {"hidden_size", 8},
          {"intermediate_size", 12},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 2},
          {"num_key_value_heads", 1},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 500000.0},
          {"max_position_embeddings", 64},
          {"tie_word_embeddings", false},
          {"bos_token_id", 1},
          {"eos_token_id", {2, 3}},
          {"hidden_act", "silu"},
          {"rope_scaling", nullptr},
          {"torch_dtype", "bfloat16"}};
}

// Values exactly representable in bfloat16: tensor k, element i.
std::vector<float> Values(int k, int64_t n) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(k) + 0.25f * static_cast<float>(i % 7 - 3);
  return v;
}

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The tensors a config implies, k-th in name order, BF16 for 2-D weights and F32 for the rest.
std::vector<StTensor> TensorsFor(const ModelConfig& config) {
  std::vector<StTensor> out;
  int k = 0;
  for (const auto& [name, e] : ExpectedTensors(config)) {
    const std::vector<float> v = Values(k++, Numel(e.shape));
    if (e.shape.size() == 2) {
      out.push_back({name, "BF16", e.shape, testing::Bf16Bytes(v)});
    } else {
      out.push_back({name, "F32", e.shape, testing::F32Bytes(v)});
    }
  }
  return out;
}

std::string WriteSnapshot(const std::string& name, const nlohmann::json& config,
                          const std::vector<StTensor>& tensors) {
  const std::string dir = testing::MakeTempDir(name);
  testing::WriteFile(dir + "/config.json", config.dump(2));
  testing::WriteFile(dir + "/model.safetensors",
                     testing::BuildSafetensors(tensors, {{"format", "pt"}}));
  return dir;
}

void ExpectValues(const ModelWeights& w) {
  int k = 0;
  for (const auto& [name, e] : ExpectedTensors(w.config)) {
    const torch::Tensor& t = w.tensors.at(name);
    EXPECT_EQ(t.scalar_type(), e.shape.size() == 2 ? torch::kBFloat16 : torch::kFloat32) << name;
    const std::vector<float> v = Values(k++, Numel(e.shape));
    const torch::Tensor expected = torch::tensor(v).reshape(e.shape);
    EXPECT_TRUE(torch::equal(t.to(torch::kFloat32), expected)) << name;
  }
}

TEST(HfConfigTest, ParsesLlamaAndQwen2) {
  absl::StatusOr<ModelConfig> llama = ParseHfConfig(TinyConfig(), "config.json");
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_EQ(llama->architecture, "llama");
  EXPECT_EQ(llama->head_dim, 4);
  EXPECT_EQ(llama->num_key_value_heads, 1);
  EXPECT_EQ(llama->rms_norm_eps, 1e-5);
  EXPECT_EQ(llama->rope_theta, 500000.0);
  EXPECT_EQ(llama->eos_token_id, 2);  // first of the list
  EXPECT_FALSE(llama->attention_bias);
  absl::StatusOr<ModelConfig> qwen = ParseHfConfig(TinyConfig("Qwen2ForCausalLM"), "config.json");
  ASSERT_TRUE(qwen.ok()) << qwen.status();
  EXPECT_EQ(qwen->architecture, "qwen2");
  EXPECT_TRUE(qwen->attention_bias);
}

TEST(HfConfigTest, ParsesQwen25_7BInstruct) {
  // config.json of Qwen/Qwen2.5-7B-Instruct.
  const char* text = R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
    "intermediate_size": 18944, "max_position_embeddings": 32768, "max_window_layers": 28,
    "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": false,
    "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": true,
    "use_sliding_window": false, "vocab_size": 152064})";
  absl::StatusOr<ModelConfig> c = ParseHfConfig(*ParseJson(text, "config.json"), "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 3584);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->intermediate_size, 18944);
  EXPECT_EQ(c->vocab_size, 152064);
  EXPECT_EQ(c->rope_theta, 1e6);
  EXPECT_EQ(c->eos_token_id, 151645);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_EQ(ExpectedTensors(*c).size(), 3u + 28u * 12u);
}

// transformers 5 writes RoPE's theta only under rope_parameters; transformers 4 may write a
// rope_scaling of type "default". Both are plain RoPE with that theta.
TEST(HfConfigTest, ReadsRopeThetaFromEitherFormat) {
  nlohmann::json v5 = TinyConfig("Qwen2ForCausalLM");
  v5.erase("rope_theta");
  v5.erase("rope_scaling");
  v5["rope_parameters"] = {{"rope_theta", 5e5}, {"rope_type", "default"}};
  absl::StatusOr<ModelConfig> parsed = ParseHfConfig(v5, "config.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->rope_theta, 5e5);

  nlohmann::json v4 = TinyConfig();
  v4["rope_theta"] = 2e5;
  v4["rope_scaling"] = {{"rope_type", "default"}};
  parsed = ParseHfConfig(v4, "config.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->rope_theta, 2e5);

  nlohmann::json neither = TinyConfig();
  neither.erase("rope_theta");
  parsed = ParseHfConfig(neither, "config.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->rope_theta, 10000.0);  // transformers' default for Llama and Qwen2
}

TEST(HfConfigTest, ErrorsNameTheFieldAndWhatWasExpected) {
  struct Case {
    std::function<void(nlohmann::json&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](nlohmann::json& j) { j.erase("hidden_size"); },
       "config.json: missing field \"hidden_size\" (expected a positive integer)"},
      {[](nlohmann::json& j) { j["num_hidden_layers"] = "2"; },
       "field \"num_hidden_layers\": expected an integer, got a string"},
      {[](nlohmann::json& j) { j["num_attention_heads"] = 0; },
       "field \"num_attention_heads\": expected a positive integer, got 0"},
      {[](nlohmann::json& j) { j.erase("architectures"); }, "missing field \"architectures\""},
      {[](nlohmann::json& j) { j["architectures"] = {"MistralForCausalLM"}; },
       "MistralForCausalLM is not implemented"},
      {[](nlohmann::json& j) {
         j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
       },
       "field \"rope_scaling.type\": \"yarn\" is not implemented"},
      {[](nlohmann::json& j) {
         j.erase("rope_theta");
         j["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 5e5}};
       },
       "field \"rope_parameters.rope_type\": \"yarn\" is not implemented"},
      {[](nlohmann::json& j) { j["rope_parameters"] = {{"rope_theta", 5e5}}; },
       "field \"rope_parameters.rope_type\": a RoPE with no rope_type is not implemented"},
      {[](nlohmann::json& j) {
         j["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}};
       },
       "field \"rope_parameters.partial_rotary_factor\": 0.5 is not implemented"},
      {[](nlohmann::json& j) {
         j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
       },
       "field \"rope_parameters.rope_theta\": 1e+06 differs from the top-level rope_theta 500000"},
      {[](nlohmann::json& j) { j["rope_parameters"] = "default"; },
       "field \"rope_parameters\": expected an object, got a string"},
      {[](nlohmann::json& j) { j["use_sliding_window"] = true; }, "use_sliding_window"},
      {[](nlohmann::json& j) { j["hidden_act"] = "gelu"; },
       "hidden_act\": gelu is not implemented"},
      {[](nlohmann::json& j) { j["num_key_value_heads"] = 3; },
       "num_attention_heads 2 is not a multiple of num_key_value_heads 3"},
      {[](nlohmann::json& j) { j.erase("rms_norm_eps"); }, "missing field \"rms_norm_eps\""},
      {[](nlohmann::json& j) { j["eos_token_id"] = 99; }, "outside the vocabulary of 16"},
  };
  for (const Case& c : cases) {
    nlohmann::json config = TinyConfig();
    c.change(config);
    absl::StatusOr<ModelConfig> parsed = ParseHfConfig(config, "/m/config.json");
    ASSERT_FALSE(parsed.ok()) << c.message;
    EXPECT_THAT(Message(parsed.status()), HasSubstr(c.message));
    EXPECT_THAT(Message(parsed.status()), HasSubstr("/m/config.json"));
  }
}

TEST(HfSnapshotTest, LoadsOneFileWithExactValues) {
  const ModelConfig config = *ParseHfConfig(TinyConfig(), "c");
  const std::string dir = WriteSnapshot("llama_snapshot", TinyConfig(), TensorsFor(config));
  absl::StatusOr<ModelWeights> w = LoadModel(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->tensors.size(), 3u + 2u * 9u);
  EXPECT_EQ(w->source, dir);
  EXPECT_EQ(w->model_name, dir.substr(dir.rfind('/') + 1));
  EXPECT_EQ(w->weights_note, "");
  EXPECT_EQ(w->weights_sha256, gates::Sha256Hex(testing::ReadTestFile(dir + "/model.safetensors")));
  ExpectValues(*w);
  // The mapping is private: writing a tensor changes memory, not the file.
  const std::string before = testing::ReadTestFile(dir + "/model.safetensors");
  w->tensors.at("model.norm.weight").fill_(7.0f);
  EXPECT_EQ(testing::ReadTestFile(dir + "/model.safetensors"), before);
  LoadOptions no_hash;
  no_hash.compute_sha256 = false;
  EXPECT_EQ(LoadHfSnapshot(dir, no_hash)->weights_sha256, "");
}

// A yarn snapshot as transformers 5 writes it is refused by LoadModel in one line naming the file
// and the field, not run as plain RoPE.
TEST(HfSnapshotTest, LoadModelRefusesScaledRope) {
  nlohmann::json yarn = TinyConfig("Qwen2ForCausalLM");
  yarn.erase("rope_theta");
  yarn.erase("rope_scaling");
  yarn["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 5e5}};
  const ModelConfig config = *ParseHfConfig(TinyConfig("Qwen2ForCausalLM"), "c");
  const std::string dir = WriteSnapshot("yarn_snapshot", yarn, TensorsFor(config));
  absl::StatusOr<ModelWeights> w = LoadModel(dir);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Message(w.status()), HasSubstr(dir + "/config.json: field \"rope_parameters.rope_type\""));
  EXPECT_EQ(Message(w.status()).find('\n'), std::string::npos);
}

TEST(HfSnapshotTest, LoadsShardsThroughTheIndex) {
  const ModelConfig config = *ParseHfConfig(TinyConfig("Qwen2ForCausalLM"), "c");
  const std::vector<StTensor> tensors = TensorsFor(config);
  const std::string dir = testing::MakeTempDir("qwen_shards");
  testing::WriteFile(dir + "/config.json", TinyConfig("Qwen2ForCausalLM").dump());
  std::vector<StTensor> first(tensors.begin(), tensors.begin() + 10),
      second(tensors.begin() + 10, tensors.end());
  const std::string a = "model-00001-of-00002.safetensors", b = "model-00002-of-00002.safetensors";
  testing::WriteFile(dir + "/" + a, testing::BuildSafetensors(first));
  testing::WriteFile(dir + "/" + b, testing::BuildSafetensors(second));
  nlohmann::json map = nlohmann::json::object();
  for (const StTensor& t : first) map[t.name] = a;
  for (const StTensor& t : second) map[t.name] = b;
  testing::WriteFile(dir + "/model.safetensors.index.json",
                     nlohmann::json{{"metadata", {{"total_size", 1}}}, {"weight_map", map}}.dump());
  absl::StatusOr<ModelWeights> w = LoadModel(dir + "/");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(w->config.attention_bias);
  EXPECT_EQ(w->tensors.count("model.layers.1.self_attn.k_proj.bias"), 1u);
  ExpectValues(*w);
  // sha256 of the `sha256sum` listing of the shards.
  const std::string listing = gates::Sha256Hex(testing::ReadTestFile(dir + "/" + a)) + "  " + a +
                              "\n" + gates::Sha256Hex(testing::ReadTestFile(dir + "/" + b)) + "  " +
                              b + "\n";
  EXPECT_EQ(w->weights_sha256, gates::Sha256Hex(listing));

  // A tensor mapped to a shard that lacks it, a shard outside the folder, a missing shard.
  auto load_with = [&](const std::string& tensor, const std::string& file) {
    nlohmann::json changed = map;
    changed[tensor] = file;
    testing::WriteFile(dir + "/model.safetensors.index.json",
                       nlohmann::json{{"weight_map", changed}}.dump());
    return Message(LoadModel(dir).status());
  };
  EXPECT_THAT(load_with("model.norm.weight", a),
              HasSubstr("maps tensor model.norm.weight to model-00001-of-00002.safetensors, which "
                        "does not hold it"));
  EXPECT_THAT(load_with("model.norm.weight", "../elsewhere.safetensors"),
              HasSubstr("expected a .safetensors file name in the folder"));
  EXPECT_THAT(load_with("model.extra", "model-00003-of-00002.safetensors"),
              HasSubstr("model-00003-of-00002.safetensors: cannot open"));
}

TEST(HfSnapshotTest, TiedSnapshotDropsStoredLmHead) {
  nlohmann::json json = TinyConfig();
  json["tie_word_embeddings"] = true;
  ModelConfig untied = *ParseHfConfig(TinyConfig(), "c");
  const std::string dir = WriteSnapshot("tied", json, TensorsFor(untied));  // with lm_head
  absl::StatusOr<ModelWeights> w = LoadModel(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(w->config.tie_word_embeddings);
  EXPECT_EQ(w->tensors.count("lm_head.weight"), 0u);
}

TEST(HfSnapshotTest, TensorErrorsNameTheTensor) {
  const ModelConfig config = *ParseHfConfig(TinyConfig(), "c");
  std::vector<StTensor> missing = TensorsFor(config);
  missing.erase(missing.begin());  // lm_head.weight comes first by name
  EXPECT_THAT(Message(LoadModel(WriteSnapshot("missing", TinyConfig(), missing)).status()),
              HasSubstr("missing tensor lm_head.weight (expected shape [16, 8])"));
  std::vector<StTensor> extra = TensorsFor(config);
  extra.push_back({"model.layers.2.mlp.up_proj.weight", "F32", {1}, testing::F32Bytes({1})});
  EXPECT_THAT(Message(LoadModel(WriteSnapshot("extra", TinyConfig(), extra)).status()),
              HasSubstr("unexpected tensor model.layers.2.mlp.up_proj.weight"));
  std::vector<StTensor> shape = TensorsFor(config);
  for (StTensor& t : shape) {
    if (t.name == "model.layers.0.mlp.up_proj.weight") {
      t.shape = {8, 12};
    }
  }
  EXPECT_THAT(Message(LoadModel(WriteSnapshot("shape", TinyConfig(), shape)).status()),
              HasSubstr("tensor model.layers.0.mlp.up_proj.weight has shape [8, 12], expected [12, "
                        "8] (intermediate_size, hidden_size)"));
  std::vector<StTensor> dtype = TensorsFor(config);
  dtype[0].dtype = "I16";
  EXPECT_THAT(Message(LoadModel(WriteSnapshot("dtype", TinyConfig(), dtype)).status()),
              HasSubstr("tensor lm_head.weight has dtype I16, expected F32, BF16 or F16"));
  const std::string dir = testing::MakeTempDir("no_weights");
  testing::WriteFile(dir + "/config.json", TinyConfig().dump());
  EXPECT_THAT(Message(LoadModel(dir).status()),
              HasSubstr("neither model.safetensors nor model.safetensors.index.json"));
  const std::string bad = WriteSnapshot("bad_file", TinyConfig(), TensorsFor(config));
  testing::WriteFile(bad + "/model.safetensors", std::string("\x10\0\0\0\0\0\0\0{}", 10));
  EXPECT_THAT(Message(LoadModel(bad).status()),
              HasSubstr("model.safetensors: header length 16 runs past the end"));
  EXPECT_TRUE(absl::IsNotFound(LoadModel("/nonexistent/model").status()));
}

TEST(HfSnapshotTest, ModelNames) {
  EXPECT_EQ(SnapshotModelName("/models/Qwen2.5-7B-Instruct/"), "Qwen2.5-7B-Instruct");
  EXPECT_EQ(SnapshotModelName("/hf/hub/models--Qwen--Qwen2.5-7B-Instruct/snapshots/a09a3545"),
            "Qwen2.5-7B-Instruct");
}

}  // namespace
}  // namespace kvgate::runtime
