#include "gates/path_table.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gates/file_io.h"
#include "gates/json_fields.h"

namespace kvgate::gates {
namespace {

absl::StatusOr<GateRole> ParseRole(const std::string& name, const std::string& where) {
  for (GateRole r : {GateRole::kQuality, GateRole::kLatency, GateRole::kCapacity,
                     GateRole::kBaseline, GateRole::kControl}) {
    if (GateRoleName(r) == name) return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": unknown role \"", name,
                   "\" (quality, latency, capacity, baseline or control)"));
}

bool Opens(GateRole r) { return r == GateRole::kLatency || r == GateRole::kCapacity; }

// Whether every configuration of `cell`'s gate and variant on its target passes: two weights
// files on one target make two configurations, and both must pass.
bool AllPass(const std::vector<PathCell>& cells, const PathCell& cell) {
  for (const PathCell& c : cells) {
    if (c.gate == cell.gate && c.config->variant == cell.config->variant &&
        SamePathTarget(c.config->target, cell.config->target) &&
        c.config->judgement.verdict != Verdict::kPass) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::string_view GateRoleName(GateRole role) {
  switch (role) {
    case GateRole::kQuality:
      return "quality";
    case GateRole::kLatency:
      return "latency";
    case GateRole::kCapacity:
      return "capacity";
    case GateRole::kBaseline:
      return "baseline";
    case GateRole::kControl:
      return "control";
  }
  return "unknown";
}

const GateRoleEntry* PathTable::Find(absl::string_view gate) const {
  auto it = gates.find(std::string(gate));
  return it == gates.end() ? nullptr : &it->second;
}

const ControlVariant* PathTable::ControlOf(absl::string_view variant) const {
  for (const ControlVariant& c : controls) {
    if (absl::StartsWith(variant, c.variant_prefix)) return &c;
  }
  return nullptr;
}

std::vector<const GateRoleEntry*> PathTable::GatesOf(absl::string_view path) const {
  std::vector<const GateRoleEntry*> out;
  for (const auto& [id, entry] : gates) {
    for (const std::string& p : entry.paths) {
      if (p == path) out.push_back(&entry);
    }
  }
  return out;
}

std::vector<const GateRoleEntry*> PathTable::RefinersOf(absl::string_view gate) const {
  std::vector<const GateRoleEntry*> out;
  for (const auto& [id, entry] : gates) {
    if (entry.refines == gate) out.push_back(&entry);
  }
  return out;
}

absl::StatusOr<PathTable> ParsePathTable(absl::string_view bytes, const std::string& file) {
  auto error = [&](const absl::Status& s) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", s.message()));
  };
  absl::StatusOr<Json> json = ParseJson(bytes);
  if (!json.ok()) return error(json.status());
  FieldReader top(*json, "");
  if (absl::Status s = top.CheckKeys({"about", "paths", "gates", "controls"}); !s.ok()) {
    return error(s);
  }
  PathTable table;
  table.file = file;
  std::set<std::string> path_ids;
  for (const char* key : {"paths", "gates", "controls"}) {
    if (!top.Field(key).is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": ", key, ": expected an array"));
    }
  }
  const Json& paths = top.Field("paths");
  for (size_t i = 0; i < paths.size(); ++i) {
    FieldReader p(paths[i], absl::StrCat("paths[", i, "]"));
    if (absl::Status s = p.CheckKeys({"id", "title", "question"}); !s.ok()) return error(s);
    StudyPath path;
    absl::StatusOr<std::string> id = p.String("id");
    absl::StatusOr<std::string> title = p.String("title");
    absl::StatusOr<std::string> question = p.String("question");
    for (const auto* f : {&id, &title, &question}) {
      if (!f->ok()) return error(f->status());
    }
    if (!IsSnakeCaseName(*id) || !path_ids.insert(*id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": ", p.Path("id"), ": \"", *id, "\" is not a new [a-z0-9_]+ name"));
    }
    table.paths.push_back({*id, *title, *question});
  }
  const Json& gates = top.Field("gates");
  for (size_t i = 0; i < gates.size(); ++i) {
    FieldReader g(gates[i], absl::StrCat("gates[", i, "]"));
    const bool refines = gates[i].is_object() && gates[i].contains("refines");
    if (absl::Status s = refines ? g.CheckKeys({"gate", "role", "paths", "refines"})
                                 : g.CheckKeys({"gate", "role", "paths"});
        !s.ok()) {
      return error(s);
    }
    absl::StatusOr<std::string> gate = g.String("gate");
    if (!gate.ok()) return error(gate.status());
    absl::StatusOr<std::string> role_name = g.String("role");
    if (!role_name.ok()) return error(role_name.status());
    absl::StatusOr<GateRole> role = ParseRole(*role_name, absl::StrCat(file, ": ", g.Path("role")));
    if (!role.ok()) return role.status();
    GateRoleEntry entry{*gate, *role, {}, ""};
    if (refines) {
      absl::StatusOr<std::string> refined = g.String("refines");
      if (!refined.ok()) return error(refined.status());
      entry.refines = *refined;
    }
    const Json& list = g.Field("paths");
    if (!list.is_array() || list.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": ", g.Path("paths"), ": expected a non-empty array of path ids"));
    }
    for (const Json& p : list) {
      if (!p.is_string() || path_ids.count(p.get<std::string>()) == 0) {
        return absl::InvalidArgumentError(absl::StrCat(file, ": ", g.Path("paths"), ": ", p.dump(),
                                                       " is not a path of `paths`"));
      }
      entry.paths.push_back(p.get<std::string>());
    }
    if (!table.gates.emplace(*gate, std::move(entry)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": ", g.Path("gate"), ": ", *gate, " is listed twice"));
    }
  }
  for (const auto& [id, entry] : table.gates) {
    if (entry.refines.empty()) continue;
    const GateRoleEntry* refined = table.Find(entry.refines);
    if (refined == nullptr || refined->role != entry.role || entry.refines == id) {
      return absl::InvalidArgumentError(absl::StrCat(
          file, ": gates: ", id, ".refines: \"", entry.refines,
          "\" is not another gate of the table with the role ", GateRoleName(entry.role)));
    }
  }
  const Json& controls = top.Field("controls");
  for (size_t i = 0; i < controls.size(); ++i) {
    FieldReader c(controls[i], absl::StrCat("controls[", i, "]"));
    if (absl::Status s = c.CheckKeys({"variant_prefix", "why"}); !s.ok()) return error(s);
    absl::StatusOr<std::string> prefix = c.String("variant_prefix");
    absl::StatusOr<std::string> why = c.String("why");
    if (!prefix.ok()) return error(prefix.status());
    if (!why.ok()) return error(why.status());
    table.controls.push_back({*prefix, *why});
  }
  return table;
}

