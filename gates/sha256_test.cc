#include "gates/sha256.h"

#include <string>

#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

// FIPS 180-2 test vectors, and `printf 'kvgate\n' | sha256sum`.
TEST(Sha256HexTest, KnownDigests) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex("kvgate\n"),
            "dc66d37536cda5d6cd085932688a1e1cad074fc975ef319154813d5858a053ce");
}

TEST(Sha256HexTest, HashesEmbeddedZeroBytes) {
  // printf 'a\0b' | sha256sum
  EXPECT_EQ(Sha256Hex(std::string("a\0b", 3)),
            "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138");
}

}  // namespace
}  // namespace kvgate::gates
