// The committed corpus is exactly what the generator writes: regenerates it into TEST_TMPDIR and
// compares every file (and README.md) byte for byte with the committed one, and checks that the
// folder holds no file the generator does not write. A failure means someone edited a file by
// hand or changed hostile_corpus.cc without rerunning
//   tools/bazel run //experiments/runtime/hostile:generate_hostile_corpus
//
// Run: tools/bazel test //experiments/runtime/testdata/hostile:hostile_corpus_golden_test

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "experiments/runtime/hostile/hostile_corpus.h"
#include "gtest/gtest.h"

namespace kvgate::runtime::hostile {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string CommittedDir() {
  return std::string(std::getenv("TEST_SRCDIR")) + "/" + std::getenv("TEST_WORKSPACE") +
         "/experiments/runtime/testdata/hostile";
}

std::set<std::string> Expected() {
  std::set<std::string> names = {"README.md"};
  for (const HostileFile& f : HostileCorpus()) names.insert(f.name);
  return names;
}

TEST(HostileCorpusGoldenTest, CommittedFilesEqualTheGeneratorsOutput) {
  const std::string fresh = std::getenv("TEST_TMPDIR");
  ASSERT_TRUE(WriteHostileCorpus(fresh).ok());
  for (const std::string& name : Expected()) {
    const std::string committed = ReadAll(CommittedDir() + "/" + name);
    const std::string generated = ReadAll(fresh + "/" + name);
    ASSERT_FALSE(generated.empty()) << name;
    EXPECT_TRUE(committed == generated)
        << name << ": committed " << committed.size() << " bytes differ from the generator's "
        << generated.size() << " (rerun generate_hostile_corpus)";
  }
}

TEST(HostileCorpusGoldenTest, FolderHoldsOnlyGeneratedFiles) {
  // The data dependency is every file of the folder but BUILD and the tests' sources; runfiles
  // also hold the test binary (a name without a dot).
  const std::set<std::string> expected = Expected();
  DIR* dir = opendir(CommittedDir().c_str());
  ASSERT_NE(dir, nullptr);
  int seen = 0;
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == ".." || name.find('.') == std::string::npos) continue;
    if (name.size() > 3 && name.substr(name.size() - 3) == ".cc") continue;
    ++seen;
    EXPECT_EQ(expected.count(name), 1u) << name << " is in the folder but not in the generator";
  }
  closedir(dir);
  EXPECT_EQ(seen, static_cast<int>(expected.size()));
}

TEST(HostileCorpusGoldenTest, GeneratorIsDeterministic) {
  const std::vector<HostileFile> a = HostileCorpus();
  const std::vector<HostileFile> b = HostileCorpus();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].bytes == b[i].bytes) << a[i].name;
}

}  // namespace
}  // namespace kvgate::runtime::hostile
