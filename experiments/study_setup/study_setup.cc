#include "experiments/study_setup/study_setup.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/hfkv_int4/hfkv_int4.h"
#include "experiments/quality_v2/quality_v2.h"
#include "gates/metrics.h"

namespace kvgate::experiments {
namespace {

std::vector<int64_t> Head(const std::vector<int64_t>& ids, int64_t n) {
  return std::vector<int64_t>(ids.begin(), ids.begin() + n);
}

std::string SettingWords(const StudySetting& s, const std::string& text_name) {
  return absl::StrCat("factor=", s.factor, ":dtype=", s.dtype, ":prompt=", text_name,
                      ":context=", s.context, ":position=", s.position, ":",
                      s.teacher_forced ? "teacher_forced" : "one_step");
}

}  // namespace

std::vector<StudySetting> StudySettings(const StudyInputs& in, const StudyOptions& o) {
  std::set<int64_t> contexts(o.contexts.begin(), o.contexts.end());
  contexts.insert(o.context);
  std::vector<StudySetting> settings;
  for (int64_t c : contexts) {
    for (const auto& [dtype, model] : in.models) {
      settings.push_back({"dtype_context", dtype, 0, c, 0, false});
    }
  }
  for (size_t t = 1; t < in.texts.size(); ++t) {
    settings.push_back({"prompt", o.study_dtype, t, o.context, 0, false});
  }
  for (int64_t p = 0; p < o.positions; ++p) {
    settings.push_back({"position", o.study_dtype, 0, o.context, p, true});
  }
  return settings;
}

std::string StudyVariant(const StudyRow& row) {
  return absl::StrCat(row.format, ":study_setup:", SettingWords(row.setting, row.text_name));
}

absl::StatusOr<std::vector<StudyRow>> RunStudySetup(
    const StudyInputs& in, const StudyOptions& o,
    const std::function<void(const std::string&)>& progress) {
  if (in.texts.empty()) return absl::InvalidArgumentError("study_setup: no texts");
  if (in.formats.empty()) return absl::InvalidArgumentError("study_setup: no formats");
  if (o.context < 1 || o.positions < 1) {
    return absl::InvalidArgumentError("study_setup: context and positions must be >= 1");
  }
  if (!in.models.count(o.study_dtype) || in.models.at(o.study_dtype) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("study_setup: no model in the study dtype ", o.study_dtype));
  }
  for (int64_t c : o.contexts) {
    if (c < 1) return absl::InvalidArgumentError(absl::StrCat("study_setup: context ", c, " < 1"));
  }
  const std::vector<StudySetting> settings = StudySettings(in, o);
  // What each text must hold, checked before anything runs.
  for (const StudySetting& s : settings) {
    const StudyText& text = in.texts[s.text];
    const int64_t need = s.teacher_forced ? o.context + o.positions + 1 : s.context;
    if (static_cast<int64_t>(text.ids.size()) < need) {
      return absl::InvalidArgumentError(absl::StrCat("study_setup: text ", text.name, " has ",
                                                     text.ids.size(), " tokens; the ", s.factor,
                                                     " factor reads ", need));
    }
  }

  std::vector<StudyRow> rows;
  auto add = [&](const StudySetting& s, const std::string& format, double mse, double top10,
                 double argmax, double kld, double kv_ratio, double finite) {
    StudyRow r;
    r.format = format;
    r.setting = s;
    r.text_name = in.texts[s.text].name;
    r.decode_logit_mse = mse;
    r.top10_overlap = top10;
    r.argmax_agreement = argmax;
    r.kl_divergence = kld;
    r.kv_ratio = kv_ratio;
    r.reference_finite = finite;
    rows.push_back(std::move(r));
    if (progress) {
      progress(absl::StrFormat("%s %s: mse %.6f, top-10 %.2f, argmax %.0f", format,
                               SettingWords(s, in.texts[s.text].name), mse, top10, argmax));
    }
  };

