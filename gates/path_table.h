// The path table (gates/paths.json): which question of the study each gate belongs to, and the
// role the gate plays there. Reports build their path tables from it; nothing else maps a gate
// to a path.
//
// The roles:
//   quality   the format or selector keeps decode quality
//   latency   it makes the decode step (or its attention) faster; the speed ceiling counts here,
//             as the permission to implement (permit.h) pairs it with the oracle quality gate
//   capacity  it serves more sequences or tokens in fixed memory
//   baseline  what a compressed path is measured against (the dense step); never opens a path
//   control   a check of the method itself; never opens a path
// A path is open while one variant passes a quality gate and a latency or capacity gate of the
// path, each at its latest version, on one target (model, context, dtype, device), and the
// variant is not a declared control (an uncompressed check such as exact_cleanup(...)). Where a
// refining gate has judged a variant on a model, the refined gate's verdicts on it no longer count.
//
// Why a table beside the specs and not a field in each spec: records pin the sha256 of a spec
// file's exact bytes, so adding a field to a registered spec would orphan every record judged by
// it. The table changes no verdict of any row; it only groups verdicts into answers.
//
// A gate may name the gate it refines ("refines"): a later rule for the same question and role,
// e.g. quality over many windows and positions after quality on one prompt and one step. Both
// stay and both are judged; where the refining gate judged a variant on a model, its verdict
// counts for the path (DecidePaths) and reports show the refined one beside it, with the
// verdicts that changed.
//
//   {"paths": [{"id": "int4_kv", "title": "...", "question": "..."}],
//    "gates": [{"gate": "hfkv_real_kv_quality", "role": "quality", "paths": ["int4_kv"]},
//              {"gate": "kv_format_quality_over_windows", "role": "quality",
//               "paths": ["int4_kv"], "refines": "hfkv_real_kv_quality"}],
//    "controls": [{"variant_prefix": "exact_cleanup(", "why": "..."}]}
//
// Usage:
//   absl::StatusOr<PathTable> t = LoadPathTable("gates/paths.json", specs);
//   std::vector<PathDecision> d = DecidePaths(*t, specs, JudgeConfigurations(runs));

#ifndef KVGATE_GATES_PATH_TABLE_H_
#define KVGATE_GATES_PATH_TABLE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gates/spec_registry.h"
#include "gates/verdict.h"

namespace kvgate::gates {

enum class GateRole { kQuality, kLatency, kCapacity, kBaseline, kControl };

// "quality", "latency", "capacity", "baseline", "control".
absl::string_view GateRoleName(GateRole role);

struct StudyPath {
  std::string id;
  std::string title;
  std::string question;
};

struct GateRoleEntry {
  std::string gate;
  GateRole role = GateRole::kQuality;
  std::vector<std::string> paths;
  std::string refines;  // the gate this one refines (same role); empty for none
};

struct ControlVariant {
  std::string variant_prefix;
  std::string why;
};

struct PathTable {
  std::string file;
  std::vector<StudyPath> paths;               // in the order the reports list them
  std::map<std::string, GateRoleEntry> gates;  // by gate id
  std::vector<ControlVariant> controls;

  const GateRoleEntry* Find(absl::string_view gate) const;
  // The declared control the variant is, or nullptr.
  const ControlVariant* ControlOf(absl::string_view variant) const;
  // The gates that refine `gate` (their "refines" names it), by id.
  std::vector<const GateRoleEntry*> RefinersOf(absl::string_view gate) const;
  // The gates of a path, in the order of `gates` (by id).
  std::vector<const GateRoleEntry*> GatesOf(absl::string_view path) const;
};

// Parses and checks the table; errors name the file and the field.
absl::StatusOr<PathTable> ParsePathTable(absl::string_view bytes, const std::string& file);

// Fails unless every registered gate has exactly one entry and every entry names a registered
// gate: no gate is left without a path.
absl::Status CheckCoversSpecs(const PathTable& table, const SpecRegistry& specs);

// ReadFile + ParsePathTable + CheckCoversSpecs.
absl::StatusOr<PathTable> LoadPathTable(const std::string& file, const SpecRegistry& specs);

// One gate's verdict for one variant on one target, at the gate's latest version.
struct PathCell {
  const GateRoleEntry* gate = nullptr;
  const ConfigurationJudgement* config = nullptr;
};

// What the records say about one path.
struct PathDecision {
  const StudyPath* path = nullptr;
  // Variants (not controls) passing a quality gate and a latency or capacity gate on one target:
  // each is the pair of passing cells. Non-empty exactly when the path is open.
  std::vector<std::pair<PathCell, PathCell>> openers;
  // Every configuration of the path's gates at their latest versions, by role.
  std::map<GateRole, std::vector<PathCell>> by_role;
  // Targets (model, context, dtype, device) where both a quality and a latency or capacity
  // configuration exist, for any variant.
  int targets_with_both = 0;
  bool open() const { return !openers.empty(); }
};

// Whether a gate refining c's gate (at its latest version) has a configuration of c's variant on
// c's model: then c no longer decides a path, the refining gate's configuration does.
bool Refined(const PathTable& table, const SpecRegistry& specs,
             const std::vector<ConfigurationJudgement>& configs, const ConfigurationJudgement& c);

// Judges every path of the table; configurations of earlier gate versions are ignored, and so are
// configurations a refining gate judged again (Refined).
std::vector<PathDecision> DecidePaths(const PathTable& table, const SpecRegistry& specs,
                                      const std::vector<ConfigurationJudgement>& configs);

// Whether two targets are one target for a path: model, context, dtype and device agree (the
// weights may differ: a latency needs no trained weights).
bool SamePathTarget(const Target& a, const Target& b);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_PATH_TABLE_H_
