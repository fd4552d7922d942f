#include "kernels/kv_format/kv_format_registry.h"

#include <functional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/fp8_int8/fp8_int8_kv_format.h"
#include "kernels/int4/int4_kv_format.h"
#include "kernels/kivi/kivi_kv_format.h"
#include "kernels/turboquant/turboquant_kv_format.h"

namespace kvgate::kernels {
namespace {

using Factory = std::function<absl::StatusOr<std::unique_ptr<KvFormat>>(const KvFormatSpec&)>;

struct Registered {
  const char* name;
  Factory make;
  // Parameter sets KnownKvFormats lists besides the defaults, e.g. {"bits=4"}.
  std::vector<std::string> variants = {};
};

// One line a format, in the order reports list them.
const std::vector<Registered>& Registry() {
  static const auto* registry = new std::vector<Registered>{
      {"symmetric_int4",
       [](const KvFormatSpec& s) { return MakeInt4KvFormat(s, Int4Scheme::kSymmetric); }},
      {"affine_int4",
       [](const KvFormatSpec& s) { return MakeInt4KvFormat(s, Int4Scheme::kAffine); }},
      {"turboquant_mse", MakeTurboQuantMseKvFormat},
      {"turboquant_prod", MakeTurboQuantProdKvFormat},
      {"turboquant_mse_split", MakeTurboQuantMseSplitKvFormat},
      {"turboquant_prod_split", MakeTurboQuantProdSplitKvFormat},
      {"kivi", MakeKiviKvFormat, {"bits=4"}},
      {"fp8_e4m3",
       [](const KvFormatSpec& s) { return MakeFp8Int8KvFormat(s, Fp8Int8Code::kFp8E4m3); },
       {"scale=head"}},
      {"int8",
       [](const KvFormatSpec& s) { return MakeFp8Int8KvFormat(s, Fp8Int8Code::kInt8); },
       {"scale=head"}},
  };
  return *registry;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KvFormat>> MakeKvFormat(absl::string_view spec) {
  absl::StatusOr<KvFormatSpec> parsed = ParseKvFormatSpec(spec);
  if (!parsed.ok()) return parsed.status();
  for (const Registered& entry : Registry()) {
    if (parsed->name == entry.name) return entry.make(*parsed);
  }
  std::vector<std::string> names;
  for (const Registered& entry : Registry()) names.push_back(entry.name);
  return absl::InvalidArgumentError(absl::StrCat("unknown KV format '", parsed->name, "' in '",
                                                 spec, "'; known: ", absl::StrJoin(names, ", ")));
}

std::vector<std::string> KnownKvFormats() {
  std::vector<std::string> specs;
  for (const Registered& entry : Registry()) {
    absl::StatusOr<std::unique_ptr<KvFormat>> format = entry.make(KvFormatSpec{entry.name, {}});
    if (format.ok()) specs.push_back((*format)->name());
    for (const std::string& variant : entry.variants) {
      absl::StatusOr<KvFormatSpec> spec = ParseKvFormatSpec(absl::StrCat(entry.name, ":", variant));
      if (!spec.ok()) continue;
      format = entry.make(*spec);
      if (format.ok()) specs.push_back((*format)->name());
    }
  }
  return specs;
}

}  // namespace kvgate::kernels
