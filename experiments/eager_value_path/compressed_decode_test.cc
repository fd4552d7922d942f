// Hermetic: the tiny seeded Llama fixture (model_test_util), a short random prompt, both paths.
// Checks what must hold whatever the numbers: exact cleanup equals dense and passes the quality
// gate, one quality and one latency row a variant, positive timings, judged rows written.
#include "experiments/eager_value_path/compressed_decode.h"

#include <torch/types.h>

#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "experiments/common/experiment_io.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_test_util.h"
#include "gates/record_io.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

class CompressedDecodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<runtime::Fixture> f = runtime::LoadFixture(runtime::FixtureDir("tiny_llama"));
    ASSERT_TRUE(f.ok()) << f.status();
    absl::StatusOr<runtime::Model> m = runtime::Model::Create(f->weights);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::make_unique<runtime::Model>(std::move(*m));
    torch::Tensor ids = torch::randint(0, model_->config().vocab_size, {40},
                                       at::detail::createCPUGenerator(3), torch::kLong);
    prompt_ = runtime::ToVector(ids);
    options_.decode_steps = 3;
    options_.target = {"tiny_llama", "random:seed=1234", 40, "float32", "cpu"};
  }

  absl::StatusOr<CompressedDecodeOutput> Run(KvPath path, const std::string& experiment) {
    options_.experiment = experiment;
    absl::StatusOr<std::vector<PathVariant>> variants = StandardVariants(path, 0);
    if (!variants.ok()) return variants.status();
    variants_ = *variants;
    return RunCompressedDecode(*model_, prompt_, variants_, options_);
  }

  std::unique_ptr<runtime::Model> model_;
  std::vector<int64_t> prompt_;
  std::vector<PathVariant> variants_;
  CompressedDecodeOptions options_;
};

void CheckRows(const CompressedDecodeOutput& out, size_t variants) {
  ASSERT_EQ(out.quality.size(), variants);
  ASSERT_EQ(out.latency.size(), variants);
  for (const gates::Record& r : out.latency) {
    for (const char* m : {"dense_decode_step_ms", "compressed_decode_step_ms", "dense_attention_ms",
                          "compressed_attention_ms", "encode_prefix_ms", "kv_ratio"}) {
      ASSERT_TRUE(r.metrics.count(m)) << m;
      EXPECT_GT(r.metrics.at(m), 0) << r.variant << " " << m;
    }
    EXPECT_FALSE(r.step.has_value());
  }
  for (const gates::Record& r : out.quality) {
    ASSERT_TRUE(r.step.has_value());
    EXPECT_EQ(*r.step, 0);
    EXPECT_EQ(r.metrics.at("reference_finite"), 1.0);
  }
}

TEST_F(CompressedDecodeTest, VariantsAreTheCanonicalTurboQuantSpecs) {
  absl::StatusOr<std::vector<PathVariant>> eager = StandardVariants(KvPath::kEager, 0);
  ASSERT_TRUE(eager.ok()) << eager.status();
  ASSERT_EQ(eager->size(), 6u);
  EXPECT_EQ((*eager)[0].variant, "turboquant_mse:bits=2:rotation=hadamard:seed=0");
  EXPECT_EQ((*eager)[5].variant, "turboquant_prod:bits=4:rotation=hadamard:seed=0");
  absl::StatusOr<std::vector<PathVariant>> fused = StandardVariants(KvPath::kFused, 0);
  ASSERT_TRUE(fused.ok()) << fused.status();
  ASSERT_EQ(fused->size(), 8u);
  EXPECT_EQ((*fused)[6].variant, "exact_cleanup(turboquant_mse:bits=4:rotation=hadamard:seed=0)");
  EXPECT_EQ((*fused)[6].path, KvPath::kFusedExactCleanup);
}

// Numerical guard: a NaN in layer 1's o_proj makes the dense reference non-finite from the
// prefill at layer 1; every quality row says so and is judged invalid.
TEST_F(CompressedDecodeTest, NonFiniteReferenceMakesQualityRowsInvalidAndNamesTheLayer) {
  absl::StatusOr<runtime::Fixture> f = runtime::LoadFixture(runtime::FixtureDir("tiny_llama"));
  ASSERT_TRUE(f.ok()) << f.status();
  torch::Tensor wo = f->weights.tensors.at("model.layers.1.self_attn.o_proj.weight").clone();
  wo[2][9] = std::numeric_limits<float>::quiet_NaN();
  f->weights.tensors["model.layers.1.self_attn.o_proj.weight"] = wo;
  EXPECT_FALSE(runtime::Model::Create(f->weights).ok());  // refused at load unless allowed
  runtime::ModelOptions allow;
  allow.allow_non_finite_weights = true;
  absl::StatusOr<runtime::Model> m = runtime::Model::Create(f->weights, allow);
  ASSERT_TRUE(m.ok()) << m.status();
  model_ = std::make_unique<runtime::Model>(std::move(*m));
  absl::StatusOr<CompressedDecodeOutput> out = Run(KvPath::kEager, "eager_value_path");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->reference_nonfinite, "the prefill, layer 1 (the output of model.layers.1)");
  const std::string path = RecordsPath("", "eager_value_path_nonfinite");
  std::remove(path.c_str());
  ASSERT_TRUE(
      JudgeAndAppend(path, "hfkv_real_kv_quality", out->quality, CurrentProvenance(0)).ok());
  absl::StatusOr<std::vector<gates::RecordAt>> rows = gates::ReadRecordsFile(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 6u);
  for (const gates::RecordAt& r : *rows) {
    EXPECT_EQ(r.record.gate.verdict, gates::Verdict::kInvalid) << r.record.variant;
    EXPECT_EQ(r.record.metrics.at("reference_finite"), 0.0);
    EXPECT_EQ(r.record.metrics.at("reference_nonfinite_step"), -1.0);
    EXPECT_EQ(r.record.metrics.at("reference_nonfinite_layer"), 1.0);
  }
}

