#include "gates/spec_registry.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gates/file_io.h"
#include "gates/sha256.h"

namespace kvgate::gates {

absl::StatusOr<RegisteredSpec> LoadSpecFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<GateSpec> spec = ParseGateSpec(*bytes);
  if (!spec.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", spec.status().message()));
  }
  const std::string expected = SpecFileName(spec->id, spec->version);
  const size_t slash = path.rfind('/');
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name != expected) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds ", spec->id, " version ",
                                                   spec->version, ", so it must be named ",
                                                   expected));
  }
  return RegisteredSpec{*std::move(spec), Sha256Hex(*bytes), path};
}

absl::StatusOr<SpecRegistry> LoadSpecFiles(const std::vector<std::string>& paths) {
  SpecRegistry specs;
  for (const std::string& path : paths) {
    absl::StatusOr<RegisteredSpec> spec = LoadSpecFile(path);
    if (!spec.ok()) return spec.status();
    auto key = std::make_pair(spec->spec.id, spec->spec.version);
    if (auto it = specs.find(key); it != specs.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, " and ", it->second.path, " both hold ",
                                                     key.first, " version ", key.second));
    }
    specs.emplace(std::move(key), *std::move(spec));
  }
  return specs;
}

absl::StatusOr<SpecRegistry> LoadSpecDir(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> paths = ListFiles(dir, ".json");
  if (!paths.ok()) return paths.status();
  return LoadSpecFiles(*paths);
}

const RegisteredSpec* FindSpec(const SpecRegistry& specs, absl::string_view id, int version) {
  auto it = specs.find({std::string(id), version});
  return it == specs.end() ? nullptr : &it->second;
}

const RegisteredSpec* LatestSpec(const SpecRegistry& specs, absl::string_view id) {
  const RegisteredSpec* latest = nullptr;
  for (const auto& [key, spec] : specs) {
    if (key.first == id) latest = &spec;  // the map orders versions of one id ascending
  }
  return latest;
}

}  // namespace kvgate::gates
