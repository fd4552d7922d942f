// Tests of K0-prep (k0_prep.h) on small shapes: a row for every known format and shape, metrics
// that agree with what each format promises (int4's 3.56x, fp8 and int8 small errors, KIVI's
// window), reproducibility, error rows for shapes a format cannot take, and the table and CSV.
//
// Run: tools/bazel test //kernels/k0_prep:k0_prep_test

#include "kernels/k0_prep/k0_prep.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gates/record.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/kv_format/kv_format_registry.h"

namespace kvgate::kernels {
namespace {

using ::testing::HasSubstr;

const K0PrepRow* Find(const std::vector<K0PrepRow>& rows, const std::string& format,
                      int64_t head_dim) {
  for (const K0PrepRow& r : rows) {
    if (r.format == format && r.head_dim == head_dim) return &r;
  }
  return nullptr;
}

TEST(K0PrepTest, EveryKnownFormatAndShapeHasAFaithfulRow) {
  K0PrepConfig config;
  config.shapes = {{512, 2, 64}, {512, 4, 128}};
  config.queries = 16;
  absl::StatusOr<std::vector<K0PrepRow>> rows = RunK0Prep(config);
  ASSERT_TRUE(rows.ok()) << rows.status();
  const std::vector<std::string> known = KnownKvFormats();
  ASSERT_EQ(rows->size(), known.size() * 2);
  for (const std::string& spec : known) {
    for (int64_t head_dim : {64, 128}) {
      SCOPED_TRACE(spec + " D=" + std::to_string(head_dim));
      const K0PrepRow* r = Find(*rows, spec, head_dim);
      ASSERT_NE(r, nullptr);
      EXPECT_TRUE(r->error.empty()) << r->error;
      EXPECT_EQ(r->tokens, 512);
      for (double m : {r->k_rel_mse, r->v_rel_mse, r->ip_rel_rmse}) {
        EXPECT_GE(m, 0.0);
        EXPECT_LT(m, 0.5);
      }
      EXPECT_LT(std::fabs(r->ip_bias), 0.05);
      EXPECT_LT(r->bytes_vs_bf16, 1.0);
      EXPECT_DOUBLE_EQ(r->bytes_vs_bf16, r->bytes_per_token / (4.0 * r->kv_heads * r->head_dim));
    }
  }
  // What the formats promise.
  EXPECT_NEAR(Find(*rows, "symmetric_int4:block=32", 128)->bytes_vs_bf16, 18.0 / 64, 1e-12);
  EXPECT_NEAR(Find(*rows, "affine_int4:block=32", 64)->bytes_vs_bf16, 20.0 / 64, 1e-12);
  EXPECT_NEAR(Find(*rows, "fp8_e4m3:scale=token", 128)->bytes_per_token, 2 * 4 * 132,
              1e-12);  // K+V
  EXPECT_LT(Find(*rows, "fp8_e4m3:scale=token", 128)->k_rel_mse, 3e-3);
  EXPECT_LT(Find(*rows, "int8:scale=token", 128)->k_rel_mse, 2e-4);
  // Inner-product error^2 of an unbiased-in-direction error is about the vector error (Gaussian).
  const K0PrepRow* int4 = Find(*rows, "symmetric_int4:block=32", 128);
  EXPECT_NEAR(int4->ip_rel_rmse * int4->ip_rel_rmse, int4->k_rel_mse, 0.2 * int4->k_rel_mse);
  // KIVI-2 at T = 512, window 128: 384 tokens quantized at 2 bits, the rest bf16.
  const K0PrepRow* kivi = Find(*rows, "kivi:bits=2:group=32:residual=128", 128);
  EXPECT_GT(kivi->k_rel_mse, 0.01);
  EXPECT_LT(kivi->bytes_vs_bf16, 1 / 2.5);
  EXPECT_LT(Find(*rows, "kivi:bits=4:group=32:residual=128", 128)->k_rel_mse, kivi->k_rel_mse);
}

TEST(K0PrepTest, ReproducibleAndShapeErrorsAreRows) {
  K0PrepConfig config;
  config.shapes = {{64, 2, 64}, {64, 1, 48}};  // 48: not a multiple of int4's block of 32
  config.queries = 4;
  config.formats = {"symmetric_int4", "fp8_e4m3:scale=head"};
  absl::StatusOr<std::vector<K0PrepRow>> a = RunK0Prep(config);
  absl::StatusOr<std::vector<K0PrepRow>> b = RunK0Prep(config);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), 4u);
  EXPECT_EQ((*a)[0].k_rel_mse, (*b)[0].k_rel_mse);
  EXPECT_EQ((*a)[0].seed, config.seed);
  EXPECT_EQ((*a)[1].seed, config.seed + 1);
  EXPECT_THAT((*a)[1].error, HasSubstr("must be a positive multiple of 32"));
  EXPECT_TRUE(std::isnan((*a)[1].k_rel_mse));
  EXPECT_TRUE((*a)[3].error.empty());  // fp8 takes any head_dim

