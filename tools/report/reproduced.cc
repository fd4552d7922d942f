// One configuration of a gate judged over windows, measured on more than one device: the same
// variant, weights, context, dtype, windows and positions, so the figures may differ only by the
// devices' arithmetic. The ledger shows each device's deciding figure, the largest relative
// difference over the recorded means, and whether the verdicts agree.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/report/generator.h"
#include "tools/report/ledger_text.h"

namespace kvgate::report::internal {
namespace {

// (max - min) / max |value| of each "<metric>_mean" that every configuration's rows carry once.
// A mean near zero (a signed delta) can show a large relative difference from a tiny absolute
// one, so the ledger shows the deciding metric's difference beside the largest.
std::map<std::string, double> RelativeDifferences(
    const std::vector<std::vector<const RecordAt*>>& rows_per_config) {
  std::map<std::string, std::vector<double>> values;
  for (const auto& rows : rows_per_config) {
    for (const RecordAt* r : rows) {
      for (const auto& [name, value] : r->record.metrics) {
        if (absl::EndsWith(name, "_mean") && std::isfinite(value)) values[name].push_back(value);
      }
    }
  }
  std::map<std::string, double> out;
  for (const auto& [name, v] : values) {
    if (v.size() != rows_per_config.size()) continue;  // not on every device, or not one row each
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    const double scale = std::max(std::fabs(*lo), std::fabs(*hi));
    out[name] = scale == 0 ? 0 : (*hi - *lo) / scale;
  }
  return out;
}

std::string Relative(double v) { return absl::StrFormat("%.2g", v); }

}  // namespace

std::string Generator::ReproducedBlock() const {
  using Key =
      std::tuple<std::string, int, std::string, std::string, std::string, int64_t, std::string>;
  std::map<Key, std::vector<const ConfigurationJudgement*>> groups;
  for (const ConfigurationJudgement& c : configs_) {
    const auto entry = in_.paths.gates.find(c.gate_id);
    if (entry == in_.paths.gates.end() || entry->second.refines.empty()) continue;
    // An invalid configuration (too few windows or positions) is not a second run of a valid one.
    if (c.judgement.verdict == Verdict::kInvalid) continue;
    groups[{c.gate_id, c.gate_version, c.variant, c.target.model, c.target.weights_sha256,
            c.target.context, c.target.dtype}]
        .push_back(&c);
  }
  std::string table;
  int measured_twice = 0, agreeing = 0;
  for (const auto& [key, configs] : groups) {
    if (configs.size() < 2) continue;
    const ConfigurationJudgement& first = *configs.front();
    const GateSpec* spec = SpecOf(first.gate_id, first.gate_version);
    if (spec == nullptr) continue;
    const Condition* deciding = DecidingCondition(*spec, first);
    const std::string base = deciding == nullptr ? "" : BaseMetric(deciding->metric);
    std::vector<std::string> figures, verdicts;
    std::vector<std::vector<const RecordAt*>> rows;
    std::set<Verdict> distinct;
    for (const ConfigurationJudgement* c : configs) {
      const std::string figure = base.empty() ? "" : WindowsValue(*c, base);
      figures.push_back(absl::StrCat(DeviceText(c->target.device), ": ",
                                     figure.empty() ? "not recorded" : figure));
      verdicts.push_back(VerdictText(c->judgement.verdict));
      distinct.insert(c->judgement.verdict);
      rows.push_back(RowsOf(*c));
    }
    ++measured_twice;
    const bool agree = distinct.size() == 1;
    agreeing += agree;
    const std::map<std::string, double> diffs = RelativeDifferences(rows);
    std::string difference = "—";
    if (!diffs.empty()) {
      const auto largest =
          std::max_element(diffs.begin(), diffs.end(),
                           [](const auto& a, const auto& b) { return a.second < b.second; });
      const auto decided = diffs.find(absl::StrCat(base, "_mean"));
      difference =
          absl::StrCat(decided == diffs.end() ? "" : absl::StrCat(Relative(decided->second), "; "),
                       "largest ", Relative(largest->second), " (", largest->first, ")");
    }
    table += MdRow({absl::StrCat(Code(first.variant), ", ", first.target.model, ", ",
                                 first.target.context, ", ", first.target.dtype),
                    Code(absl::StrCat(first.gate_id, " v", first.gate_version)),
                    absl::StrCat(base.empty() ? "" : absl::StrCat(base, " mean: "),
                                 absl::StrJoin(figures, "; ")),
                    difference,
                    agree ? absl::StrCat("yes: ", verdicts.front())
                          : absl::StrCat("**no**: ", absl::StrJoin(verdicts, ", "))});
  }
  if (table.empty()) return "No configuration of a gate judged over windows is measured twice.\n";
  return absl::StrCat(
      measured_twice, measured_twice == 1 ? " configuration is" : " configurations are",
      " measured on more than one device; the verdicts agree on ", agreeing, ".\n\n",
      MdHeader({"configuration", "gate", "deciding figure per device",
                "relative difference: deciding mean; largest mean", "verdicts agree"}),
      table);
}

}  // namespace kvgate::report::internal
