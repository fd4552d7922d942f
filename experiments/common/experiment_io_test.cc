#include "experiments/common/experiment_io.h"

#include <errno.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gates/file_io.h"
#include "gates/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

TEST(ChooseModelTest, FlagThenEnvironmentThenEmbedded) {
  const std::string dir = std::getenv("TEST_TMPDIR");
  EXPECT_EQ(ChooseModel(dir, "KVGATE_TEST_MODEL_DIR")->path, dir);
  setenv("KVGATE_TEST_MODEL_DIR", dir.c_str(), 1);
  absl::StatusOr<ModelChoice> from_env = ChooseModel("", "KVGATE_TEST_MODEL_DIR");
  EXPECT_EQ(from_env->path, dir);
  EXPECT_FALSE(from_env->embedded);
  // A path that does not exist is named with its flag or variable.
  setenv("KVGATE_TEST_MODEL_DIR", "/no/such/model", 1);
  EXPECT_THAT(std::string(ChooseModel("", "KVGATE_TEST_MODEL_DIR").status().message()),
              HasSubstr("$KVGATE_TEST_MODEL_DIR=/no/such/model: no such file or folder"));
  EXPECT_THAT(std::string(ChooseModel("/no/such.gguf", nullptr).status().message()),
              HasSubstr("--model=/no/such.gguf: no such file or folder"));
  unsetenv("KVGATE_TEST_MODEL_DIR");
  absl::StatusOr<ModelChoice> embedded = ChooseModel("", "KVGATE_TEST_MODEL_DIR");
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  EXPECT_TRUE(embedded->embedded);
  EXPECT_TRUE(std::filesystem::exists(embedded->path)) << embedded->path;
  EXPECT_THAT(embedded->note, HasSubstr("embedded default SmolLM2-135M-Instruct"));
  EXPECT_THAT(embedded->note, HasSubstr("Q4_1-dequantized"));
}

TEST(RecordsPathTest, FlagElseTestOutputs) {
  EXPECT_EQ(RecordsPath("/tmp/x.jsonl", "hfkv_int4"), "/tmp/x.jsonl");
  ASSERT_NE(std::getenv("TEST_UNDECLARED_OUTPUTS_DIR"), nullptr);
  EXPECT_EQ(RecordsPath("", "hfkv_int4"),
            std::string(std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) + "/hfkv_int4.jsonl");
}

gates::Record SpeedCeilingRow(double p_attn, double f) {
  gates::Record r;
  r.experiment = "speed_ceiling";
  r.variant = "active_fraction:f=" + std::to_string(f);
  r.target = {"SmolLM2-135M-Instruct", "random:seed=1", 2048, "float32", "cpu"};
  // Five runs that agree (relative range 0.02): valid under the latest speed_ceiling spec.
  r.metrics = {{"p_attn", p_attn},
               {"active_history_fraction", f},
               {"repeats", 5},
               {"p_attn_relative_range", 0.02}};
  return r;
}

TEST(JudgeAndAppendTest, TheSpecDecidesTheVerdict) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/speed_ceiling.jsonl";
  std::filesystem::remove(path);
  const gates::Provenance provenance = CurrentProvenance(7);
  EXPECT_EQ(provenance.seed, 7);
  EXPECT_FALSE(provenance.start_time.empty());
  // The process's start, not the time of the call: a run that writes after hours says when it
  // began.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(CurrentProvenance(7).start_time, provenance.start_time);
  absl::StatusOr<std::vector<gates::Record>> judged =
      JudgeAndAppend(path, "speed_ceiling",
                     {SpeedCeilingRow(0.334, 0.350), SpeedCeilingRow(0.334, 0.376)}, provenance);
  ASSERT_TRUE(judged.ok()) << judged.status();
  absl::StatusOr<std::vector<gates::RecordAt>> rows = gates::ReadRecordsFile(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2);
  ASSERT_EQ(judged->size(), 2);
  for (size_t i = 0; i < 2; ++i) {  // the returned rows are the written ones
    EXPECT_EQ((*judged)[i].gate.verdict, (*rows)[i].record.gate.verdict);
    EXPECT_EQ((*judged)[i].gate.failed, (*rows)[i].record.gate.failed);
    EXPECT_EQ((*judged)[i].gate.spec_sha256, (*rows)[i].record.gate.spec_sha256);
  }
  absl::StatusOr<gates::RegisteredSpec> spec = LatestGateSpec("speed_ceiling");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(DescribeThresholds(spec->spec), "projected_speedup at h = 0.05 >= 1.2");
  EXPECT_EQ(LatestGateSpec("no_such_gate").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*rows)[0].record.gate.verdict, gates::Verdict::kPass);  // 1.2006x
  EXPECT_EQ((*rows)[1].record.gate.verdict, gates::Verdict::kFail);  // 1.1882x
  EXPECT_EQ((*rows)[1].record.gate.id, "speed_ceiling");
  EXPECT_EQ((*rows)[1].record.gate.spec_sha256.size(), 64);
  EXPECT_FALSE(JudgeAndAppend(path, "no_such_gate", {SpeedCeilingRow(0.3, 0.3)}, provenance).ok());
}

