// Test of quality_v2's checkpoint: every double comes back bit for bit (NaNs, infinities, -0.0,
// subnormals), a checkpoint of another run or a corrupt one is refused naming the file and never
// touched, and on the tiny hermetic model a run stopped after window 1 of 2 and resumed from its
// checkpoint gives exactly what an uninterrupted run gives (seconds excepted).
//
// Run: tools/bazel test //experiments/quality_v2:checkpoint_test

#include "experiments/quality_v2/checkpoint.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/quality_v2/quality_v2.h"
#include "experiments/runtime/model_test_util.h"
#include "gates/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::experiments {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kContext = 24, kPositions = 6;

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

double FromBits(uint64_t b) {
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

// Every field but seconds, bit for bit (a NaN equals only the same NaN).
void ExpectSameValues(const ConfigPositions& a, const ConfigPositions& b) {
  EXPECT_EQ(a.variant, b.variant);
  EXPECT_EQ(a.gate, b.gate);
  EXPECT_EQ(a.selector, b.selector) << a.variant;
  EXPECT_EQ(a.reference_finite, b.reference_finite) << a.variant;
  EXPECT_EQ(Bits(a.kv_ratio), Bits(b.kv_ratio)) << a.variant;
  const auto& measures = WindowMeasures();
  // The ten Windows members of ConfigPositions.
  ASSERT_EQ(measures.size(), 10u);
  for (const auto& [name, field, selectors_only] : measures) {
    const gates::Windows& x = a.*field;
    const gates::Windows& y = b.*field;
    ASSERT_EQ(x.size(), y.size()) << a.variant << " " << name;
    for (size_t w = 0; w < x.size(); ++w) {
      ASSERT_EQ(x[w].size(), y[w].size()) << a.variant << " " << name;
      for (size_t i = 0; i < x[w].size(); ++i) {
        EXPECT_EQ(Bits(x[w][i]), Bits(y[w][i])) << a.variant << " " << name << "[" << w << "][" << i
                                                << "]: " << x[w][i] << " vs " << y[w][i];
      }
    }
  }
}

// Values JSON cannot hold as numbers, and numbers that lose bits when printed carelessly.
std::vector<double> OddValues() {
  return {std::numeric_limits<double>::quiet_NaN(),
          -std::numeric_limits<double>::quiet_NaN(),
          FromBits(0x7ff0000000000001ULL),  // a signalling NaN's bits
          FromBits(0x7ff8dead0000beefULL),  // a NaN with a payload
          std::numeric_limits<double>::infinity(),
          -std::numeric_limits<double>::infinity(),
          0.0,
          -0.0,
          std::numeric_limits<double>::denorm_min(),
          -std::numeric_limits<double>::min(),
          std::numeric_limits<double>::max(),
          std::numeric_limits<double>::lowest(),
          std::numeric_limits<double>::epsilon(),
          0.1,
          1.0 / 3.0,
          std::nextafter(1.0, 2.0),
          1e-310,
          -123456789.123456789,
          9007199254740993.0,  // 2^53 + 1 rounds to 2^53: a double that looks like an integer
          1.0};
}

ConfigPositions OddConfig(const std::string& variant, bool selector, size_t windows,
                          int64_t positions) {
  ConfigPositions c;
  c.variant = variant;
  c.gate = selector ? kSelectorWindowsGate : kFormatWindowsGate;
  c.selector = selector;
  c.reference_finite = !selector;
  c.kv_ratio = selector ? 0.0 : 0.28125000000000006;
  c.seconds = 12.345678901234567;
  const std::vector<double> odd = OddValues();
  size_t n = 0;
  for (gates::Windows* m :
       {&c.kl_divergence, &c.decode_logit_mse, &c.top10_overlap, &c.argmax_agreement, &c.delta_p,
        &c.abs_delta_p, &c.layer_median_o_proj_rel_l2, &c.nll, &c.dense_nll,
        &c.active_history_fraction}) {
    if (m == &c.active_history_fraction && !selector) continue;
    for (size_t w = 0; w < windows; ++w) {
      std::vector<double> row;
      for (int64_t i = 0; i < positions; ++i) row.push_back(odd[n++ % odd.size()]);
      m->push_back(row);
    }
  }
  return c;
}

RunKey Key(const std::vector<std::string>& variants, int64_t positions) {
  RunKey k;
  k.model = "tiny_llama";
  k.weights_sha256 = "random:seed=1234";
  k.context = kContext;
  k.positions = positions;
  k.dtype = "float32";
  k.device = "cpu";
  k.seed = 5;
  k.prompt_set_sha256 = std::string(64, 'a');
  k.windows = 32;
  k.window_ids_sha256 = WindowIdsSha256({{1, 2, 3}, {4, 5, 6}});
  k.variants = variants;
  k.code = "0123abcd";
  return k;
}

std::string TempPath(const std::string& name) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove(path);
  return path;
}

