// Hermetic checks of hfkv_int4 on the tiny seeded fixture model (model_test_util.h): what must hold
// whatever the numbers. A lossless format (a test-only identity KvFormat: kernels/ has no 16-bit
// one) matches dense exactly and passes the gate; rows = formats x steps; the records judge.

#include "experiments/hfkv_int4/hfkv_int4.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "experiments/common/experiment_io.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_test_util.h"
#include "gates/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

runtime::Model TinyModel() {
  absl::StatusOr<runtime::Model> model = runtime::LoadFixtureModel("tiny_llama");
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(*model);
}

gates::Target TinyTarget() {
  return gates::Target{"tiny_llama", "random:seed=1234", 48, "float32", "cpu"};
}

TEST(HfkvInt4Test, DefaultFormatsStartWithTheStudysInt4AndHaveNoDuplicates) {
  std::vector<std::string> specs = DefaultFormatSpecs();
  ASSERT_GE(specs.size(), 8u);
  EXPECT_EQ(specs[0], "symmetric_int4:block=32");
  EXPECT_EQ(specs[1], "affine_int4:block=32");
  std::set<std::string> unique(specs.begin(), specs.end());
  EXPECT_EQ(unique.size(), specs.size());
  EXPECT_THAT(specs, testing::Contains(testing::HasSubstr("turboquant_mse:bits=2")));
  EXPECT_THAT(specs, testing::Contains(testing::HasSubstr("turboquant_prod:bits=4")));
  ASSERT_TRUE(MakeFormats(specs).ok());
  EXPECT_FALSE(MakeFormats({"no_such_format"}).ok());
}

TEST(HfkvInt4Test, KvRatioIsCompressedOverBf16) {
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> f =
      MakeFormats({"symmetric_int4:block=32"});
  ASSERT_TRUE(f.ok());
  // 4 bits a value + a 16-bit scale a block of 32: (0.5 + 2/32) / 2 bytes.
  EXPECT_DOUBLE_EQ(kernels::KvBytesVsBf16(*(*f)[0], 2048, 3, 64), 0.28125);
  EXPECT_DOUBLE_EQ(kernels::KvBytesVsBf16(runtime::IdentityKvFormat("test_identity_fp32"), 100, 2, 32), 2.0);
}

TEST(HfkvInt4Test, LosslessFormatMatchesDenseAndPasses) {
  torch::manual_seed(0);
  runtime::Model model = TinyModel();
  std::vector<std::shared_ptr<const kernels::KvFormat>> formats = {
      std::make_shared<runtime::IdentityKvFormat>("test_identity_fp32")};
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> int4 =
      MakeFormats({"symmetric_int4:block=32", "affine_int4:block=32"});
  ASSERT_TRUE(int4.ok());
  formats.insert(formats.end(), int4->begin(), int4->end());
  const int64_t steps = 3;
  absl::StatusOr<HfkvResult> result =
      RunHfkvQuality(model, runtime::FixturePrompt(48), formats, steps);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->failures.empty());
  ASSERT_EQ(result->rows.size(), formats.size() * steps);
  for (int64_t i = 0; i < steps; ++i) {
    const HfkvRow& row = result->rows[i];
    EXPECT_EQ(row.format, "test_identity_fp32");
    EXPECT_EQ(row.step, i);
    EXPECT_EQ(row.decode_logit_mse, 0.0);
    EXPECT_EQ(row.top10_overlap, 1.0);
    EXPECT_EQ(row.argmax_agreement, 1.0);
    EXPECT_NEAR(row.kl_divergence, 0.0, 1e-12);
    EXPECT_EQ(row.reference_finite, 1.0);
  }
  for (const HfkvRow& row : result->rows) {
    EXPECT_GE(row.decode_logit_mse, 0.0);
    EXPECT_GE(row.top10_overlap, 0.0);
    EXPECT_LE(row.top10_overlap, 1.0);
  }
  EXPECT_THAT(HfkvTable(result->rows), testing::HasSubstr("| test_identity_fp32 | 0 | 0.0000 |"));

  // Records: only the step the gate reads (step 0), one a format, judged by the spec.
  std::vector<gates::Record> records = HfkvRecords(result->rows, TinyTarget(), 1);
  ASSERT_EQ(records.size(), formats.size());
  const std::string dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  const std::string path = dir + "/hfkv_int4.jsonl";
  std::filesystem::remove(path);
  ASSERT_TRUE(JudgeAndAppend(path, kHfkvGate, records, CurrentProvenance(0)).ok());
  absl::StatusOr<std::vector<gates::RecordAt>> back = gates::ReadRecordsFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), formats.size());
  EXPECT_EQ((*back)[0].record.variant, "test_identity_fp32");
  EXPECT_EQ((*back)[0].record.gate.verdict, gates::Verdict::kPass);
  EXPECT_EQ((*back)[0].record.step, 0);
  for (const gates::RecordAt& r : *back) {
    EXPECT_EQ(r.record.experiment, "hfkv_int4");
    EXPECT_NE(r.record.gate.verdict, gates::Verdict::kInvalid);
    EXPECT_EQ(r.record.metrics.count("kv_ratio"), 1u);
  }
}