// JudgeRows judges without writing; AppendJudged writes rows of several gates in one append.
TEST(VerdictInWordsTest, TheVerdictThenWhatFailed) {
  gates::Record row;
  row.gate.verdict = gates::Verdict::kPass;
  EXPECT_EQ(VerdictInWords(row), "pass");
  row.gate.verdict = gates::Verdict::kFail;
  row.gate.failed = {"p_attn = 0.2 fails >= 0.3", "repeats = 1 fails >= 5"};
  EXPECT_EQ(VerdictInWords(row), "fail: p_attn = 0.2 fails >= 0.3; repeats = 1 fails >= 5");
}

TEST(JudgeAndAppendTest, JudgeRowsThenOneAppend) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/two_groups.jsonl";
  std::filesystem::remove(path);
  const gates::Provenance provenance = CurrentProvenance(3);
  absl::StatusOr<std::vector<gates::Record>> judged = JudgeRows(
      "speed_ceiling", {SpeedCeilingRow(0.334, 0.350), SpeedCeilingRow(0.334, 0.376)}, provenance);
  ASSERT_TRUE(judged.ok()) << judged.status();
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ((*judged)[0].gate.verdict, gates::Verdict::kPass);
  EXPECT_EQ((*judged)[1].gate.verdict, gates::Verdict::kFail);
  EXPECT_EQ((*judged)[1].provenance.seed, 3);
  EXPECT_FALSE(JudgeRows("no_such_gate", {SpeedCeilingRow(0.3, 0.3)}, provenance).ok());
  absl::StatusOr<std::vector<gates::Record>> written = AppendJudged(path, *judged);
  ASSERT_TRUE(written.ok()) << written.status();
  absl::StatusOr<std::vector<gates::RecordAt>> rows = gates::ReadRecordsFile(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2);
  EXPECT_EQ((*rows)[1].record.gate.verdict, gates::Verdict::kFail);
}

// A full disk while an experiment appends its rows (ENOSPC injected through the writer): the run
// fails with the error, naming the file, and the previous records file is byte-identical.
TEST(JudgeAndAppendTest, AFullDiskFailsTheRunAndKeepsThePreviousFile) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/full_disk.jsonl";
  std::filesystem::remove(path);
  const gates::Provenance provenance = CurrentProvenance(7);
  ASSERT_TRUE(
      JudgeAndAppend(path, "speed_ceiling", {SpeedCeilingRow(0.334, 0.350)}, provenance).ok());
  absl::StatusOr<std::string> before = gates::ReadFile(path);
  ASSERT_TRUE(before.ok());

  gates::AtomicWriteOptions full_disk;
  full_disk.write = [](int, absl::string_view, absl::string_view what) {
    return absl::ErrnoToStatus(ENOSPC, absl::StrCat("writing ", what));
  };
  const absl::Status status =
      JudgeAndAppend(path, "speed_ceiling", {SpeedCeilingRow(0.334, 0.376)}, provenance, full_disk)
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("No space left on device"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("full_disk.jsonl.tmp."));
  EXPECT_EQ(*gates::ReadFile(path), *before);
}

}  // namespace
}  // namespace kvgate::experiments