TEST(CheckpointTest, EveryValueRoundTripsBitForBit) {
  const int64_t positions = 7;  // not a divisor of the odd values' count: every value everywhere
  const std::vector<ConfigPositions> configs = {
      OddConfig("symmetric_int4:block=32", false, 3, positions),
      OddConfig("h2o:heavy=4:recent=4", true, 3, positions)};
  const RunKey key = Key({configs[0].variant, configs[1].variant}, positions);
  const std::string text = EncodeCheckpoint(key, configs);
  EXPECT_THAT(text, HasSubstr("\"nan\""));
  EXPECT_THAT(text, HasSubstr("\"-inf\""));
  EXPECT_THAT(text, HasSubstr("\"nan:0x7ff8dead0000beef\""));
  absl::StatusOr<Checkpoint> back = DecodeCheckpoint(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->windows_done, 3u);
  EXPECT_EQ(back->key.variants, key.variants);
  EXPECT_EQ(back->key.window_ids_sha256, key.window_ids_sha256);
  ASSERT_EQ(back->configs.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    ExpectSameValues(configs[k], back->configs[k]);
    EXPECT_EQ(Bits(configs[k].seconds), Bits(back->configs[k].seconds));
  }

  // Through the file: written atomically, loaded under the same key.
  const std::string path = TempPath("round_trip.checkpoint.json");
  ASSERT_TRUE(WriteCheckpoint(path, key, configs).ok());
  absl::StatusOr<std::vector<ConfigPositions>> loaded = LoadCheckpoint(path, key);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 2u);
  for (size_t k = 0; k < 2; ++k) ExpectSameValues(configs[k], (*loaded)[k]);
  ASSERT_TRUE(RemoveCheckpoint(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(RemoveCheckpoint(path).ok());  // nothing to delete is fine
}

TEST(CheckpointTest, NoFileIsNoWindowsDone) {
  absl::StatusOr<std::vector<ConfigPositions>> none =
      LoadCheckpoint(TempPath("absent.checkpoint.json"), Key({"a"}, 2));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(CheckpointPath("", "reports/records/quality_v2.jsonl"),
            "reports/records/quality_v2.jsonl.checkpoint.json");
  EXPECT_EQ(CheckpointPath("/tmp/x.json", "reports/records/quality_v2.jsonl"), "/tmp/x.json");
}

TEST(CheckpointTest, AnotherRunsCheckpointIsRefusedAndKept) {
  const std::vector<ConfigPositions> configs = {OddConfig("affine_int4:block=32", false, 2, 3)};
  const RunKey key = Key({configs[0].variant}, 3);
  const std::string path = TempPath("other_run.checkpoint.json");
  ASSERT_TRUE(WriteCheckpoint(path, key, configs).ok());
  absl::StatusOr<std::string> before = gates::ReadFile(path);
  ASSERT_TRUE(before.ok());

  RunKey other = key;
  other.context = 512;
  other.device = "NVIDIA H100 80GB HBM3";  // a later field: the first that differs is named
  absl::Status s = LoadCheckpoint(path, other).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  EXPECT_THAT(std::string(s.message()), HasSubstr("context is 24 there, 512 in this run"));
  EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("device")));
  EXPECT_THAT(std::string(s.message()), HasSubstr("delete it"));
  EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos);  // one line

  other = key;
  other.variants = {"affine_int4:block=64"};
  s = LoadCheckpoint(path, other).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("variants is [\"affine_int4:block=32\"] there"));
  other = key;
  other.window_ids_sha256 = WindowIdsSha256({{1, 2, 3}, {4, 5, 7}});
  s = LoadCheckpoint(path, other).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("window_ids_sha256"));
  other = key;
  other.seed = 6;
  EXPECT_THAT(std::string(LoadCheckpoint(path, other).status().message()), HasSubstr("seed"));
  // Another version of the code (or the same commit with edits) never continues a run.
  other = key;
  other.code = "0123abcd+dirty";
  EXPECT_THAT(std::string(LoadCheckpoint(path, other).status().message()),
              HasSubstr("code is \"0123abcd\" there, \"0123abcd+dirty\" in this run"));

  absl::StatusOr<std::string> after = gates::ReadFile(path);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*before, *after);  // refused, never overwritten
}