// Numerical guard: an embedding row poisoned with NaN, of the first token the dense decode feeds
// that the prompt does not hold (tiny_llama's lm_head is untied, so nothing else changes): the
// steps from there on have a non-finite reference, their rows say where it began and their
// records are invalid.
TEST(HfkvInt4Test, NonFiniteReferenceNamesTheStepAndLayer) {
  absl::StatusOr<runtime::Fixture> fixture =
      runtime::LoadFixture(runtime::FixtureDir("tiny_llama"));
  ASSERT_TRUE(fixture.ok()) << fixture.status();
  const std::vector<int64_t> prompt = runtime::FixturePrompt(48);
  const int64_t steps = 3;
  runtime::Model clean = TinyModel();
  runtime::KvCache cache = clean.NewCache(prompt.size() + steps);
  absl::StatusOr<torch::Tensor> logits = runtime::Prefill(clean, cache, prompt);
  ASSERT_TRUE(logits.ok());
  absl::StatusOr<runtime::DecodeResult> dense =
      runtime::DecodeN(clean, cache, logits->argmax().item<int64_t>(), steps);
  ASSERT_TRUE(dense.ok());
  std::set<int64_t> seen(prompt.begin(), prompt.end());
  int64_t first = -1;
  for (int64_t i = 0; i < steps && first < 0; ++i) {
    if (!seen.count(dense->TokensIn()[i])) first = i;
    seen.insert(dense->TokensIn()[i]);
  }
  ASSERT_GE(first, 0) << "every token the dense decode feeds is in the prompt";

  runtime::ModelWeights weights = fixture->weights;
  torch::Tensor embed = weights.tensors.at("model.embed_tokens.weight").clone();
  embed[dense->TokensIn()[first]][3] = std::numeric_limits<float>::quiet_NaN();
  weights.tensors["model.embed_tokens.weight"] = embed;
  EXPECT_FALSE(runtime::Model::Create(weights).ok());  // refused at load unless allowed
  runtime::ModelOptions allow;
  allow.allow_non_finite_weights = true;
  absl::StatusOr<runtime::Model> poisoned = runtime::Model::Create(weights, allow);
  ASSERT_TRUE(poisoned.ok()) << poisoned.status();

  std::vector<std::shared_ptr<const kernels::KvFormat>> formats = {
      std::make_shared<runtime::IdentityKvFormat>("test_identity_fp32")};
  absl::StatusOr<HfkvResult> result = RunHfkvQuality(*poisoned, prompt, formats, steps);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reference_nonfinite,
            absl::StrCat("decode step ", first, ", layer 0 (the output of model.layers.0)"));
  ASSERT_EQ(result->rows.size(), static_cast<size_t>(steps));
  for (const HfkvRow& row : result->rows) {
    EXPECT_EQ(row.reference_finite, row.step < first ? 1.0 : 0.0) << row.step;
    EXPECT_EQ(row.nonfinite_step.has_value(), row.step >= first) << row.step;
    if (row.nonfinite_step.has_value()) {
      EXPECT_EQ(*row.nonfinite_step, first);
      EXPECT_EQ(*row.nonfinite_layer, 0);
    }
  }
  // The rows of the non-finite steps are invalid, whatever their other metrics say.
  std::vector<gates::Record> records = HfkvRecords(result->rows, TinyTarget(), steps);
  const std::string path =
      std::string(std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) + "/hfkv_nonfinite.jsonl";
  std::filesystem::remove(path);
  ASSERT_TRUE(JudgeAndAppend(path, kHfkvGate, records, CurrentProvenance(0)).ok());
  absl::StatusOr<std::vector<gates::RecordAt>> back = gates::ReadRecordsFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  for (const gates::RecordAt& r : *back) {
    if (*r.record.step < first) continue;
    EXPECT_EQ(r.record.gate.verdict, gates::Verdict::kInvalid);
    EXPECT_EQ(r.record.metrics.at("reference_nonfinite_step"), static_cast<double>(first));
    EXPECT_EQ(r.record.metrics.at("reference_nonfinite_layer"), 0.0);
  }
}

TEST(HfkvInt4Test, RejectsBadInput) {
  runtime::Model model = TinyModel();
  EXPECT_FALSE(RunHfkvQuality(model, {}, {}, 1).ok());
  EXPECT_FALSE(RunHfkvQuality(model, runtime::FixturePrompt(4), {}, 0).ok());
}

}  // namespace
}  // namespace kvgate::experiments
