// Hermetic checks of study_setup on the tiny fixture model in float32 and bfloat16: the settings
// a run measures, that each row is exactly the number hfkv_int4's or quality_v2's own code gives
// for that setting (called directly here), that a lossless format passes every setting, the
// records' variants and targets, and bad input refused.

#include "experiments/study_setup/study_setup.h"

#include <torch/types.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "experiments/common/experiment_io.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/quality_v2/quality_v2.h"
#include "experiments/runtime/model.h"
#include "experiments/runtime/model_test_util.h"
#include "gates/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kContext = 24, kPositions = 3;

struct Models {
  std::map<std::string, runtime::Model> by_dtype;
};

Models TinyModels() {
  absl::StatusOr<runtime::Fixture> f =
      runtime::LoadFixture(runtime::FixtureDir("tiny_llama"));
  EXPECT_TRUE(f.ok()) << f.status();
  Models m;
  for (auto [name, dtype] : {std::pair<std::string, torch::Dtype>{"float32", torch::kFloat32},
                             {"bfloat16", torch::kBFloat16}}) {
    runtime::ModelOptions options;
    options.dtype = dtype;
    absl::StatusOr<runtime::Model> model = runtime::Model::Create(f->weights, options);
    EXPECT_TRUE(model.ok()) << model.status();
    m.by_dtype.emplace(name, std::move(*model));
  }
  return m;
}

StudyInputs Inputs(const Models& m, std::vector<std::shared_ptr<const kernels::KvFormat>> formats) {
  StudyInputs in;
  for (const auto& [dtype, model] : m.by_dtype) in.models[dtype] = &model;
  const std::vector<int64_t> a = runtime::FixturePrompt(3 * kContext);
  in.texts.push_back({"corpus", std::vector<int64_t>(a.begin(), a.begin() + kContext + kPositions + 1)});
  in.texts.push_back({"text_b", std::vector<int64_t>(a.begin() + kContext, a.begin() + 2 * kContext)});
  in.formats = std::move(formats);
  return in;
}

StudyOptions Options() {
  StudyOptions o;
  o.study_dtype = "bfloat16";
  o.context = kContext;
  o.contexts = {16};
  o.positions = kPositions;
  return o;
}

std::shared_ptr<const kernels::KvFormat> Int4() {
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> f =
      MakeFormats({"symmetric_int4:block=32"});
  EXPECT_TRUE(f.ok()) << f.status();
  return (*f)[0];
}

TEST(StudySetupTest, SettingsOneFactorAtATime) {
  const Models m = TinyModels();
  const std::vector<StudySetting> s = StudySettings(Inputs(m, {Int4()}), Options());
  // dtype x context: 2 contexts x 2 dtypes; prompt: 1 text; position: 3.
  ASSERT_EQ(s.size(), 4u + 1u + 3u);
  EXPECT_EQ(s[0].factor, "dtype_context");
  EXPECT_EQ(s[0].context, 16);
  EXPECT_EQ(s[0].dtype, "bfloat16");
  EXPECT_EQ(s[1].dtype, "float32");
  EXPECT_EQ(s[3].context, kContext);
  EXPECT_EQ(s[4].factor, "prompt");
  EXPECT_EQ(s[4].text, 1u);
  EXPECT_EQ(s[4].dtype, "bfloat16");
  EXPECT_EQ(s[7].factor, "position");
  EXPECT_EQ(s[7].position, 2);
  EXPECT_TRUE(s[7].teacher_forced);
}

