// The generated reports stay readable: no line over 300 characters outside tables, no table cell
// over 200, in the committed reports (reports/) and in the golden reports of the fixture records.
// A failure names the file and line; shorten what the generator writes there (report_text.h
// Wrapped breaks a paragraph), never the records.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gates/file_io.h"
#include "gates/testing_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::report {
namespace {

using ::kvgate::gates::testing::ListedFiles;
using ::testing::IsEmpty;

constexpr size_t kMaxLine = 300;
constexpr size_t kMaxCell = 200;

// "file:line: ..." for each line over the limits.
std::vector<std::string> TooLong(const std::string& file, const std::string& text) {
  std::vector<std::string> out;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (absl::StartsWith(line, "|")) {
      absl::string_view inner = line;
      absl::ConsumePrefix(&inner, "| ");
      absl::ConsumeSuffix(&inner, " |");
      for (absl::string_view cell : absl::StrSplit(inner, " | ")) {
        if (cell.size() > kMaxCell) {
          out.push_back(absl::StrCat(file, ":", number, ": a cell of ", cell.size(),
                                     " characters (at most ", kMaxCell, "): ", cell.substr(0, 60),
                                     "..."));
        }
      }
    } else if (line.size() > kMaxLine) {
      out.push_back(absl::StrCat(file, ":", number, ": a line of ", line.size(),
                                 " characters (at most ", kMaxLine, "): ", line.substr(0, 60),
                                 "..."));
    }
  }
  return out;
}

TEST(ReportLinesTest, TheCheckFindsALongLineAndALongCell) {
  const std::string cell(201, 'c');
  const std::string text = absl::StrCat("short\n", std::string(301, 'x'), "\n| a | ", cell,
                                        " |\n| ", std::string(290, 'y'), " |\n");
  const std::vector<std::string> found = TooLong("f.md", text);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(found[0], "f.md:2: a line of 301 characters"));
  EXPECT_TRUE(absl::StartsWith(found[1], "f.md:3: a cell of 201 characters"));
  EXPECT_TRUE(absl::StartsWith(found[2], "f.md:4: a cell of 290 characters"));
  EXPECT_THAT(
      TooLong("f.md", absl::StrCat(std::string(300, 'x'), "\n| ", std::string(198, 'c'), " |\n")),
      IsEmpty());
}

TEST(ReportLinesTest, GeneratedReportsKeepLinesShort) {
  std::vector<std::string> files;
  for (const char* dir : {"reports", "reports/summaries", "tools/report/testdata/golden",
                          "tools/report/testdata/golden/summaries"}) {
    for (const std::string& f : ListedFiles(dir, ".md")) files.push_back(f);
  }
  ASSERT_GE(files.size(), 14u) << "the reports and the golden reports";
  std::vector<std::string> problems;
  for (const std::string& f : files) {
    for (std::string& p : TooLong(f, gates::ReadFile(f).value())) problems.push_back(std::move(p));
  }
  EXPECT_THAT(problems, IsEmpty());
}

}  // namespace
}  // namespace kvgate::report
