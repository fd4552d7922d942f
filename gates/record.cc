#include "gates/record.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gates/json_fields.h"

namespace kvgate::gates {
namespace {

using OrderedJson = nlohmann::ordered_json;

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

bool IsSha256(absl::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

// Finite values as numbers; the others as the strings JavaScript's JSON.parse cannot confuse
// with a missing value.
OrderedJson MetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

absl::StatusOr<double> ParseMetricValue(const Json& value, const std::string& path) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    const std::string s = value.get<std::string>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  return Invalid(absl::StrCat(path,
                              ": expected a number or \"NaN\", \"Infinity\", \"-Infinity\", "
                              "got ",
                              value.dump()));
}

absl::StatusOr<Target> ParseTarget(const Json& json) {
  FieldReader f(json, "target");
  if (absl::Status s = f.CheckKeys({"model", "weights_sha256", "context", "dtype", "device"});
      !s.ok()) {
    return s;
  }
  Target t;
  absl::StatusOr<std::string> model = f.String("model"), weights = f.String("weights_sha256"),
                              dtype = f.String("dtype"), device = f.String("device");
  absl::StatusOr<int64_t> context = f.Integer("context");
  for (const absl::Status& s :
       {model.status(), weights.status(), dtype.status(), device.status(), context.status()}) {
    if (!s.ok()) return s;
  }
  return Target{*model, *weights, *context, *dtype, *device};
}

absl::StatusOr<GateResult> ParseGate(const Json& json) {
  FieldReader f(json, "gate");
  if (absl::Status s = f.CheckKeys({"id", "version", "spec_sha256", "verdict", "failed"});
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> id = f.String("id"), sha = f.String("spec_sha256"),
                              verdict = f.String("verdict");
  absl::StatusOr<int64_t> version = f.Integer("version");
  for (const absl::Status& s : {id.status(), sha.status(), verdict.status(), version.status()}) {
    if (!s.ok()) return s;
  }
  GateResult gate{*id, static_cast<int>(*version), *sha, Verdict::kInvalid, {}};
  if (*version < 1 || *version > 1000000) return Invalid("gate.version must be >= 1");
  absl::StatusOr<Verdict> parsed = ParseVerdict(*verdict);
  if (!parsed.ok()) return parsed.status();
  gate.verdict = *parsed;
  const Json& failed = f.Field("failed");
  if (!failed.is_array()) return Invalid("gate.failed: expected a list of strings");
  for (const Json& reason : failed) {
    if (!reason.is_string()) return Invalid("gate.failed: expected a list of strings");
    gate.failed.push_back(reason.get<std::string>());
  }
  return gate;
}

absl::StatusOr<Provenance> ParseProvenance(const Json& json) {
  FieldReader f(json, "provenance");
  if (absl::Status s = f.CheckKeys({"git_commit", "dirty", "build_config", "torch_version",
                                    "cuda_version", "host", "start_time", "seed"});
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> commit = f.String("git_commit"), build = f.String("build_config"),
                              torch = f.StringMaybeEmpty("torch_version"),
                              cuda = f.StringMaybeEmpty("cuda_version"), host = f.String("host"),
                              start = f.String("start_time");
  absl::StatusOr<bool> dirty = f.Bool("dirty");
  absl::StatusOr<int64_t> seed = f.Integer("seed");
  for (const absl::Status& s : {commit.status(), build.status(), torch.status(), cuda.status(),
                                host.status(), start.status(), dirty.status(), seed.status()}) {
    if (!s.ok()) return s;
  }
  return Provenance{*commit, *dirty, *build, *torch, *cuda, *host, *start, *seed};
}

}  // namespace

absl::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPass:
      return "pass";
    case Verdict::kFail:
      return "fail";
    case Verdict::kInvalid:
      return "invalid";
  }
  return "?";
}

absl::StatusOr<Verdict> ParseVerdict(absl::string_view name) {
  for (Verdict v : {Verdict::kPass, Verdict::kFail, Verdict::kInvalid}) {
    if (VerdictName(v) == name) return v;
  }
  return Invalid(absl::StrCat("gate.verdict: expected pass, fail or invalid, got \"", name, "\""));
}

absl::Status ValidateRecord(const Record& r) {
  const std::pair<const char*, const std::string*> required[] = {
      {"experiment", &r.experiment},
      {"variant", &r.variant},
      {"target.model", &r.target.model},
      {"target.weights_sha256", &r.target.weights_sha256},
      {"target.dtype", &r.target.dtype},
      {"target.device", &r.target.device},
      {"provenance.git_commit", &r.provenance.git_commit},
      {"provenance.build_config", &r.provenance.build_config},
      {"provenance.host", &r.provenance.host},
      {"provenance.start_time", &r.provenance.start_time},
  };
  for (const auto& [name, value] : required) {
    if (value->empty()) return Invalid(absl::StrCat(name, " is empty"));
  }
  if (r.target.context <= 0) return Invalid("target.context must be > 0");
  if (r.step.has_value() && *r.step < 0) return Invalid("step must be >= 0 or null");
  if (r.metrics.empty()) return Invalid("metrics is empty");
  for (const auto& [name, value] : r.metrics) {
    if (!IsSnakeCaseName(name)) {
      return Invalid(absl::StrCat("metric name \"", name, "\" must be [a-z0-9_]+"));
    }
  }
  if (!HasGate(r)) {
    const GateResult none;
    if (r.gate.version != none.version || !r.gate.spec_sha256.empty() ||
        r.gate.verdict != none.verdict || !r.gate.failed.empty()) {
      return Invalid("gate.id is empty but the gate has other fields set (a record without a gate "
                     "has gate null)");
    }
    return absl::OkStatus();
  }
  if (r.gate.version < 1) return Invalid("gate.version must be >= 1");
  if (!IsSha256(r.gate.spec_sha256)) {
    return Invalid(absl::StrCat("gate.spec_sha256 \"", r.gate.spec_sha256,
                                "\" is not 64 lowercase hex digits"));
  }
  if ((r.gate.verdict == Verdict::kPass) != r.gate.failed.empty()) {
    return Invalid(absl::StrCat("gate.failed must be empty exactly when the verdict is pass (",
                                VerdictName(r.gate.verdict), " with ", r.gate.failed.size(),
                                " failed conditions)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RecordToJsonLine(const Record& r) {
  if (absl::Status s = ValidateRecord(r); !s.ok()) return s;
  OrderedJson metrics = OrderedJson::object();
  for (const auto& [name, value] : r.metrics) metrics[name] = MetricValue(value);
  OrderedJson row = {
      {"experiment", r.experiment},
      {"variant", r.variant},
      {"target",
       {{"model", r.target.model},
        {"weights_sha256", r.target.weights_sha256},
        {"context", r.target.context},
        {"dtype", r.target.dtype},
        {"device", r.target.device}}},
      {"step", r.step.has_value() ? OrderedJson(*r.step) : OrderedJson(nullptr)},
      {"metrics", metrics},
      {"gate", HasGate(r) ? OrderedJson{{"id", r.gate.id},
                                        {"version", r.gate.version},
                                        {"spec_sha256", r.gate.spec_sha256},
                                        {"verdict", VerdictName(r.gate.verdict).data()},
                                        {"failed", r.gate.failed}}
                          : OrderedJson(nullptr)},
      {"provenance",
       {{"git_commit", r.provenance.git_commit},
        {"dirty", r.provenance.dirty},
        {"build_config", r.provenance.build_config},
        {"torch_version", r.provenance.torch_version},
        {"cuda_version", r.provenance.cuda_version},
        {"host", r.provenance.host},
        {"start_time", r.provenance.start_time},
        {"seed", r.provenance.seed}}},
  };
  try {
    return row.dump();  // strict UTF-8: a string that is not UTF-8 is an error, not replaced
  } catch (const OrderedJson::exception& e) {
    return Invalid(absl::StrCat("cannot write the record as JSON: ", e.what()));
  }
}

absl::StatusOr<Record> RecordFromJsonLine(absl::string_view line) {
  absl::StatusOr<Json> json = ParseJson(line);
  if (!json.ok()) return json.status();
  FieldReader f(*json, "");
  if (absl::Status s =
          f.CheckKeys({"experiment", "variant", "target", "step", "metrics", "gate", "provenance"});
      !s.ok()) {
    return s;
  }
  Record r;
  absl::StatusOr<std::string> experiment = f.String("experiment"), variant = f.String("variant");
  absl::StatusOr<std::optional<int64_t>> step = f.IntegerOrNull("step");
  for (const absl::Status& s : {experiment.status(), variant.status(), step.status()}) {
    if (!s.ok()) return s;
  }
  r.experiment = *experiment;
  r.variant = *variant;
  r.step = *step;

  absl::StatusOr<Target> target = ParseTarget(f.Field("target"));
  if (!target.ok()) return target.status();
  r.target = *std::move(target);

  const Json& metrics = f.Field("metrics");
  if (!metrics.is_object()) return Invalid("metrics: expected an object");
  for (const auto& [name, value] : metrics.items()) {
    absl::StatusOr<double> v = ParseMetricValue(value, absl::StrCat("metrics.", name));
    if (!v.ok()) return v.status();
    r.metrics[name] = *v;
  }

  if (!f.Field("gate").is_null()) {  // null: a record no gate judges (GateResult's default)
    absl::StatusOr<GateResult> gate = ParseGate(f.Field("gate"));
    if (!gate.ok()) return gate.status();
    r.gate = *std::move(gate);
  }

  absl::StatusOr<Provenance> provenance = ParseProvenance(f.Field("provenance"));
  if (!provenance.ok()) return provenance.status();
  r.provenance = *std::move(provenance);

  if (absl::Status s = ValidateRecord(r); !s.ok()) return s;
  return r;
}

}  // namespace kvgate::gates
