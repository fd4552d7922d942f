#include "tools/report/zip_reader.h"

#include <string>
#include <vector>

#include "gates/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::report {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Made by `zip -X -qr` as Bazel's test-setup.sh does (testdata/README.md): a deflated records
// file, a folder entry and a stored text file.
constexpr char kArchive[] =
    "tools/report/testdata/testlogs/experiments/hfkv_int4_test/test.outputs/outputs.zip";

std::string Archive() {
  absl::StatusOr<std::string> bytes = gates::ReadFile(kArchive);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.value_or("");
}

TEST(ZipReaderTest, ReadsDeflatedAndStoredEntriesAndSkipsFolders) {
  absl::StatusOr<std::vector<ZipEntry>> entries = ReadZip(Archive(), "a.zip");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].name, "hfkv_int4.jsonl");
  EXPECT_THAT((*entries)[0].contents, StartsWith("{\"experiment\":\"hfkv_int4\""));
  EXPECT_EQ((*entries)[0].contents.size(), 1565u);
  EXPECT_EQ((*entries)[1].name, "sub/notes.txt");
  EXPECT_EQ((*entries)[1].contents, "not a records file\n");
}

TEST(ZipReaderTest, CorruptArchivesFailNamingTheArchive) {
  const std::string good = Archive();
  ASSERT_FALSE(good.empty());
  EXPECT_THAT(ReadZip("short", "a.zip").status().message(), HasSubstr("a.zip: not a zip"));
  EXPECT_THAT(ReadZip(good.substr(0, good.size() - 1), "a.zip").status().message(),
              HasSubstr("a.zip: not a zip archive (no end of central directory)"));
  // A flipped byte inside the deflated data: corrupt data or a CRC mismatch, never silence.
  std::string flipped = good;
  flipped[30 + 15 + 100] ^= 0x55;
  absl::StatusOr<std::vector<ZipEntry>> bad = ReadZip(flipped, "a.zip");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("a.zip!hfkv_int4.jsonl: "));
}

}  // namespace
}  // namespace kvgate::report
