#include "gates/gate_spec.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gates/json_fields.h"

namespace kvgate::gates {
namespace {

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("gate spec: ", what));
}

bool IsDate(absl::string_view date) {  // YYYY-MM-DD, digits only where digits go
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!absl::ascii_isdigit(date[i])) return false;
  }
  return true;
}

absl::StatusOr<Op> ParseOp(const Json& value, const std::string& where) {
  const std::pair<const char*, Op> ops[] = {{"<=", Op::kLessEqual},
                                            {">=", Op::kGreaterEqual},
                                            {"<", Op::kLess},
                                            {">", Op::kGreater},
                                            {"==", Op::kEqual}};
  if (value.is_string()) {
    for (const auto& [symbol, op] : ops) {
      if (value.get<std::string>() == symbol) return op;
    }
  }
  return Invalid(absl::StrCat(where, ".op: expected one of <= >= < > ==, got ", value.dump()));
}

absl::StatusOr<Condition> ParseCondition(const Json& json, const std::string& where) {
  Condition c;
  FieldReader fields(json, where);
  const bool is_object = json.is_object();
  if (is_object && json.contains("metric")) {
    if (absl::Status s = fields.CheckKeys({"metric", "op", "value"}); !s.ok()) return s;
    absl::StatusOr<std::string> metric = fields.String("metric");
    if (!metric.ok()) return metric.status();
    c.kind = Condition::Kind::kMetric;
    c.metric = *metric;
  } else if (is_object && json.contains("ratio")) {
    if (absl::Status s = fields.CheckKeys({"ratio", "op", "value"}); !s.ok()) return s;
    const Json& ratio = json["ratio"];
    if (!ratio.is_array() || ratio.size() != 2 || !ratio[0].is_string() || !ratio[1].is_string() ||
        ratio[0] == ratio[1] || ratio[0] == "" || ratio[1] == "") {
      return Invalid(absl::StrCat(where,
                                  ".ratio: expected [numerator, denominator], two metric "
                                  "names, got ",
                                  ratio.dump()));
    }
    c.kind = Condition::Kind::kRatio;
    c.numerator = ratio[0].get<std::string>();
    c.denominator = ratio[1].get<std::string>();
  } else if (is_object && json.contains("projected_speedup")) {
    if (absl::Status s = fields.CheckKeys({"projected_speedup", "op", "value"}); !s.ok()) return s;
    FieldReader params(json["projected_speedup"], absl::StrCat(where, ".projected_speedup"));
    if (absl::Status s = params.CheckKeys({"overhead"}); !s.ok()) return s;
    absl::StatusOr<double> overhead = params.Number("overhead");
    if (!overhead.ok()) return overhead.status();
    if (*overhead < 0.0 || *overhead >= 1.0) {
      return Invalid(absl::StrCat(where, ".projected_speedup.overhead must be in [0, 1)"));
    }
    c.kind = Condition::Kind::kProjectedSpeedup;
    c.overhead = *overhead;
  } else {
    return Invalid(absl::StrCat(where,
                                ": a condition names one of \"metric\", \"ratio\" or "
                                "\"projected_speedup\", got ",
                                json.dump()));
  }
  absl::StatusOr<Op> op = ParseOp(json["op"], where);
  if (!op.ok()) return op.status();
  c.op = *op;
  absl::StatusOr<double> value = fields.Number("value");
  if (!value.ok()) return value.status();
  c.value = *value;
  return c;
}

absl::StatusOr<std::vector<Condition>> ParseConditions(const Json& json, const std::string& key) {
  if (!json.is_array()) return Invalid(absl::StrCat(key, ": expected a list of conditions"));
  std::vector<Condition> conditions;
  for (size_t i = 0; i < json.size(); ++i) {
    absl::StatusOr<Condition> c = ParseCondition(json[i], absl::StrCat(key, "[", i, "]"));
    if (!c.ok()) return c.status();
    conditions.push_back(*std::move(c));
  }
  return conditions;
}

absl::StatusOr<SpecTarget> ParseTarget(const Json& json) {
  FieldReader fields(json, "target");
  if (absl::Status s = fields.CheckKeys({"model", "context", "dtype", "decode_steps"}); !s.ok()) {
    return s;
  }
  SpecTarget target;
  absl::StatusOr<std::optional<std::string>> model = fields.StringOrNull("model");
  absl::StatusOr<std::optional<int64_t>> context = fields.IntegerOrNull("context");
  absl::StatusOr<std::optional<std::string>> dtype = fields.StringOrNull("dtype");
  absl::StatusOr<std::optional<int64_t>> steps = fields.IntegerOrNull("decode_steps");
  for (const absl::Status& s : {model.status(), context.status(), dtype.status(), steps.status()}) {
    if (!s.ok()) return s;
  }
  if (context->has_value() && **context <= 0) return Invalid("target.context must be > 0");
  if (steps->has_value() && (**steps < 1 || **steps > 1 << 20)) {
    return Invalid("target.decode_steps must be >= 1");
  }
  target.model = *model;
  target.context = *context;
  target.dtype = *dtype;
  if (steps->has_value()) target.decode_steps = static_cast<int>(**steps);
  return target;
}

}  // namespace

