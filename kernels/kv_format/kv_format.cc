#include "kernels/kv_format/kv_format.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace kvgate::kernels {

int64_t EncodedKv::bytes() const {
  int64_t total = 0;
  for (const auto& [name, part] : parts) {
    if (part.defined()) total += part.numel() * static_cast<int64_t>(part.element_size());
  }
  return total;
}

absl::StatusOr<KvFormatSpec> ParseKvFormatSpec(absl::string_view spec) {
  std::vector<absl::string_view> items = absl::StrSplit(spec, ':');
  KvFormatSpec parsed;
  parsed.name = std::string(items[0]);
  if (parsed.name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("KV format spec '", spec, "' has no name"));
  }
  for (size_t i = 1; i < items.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(items[i], absl::MaxSplits('=', 1));
    if (kv.first.empty() || items[i].find('=') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("KV format spec '", spec, "': item '", items[i], "' is not key=value"));
    }
    if (!parsed.params.emplace(kv).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("KV format spec '", spec, "' repeats '", kv.first, "'"));
    }
  }
  return parsed;
}

absl::Status CheckParamsKnown(const KvFormatSpec& spec, const std::vector<std::string>& allowed) {
  for (const auto& [key, value] : spec.params) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("KV format '", spec.name, "' has no parameter '", key,
                       "' (it takes: ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> IntParam(const KvFormatSpec& spec, const std::string& key, int64_t fallback,
                                 int64_t min, int64_t max) {
  auto it = spec.params.find(key);
  if (it == spec.params.end()) return fallback;
  int64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat("KV format '", spec.name, "': ", key, "=",
                                                   it->second, " is not an integer in [", min, ", ",
                                                   max, "]"));
  }
  return value;
}

double KvBytesVsBf16(const KvFormat& format, int64_t tokens, int64_t kv_heads, int64_t head_dim) {
  if (tokens <= 0 || kv_heads <= 0 || head_dim <= 0) return std::numeric_limits<double>::quiet_NaN();
  const double bf16 = 2.0 * 2.0 * static_cast<double>(tokens * kv_heads * head_dim);
  const double encoded =
      static_cast<double>(format.Bytes(tokens, kv_heads, head_dim, KvRole::kKey) +
                          format.Bytes(tokens, kv_heads, head_dim, KvRole::kValue));
  return encoded / bf16;
}

}  // namespace kvgate::kernels