absl::Status CheckCoversSpecs(const PathTable& table, const SpecRegistry& specs) {
  std::set<std::string> registered;
  for (const auto& [key, spec] : specs) registered.insert(key.first);
  std::vector<std::string> missing, unknown;
  for (const std::string& id : registered) {
    if (table.Find(id) == nullptr) missing.push_back(id);
  }
  for (const auto& [id, entry] : table.gates) {
    if (registered.count(id) == 0) unknown.push_back(id);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        table.file, ": gates: no path and role for ", absl::StrJoin(missing, ", "),
        " (every registered gate needs one entry)"));
  }
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(table.file, ": gates: ",
                                                   absl::StrJoin(unknown, ", "),
                                                   " is not a registered gate spec"));
  }
  return absl::OkStatus();
}

absl::StatusOr<PathTable> LoadPathTable(const std::string& file, const SpecRegistry& specs) {
  absl::StatusOr<std::string> bytes = ReadFile(file);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<PathTable> table = ParsePathTable(*bytes, file);
  if (!table.ok()) return table.status();
  if (absl::Status s = CheckCoversSpecs(*table, specs); !s.ok()) return s;
  return table;
}

bool SamePathTarget(const Target& a, const Target& b) {
  return a.model == b.model && a.context == b.context && a.dtype == b.dtype &&
         a.device == b.device;
}

bool Refined(const PathTable& table, const SpecRegistry& specs,
             const std::vector<ConfigurationJudgement>& configs, const ConfigurationJudgement& c) {
  for (const GateRoleEntry* refiner : table.RefinersOf(c.gate_id)) {
    const RegisteredSpec* latest = LatestSpec(specs, refiner->gate);
    if (latest == nullptr) continue;
    for (const ConfigurationJudgement& other : configs) {
      if (other.gate_id == refiner->gate && other.gate_version == latest->spec.version &&
          other.variant == c.variant && other.target.model == c.target.model) {
        return true;
      }
    }
  }
  return false;
}

std::vector<PathDecision> DecidePaths(const PathTable& table, const SpecRegistry& specs,
                                      const std::vector<ConfigurationJudgement>& configs) {
  std::vector<PathDecision> out;
  for (const StudyPath& path : table.paths) {
    PathDecision d;
    d.path = &path;
    for (const GateRoleEntry* gate : table.GatesOf(path.id)) {
      const RegisteredSpec* latest = LatestSpec(specs, gate->gate);
      if (latest == nullptr) continue;
      for (const ConfigurationJudgement& c : configs) {
        if (c.gate_id == gate->gate && c.gate_version == latest->spec.version &&
            !Refined(table, specs, configs, c)) {
          d.by_role[gate->role].push_back({gate, &c});
        }
      }
    }
    const std::vector<PathCell>& quality = d.by_role[GateRole::kQuality];
    std::vector<PathCell> speed = d.by_role[GateRole::kLatency];
    for (const PathCell& c : d.by_role[GateRole::kCapacity]) speed.push_back(c);
    std::vector<Target> both;
    for (const PathCell& q : quality) {
      for (const PathCell& s : speed) {
        if (!SamePathTarget(q.config->target, s.config->target)) continue;
        bool seen = false;
        for (const Target& t : both) seen = seen || SamePathTarget(t, q.config->target);
        if (!seen) both.push_back(q.config->target);
        if (q.config->variant != s.config->variant) continue;
        if (table.ControlOf(q.config->variant) != nullptr) continue;
        if (Opens(s.gate->role) && AllPass(quality, q) && AllPass(speed, s)) {
          d.openers.push_back({q, s});
        }
      }
    }
    d.targets_with_both = static_cast<int>(both.size());
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace kvgate::gates