  // One-step settings: hfkv_int4's measurement.
  for (const StudySetting& s : settings) {
    if (s.teacher_forced) continue;
    const runtime::Model* model = in.models.at(s.dtype);
    absl::StatusOr<HfkvResult> r =
        RunHfkvQuality(*model, Head(in.texts[s.text].ids, s.context), in.formats, 1);
    if (!r.ok()) return r.status();
    if (!r->failures.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("study_setup: ", r->failures.front()));
    }
    for (const HfkvRow& h : r->rows) {
      add(s, h.format, h.decode_logit_mse, h.top10_overlap, h.argmax_agreement, h.kl_divergence,
          h.kv_ratio, h.reference_finite);
    }
  }

  // Teacher-forced positions on the corpus: quality_v2's measurement on one window.
  if (o.positions >= 1) {
    const runtime::Model* model = in.models.at(o.study_dtype);
    const std::vector<std::vector<int64_t>> window = {
        Head(in.texts[0].ids, o.context + o.positions + 1)};
    absl::StatusOr<std::vector<ConfigPositions>> r =
        RunOverWindows(*model, window, o.context, o.positions, in.formats,
                       /*selectors=*/{}, progress);
    if (!r.ok()) return r.status();
    for (const ConfigPositions& c : *r) {
      for (int64_t p = 0; p < o.positions; ++p) {
        const StudySetting s{"position", o.study_dtype, 0, o.context, p, true};
        add(s, c.variant, c.decode_logit_mse[0][p], c.top10_overlap[0][p],
            c.argmax_agreement[0][p], c.kl_divergence[0][p], c.kv_ratio,
            c.reference_finite ? 1.0 : 0.0);
      }
    }
  }
  return rows;
}

std::vector<gates::Record> StudyRecords(const std::vector<StudyRow>& rows,
                                        const gates::Target& base) {
  std::vector<gates::Record> records;
  for (const StudyRow& row : rows) {
    gates::Record r;
    r.experiment = kStudySetupExperiment;
    r.variant = StudyVariant(row);
    r.target = base;
    r.target.dtype = row.setting.dtype;
    r.target.context = row.setting.context;
    r.step = 0;
    r.metrics = {{gates::kDecodeLogitMse, row.decode_logit_mse},
                 {gates::kTop10Overlap, row.top10_overlap},
                 {gates::kArgmaxAgreement, row.argmax_agreement},
                 {gates::kKlDivergence, row.kl_divergence},
                 {gates::kKvRatio, row.kv_ratio},
                 {gates::kReferenceFinite, row.reference_finite},
                 {"position", static_cast<double>(row.setting.position)}};
    records.push_back(std::move(r));
  }
  return records;
}

std::string StudyTable(const std::vector<StudyRow>& rows,
                       const std::vector<std::string>& verdicts) {
  std::string out;
  std::string factor;
  for (size_t i = 0; i < rows.size(); ++i) {
    const StudyRow& r = rows[i];
    if (r.setting.factor != factor) {
      factor = r.setting.factor;
      absl::StrAppend(&out, out.empty() ? "" : "\n", "### factor: ", factor,
                      "\n\n| format | dtype | prompt | context | position | mechanics | MSE | "
                      "top-10 | argmax | KLD |",
                      verdicts.empty() ? "" : " verdict |", "\n|---|---|---|---|---|---|---|---|---|---|",
                      verdicts.empty() ? "" : "---|", "\n");
    }
    absl::StrAppendFormat(&out, "| %s | %s | %s | %d | %d | %s | %.6f | %.2f | %.0f | %.6f |",
                          r.format, r.setting.dtype, r.text_name, r.setting.context,
                          r.setting.position,
                          r.setting.teacher_forced ? "teacher-forced" : "one step",
                          r.decode_logit_mse, r.top10_overlap, r.argmax_agreement,
                          r.kl_divergence);
    if (i < verdicts.size()) absl::StrAppend(&out, " ", verdicts[i], " |");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace kvgate::experiments
