#include "gates/spec_registry.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gates/file_io.h"
#include "gates/sha256.h"
#include "gates/testing_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::gates {
namespace {

using ::kvgate::gates::testing::NewTestFolder;
using ::testing::HasSubstr;

std::string SpecText(const std::string& id, int version, double mse) {
  return absl::StrCat(R"({"id": ")", id, R"(", "version": )", version,
                      R"(, "created": "2026-11-27", "summary": "s",
      "target": {"model": "m", "context": null, "dtype": "f32", "decode_steps": null},
      "multi_step_rule": "single_measurement", "validity": [],
      "thresholds": [{"metric": "decode_logit_mse", "op": "<=", "value": )",
                      mse, "}]}\n");
}

std::string Write(const std::string& folder, const std::string& name, const std::string& text) {
  const std::string path = absl::StrCat(folder, "/", name);
  EXPECT_TRUE(AtomicWriteFile(path, text).ok());
  return path;
}

TEST(SpecRegistryTest, LoadsAFolderWithHashesAndVersions) {
  const std::string folder = NewTestFolder();
  const std::string v1 = SpecText("g", 1, 0.25), v2 = SpecText("g", 2, 0.20);
  Write(folder, "g.json", v1);
  Write(folder, "g.v2.json", v2);
  Write(folder, "h.json", SpecText("h", 1, 1.0));
  Write(folder, "README.md", "not a spec");

  absl::StatusOr<SpecRegistry> specs = LoadSpecDir(folder);
  ASSERT_TRUE(specs.ok()) << specs.status();
  EXPECT_EQ(specs->size(), 3);
  const RegisteredSpec* g1 = FindSpec(*specs, "g", 1);
  ASSERT_NE(g1, nullptr);
  EXPECT_EQ(g1->sha256, Sha256Hex(v1));
  EXPECT_EQ(g1->path, folder + "/g.json");
  EXPECT_DOUBLE_EQ(g1->spec.thresholds[0].value, 0.25);
  EXPECT_EQ(FindSpec(*specs, "g", 3), nullptr);
  EXPECT_EQ(FindSpec(*specs, "nope", 1), nullptr);
  ASSERT_NE(LatestSpec(*specs, "g"), nullptr);
  EXPECT_EQ(LatestSpec(*specs, "g")->spec.version, 2);
  EXPECT_EQ(LatestSpec(*specs, "g")->sha256, Sha256Hex(v2));
  EXPECT_EQ(LatestSpec(*specs, "nope"), nullptr);
}

TEST(SpecRegistryTest, TheHashIsOfTheExactBytes) {
  const std::string folder = NewTestFolder();
  const std::string text = SpecText("g", 1, 0.25);
  const std::string reformatted = absl::StrReplaceAll(text, {{"\n", " \n"}});
  absl::StatusOr<RegisteredSpec> a = LoadSpecFile(Write(folder, "g.json", text));
  absl::StatusOr<RegisteredSpec> b = LoadSpecFile(Write(NewTestFolder(), "g.json", reformatted));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->sha256, b->sha256);  // same meaning, other bytes: another spec file
}

TEST(SpecRegistryTest, AFileMustBeNamedForItsIdAndVersion) {
  const std::string folder = NewTestFolder();
  absl::StatusOr<RegisteredSpec> spec =
      LoadSpecFile(Write(folder, "g.json", SpecText("g", 2, 0.2)));
  EXPECT_THAT(spec.status().message(), HasSubstr("must be named g.v2.json"));
  spec = LoadSpecFile(Write(folder, "other.json", SpecText("g", 1, 0.2)));
  EXPECT_THAT(spec.status().message(), HasSubstr("must be named g.json"));
  spec = LoadSpecFile(Write(folder, "g.v1.json", SpecText("g", 1, 0.2)));
  EXPECT_THAT(spec.status().message(), HasSubstr("must be named g.json"));
}

TEST(SpecRegistryTest, RejectsTwoFilesForOneVersionAndBrokenFiles) {
  const std::string a = Write(NewTestFolder(), "g.json", SpecText("g", 1, 0.25));
  const std::string b = Write(NewTestFolder(), "g.json", SpecText("g", 1, 0.3));
  EXPECT_THAT(LoadSpecFiles({a, b}).status().message(), HasSubstr("both hold g version 1"));

  const std::string folder = NewTestFolder();
  Write(folder, "g.json", "{\"id\": \"g\"");
  EXPECT_THAT(LoadSpecDir(folder).status().message(), HasSubstr("g.json: gate spec: not JSON"));
  EXPECT_EQ(LoadSpecDir(folder + "/absent").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kvgate::gates