TEST(CheckpointTest, CorruptCheckpointIsRefused) {
  const std::vector<ConfigPositions> configs = {OddConfig("h2o:heavy=4:recent=4", true, 2, 3)};
  const RunKey key = Key({configs[0].variant}, 3);
  const std::string good = EncodeCheckpoint(key, configs);
  const std::string path = TempPath("corrupt.checkpoint.json");
  auto refused = [&](const std::string& bytes, const std::string& why) {
    ASSERT_TRUE(gates::AtomicWriteFile(path, bytes).ok());
    absl::Status s = LoadCheckpoint(path, key).status();
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << why << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(absl::StrCat("checkpoint ", path, ": corrupt")))
        << why;
    EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos) << why;
  };
  refused(good.substr(0, good.size() / 2), "torn");
  refused("", "empty");
  refused("[1, 2]", "not an object");
  refused(absl::StrReplaceAll(good, {{"\"version\":2", "\"version\":1"}}), "the version before");
  refused(absl::StrReplaceAll(good, {{"\"code\"", "\"cod\""}}), "a key without code");
  refused(absl::StrReplaceAll(good, {{"\"kind\"", "\"kin\""}}), "no kind");
  refused(absl::StrReplaceAll(good, {{"\"dense_nll\"", "\"dense_nl\""}}), "a missing measure");
  refused(absl::StrReplaceAll(good, {{"\"selector\":true", "\"selector\":1"}}), "a mistyped field");
  refused(absl::StrReplaceAll(good, {{"\"nan\"", "\"NaN!\""}}), "a value that is not a number");
  refused(absl::StrReplaceAll(good, {{"\"positions\":3", "\"positions\":4"}}), "short rows");
  refused(absl::StrReplaceAll(good, {{"\"windows\":32", "\"windows\":1"}}), "too many windows");
  refused(absl::StrReplaceAll(good, {{"\"variant\":\"h2o", "\"variant\":\"h3o"}}),
          "configurations other than the key's");
  // A measure one window short of the others.
  ConfigPositions shorter = configs[0];
  shorter.nll.pop_back();
  refused(EncodeCheckpoint(key, {shorter}), "unequal windows");
}

std::vector<std::vector<int64_t>> TwoWindows() {
  std::vector<int64_t> a = runtime::FixturePrompt(2 * (kContext + kPositions + 1));
  return {std::vector<int64_t>(a.begin(), a.begin() + kContext + kPositions + 1),
          std::vector<int64_t>(a.begin() + kContext + kPositions + 1, a.end())};
}

