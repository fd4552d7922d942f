// study_setup: int4 K/V against dense in the study's own setup, then one factor changed at a
// time, to show by measurement which factor moves int4's decode-logit MSE from the study's fail
// (symmetric 1.739284, affine 1.360282 on SmolLM2-135M-Instruct, bf16, one prompt, one decode
// step) to kvgate's pass (hfkv_int4: 0.158 / 0.062, float32, the license corpus, one step at
// context 2048) and back to fail (quality_v2: 2.285 / 1.168, means over 32 texts x 64 positions
// at context 512).
//
// Every measurement is one of two mechanics, both the tree's own code, called, not copied:
//   one_step        RunHfkvQuality (//experiments:hfkv_int4): prefill the first `context` tokens
//                   of a text densely, round-trip the whole cache through the format, decode one
//                   step fed the dense run's next token; the study's "one prompt, one step".
//   teacher_forced  RunOverWindows (//experiments:quality_v2) on one window: decode
//                   positions 0..P-1 fed the text's true next tokens; one row a position.
// The settings (StudySettings), from the setup S = (study dtype, the corpus, context C, step 0):
//   dtype x context  every dtype of the run at every context of the run, the corpus, one step
//                    (float32 at 2048 is hfkv_int4's measurement; the study dtype at C is S)
//   prompt           each text of the prompt set at C, study dtype, one step
//   position         the corpus at C, study dtype, teacher-forced positions 0..P-1
// Rows are judged by hfkv_real_kv_quality (one step): a row is one decode step, its setting in
// the variant ("symmetric_int4:block=32:study_setup:factor=prompt:dtype=bfloat16:
// prompt=/usr/share/doc/sed/copyright:context=512:position=0:one_step"), its dtype and context in
// the target.
//
// Usage:
//   StudyInputs in;  // models by dtype, texts (texts[0]: the corpus), formats
//   StudyOptions o{.study_dtype = "bfloat16", .context = 512, .contexts = {128, 2048},
//                  .positions = 64};
//   absl::StatusOr<std::vector<StudyRow>> rows = RunStudySetup(in, o, progress);
//   absl::StatusOr<std::vector<gates::Record>> records = StudyRecords(*rows, target);

#ifndef KVGATE_EXPERIMENTS_STUDY_SETUP_STUDY_SETUP_H_
#define KVGATE_EXPERIMENTS_STUDY_SETUP_STUDY_SETUP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/runtime/model.h"
#include "gates/record.h"
#include "kernels/kv_format/kv_format.h"

namespace kvgate::experiments {

inline constexpr char kStudySetupExperiment[] = "study_setup";
inline constexpr char kStudySetupGate[] = "hfkv_real_kv_quality";

struct StudyText {
  std::string name;           // "corpus" or the text's path
  std::vector<int64_t> ids;   // at least as many tokens as its settings read
};

struct StudyInputs {
  std::map<std::string, const runtime::Model*> models;  // by dtype name: "bfloat16", "float32"
  std::vector<StudyText> texts;  // texts[0]: the corpus (dtype, context, position); the rest:
                                 // the prompt factor
  std::vector<std::shared_ptr<const kernels::KvFormat>> formats;
};

struct StudyOptions {
  std::string study_dtype = "bfloat16";  // a key of StudyInputs::models
  int64_t context = 512;                 // C
  std::vector<int64_t> contexts;         // the context factor (C is added when absent)
  int64_t positions = 4;                 // P, the position factor
};

struct StudySetting {
  std::string factor;  // "dtype_context", "prompt", "position"
  std::string dtype;
  size_t text = 0;     // index into StudyInputs::texts
  int64_t context = 0;
  int64_t position = 0;
  bool teacher_forced = false;
};

// The settings a run measures, in the order above (contexts ascending, dtypes in map order).
std::vector<StudySetting> StudySettings(const StudyInputs& in, const StudyOptions& o);

struct StudyRow {
  std::string format;  // canonical spec
  StudySetting setting;
  std::string text_name;
  double decode_logit_mse = 0, top10_overlap = 0, argmax_agreement = 0, kl_divergence = 0;
  double kv_ratio = 0, reference_finite = 0;
};

// The variant of a row: "<format>:study_setup:factor=..:dtype=..:prompt=..:context=..:
// position=..:<one_step|teacher_forced>".
std::string StudyVariant(const StudyRow& row);

// Measures every setting for every format. InvalidArgument (one line naming it) for no texts, no
// formats, the study dtype or a context missing from the models, context or positions < 1, or a
// text shorter than a setting reads (the corpus: max context and C + P + 1 tokens; a prompt
// text: C). A format that cannot encode fails the call, naming it.
absl::StatusOr<std::vector<StudyRow>> RunStudySetup(
    const StudyInputs& in, const StudyOptions& o,
    const std::function<void(const std::string&)>& progress = nullptr);

// One record a row (experiment study_setup, variant StudyVariant, step 0, the row's dtype and
// context in `base`'s target); gate and provenance are JudgeAndAppend's.
std::vector<gates::Record> StudyRecords(const std::vector<StudyRow>& rows,
                                        const gates::Target& base);

// A markdown table grouped by factor: setting, format, MSE, top-10, argmax, KLD and (when given,
// one a row) the gate's verdict.
std::string StudyTable(const std::vector<StudyRow>& rows,
                       const std::vector<std::string>& verdicts = {});

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_STUDY_SETUP_STUDY_SETUP_H_
