// Tests of the model-shape table (model_configs.h): lookup by name, the error for an unknown name,
// unique names and consistent head counts.
//
// Run: tools/bazel test //experiments/runtime:model_configs_test

#include "experiments/runtime/model_configs.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::HasSubstr;

TEST(ModelConfigsTest, FindsByName) {
  absl::StatusOr<ModelConfig> c = ModelConfigNamed("qwen2.5-7b");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_hidden_layers, 28);
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(ModelConfigNamed("smollm2-135m")->hidden_size, 576);
}

TEST(ModelConfigsTest, UnknownNameListsTheKnownOnes) {
  absl::StatusOr<ModelConfig> c = ModelConfigNamed("llama-70b");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("'llama-70b'"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("smollm2-135m, qwen2.5-7b"));
}

TEST(ModelConfigsTest, NamesAreUniqueAndShapesConsistent) {
  std::set<std::string> names;
  for (const NamedModelConfig& entry : ModelConfigs()) {
    EXPECT_TRUE(names.insert(entry.name).second) << entry.name;
    const ModelConfig& c = entry.config;
    EXPECT_TRUE(c.architecture == "llama" || c.architecture == "qwen2") << entry.name;
    EXPECT_GT(c.head_dim, 0) << entry.name;
    EXPECT_EQ(c.num_attention_heads % c.num_key_value_heads, 0) << entry.name;
  }
}

}  // namespace
}  // namespace kvgate::runtime