TEST(CheckpointTest, ResumedRunIsTheUninterruptedRun) {
  absl::StatusOr<runtime::Model> model = runtime::LoadFixtureModel("tiny_llama");
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<std::vector<std::shared_ptr<const kernels::KvFormat>>> formats =
      MakeFormats({"symmetric_int4:block=32", "turboquant_mse:bits=3:seed=7"});
  ASSERT_TRUE(formats.ok()) << formats.status();
  // Stateful selectors: H2O (the captured prompt) and the block-mass oracle (the dense run's
  // probabilities), so a resume that lost state between windows would show.
  const std::vector<std::string> selectors = {"h2o:heavy=4:recent=4",
                                              "global_block_mass:f=0.3:b=4"};
  const std::vector<std::vector<int64_t>> windows = TwoWindows();

  std::vector<size_t> reported;
  absl::StatusOr<std::vector<ConfigPositions>> whole =
      RunOverWindows(*model, windows, kContext, kPositions, *formats, selectors, nullptr, {},
                     [&](size_t done, const std::vector<ConfigPositions>& c) {
                       reported.push_back(done);
                       EXPECT_EQ(c[0].kl_divergence.size(), done);
                       return absl::OkStatus();
                     });
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(reported, (std::vector<size_t>{1, 2}));

  // Killed after window 1: its checkpoint written, the callback's error stops the run.
  RunKey key = Key({}, kPositions);
  for (const ConfigPositions& c : *whole) key.variants.push_back(c.variant);
  key.windows = 2;
  key.window_ids_sha256 = WindowIdsSha256(windows);
  const std::string path = TempPath("resume.checkpoint.json");
  absl::StatusOr<std::vector<ConfigPositions>> stopped =
      RunOverWindows(*model, windows, kContext, kPositions, *formats, selectors, nullptr, {},
                     [&](size_t done, const std::vector<ConfigPositions>& c) {
                       if (absl::Status s = WriteCheckpoint(path, key, c); !s.ok()) return s;
                       return done == 1 ? absl::DeadlineExceededError("killed") : absl::OkStatus();
                     });
  EXPECT_TRUE(absl::IsDeadlineExceeded(stopped.status())) << stopped.status();

  absl::StatusOr<std::vector<ConfigPositions>> done = LoadCheckpoint(path, key);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->size(), whole->size());
  EXPECT_EQ((*done)[0].kl_divergence.size(), 1u);
  const double seconds_before = (*done)[2].seconds;
  reported.clear();
  absl::StatusOr<std::vector<ConfigPositions>> resumed =
      RunOverWindows(*model, windows, kContext, kPositions, *formats, selectors, nullptr, *done,
                     [&](size_t d, const std::vector<ConfigPositions>&) {
                       reported.push_back(d);
                       return absl::OkStatus();
                     });
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(reported, (std::vector<size_t>{2}));  // window 0 is not run again
  ASSERT_EQ(resumed->size(), whole->size());
  for (size_t k = 0; k < whole->size(); ++k) ExpectSameValues((*whole)[k], (*resumed)[k]);
  EXPECT_GT((*resumed)[2].seconds, seconds_before);  // the time adds up over the two runs

  // Everything done already: nothing runs, the values come back as they were.
  absl::StatusOr<std::vector<ConfigPositions>> again =
      RunOverWindows(*model, windows, kContext, kPositions, *formats, selectors, nullptr, *resumed);
  ASSERT_TRUE(again.ok()) << again.status();
  for (size_t k = 0; k < whole->size(); ++k) ExpectSameValues((*whole)[k], (*again)[k]);
}

TEST(CheckpointTest, RunOverWindowsRefusesDoneOfAnotherRun) {
  absl::StatusOr<runtime::Model> model = runtime::LoadFixtureModel("tiny_llama");
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<std::vector<int64_t>> windows = TwoWindows();
  const std::vector<std::string> selectors = {"recent_sink:sink=2:recent=6"};
  // Another configuration.
  absl::Status s = RunOverWindows(*model, windows, kContext, kPositions, {}, selectors, nullptr,
                                  {OddConfig("h2o:heavy=4:recent=4", true, 1, kPositions)})
                       .status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("configuration 0 is h2o"));
  // Rows of other than `positions` values, more windows than the run has.
  s = RunOverWindows(*model, windows, kContext, kPositions, {}, selectors, nullptr,
                     {OddConfig(selectors[0], true, 1, kPositions + 1)})
          .status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("a row of 7 values, not 6"));
  s = RunOverWindows(*model, windows, kContext, kPositions, {}, selectors, nullptr,
                     {OddConfig(selectors[0], true, 3, kPositions)})
          .status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("3 windows, this run has 2"));
}

}  // namespace
}  // namespace kvgate::experiments
