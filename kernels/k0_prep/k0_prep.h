// K0-prep: the synthetic suite every KV format faces before any real-model run. For each format
// in KnownKvFormats() (so formats registered later appear without a change here) and each shape,
// it encodes seeded Gaussian K and V, decodes them, and reports
//
//   k_rel_mse        sum over key vectors of ||k - k_hat||^2 / sum of ||k||^2
//   v_rel_mse        the same for values
//   ip_rel_rmse      sqrt(sum (q.k_hat - q.k)^2 / sum (q.k)^2) over Q random queries a kv head
//                    against every key of that head (the error attention logits see)
//   ip_bias          mean (q.k_hat - q.k) / rms(q.k): signed; ~0 for an unbiased estimator
//   bytes_per_token  exact encoded bytes of K plus V (one layer, all kv heads) / tokens; checked
//                    equal to the format's own Bytes()
//   bytes_vs_bf16    (K bytes + V bytes) / (2 * 2 * T * H * D), the encoded size over bf16 at
//                    this T (kv_format.h's KvBytesVsBf16; a window of bf16 tokens makes it
//                    depend on T)
//
// Inputs: K, V ~ N(0, 1) float32 [T, H, D]; queries ~ N(0, 1) float32 [H, Q, D]; drawn in that
// order from torch's default generator after torch::manual_seed(seed + i) for the i-th shape, so a
// row is reproducible from (seed, shape). All error sums are float64. A format that cannot encode a
// shape (e.g. head_dim not a multiple of its block) gives a row with NaN metrics and `error` set,
// not a failed run.
//
// Each row without an error becomes one record (K0PrepRecords) that no gate judges: the suite
// has no pass bar, its records are data shown beside the real-K/V quality gate in the hfkv summary.
//
// Usage:
//   absl::StatusOr<std::vector<K0PrepRow>> rows = RunK0Prep(K0PrepConfig{});
//   std::cout << K0PrepTable(*rows);  // markdown
//   std::cout << K0PrepCsv(*rows);    // header + one line a row
//   std::vector<gates::Record> records = K0PrepRecords(*rows);  // provenance and gate unset
// Binary (writes reports/records/k0_prep.jsonl): tools/bazel run //experiments:k0_prep
// Tests: tools/bazel test //kernels/k0_prep:k0_prep_test

#ifndef KVGATE_KERNELS_K0_PREP_K0_PREP_H_
#define KVGATE_KERNELS_K0_PREP_K0_PREP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gates/record.h"

namespace kvgate::kernels {

struct K0PrepShape {
  int64_t tokens = 4096;
  int64_t kv_heads = 4;
  int64_t head_dim = 128;
};

struct K0PrepConfig {
  // Realistic single-layer shapes: kv_heads 4 or 2, head_dim 64 or 128.
  std::vector<K0PrepShape> shapes = {{4096, 4, 128}, {4096, 4, 64}, {4096, 2, 128}, {4096, 2, 64}};
  int64_t queries = 64;  // random queries a kv head
  uint64_t seed = 20261127;
  std::vector<std::string> formats;  // specs; empty: every KnownKvFormats()
};

// One (format, shape): the machine-readable row a record is made from.
struct K0PrepRow {
  std::string format;  // canonical spec, e.g. "kivi:bits=2:group=32:residual=128"
  int64_t tokens = 0, kv_heads = 0, head_dim = 0;
  int64_t queries = 0;
  uint64_t seed = 0;  // the torch seed of this shape's inputs
  double k_rel_mse = 0, v_rel_mse = 0;
  double ip_rel_rmse = 0, ip_bias = 0;
  double bytes_per_token = 0;
  double bytes_vs_bf16 = 0;
  std::string error;  // empty unless the format rejected the shape (then metrics are NaN)
};

// Every (format, shape) of config, formats outer, shapes inner. InvalidArgument on a bad config
// (no shapes, a non-positive size or query count, an unknown format spec).
absl::StatusOr<std::vector<K0PrepRow>> RunK0Prep(const K0PrepConfig& config);

// A markdown table, one line a row.
std::string K0PrepTable(const std::vector<K0PrepRow>& rows);

// CSV with a header line; the columns are K0PrepRow's fields in order.
std::string K0PrepCsv(const std::vector<K0PrepRow>& rows);

// One record a row without an error (a format that rejects a shape has no record; the table and
// CSV show its error): experiment "k0_prep", variant the format, target model
// "synthetic_gaussian_kv:kv_heads=H:head_dim=D", weights "random:seed=<seed>", context T, float32
// on cpu, step null, metrics k_rel_mse, v_rel_mse, ip_rel_rmse, ip_bias, bytes_per_token, kv_ratio
// (bytes_vs_bf16) and queries. Provenance and gate are left for the writer (no gate judges them).
std::vector<gates::Record> K0PrepRecords(const std::vector<K0PrepRow>& rows);

}  // namespace kvgate::kernels

#endif  // KVGATE_KERNELS_K0_PREP_K0_PREP_H_