absl::StatusOr<GateSpec> ParseGateSpec(absl::string_view bytes) {
  absl::StatusOr<Json> json = ParseJson(bytes);
  if (!json.ok()) return Invalid(json.status().message());
  FieldReader fields(*json, "");
  if (absl::Status s = fields.CheckKeys({"id", "version", "created", "summary", "target",
                                         "multi_step_rule", "validity", "thresholds"});
      !s.ok()) {
    return Invalid(s.message());
  }
  GateSpec spec;
  absl::StatusOr<std::string> id = fields.String("id");
  absl::StatusOr<int64_t> version = fields.Integer("version");
  absl::StatusOr<std::string> created = fields.String("created");
  absl::StatusOr<std::string> summary = fields.String("summary");
  absl::StatusOr<std::string> rule = fields.String("multi_step_rule");
  for (const absl::Status& s :
       {id.status(), version.status(), created.status(), summary.status(), rule.status()}) {
    if (!s.ok()) return Invalid(s.message());
  }
  if (!IsSnakeCaseName(*id)) return Invalid(absl::StrCat("id \"", *id, "\" must be [a-z0-9_]+"));
  if (*version < 1 || *version > 1000000) return Invalid("version must be >= 1");
  if (!IsDate(*created)) {
    return Invalid(absl::StrCat("created \"", *created, "\" is not YYYY-MM-DD"));
  }
  spec.id = *id;
  spec.version = static_cast<int>(*version);
  spec.created = *created;
  spec.summary = *summary;

  absl::StatusOr<SpecTarget> target = ParseTarget((*json)["target"]);
  if (!target.ok()) return Invalid(target.status().message());
  spec.target = *std::move(target);

  if (*rule == "every_step_passes") {
    spec.multi_step_rule = MultiStepRule::kEveryStepPasses;
    if (!spec.target.decode_steps.has_value()) {
      return Invalid("every_step_passes needs target.decode_steps");
    }
  } else if (*rule == "single_measurement") {
    spec.multi_step_rule = MultiStepRule::kSingleMeasurement;
    if (spec.target.decode_steps.has_value()) {
      return Invalid("single_measurement needs target.decode_steps = null");
    }
  } else {
    return Invalid(absl::StrCat("multi_step_rule \"", *rule,
                                "\" is not every_step_passes or single_measurement"));
  }

  absl::StatusOr<std::vector<Condition>> validity =
      ParseConditions((*json)["validity"], "validity");
  if (!validity.ok()) return validity.status();
  absl::StatusOr<std::vector<Condition>> thresholds =
      ParseConditions((*json)["thresholds"], "thresholds");
  if (!thresholds.ok()) return thresholds.status();
  if (thresholds->empty()) return Invalid("thresholds: a gate needs at least one");
  spec.validity = *std::move(validity);
  spec.thresholds = *std::move(thresholds);
  return spec;
}

std::string SpecFileName(absl::string_view id, int version) {
  return version == 1 ? absl::StrCat(id, ".json") : absl::StrCat(id, ".v", version, ".json");
}

absl::string_view OpSymbol(Op op) {
  switch (op) {
    case Op::kLessEqual:
      return "<=";
    case Op::kGreaterEqual:
      return ">=";
    case Op::kLess:
      return "<";
    case Op::kGreater:
      return ">";
    case Op::kEqual:
      return "==";
  }
  return "?";
}

std::string QuantityName(const Condition& condition) {
  switch (condition.kind) {
    case Condition::Kind::kMetric:
      return condition.metric;
    case Condition::Kind::kRatio:
      return absl::StrCat(condition.numerator, " / ", condition.denominator);
    case Condition::Kind::kProjectedSpeedup:
      return absl::StrFormat("projected_speedup at h = %g", condition.overhead);
  }
  return "?";
}

std::string DescribeCondition(const Condition& condition) {
  return absl::StrFormat("%s %s %g", QuantityName(condition), OpSymbol(condition.op),
                         condition.value);
}

bool Satisfies(const Condition& condition, double quantity) {
  switch (condition.op) {
    case Op::kLessEqual:
      return quantity <= condition.value;
    case Op::kGreaterEqual:
      return quantity >= condition.value;
    case Op::kLess:
      return quantity < condition.value;
    case Op::kGreater:
      return quantity > condition.value;
    case Op::kEqual:
      return quantity == condition.value;
  }
  return false;
}

}  // namespace kvgate::gates