  const std::string table = K0PrepTable(*a);
  EXPECT_THAT(table, HasSubstr("| symmetric_int4:block=32 | 64 | 2 | 64 |"));
  EXPECT_THAT(table, HasSubstr("error: "));
  const std::vector<std::string> lines = absl::StrSplit(K0PrepCsv(*a), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0],
            "format,tokens,kv_heads,head_dim,queries,seed,k_rel_mse,v_rel_mse,ip_rel_rmse,"
            "ip_bias,bytes_per_token,bytes_vs_bf16,error");
  EXPECT_THAT(lines[1], HasSubstr("symmetric_int4:block=32,64,2,64,4,"));
}

TEST(K0PrepTest, RecordsHaveNoGateAndRoundTrip) {
  K0PrepConfig config;
  config.shapes = {{64, 2, 64}, {64, 1, 48}};
  config.queries = 4;
  config.formats = {"symmetric_int4"};
  absl::StatusOr<std::vector<K0PrepRow>> rows = RunK0Prep(config);
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::vector<gates::Record> records = K0PrepRecords(*rows);
  ASSERT_EQ(records.size(), 1u);  // the head_dim 48 row is an error: no record
  gates::Record& r = records[0];
  EXPECT_FALSE(gates::HasGate(r));
  EXPECT_EQ(r.experiment, "k0_prep");
  EXPECT_EQ(r.variant, "symmetric_int4:block=32");
  EXPECT_EQ(r.target.model, "synthetic_gaussian_kv:kv_heads=2:head_dim=64");
  EXPECT_EQ(r.target.weights_sha256, absl::StrCat("random:seed=", config.seed));
  EXPECT_EQ(r.target.context, 64);
  EXPECT_EQ(r.metrics.at("kv_ratio"), (*rows)[0].bytes_vs_bf16);
  EXPECT_EQ(r.metrics.at("k_rel_mse"), (*rows)[0].k_rel_mse);
  r.provenance = {"abc", false, "opt", "2.11.0", "", "host", "2026-12-07T00:00:00Z", 1};
  absl::StatusOr<std::string> line = gates::RecordToJsonLine(r);
  ASSERT_TRUE(line.ok()) << line.status();
  absl::StatusOr<gates::Record> back = gates::RecordFromJsonLine(*line);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(gates::HasGate(*back));
  EXPECT_EQ(back->metrics, r.metrics);
}

TEST(K0PrepTest, BadConfigs) {
  K0PrepConfig unknown;
  unknown.formats = {"int3"};
  EXPECT_THAT(std::string(RunK0Prep(unknown).status().message()), HasSubstr("unknown KV format"));
  K0PrepConfig empty;
  empty.shapes.clear();
  EXPECT_FALSE(RunK0Prep(empty).ok());
  K0PrepConfig zero;
  zero.shapes = {{0, 2, 64}};
  EXPECT_THAT(std::string(RunK0Prep(zero).status().message()), HasSubstr("must be positive"));
}

}  // namespace
}  // namespace kvgate::kernels
