// K0-prep (see k0_prep.h): encode, decode and measure every known KV format on seeded Gaussian K/V.

#include "kernels/k0_prep/k0_prep.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernels/kv_format/kv_format.h"
#include "kernels/kv_format/kv_format_registry.h"

namespace kvgate::kernels {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double RelMse(const torch::Tensor& x, const torch::Tensor& x_hat) {
  const torch::Tensor x64 = x.to(torch::kFloat64);
  return ((x_hat.to(torch::kFloat64) - x64).pow(2).sum() / x64.pow(2).sum()).item<double>();
}

// Fills the metrics of row from one shape's inputs, or its error.
void Measure(const KvFormat& format, const torch::Tensor& k, const torch::Tensor& v,
             const torch::Tensor& queries, K0PrepRow* row) {
  const auto fail = [&](const absl::Status& s) {
    row->error = std::string(s.message());
    row->k_rel_mse = row->v_rel_mse = row->ip_rel_rmse = row->ip_bias = kNaN;
    row->bytes_per_token = row->bytes_vs_bf16 = kNaN;
  };
  absl::StatusOr<EncodedKv> k_enc = format.Encode(k, KvRole::kKey);
  if (!k_enc.ok()) return fail(k_enc.status());
  absl::StatusOr<EncodedKv> v_enc = format.Encode(v, KvRole::kValue);
  if (!v_enc.ok()) return fail(v_enc.status());
  absl::StatusOr<torch::Tensor> k_hat = format.Decode(*k_enc);
  if (!k_hat.ok()) return fail(k_hat.status());
  absl::StatusOr<torch::Tensor> v_hat = format.Decode(*v_enc);
  if (!v_hat.ok()) return fail(v_hat.status());
  const int64_t bytes = k_enc->bytes() + v_enc->bytes();
  const int64_t declared = format.Bytes(row->tokens, row->kv_heads, row->head_dim, KvRole::kKey) +
                           format.Bytes(row->tokens, row->kv_heads, row->head_dim, KvRole::kValue);
  if (bytes != declared) {
    return fail(absl::InternalError(absl::StrFormat(
        "encoded K+V hold %d bytes, the format's Bytes() says %d", bytes, declared)));
  }
  row->k_rel_mse = RelMse(k, *k_hat);
  row->v_rel_mse = RelMse(v, *v_hat);
  // Inner products per kv head: [H, T, D] x [H, D, Q] -> [H, T, Q].
  const torch::Tensor qt = queries.to(torch::kFloat64).transpose(1, 2);
  const torch::Tensor exact = torch::bmm(k.to(torch::kFloat64).transpose(0, 1), qt);
  const torch::Tensor approx = torch::bmm(k_hat->to(torch::kFloat64).transpose(0, 1), qt);
  const torch::Tensor diff = approx - exact;
  const double rms = exact.pow(2).mean().sqrt().item<double>();
  row->ip_rel_rmse = (diff.pow(2).sum() / exact.pow(2).sum()).sqrt().item<double>();
  row->ip_bias = diff.mean().item<double>() / rms;
  row->bytes_per_token = static_cast<double>(bytes) / static_cast<double>(row->tokens);
  row->bytes_vs_bf16 = KvBytesVsBf16(format, row->tokens, row->kv_heads, row->head_dim);
}

}  // namespace

