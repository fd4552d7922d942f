#include "kernels/common/tensor_checks.h"

#include <torch/types.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::kernels {
namespace {

TEST(DescribeTensorTest, NamesDtypeShapeAndDevice) {
  EXPECT_EQ(DescribeTensor(torch::zeros({5, 4, 128})), "float32 [5, 4, 128] on cpu");
  EXPECT_EQ(DescribeTensor(torch::zeros({2}, torch::kBFloat16)), "bfloat16 [2] on cpu");
  EXPECT_EQ(DescribeTensor(torch::zeros({}, torch::kHalf)), "float16 [] on cpu");
  EXPECT_EQ(DescribeTensor(torch::Tensor()), "an undefined tensor");
  EXPECT_EQ(DtypeName(torch::kInt64), "Long");
}

TEST(CheckCpuTensorTest, AcceptsTheRightTensorOnly) {
  EXPECT_TRUE(
      CheckCpuTensor("codes", torch::zeros({3, 16}, torch::kUInt8), torch::kUInt8, {3, 16}).ok());
  const absl::Status wrong_shape =
      CheckCpuTensor("codes", torch::zeros({3, 8}, torch::kUInt8), torch::kUInt8, {3, 16});
  EXPECT_EQ(wrong_shape.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong_shape.message(), "codes must be uint8 [3, 16] on cpu, got uint8 [3, 8] on cpu");
  EXPECT_FALSE(CheckCpuTensor("s", torch::zeros({3}), torch::kHalf, {3}).ok());
  EXPECT_THAT(std::string(CheckCpuTensor("s", torch::Tensor(), torch::kHalf, {3}).message()),
              ::testing::HasSubstr("got an undefined tensor"));
}

}  // namespace
}  // namespace kvgate::kernels
