#include "experiments/quality_v2/checkpoint.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gates/file_io.h"
#include "gates/sha256.h"
#include "nlohmann/json.hpp"

namespace kvgate::experiments {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kKind[] = "kvgate quality_v2 checkpoint";

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// JSON has no NaN or infinity (nlohmann writes them as null): those become strings, with a NaN's
// bits when they are not the default NaN's, so every double comes back bit for bit.
Json EncodeDouble(double v) {
  if (std::isfinite(v)) return v;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (Bits(v) == Bits(std::numeric_limits<double>::quiet_NaN())) return "nan";
  return absl::StrFormat("nan:0x%016x", Bits(v));
}

absl::StatusOr<double> DecodeDouble(const Json& j) {
  if (j.is_number()) return j.get<double>();
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    uint64_t bits;
    if (s.rfind("nan:0x", 0) == 0 && s.size() == 22 && absl::SimpleHexAtoi(s.substr(6), &bits)) {
      double v;
      std::memcpy(&v, &bits, sizeof v);
      if (std::isnan(v)) return v;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("not a number: ", j.dump()));
}

}  // namespace

namespace {

Json KeyJson(const RunKey& k) {
  return Json{{"model", k.model},       {"weights_sha256", k.weights_sha256},
              {"context", k.context},   {"positions", k.positions},
              {"dtype", k.dtype},       {"device", k.device},
              {"seed", k.seed},         {"prompt_set_sha256", k.prompt_set_sha256},
              {"windows", k.windows},   {"window_ids_sha256", k.window_ids_sha256},
              {"variants", k.variants}, {"code", k.code}};
}

// Throws nlohmann's type_error or out_of_range for a missing or mistyped field.
RunKey KeyFromJson(const Json& j) {
  RunKey k;
  k.model = j.at("model").get<std::string>();
  k.weights_sha256 = j.at("weights_sha256").get<std::string>();
  k.context = j.at("context").get<int64_t>();
  k.positions = j.at("positions").get<int64_t>();
  k.dtype = j.at("dtype").get<std::string>();
  k.device = j.at("device").get<std::string>();
  k.seed = j.at("seed").get<int64_t>();
  k.prompt_set_sha256 = j.at("prompt_set_sha256").get<std::string>();
  k.windows = j.at("windows").get<int64_t>();
  k.window_ids_sha256 = j.at("window_ids_sha256").get<std::string>();
  k.variants = j.at("variants").get<std::vector<std::string>>();
  k.code = j.at("code").get<std::string>();
  return k;
}

// A value for a one-line message: long lists are cut.
std::string Short(const Json& j) {
  std::string s = j.dump();
  return s.size() > 200 ? absl::StrCat(s.substr(0, 200), "...") : s;
}

absl::Status Within(const std::string& where, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
}

absl::StatusOr<Checkpoint> DecodeJson(const Json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  if (j.value("kind", "") != kKind) {
    return absl::InvalidArgumentError(absl::StrCat("\"kind\" is not \"", kKind, "\""));
  }
  if (j.at("version").get<int>() != kCheckpointVersion) {
    return absl::InvalidArgumentError(absl::StrCat("version ", j.at("version").dump(),
                                                   ", this build reads ", kCheckpointVersion));
  }
  Checkpoint cp;
  cp.key = KeyFromJson(j.at("key"));
  const Json& configs = j.at("configs");
  if (!configs.is_array() || configs.size() != cp.key.variants.size()) {
    return absl::InvalidArgumentError(absl::StrCat("\"configs\" is not a list of the key's ",
                                                   cp.key.variants.size(), " configurations"));
  }
  // Every measure has a row a window done (the selectors' kept fraction only for selectors).
  cp.windows_done = configs.empty() ? 0 : configs[0].at("kl_divergence").size();
  for (size_t k = 0; k < configs.size(); ++k) {
    const Json& cj = configs[k];
    ConfigPositions c;
    c.variant = cj.at("variant").get<std::string>();
    c.gate = cj.at("gate").get<std::string>();
    c.selector = cj.at("selector").get<bool>();
    c.reference_finite = cj.at("reference_finite").get<bool>();
    absl::StatusOr<double> kv_ratio = DecodeDouble(cj.at("kv_ratio"));
    if (!kv_ratio.ok()) return Within(c.variant + ": kv_ratio", kv_ratio.status());
    absl::StatusOr<double> seconds = DecodeDouble(cj.at("seconds"));
    if (!seconds.ok()) return Within(c.variant + ": seconds", seconds.status());
    c.kv_ratio = *kv_ratio;
    c.seconds = *seconds;
    if (c.variant != cp.key.variants[k]) {
      return absl::InvalidArgumentError(
          absl::StrCat("configuration ", k, " is ", c.variant, ", the key's ", cp.key.variants[k]));
    }
    for (const auto& [name, field, selectors_only] : WindowMeasures()) {
      const Json& rows = cj.at(name);
      if (!rows.is_array()) {
        return absl::InvalidArgumentError(absl::StrCat(c.variant, ": ", name, " is not a list"));
      }
      const size_t expect = selectors_only && !c.selector ? 0 : cp.windows_done;
      if (rows.size() != expect) {
        return absl::InvalidArgumentError(
            absl::StrCat(c.variant, ": ", name, " has ", rows.size(), " windows, not ", expect));
      }
      for (const Json& row : rows) {
        if (!row.is_array() || static_cast<int64_t>(row.size()) != cp.key.positions) {
          return absl::InvalidArgumentError(absl::StrCat(
              c.variant, ": a row of ", name, " is not a list of ", cp.key.positions, " values"));
        }
        std::vector<double> values;
        for (const Json& v : row) {
          absl::StatusOr<double> d = DecodeDouble(v);
          if (!d.ok()) return Within(absl::StrCat(c.variant, ": ", name), d.status());
          values.push_back(*d);
        }
        (c.*field).push_back(std::move(values));
      }
    }
    cp.configs.push_back(std::move(c));
  }
  if (static_cast<int64_t>(cp.windows_done) > cp.key.windows) {
    return absl::InvalidArgumentError(
        absl::StrCat(cp.windows_done, " windows done of the key's ", cp.key.windows));
  }
  return cp;
}

absl::Status Refuse(const std::string& path, absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("checkpoint ", path, ": ", why,
                   "; delete it to start the run over (it is never overwritten)"));
}

}  // namespace

