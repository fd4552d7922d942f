// Tests of SHA-256 (sha256.h): FIPS 180-4 test vectors, and the SHA-extension path against the
// portable one on random data split at random points.
//
// Run: tools/bazel test //experiments/runtime:sha256_test

#include "experiments/runtime/sha256.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

class Sha256Test : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { Sha256::ForcePortableForTesting(GetParam()); }
  void TearDown() override { Sha256::ForcePortableForTesting(false); }
};

TEST_P(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(Sha256Test, IncrementalEqualsOneShot) {
  std::mt19937 rng(1);
  std::string data(100000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  Sha256::ForcePortableForTesting(true);
  const std::string reference = Sha256Hex(data);
  Sha256::ForcePortableForTesting(GetParam());
  for (int trial = 0; trial < 20; ++trial) {
    Sha256 hasher;
    size_t at = 0;
    while (at < data.size()) {
      const size_t n = std::min<size_t>(data.size() - at, rng() % 300);
      hasher.Update(data.data() + at, n);
      at += n;
    }
    EXPECT_EQ(hasher.HexDigest(), reference);
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, Sha256Test, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "portable" : "cpu_default";
                         });

TEST(Sha256Info, ReportsThePath) {
  // Informational: which path this machine's CPU takes.
  std::printf("SHA extensions: %s\n", Sha256::UsesShaExtensions() ? "yes" : "no");
}

}  // namespace
}  // namespace kvgate::runtime
