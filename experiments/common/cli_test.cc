// Every command line of kvgate refuses bad input the same way: a non-zero exit and ONE line on
// stderr that names the flag or file at fault. Table-driven: each binary (a data dependency, run
// from the runfiles as a child process) with a missing file, an unknown flag, a context longer than
// the model allows, and nonsense values (negative steps, a fraction outside [0, 1], a negative
// context, no room for one). The experiments run the embedded SmolLM2-135M-Instruct (max_position_embeddings
// 8192), whose loading is the slowest case here.

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "experiments/common/child_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

struct CliCase {
  std::string name;                  // test name suffix
  std::string binary;                // runfiles path
  std::vector<std::string> args;
  std::string expected;              // in the one stderr line
};

const char* kExperiments[][2] = {
    {"hfkv_int4", "experiments/hfkv_int4/hfkv_int4"},
    {"speed_ceiling", "experiments/speed_ceiling/speed_ceiling"},
    {"qwen_oracle", "experiments/qwen_oracle/qwen_oracle"},
    {"eager_value_path", "experiments/eager_value_path/eager_value_path"},
    {"fused_codebook", "experiments/fused_codebook/fused_codebook"},
};

std::vector<CliCase> Cases() {
  std::vector<CliCase> cases;
  // What every experiment shares (experiment_flags.h).
  for (const auto& [name, binary] : kExperiments) {
    const std::string n = name;
    cases.push_back({n + "_missing_model", binary, {"--model=/no/such/model.gguf"},
                     "--model=/no/such/model.gguf: no such file or folder"});
    cases.push_back({n + "_unknown_flag", binary, {"--no_such_flag=1"}, "no_such_flag"});
    cases.push_back({n + "_positional", binary, {"stray"}, "unexpected argument 'stray'"});
    // --context=0 is the target context, capped to the model: no room left is still an error.
    cases.push_back({n + "_no_room_for_context", binary, {"--context=0", "--decode_steps=9000"},
                     "--decode_steps=9000 leaves no context within the model's "
                     "max_position_embeddings 8192"});
    cases.push_back({n + "_negative_context", binary, {"--context=-5"}, "--context=-5"});
    cases.push_back({n + "_not_a_number", binary, {"--context=many"}, "context"});
    cases.push_back({n + "_negative_steps", binary, {"--decode_steps=-1"}, "--decode_steps=-1"});
    cases.push_back({n + "_bad_dtype", binary, {"--dtype=fp7"}, "--dtype=fp7"});
    cases.push_back({n + "_context_past_model", binary, {"--context=100000"},
                     "--context=100000 plus --decode_steps"});
  }
  // Each experiment's own flags.
  cases.push_back({"hfkv_int4_bad_format", "experiments/hfkv_int4/hfkv_int4",
                   {"--formats=no_such_format"}, "--formats"});
  cases.push_back({"speed_ceiling_negative_warmup", "experiments/speed_ceiling/speed_ceiling",
                   {"--warmup_steps=-1"}, "--warmup_steps=-1"});
  cases.push_back({"speed_ceiling_zero_repeats", "experiments/speed_ceiling/speed_ceiling",
                   {"--repeats=0"}, "--repeats=0 must be >= 1"});
  const std::string study = "experiments/study_setup/study_setup";
  cases.push_back({"study_setup_missing_model", study, {"--model=/no/such/model.gguf"},
                   "--model=/no/such/model.gguf: no such file or folder"});
  cases.push_back({"study_setup_bad_contexts", study, {"--contexts=128,abc"},
                   "--contexts: 'abc' is not a context >= 1"});
  cases.push_back({"study_setup_bad_compare_dtype", study, {"--compare_dtype=fp7"},
                   "--compare_dtype"});
  cases.push_back({"study_setup_bad_format", study, {"--formats=no_such_format"}, "--formats"});
  cases.push_back({"study_setup_context_past_model", study, {"--contexts=100000"},
                   "--contexts=100000 with --context=256: the longest, 100000, does not fit"});
  cases.push_back({"speed_ceiling_negative_threads", "experiments/speed_ceiling/speed_ceiling",
                   {"--threads=-2"}, "--threads=-2"});
  cases.push_back({"qwen_oracle_fraction_above_one", "experiments/qwen_oracle/qwen_oracle",
                   {"--selectors=global_block_mass:f=1.5:b=16"}, "--selectors"});
  cases.push_back({"qwen_oracle_negative_fraction", "experiments/qwen_oracle/qwen_oracle",
                   {"--selectors=global_block_mass:f=-0.2:b=16"}, "--selectors"});
  cases.push_back({"qwen_oracle_zero_chunk", "experiments/qwen_oracle/qwen_oracle",
                   {"--prefill_chunk=0"}, "--prefill_chunk=0"});
  cases.push_back({"eager_value_path_negative_seed",
                   "experiments/eager_value_path/eager_value_path", {"--seed=-1"}, "--seed"});
  // generate.
  const std::string generate = "experiments/runtime/generate";
  cases.push_back({"generate_missing_model", generate, {"--model=/no/such/model.gguf"},
                   "--model=/no/such/model.gguf: no such file or folder"});
  cases.push_back({"generate_unknown_flag", generate, {"--no_such_flag"}, "no_such_flag"});
  cases.push_back({"generate_positional", generate, {"stray"}, "unexpected argument 'stray'"});
  cases.push_back({"generate_negative_tokens", generate, {"--max_new_tokens=-1"},
                   "--max_new_tokens=-1"});
  cases.push_back({"generate_negative_threads", generate, {"--threads=-3"}, "--threads=-3"});
  cases.push_back({"generate_bad_dtype", generate, {"--dtype=fp7"}, "--dtype=fp7"});
  cases.push_back({"generate_context_past_model", generate,
                   {"--prompt_ids=1,2,3", "--max_new_tokens=100000"},
                   "--max_new_tokens=100000 plus the prompt's 3 tokens exceed"});
  // //gates:judge.
  const std::string judge = "gates/judge";
  cases.push_back({"judge_missing_file", judge, {"/no/such/records.jsonl"},
                   "/no/such/records.jsonl"});
  cases.push_back({"judge_unknown_flag", judge, {"--no_such_flag=1"}, "no_such_flag"});
  cases.push_back({"judge_fraction_above_one", judge, {"--p_attn=0.3", "--f=1.5"},
                   "--f: 1.5 is not a fraction in [0, 1]"});
  cases.push_back({"judge_negative_p_attn", judge, {"--p_attn=-0.1", "--f=0.3"},
                   "--p_attn: -0.1 is not a fraction in [0, 1]"});
  cases.push_back({"judge_not_a_number", judge, {"--p_attn=0.3", "--f=most"},
                   "--f: 'most' is not a number"});
  cases.push_back({"judge_missing_specs", judge, {"--specs_dir=/no/such/specs", "/tmp"},
                   "/no/such/specs"});
  // //tools/report.
  const std::string report = "tools/report/report";
  cases.push_back({"report_missing_specs", report, {"--specs_dir=/no/such/specs", "--check"},
                   "/no/such/specs"});
  cases.push_back({"report_missing_published", report,
                   {"--published=/no/such/published.json", "--check"}, "/no/such/published.json"});
  cases.push_back({"report_unknown_flag", report, {"--no_such_flag"}, "no_such_flag"});
  cases.push_back({"report_positional", report, {"stray"}, "unexpected argument stray"});
  return cases;
}

class CliTest : public ::testing::TestWithParam<CliCase> {};

TEST_P(CliTest, FailsWithOneLineNamingTheCulprit) {
  const CliCase& c = GetParam();
  ChildOptions options;
  options.env = {"OMP_NUM_THREADS=1", "KVGATE_QWEN_DIR="};
  absl::StatusOr<ChildResult> r = RunChild(c.binary, c.args, options);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string command = c.binary + " " + absl::StrJoin(c.args, " ");
  EXPECT_EQ(r->signal, 0) << command << ": " << r->Describe();
  EXPECT_NE(r->exit_code, 0) << command << ": " << r->Describe();
  const std::vector<std::string> lines = r->ErrLines();
  ASSERT_EQ(lines.size(), 1u) << command << ": " << r->Describe();
  EXPECT_THAT(lines[0], HasSubstr(c.expected)) << command;
}

INSTANTIATE_TEST_SUITE_P(Binaries, CliTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<CliCase>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace kvgate::experiments
