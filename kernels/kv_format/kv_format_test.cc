#include "kernels/kv_format/kv_format.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/kv_format/kv_format_registry.h"

namespace kvgate::kernels {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(ParseKvFormatSpecTest, NameAndParameters) {
  absl::StatusOr<KvFormatSpec> spec = ParseKvFormatSpec("kivi:bits=2:group=32");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "kivi");
  EXPECT_THAT(spec->params, ElementsAre(Pair("bits", "2"), Pair("group", "32")));
  EXPECT_TRUE(ParseKvFormatSpec("affine_int4")->params.empty());
}

TEST(ParseKvFormatSpecTest, RejectsMalformedSpecs) {
  for (const char* bad : {"", ":bits=2", "kivi:bits", "kivi:=2", "kivi:bits=2:bits=4"}) {
    absl::StatusOr<KvFormatSpec> spec = ParseKvFormatSpec(bad);
    EXPECT_FALSE(spec.ok()) << bad;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(KvFormatRegistryTest, EveryKnownFormatRoundTripsThroughItsSpec) {
  torch::manual_seed(20261127);
  const torch::Tensor x = torch::randn({33, 4, 128});
  ASSERT_FALSE(KnownKvFormats().empty());
  for (const std::string& spec : KnownKvFormats()) {
    SCOPED_TRACE(spec);
    absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKvFormat(spec);
    ASSERT_TRUE(format.ok()) << format.status();
    EXPECT_EQ((*format)->name(), spec);  // canonical specs are fixed points
    for (KvRole role : {KvRole::kKey, KvRole::kValue}) {
      absl::StatusOr<EncodedKv> encoded = (*format)->Encode(x, role);
      ASSERT_TRUE(encoded.ok()) << encoded.status();
      EXPECT_EQ(encoded->bytes(), (*format)->Bytes(33, 4, 128, role));
      absl::StatusOr<torch::Tensor> decoded = (*format)->Decode(*encoded);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      ASSERT_EQ(decoded->sizes(), x.sizes());
      const double relative = ((*decoded - x).norm() / x.norm()).item<double>();
      EXPECT_LT(relative, 0.5) << "a lossy format, but not this lossy";
    }
  }
}

// EncodesTokensIndependently is a promise a cache relies on (it encodes each token once): for the
// formats that make it, encoding 200 tokens equals encoding 120 and then 80, bit for bit; for the
// others the split visibly changes the result, so the promise is not simply missing (200 tokens:
// more than KIVI's full-precision window of 128).
TEST(KvFormatRegistryTest, TokenIndependenceIsExactWhereClaimed) {
  torch::manual_seed(20261207);
  const torch::Tensor x = torch::randn({200, 4, 128});
  std::vector<std::string> specs = KnownKvFormats();
  for (const char* more : {"turboquant_mse:bits=2", "turboquant_mse:bits=4", "turboquant_prod:bits=2",
                           "turboquant_prod:bits=4", "turboquant_mse:rotation=dense",
                           "turboquant_prod:rotation=dense"}) {
    specs.push_back(more);
  }
  std::vector<std::string> independent;
  for (const std::string& spec : specs) {
    SCOPED_TRACE(spec);
    absl::StatusOr<std::unique_ptr<KvFormat>> format = MakeKvFormat(spec);
    ASSERT_TRUE(format.ok()) << format.status();
    const bool claimed = (*format)->EncodesTokensIndependently();
    if (claimed) independent.push_back(spec);
    for (KvRole role : {KvRole::kKey, KvRole::kValue}) {
      torch::Tensor pieces[3];
      const torch::Tensor inputs[3] = {x, x.narrow(0, 0, 120), x.narrow(0, 120, 80)};
      for (int i = 0; i < 3; ++i) {
        absl::StatusOr<EncodedKv> encoded = (*format)->Encode(inputs[i].contiguous(), role);
        ASSERT_TRUE(encoded.ok()) << encoded.status();
        absl::StatusOr<torch::Tensor> decoded = (*format)->Decode(*encoded);
        ASSERT_TRUE(decoded.ok()) << decoded.status();
        pieces[i] = *decoded;
      }
      EXPECT_EQ(torch::equal(pieces[0], torch::cat({pieces[1], pieces[2]})), claimed);
    }
  }
  EXPECT_THAT(independent, ::testing::UnorderedElementsAre(
                               "symmetric_int4:block=32", "affine_int4:block=32",
                               "fp8_e4m3:scale=token", "int8:scale=token",
                               "turboquant_mse:bits=3:rotation=hadamard:seed=0",
                               "turboquant_prod:bits=3:rotation=hadamard:seed=0",
                               "turboquant_mse:bits=2", "turboquant_mse:bits=4",
                               "turboquant_prod:bits=2", "turboquant_prod:bits=4",
                               "turboquant_mse:rotation=dense", "turboquant_prod:rotation=dense"));
}

TEST(KvFormatRegistryTest, Int4RatiosAgainstBf16) {
  EXPECT_NEAR(KvBytesVsBf16(**MakeKvFormat("symmetric_int4"), 2048, 4, 128), 18.0 / 64.0, 1e-12);
  EXPECT_NEAR(KvBytesVsBf16(**MakeKvFormat("affine_int4:block=32"), 2048, 4, 128), 20.0 / 64.0,
              1e-12);
}

TEST(KvFormatRegistryTest, ClearErrors) {
  absl::StatusOr<std::unique_ptr<KvFormat>> unknown = MakeKvFormat("int3");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown KV format 'int3'"));
  EXPECT_THAT(unknown.status().message(), HasSubstr("affine_int4"));
  EXPECT_THAT(MakeKvFormat("affine_int4:bits=3").status().message(),
              HasSubstr("no parameter 'bits'"));
  EXPECT_THAT(MakeKvFormat("affine_int4:block=64").status().message(),
              HasSubstr("block=64 is not an integer in [32, 32]"));
}

TEST(KvFormatRegistryTest, DecodeRefusesAnotherFormatsEncoding) {
  auto symmetric = *MakeKvFormat("symmetric_int4");
  auto affine = *MakeKvFormat("affine_int4");
  absl::StatusOr<EncodedKv> encoded = symmetric->Encode(torch::randn({2, 1, 32}), KvRole::kKey);
  ASSERT_TRUE(encoded.ok());
  EXPECT_FALSE(affine->Decode(*encoded).ok());
}

TEST(KvFormatRegistryTest, EncodeRejectsWrongRank) {
  EXPECT_FALSE((*MakeKvFormat("affine_int4"))->Encode(torch::randn({4, 32}), KvRole::kKey).ok());
}

}  // namespace
}  // namespace kvgate::kernels