TEST_F(CompressedDecodeTest, EagerRowsAndRecords) {
  absl::StatusOr<CompressedDecodeOutput> out = Run(KvPath::kEager, "eager_value_path");
  ASSERT_TRUE(out.ok()) << out.status();
  CheckRows(*out, 6);
  // 4-bit mse is close to dense on this model; 2-bit is worse than 4-bit.
  EXPECT_LT(out->quality[2].metrics.at("decode_logit_mse"),
            out->quality[0].metrics.at("decode_logit_mse"));
  const std::string path = RecordsPath("", "eager_value_path");
  std::remove(path.c_str());
  const gates::Provenance prov = CurrentProvenance(0);
  ASSERT_TRUE(JudgeAndAppend(path, "hfkv_real_kv_quality", out->quality, prov).ok());
  ASSERT_TRUE(JudgeAndAppend(path, "eager_value_path_latency", out->latency, prov).ok());
  absl::StatusOr<std::vector<gates::RecordAt>> rows = gates::ReadRecordsFile(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->size(), 12u);
  for (const auto& r : *rows) EXPECT_NE(r.record.gate.verdict, gates::Verdict::kInvalid) << r.record.variant;
}

TEST_F(CompressedDecodeTest, FusedExactCleanupEqualsDense) {
  absl::StatusOr<CompressedDecodeOutput> out = Run(KvPath::kFused, "fused_codebook");
  ASSERT_TRUE(out.ok()) << out.status();
  CheckRows(*out, 8);
  const std::string path = RecordsPath("", "fused_codebook");
  std::remove(path.c_str());
  const gates::Provenance prov = CurrentProvenance(0);
  ASSERT_TRUE(JudgeAndAppend(path, "hfkv_real_kv_quality", out->quality, prov).ok());
  ASSERT_TRUE(JudgeAndAppend(path, "fused_codebook_latency", out->latency, prov).ok());
  absl::StatusOr<std::vector<gates::RecordAt>> rows = gates::ReadRecordsFile(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 16u);
  int exact = 0;
  for (const auto& r : *rows) {
    const gates::Record& rec = r.record;
    EXPECT_NE(rec.gate.verdict, gates::Verdict::kInvalid) << rec.variant;
    if (rec.variant.rfind("exact_cleanup(", 0) == 0 && rec.gate.id == "hfkv_real_kv_quality") {
      ++exact;
      EXPECT_LT(rec.metrics.at("decode_logit_mse"), 1e-8) << rec.variant;
      EXPECT_EQ(rec.metrics.at("argmax_agreement"), 1.0);
      EXPECT_EQ(rec.metrics.at("top10_overlap"), 1.0);
      EXPECT_EQ(rec.metrics.at("same_top_p_rate"), 1.0);
      EXPECT_LT(rec.metrics.at("mean_kl_divergence_all_steps"), 1e-8);
      EXPECT_EQ(rec.gate.verdict, gates::Verdict::kPass) << rec.variant;
    }
  }
  EXPECT_EQ(exact, 2);
}

TEST(CheckRunFlagsTest, RejectsBadValues) {
  EXPECT_TRUE(CheckRunFlags(2048, 16, "float32", "cpu", 0).ok());
  EXPECT_FALSE(CheckRunFlags(0, 16, "float32", "cpu", 0).ok());
  EXPECT_FALSE(CheckRunFlags(2048, 0, "float32", "cpu", 0).ok());
  EXPECT_FALSE(CheckRunFlags(2048, 16, "fp8", "cpu", 0).ok());
  EXPECT_FALSE(CheckRunFlags(2048, 16, "float32", "cuda", 0).ok());
  EXPECT_FALSE(CheckRunFlags(2048, 16, "float32", "cpu", -1).ok());
}

}  // namespace
}  // namespace kvgate::experiments