TEST(StudySetupTest, EachRowIsTheNumberOfTheCodeItCalls) {
  const Models m = TinyModels();
  const StudyInputs in = Inputs(m, {Int4()});
  absl::StatusOr<std::vector<StudyRow>> rows = RunStudySetup(in, Options());
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 8u);

  // float32 at the context: hfkv_int4's one step on the corpus.
  const std::vector<int64_t>& corpus = in.texts[0].ids;
  absl::StatusOr<HfkvResult> f32 = RunHfkvQuality(
      m.by_dtype.at("float32"), std::vector<int64_t>(corpus.begin(), corpus.begin() + kContext),
      in.formats, 1);
  ASSERT_TRUE(f32.ok());
  const StudyRow& r3 = (*rows)[3];
  EXPECT_EQ(r3.setting.dtype, "float32");
  EXPECT_EQ(r3.setting.context, kContext);
  EXPECT_EQ(r3.decode_logit_mse, f32->rows[0].decode_logit_mse);
  EXPECT_EQ(r3.top10_overlap, f32->rows[0].top10_overlap);

  // bfloat16 differs from float32 (the dtype factor measures something).
  EXPECT_NE((*rows)[2].decode_logit_mse, r3.decode_logit_mse);

  // The prompt factor: the second text in bfloat16.
  absl::StatusOr<HfkvResult> b = RunHfkvQuality(m.by_dtype.at("bfloat16"), in.texts[1].ids,
                                                in.formats, 1);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*rows)[4].text_name, "text_b");
  EXPECT_EQ((*rows)[4].decode_logit_mse, b->rows[0].decode_logit_mse);

  // Positions: quality_v2's teacher-forced values on the corpus window.
  absl::StatusOr<std::vector<ConfigPositions>> tf =
      RunOverWindows(m.by_dtype.at("bfloat16"), {corpus}, kContext, kPositions, in.formats,
                     /*selectors=*/{});
  ASSERT_TRUE(tf.ok());
  for (int64_t p = 0; p < kPositions; ++p) {
    EXPECT_EQ((*rows)[5 + p].setting.position, p);
    EXPECT_EQ((*rows)[5 + p].decode_logit_mse, (*tf)[0].decode_logit_mse[0][p]);
    EXPECT_EQ((*rows)[5 + p].argmax_agreement, (*tf)[0].argmax_agreement[0][p]);
  }
  EXPECT_THAT(StudyTable(*rows), HasSubstr("### factor: position"));
}

TEST(StudySetupTest, LosslessPassesEverySettingAndRecordsJudge) {
  const Models m = TinyModels();
  const StudyInputs in = Inputs(m, {std::make_shared<runtime::IdentityKvFormat>()});
  absl::StatusOr<std::vector<StudyRow>> rows = RunStudySetup(in, Options());
  ASSERT_TRUE(rows.ok()) << rows.status();
  for (const StudyRow& r : *rows) {
    EXPECT_EQ(r.decode_logit_mse, 0.0) << StudyVariant(r);
    EXPECT_EQ(r.argmax_agreement, 1.0) << StudyVariant(r);
  }
  gates::Target base{"tiny_llama", "sha", 1, "unused", "cpu"};
  std::vector<gates::Record> records = StudyRecords(*rows, base);
  ASSERT_EQ(records.size(), rows->size());
  EXPECT_EQ(records[0].variant,
            "identity:study_setup:factor=dtype_context:dtype=bfloat16:prompt=corpus:context=16:"
            "position=0:one_step");
  EXPECT_EQ(records[0].target.context, 16);
  EXPECT_EQ(records[0].target.dtype, "bfloat16");
  EXPECT_EQ(records[1].target.dtype, "float32");
  EXPECT_THAT(records[7].variant, HasSubstr("position=2:teacher_forced"));
  EXPECT_EQ(records[7].metrics.at("position"), 2);
  const std::string path =
      std::string(std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) + "/study_setup.jsonl";
  std::filesystem::remove(path);
  absl::StatusOr<std::vector<gates::Record>> judged =
      JudgeAndAppend(path, kStudySetupGate, records, CurrentProvenance(0));
  ASSERT_TRUE(judged.ok()) << judged.status();
  for (const gates::Record& r : *judged) {
    EXPECT_EQ(r.gate.verdict, gates::Verdict::kPass) << r.variant;
    EXPECT_EQ(r.step, 0);
  }
}

TEST(StudySetupTest, BadInputIsRefused) {
  const Models m = TinyModels();
  StudyInputs in = Inputs(m, {Int4()});
  StudyOptions o = Options();
  o.study_dtype = "float16";
  EXPECT_THAT(RunStudySetup(in, o).status().message(), HasSubstr("study dtype float16"));
  o = Options();
  o.contexts = {kContext + kPositions + 5};  // longer than the corpus
  EXPECT_THAT(RunStudySetup(in, o).status().message(), HasSubstr("text corpus has"));
  in.texts[1].ids.resize(kContext - 1);
  EXPECT_THAT(RunStudySetup(in, Options()).status().message(),
              HasSubstr("text text_b has 23 tokens; the prompt factor reads 24"));
  in.texts.clear();
  EXPECT_FALSE(RunStudySetup(in, Options()).ok());
}

}  // namespace
}  // namespace kvgate::experiments
