#include "gates/verdict.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gates/metrics.h"
#include "gates/speed_ceiling/speed_ceiling.h"

namespace kvgate::gates {
namespace {

std::string Number(double value) { return absl::StrFormat("%.6g", value); }

absl::StatusOr<double> Metric(const std::map<std::string, double>& metrics,
                              const std::string& name) {
  auto it = metrics.find(name);
  if (it == metrics.end()) return absl::NotFoundError(absl::StrCat("metric ", name, " is missing"));
  return it->second;
}

Judgement Invalid(std::vector<std::string> reasons) {
  return {Verdict::kInvalid, std::move(reasons)};
}

// Why the row cannot be judged against this spec's target and step rule, if it cannot.
void CheckTargetAndStep(const GateSpec& spec, const Record& row, std::vector<std::string>* out) {
  const SpecTarget& pinned = spec.target;
  if (pinned.model.has_value() && row.target.model != *pinned.model) {
    out->push_back(
        absl::StrCat("target.model is ", row.target.model, ", the spec registers ", *pinned.model));
  }
  if (pinned.dtype.has_value() && row.target.dtype != *pinned.dtype) {
    out->push_back(
        absl::StrCat("target.dtype is ", row.target.dtype, ", the spec registers ", *pinned.dtype));
  }
  if (pinned.context.has_value() && row.target.context != *pinned.context) {
    out->push_back(absl::StrCat("target.context is ", row.target.context, ", the spec registers ",
                                *pinned.context));
  }
  if (spec.multi_step_rule == MultiStepRule::kSingleMeasurement) {
    if (row.step.has_value()) {
      out->push_back(
          absl::StrCat("step is ", *row.step, ", the spec judges one measurement (null)"));
    }
  } else if (!row.step.has_value() || *row.step >= *pinned.decode_steps) {
    out->push_back(absl::StrCat("step is ", row.step.has_value() ? absl::StrCat(*row.step) : "null",
                                ", the spec judges decode steps 0..", *pinned.decode_steps - 1));
  }
}

}  // namespace

absl::StatusOr<double> ConditionQuantity(const Condition& condition,
                                         const std::map<std::string, double>& metrics) {
  switch (condition.kind) {
    case Condition::Kind::kMetric:
      return Metric(metrics, condition.metric);
    case Condition::Kind::kRatio: {
      absl::StatusOr<double> num = Metric(metrics, condition.numerator);
      if (!num.ok()) return num.status();
      absl::StatusOr<double> den = Metric(metrics, condition.denominator);
      if (!den.ok()) return den.status();
      if (!(*den > 0.0)) {
        return absl::InvalidArgumentError(absl::StrCat(QuantityName(condition), " is undefined: ",
                                                       condition.denominator, " = ", Number(*den)));
      }
      return *num / *den;
    }
    case Condition::Kind::kProjectedSpeedup: {
      absl::StatusOr<double> p_attn = Metric(metrics, kPAttn);
      if (!p_attn.ok()) return p_attn.status();
      absl::StatusOr<double> f = Metric(metrics, kActiveHistoryFraction);
      if (!f.ok()) return f.status();
      absl::StatusOr<double> speedup = ProjectedSpeedup(*p_attn, *f, condition.overhead);
      if (!speedup.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(QuantityName(condition), " is undefined: ", speedup.status().message()));
      }
      return *speedup;
    }
  }
  return absl::InternalError("unknown condition kind");
}

Judgement JudgeRow(const GateSpec& spec, const Record& row) {
  std::vector<std::string> invalid, failed;
  CheckTargetAndStep(spec, row, &invalid);
  bool metrics_finite = true;
  for (const auto& [name, value] : row.metrics) {
    if (std::isfinite(value)) continue;
    metrics_finite = false;
    invalid.push_back(absl::StrCat("metric ", name, " is ", Number(value)));
  }
  // Appends to `unmet` when the condition is not met, to `invalid` when it cannot be evaluated.
  auto judge = [&](const Condition& c, absl::string_view label, std::vector<std::string>* unmet) {
    absl::StatusOr<double> q = ConditionQuantity(c, row.metrics);
    if (!q.ok()) {
      invalid.push_back(std::string(q.status().message()));
    } else if (!std::isfinite(*q)) {
      // A non-finite metric is already named; otherwise say which quantity overflowed.
      if (metrics_finite) invalid.push_back(absl::StrCat(QuantityName(c), " is ", Number(*q)));
    } else if (!Satisfies(c, *q)) {
      unmet->push_back(absl::StrCat(label, QuantityName(c), " = ", Number(*q), " fails ",
                                    OpSymbol(c.op), " ", Number(c.value)));
    }
  };
  for (const Condition& c : spec.validity) judge(c, "validity: ", &invalid);
  for (const Condition& c : spec.thresholds) judge(c, "", &failed);
  if (!invalid.empty()) return Invalid(std::move(invalid));
  if (!failed.empty()) return {Verdict::kFail, std::move(failed)};
  return {Verdict::kPass, {}};
}