std::string WindowIdsSha256(const std::vector<std::vector<int64_t>>& windows) {
  std::string text;
  for (const std::vector<int64_t>& w : windows) {
    absl::StrAppend(&text, w.size(), ":", absl::StrJoin(w, ","), "\n");
  }
  return gates::Sha256Hex(text);
}

std::string CheckpointPath(const std::string& flag, const std::string& records_path) {
  return flag.empty() ? absl::StrCat(records_path, ".checkpoint.json") : flag;
}

std::string EncodeCheckpoint(const RunKey& key, const std::vector<ConfigPositions>& configs) {
  Json list = Json::array();
  for (const ConfigPositions& c : configs) {
    Json cj = {{"variant", c.variant},
               {"gate", c.gate},
               {"selector", c.selector},
               {"reference_finite", c.reference_finite},
               {"kv_ratio", EncodeDouble(c.kv_ratio)},
               {"seconds", EncodeDouble(c.seconds)}};
    for (const auto& [name, field, selectors_only] : WindowMeasures()) {
      Json rows = Json::array();
      for (const std::vector<double>& row : c.*field) {
        Json values = Json::array();
        for (double v : row) values.push_back(EncodeDouble(v));
        rows.push_back(std::move(values));
      }
      cj[name] = std::move(rows);
    }
    list.push_back(std::move(cj));
  }
  Json j = {{"kind", kKind},
            {"version", kCheckpointVersion},
            {"key", KeyJson(key)},
            {"configs", std::move(list)}};
  // Variants are canonical specs (ASCII): replacing bytes that are not UTF-8 never changes them,
  // and dump cannot throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

absl::StatusOr<Checkpoint> DecodeCheckpoint(absl::string_view text) {
  const Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not JSON (a torn or edited file?)");
  try {
    return DecodeJson(j);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("a missing or mistyped field: ", e.what()));
  }
}

absl::Status WriteCheckpoint(const std::string& path, const RunKey& key,
                             const std::vector<ConfigPositions>& configs) {
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!folder.empty()) std::filesystem::create_directories(folder, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("checkpoint ", path, ": cannot create its folder: ", ec.message()));
  }
  if (absl::Status s = gates::AtomicWriteFile(path, EncodeCheckpoint(key, configs)); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("checkpoint ", path, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ConfigPositions>> LoadCheckpoint(const std::string& path,
                                                            const RunKey& key) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) return Refuse(path, absl::StrCat("cannot be checked: ", ec.message()));
    return std::vector<ConfigPositions>();
  }
  absl::StatusOr<std::string> text = gates::ReadFile(path);
  if (!text.ok()) return Refuse(path, absl::StrCat("unreadable: ", text.status().message()));
  absl::StatusOr<Checkpoint> cp = DecodeCheckpoint(*text);
  if (!cp.ok()) return Refuse(path, absl::StrCat("corrupt: ", cp.status().message()));
  const Json there = KeyJson(cp->key), here = KeyJson(key);
  for (auto it = here.begin(); it != here.end(); ++it) {
    if (there.at(it.key()) != it.value()) {
      return Refuse(path,
                    absl::StrCat("of another run: ", it.key(), " is ", Short(there.at(it.key())),
                                 " there, ", Short(it.value()), " in this run"));
    }
  }
  return std::move(cp->configs);
}

absl::Status RemoveCheckpoint(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("checkpoint ", path, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace kvgate::experiments
