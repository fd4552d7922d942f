// The gate specs a run is judged against, loaded from their files with the sha256 of each file's
// exact bytes (what a record pins). A file must be named for its id and version (SpecFileName):
// a spec cannot sit under another version's name.
//
// Usage:
//   absl::StatusOr<SpecRegistry> specs = kvgate::gates::LoadSpecDir("gates/specs");
//   const RegisteredSpec* oracle = FindSpec(*specs, "work_reduction_oracle", 1);

#ifndef KVGATE_GATES_SPEC_REGISTRY_H_
#define KVGATE_GATES_SPEC_REGISTRY_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gates/gate_spec.h"

namespace kvgate::gates {

struct RegisteredSpec {
  GateSpec spec;
  std::string sha256;  // of the file's bytes
  std::string path;
};

// Keyed by (id, version).
using SpecRegistry = std::map<std::pair<std::string, int>, RegisteredSpec>;

// One spec file, checked against its name.
absl::StatusOr<RegisteredSpec> LoadSpecFile(const std::string& path);

// Several spec files; two files for one (id, version) are an error.
absl::StatusOr<SpecRegistry> LoadSpecFiles(const std::vector<std::string>& paths);

// Every *.json file of a folder.
absl::StatusOr<SpecRegistry> LoadSpecDir(const std::string& dir);

// nullptr when absent.
const RegisteredSpec* FindSpec(const SpecRegistry& specs, absl::string_view id, int version);

// The highest version registered for `id`; nullptr when none.
const RegisteredSpec* LatestSpec(const SpecRegistry& specs, absl::string_view id);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_SPEC_REGISTRY_H_