namespace {

// Everything that makes two rows part of one run.
auto RunKey(const Record& r) {
  const Target& t = r.target;
  const Provenance& p = r.provenance;
  return std::make_tuple(r.gate.id, r.gate.version, t.model, t.context, t.dtype, t.device,
                         t.weights_sha256, r.variant, p.start_time, r.experiment, p.git_commit,
                         p.dirty, p.build_config, p.torch_version, p.cuda_version, p.host, p.seed);
}

Judgement JudgeRun(const RegisteredSpec* registered, const RunJudgement& run) {
  if (registered == nullptr) {
    return Invalid({absl::StrCat("unknown spec ", run.gate_id, " v", run.gate_version)});
  }
  const GateSpec& spec = registered->spec;
  if (spec.multi_step_rule == MultiStepRule::kSingleMeasurement) {
    if (run.rows.size() != 1) {
      return Invalid({absl::StrCat(run.rows.size(), " rows for one measurement")});
    }
    return JudgeRow(spec, run.rows[0]->record);
  }
  std::vector<std::string> invalid, failed;
  std::map<int64_t, int> seen;
  for (const RecordAt* row : run.rows) {
    if (row->record.step.has_value()) ++seen[*row->record.step];
    const Judgement j = JudgeRow(spec, row->record);
    const std::string step =
        row->record.step.has_value() ? absl::StrCat(*row->record.step) : "null";
    for (const std::string& reason : j.failed) {
      (j.verdict == Verdict::kInvalid ? invalid : failed)
          .push_back(absl::StrCat("step ", step, ": ", reason));
    }
  }
  std::vector<std::string> missing;
  for (int step = 0; step < *spec.target.decode_steps; ++step) {
    if (seen[step] == 0) missing.push_back(absl::StrCat(step));
    if (seen[step] > 1) {
      invalid.push_back(absl::StrCat("step ", step, " appears ", seen[step], " times"));
    }
  }
  if (!missing.empty()) {
    invalid.push_back(absl::StrCat("step ", absl::StrJoin(missing, ", "),
                                   " missing: the spec judges ", *spec.target.decode_steps,
                                   " decode steps"));
  }
  if (!invalid.empty()) return Invalid(std::move(invalid));
  if (!failed.empty()) return {Verdict::kFail, std::move(failed)};
  return {Verdict::kPass, {}};
}

}  // namespace

std::vector<RunJudgement> JudgeRuns(const SpecRegistry& specs, const std::vector<RecordAt>& rows) {
  std::map<decltype(RunKey(Record())), RunJudgement> runs;
  for (const RecordAt& row : rows) {
    const Record& r = row.record;
    if (!HasGate(r)) continue;  // a record no gate judges is never a verdict
    RunJudgement& run = runs[RunKey(r)];
    if (run.rows.empty()) {
      run.gate_id = r.gate.id;
      run.gate_version = r.gate.version;
      run.experiment = r.experiment;
      run.variant = r.variant;
      run.target = r.target;
      run.provenance = r.provenance;
    }
    run.rows.push_back(&row);
  }
  std::vector<RunJudgement> out;
  for (auto& [key, run] : runs) {
    std::stable_sort(run.rows.begin(), run.rows.end(), [](const RecordAt* a, const RecordAt* b) {
      return a->record.step.value_or(-1) < b->record.step.value_or(-1);
    });
    run.judgement = JudgeRun(FindSpec(specs, run.gate_id, run.gate_version), run);
    out.push_back(std::move(run));
  }
  return out;
}

std::vector<ConfigurationJudgement> JudgeConfigurations(const std::vector<RunJudgement>& runs) {
  std::vector<ConfigurationJudgement> configs;
  std::vector<std::vector<const RunJudgement*>> members;
  for (const RunJudgement& run : runs) {
    auto it = std::find_if(configs.begin(), configs.end(), [&](const ConfigurationJudgement& c) {
      return c.gate_id == run.gate_id && c.gate_version == run.gate_version &&
             c.target == run.target && c.variant == run.variant;
    });
    if (it == configs.end()) {
      configs.push_back({run.gate_id, run.gate_version, run.target, run.variant});
      members.emplace_back();
      it = configs.end() - 1;
    }
    members[it - configs.begin()].push_back(&run);
  }
  for (size_t i = 0; i < configs.size(); ++i) {
    ConfigurationJudgement& config = configs[i];
    std::vector<std::string> invalid, failed;
    for (const RunJudgement* run : members[i]) {
      ++config.runs;
      const std::string prefix =
          members[i].size() > 1 ? absl::StrCat("run ", run->provenance.start_time, ": ") : "";
      if (run->judgement.verdict != Verdict::kInvalid) ++config.valid_runs;
      for (const std::string& reason : run->judgement.failed) {
        (run->judgement.verdict == Verdict::kInvalid ? invalid : failed).push_back(prefix + reason);
      }
    }
    if (config.valid_runs == 0) {
      config.judgement = Invalid(std::move(invalid));
    } else if (!failed.empty()) {
      config.judgement = {Verdict::kFail, std::move(failed)};
    } else {
      config.judgement = {Verdict::kPass, {}};
    }
  }
  return configs;
}

}  // namespace kvgate::gates