absl::StatusOr<std::vector<K0PrepRow>> RunK0Prep(const K0PrepConfig& config) {
  if (config.shapes.empty()) return absl::InvalidArgumentError("K0-prep: no shapes");
  if (config.queries < 1) {
    return absl::InvalidArgumentError(absl::StrCat("K0-prep: queries ", config.queries, " < 1"));
  }
  for (const K0PrepShape& s : config.shapes) {
    if (s.tokens < 1 || s.kv_heads < 1 || s.head_dim < 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "K0-prep: shape [%d, %d, %d] must be positive", s.tokens, s.kv_heads, s.head_dim));
    }
  }
  const std::vector<std::string> specs = config.formats.empty() ? KnownKvFormats() : config.formats;
  std::vector<std::unique_ptr<KvFormat>> formats;
  for (const std::string& spec : specs) {
    absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKvFormat(spec);
    if (!format.ok()) return format.status();
    formats.push_back(*std::move(format));
  }
  // Inputs once a shape, shared by every format.
  struct Inputs {
    torch::Tensor k, v, queries;
    uint64_t seed;
  };
  std::vector<Inputs> inputs;
  for (size_t i = 0; i < config.shapes.size(); ++i) {
    const K0PrepShape& s = config.shapes[i];
    const uint64_t seed = config.seed + i;
    torch::manual_seed(seed);
    Inputs in;
    in.k = torch::randn({s.tokens, s.kv_heads, s.head_dim});
    in.v = torch::randn({s.tokens, s.kv_heads, s.head_dim});
    in.queries = torch::randn({s.kv_heads, config.queries, s.head_dim});
    in.seed = seed;
    inputs.push_back(std::move(in));
  }
  std::vector<K0PrepRow> rows;
  for (const std::unique_ptr<KvFormat>& format : formats) {
    for (size_t i = 0; i < config.shapes.size(); ++i) {
      K0PrepRow row;
      row.format = format->name();
      row.tokens = config.shapes[i].tokens;
      row.kv_heads = config.shapes[i].kv_heads;
      row.head_dim = config.shapes[i].head_dim;
      row.queries = config.queries;
      row.seed = inputs[i].seed;
      Measure(*format, inputs[i].k, inputs[i].v, inputs[i].queries, &row);
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

std::string K0PrepTable(const std::vector<K0PrepRow>& rows) {
  std::string out =
      "| format | T | H | D | K rel MSE | V rel MSE | <q,k> rel RMSE | <q,k> bias | bytes/token "
      "| bytes vs bf16 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const K0PrepRow& r : rows) {
    if (!r.error.empty()) {
      absl::StrAppendFormat(&out, "| %s | %d | %d | %d | error: %s | | | | | |\n", r.format,
                            r.tokens, r.kv_heads, r.head_dim, r.error);
      continue;
    }
    absl::StrAppendFormat(&out,
                          "| %s | %d | %d | %d | %.3e | %.3e | %.3e | %+.1e | %.1f | %.4f |\n",
                          r.format, r.tokens, r.kv_heads, r.head_dim, r.k_rel_mse, r.v_rel_mse,
                          r.ip_rel_rmse, r.ip_bias, r.bytes_per_token, r.bytes_vs_bf16);
  }
  return out;
}

std::vector<gates::Record> K0PrepRecords(const std::vector<K0PrepRow>& rows) {
  std::vector<gates::Record> records;
  for (const K0PrepRow& r : rows) {
    if (!r.error.empty()) continue;
    gates::Record record;
    record.experiment = "k0_prep";
    record.variant = r.format;
    record.target = {absl::StrFormat("synthetic_gaussian_kv:kv_heads=%d:head_dim=%d", r.kv_heads,
                                     r.head_dim),
                     absl::StrCat("random:seed=", r.seed), r.tokens, "float32", "cpu"};
    record.step = std::nullopt;
    record.metrics = {{"k_rel_mse", r.k_rel_mse},
                      {"v_rel_mse", r.v_rel_mse},
                      {"ip_rel_rmse", r.ip_rel_rmse},
                      {"ip_bias", r.ip_bias},
                      {"bytes_per_token", r.bytes_per_token},
                      {"kv_ratio", r.bytes_vs_bf16},
                      {"queries", static_cast<double>(r.queries)}};
    records.push_back(std::move(record));
  }
  return records;
}

std::string K0PrepCsv(const std::vector<K0PrepRow>& rows) {
  std::string out =
      "format,tokens,kv_heads,head_dim,queries,seed,k_rel_mse,v_rel_mse,ip_rel_rmse,ip_bias,"
      "bytes_per_token,bytes_vs_bf16,error\n";
  for (const K0PrepRow& r : rows) {
    std::string error = r.error;  // quoted, with quotes doubled
    for (size_t i = error.find('"'); i != std::string::npos; i = error.find('"', i + 2)) {
      error.insert(i, "\"");
    }
    absl::StrAppendFormat(&out, "%s,%d,%d,%d,%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,\"%s\"\n",
                          r.format, r.tokens, r.kv_heads, r.head_dim, r.queries, r.seed,
                          r.k_rel_mse, r.v_rel_mse, r.ip_rel_rmse, r.ip_bias, r.bytes_per_token,
                          r.bytes_vs_bf16, error);
  }
  return out;
}

}  // namespace kvgate::kernels
