// Tests of the byte-level BPE tokenizer (tokenizer.h) against Hugging Face `tokenizers`
// (testdata/make_references.py wrote the expected ids):
//  - the real SmolLM2 tokenizer, read from the embedded GGUF: exact ids on varied strings (ASCII,
//    contractions, digits, whitespace runs, CJK, emoji, combining marks, code, special tokens) and
//    on 300 random strings; decode back to the text;
//  - four small tokenizer.json files trained with `tokenizers` using GPT-2's, SmolLM2's, Qwen2's
//    (with NFC) and Llama 3's (ignore_merges) pre-tokenizers: exact ids and decoded text;
//  - NFC against Python's unicodedata; pre-tokenizer pieces; invalid UTF-8 round trips;
//  - errors for unsupported or malformed tokenizer.json and GGUF vocabularies.
//
// Run: tools/bazel test //experiments/runtime:tokenizer_test

#include "experiments/runtime/tokenizer.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/runtime/loader_test_util.h"
#include "experiments/runtime/tokenizer_unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

nlohmann::json ReadJson(const std::string& name) {
  return nlohmann::json::parse(testing::ReadTestFile(testing::TestDataPath(name)));
}

// Compares Encode and Decode with a list of {text, ids, decoded} rows.
void ExpectMatches(const Tokenizer& tok, const nlohmann::json& rows, const std::string& what) {
  int mismatches = 0;
  for (const nlohmann::json& row : rows) {
    const std::string text = row["text"].get<std::string>();
    const std::vector<int32_t> expected = row["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> ids = tok.Encode(text);
    EXPECT_EQ(ids, expected) << what << ": \"" << text << "\"";
    EXPECT_EQ(tok.Decode(expected), row["decoded"].get<std::string>())
        << what << ": \"" << text << "\"";
    if (ids != expected && ++mismatches > 5) break;
  }
}

TEST(UnicodeTest, Classes) {
  EXPECT_TRUE(IsUnicodeLetter('a'));
  EXPECT_TRUE(IsUnicodeLetter(0x65E5));  // 日
  EXPECT_TRUE(IsUnicodeLetter(0x17F));   // ſ
  EXPECT_FALSE(IsUnicodeLetter(0x301));  // combining acute: Mn
  EXPECT_TRUE(IsUnicodeNumber(0x663));   // Arabic-Indic three
  EXPECT_TRUE(IsUnicodeNumber(0xB2));    // superscript two: No
  EXPECT_TRUE(IsUnicodeNumber(0x216B));  // Roman numeral twelve: Nl
  EXPECT_FALSE(IsUnicodeNumber('x'));
  EXPECT_TRUE(IsUnicodeWhitespace(0x3000));
  EXPECT_TRUE(IsUnicodeWhitespace(0x85));
  EXPECT_FALSE(IsUnicodeWhitespace(0x200B));  // zero width space is not White_Space
  EXPECT_FALSE(IsUnicodeLetter(kInvalidUtf8));
  EXPECT_STREQ(UnicodeTablesVersion(), "14.0.0");
}

TEST(UnicodeTest, DecodeUtf8KeepsInvalidBytes) {
  const std::string text = "a\xC3\xA9\xFF\xE2\x82\xAC\xED\xA0\x80\xC0\xAF\xF0\x9F\xA4\x97";
  std::vector<char32_t> cps;
  for (const Utf8Char& c : DecodeUtf8(text)) cps.push_back(c.codepoint);
  EXPECT_THAT(cps, ElementsAre('a', 0xE9, kInvalidUtf8, 0x20AC, kInvalidUtf8, kInvalidUtf8,
                               kInvalidUtf8,                // surrogate D800
                               kInvalidUtf8, kInvalidUtf8,  // overlong '/'
                               0x1F917));
}

TEST(UnicodeTest, NfcMatchesPython) {
  const nlohmann::json rows = ReadJson("nfc_expected.json");
  ASSERT_GT(rows.size(), 300u);
  for (const nlohmann::json& row : rows) {
    EXPECT_EQ(NormalizeNfc(row["text"].get<std::string>()), row["nfc"].get<std::string>())
        << row["text"].get<std::string>();
  }
  EXPECT_EQ(NormalizeNfc("\xFF"
                         "e\xCC\x81"),
            "\xFF\xC3\xA9");  // invalid bytes kept
}

TEST(PreTokenizeTest, Gpt2Pieces) {
  auto pieces = [](absl::string_view text) {
    std::vector<std::string> out;
    for (absl::string_view p : SplitWithRegex(text, SplitRegex::kGpt2)) out.emplace_back(p);
    return out;
  };
  EXPECT_THAT(pieces("Hello world"), ElementsAre("Hello", " world"));
  EXPECT_THAT(pieces("I'm here  now\t!"), ElementsAre("I", "'m", " here", " ", " now", "\t", "!"));
  EXPECT_THAT(pieces("x   "), ElementsAre("x", "   "));
  EXPECT_THAT(pieces("a 123 ..."), ElementsAre("a", " 123", " ..."));
  EXPECT_THAT(pieces("'S"), ElementsAre("'", "S"));  // case-sensitive contractions
}

TEST(PreTokenizeTest, Qwen2AndLlama3Pieces) {
  auto pieces = [](absl::string_view text, SplitRegex regex) {
    std::vector<std::string> out;
    for (absl::string_view p : SplitWithRegex(text, regex)) out.emplace_back(p);
    return out;
  };
  EXPECT_THAT(pieces("I'M 12345 (hi)\n\n  x", SplitRegex::kQwen2),
              ElementsAre("I", "'M", " ", "1", "2", "3", "4", "5", " (", "hi", ")\n\n", " ", " x"));
  EXPECT_THAT(pieces("12345", SplitRegex::kLlama3), ElementsAre("123", "45"));
  EXPECT_THAT(pieces("a \n\n b", SplitRegex::kLlama3), ElementsAre("a", " \n\n", " b"));
}

class SmolLM2TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = testing::SmolLM2GgufPath();
    ASSERT_FALSE(path.empty()) << "@smollm2//:gguf is not in the runfiles";
    absl::StatusOr<GgufFile> gguf = GgufFile::Open(path);
    ASSERT_TRUE(gguf.ok()) << gguf.status();
    absl::StatusOr<Tokenizer> tok = Tokenizer::FromGguf(*gguf);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = new Tokenizer(*std::move(tok));
  }
  static void TearDownTestSuite() { delete tokenizer_; }
  static Tokenizer* tokenizer_;
};
Tokenizer* SmolLM2TokenizerTest::tokenizer_ = nullptr;

TEST_F(SmolLM2TokenizerTest, Vocabulary) {
  const Tokenizer& tok = *tokenizer_;
  EXPECT_EQ(tok.vocab_size(), 49152);
  EXPECT_EQ(tok.pre_tokenizer_name(), "smollm");
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(*tok.TokenToId("<|im_start|>"), 1);
  EXPECT_EQ(*tok.TokenToId("<|im_end|>"), 2);
  EXPECT_TRUE(tok.IsSpecial(0));
  EXPECT_FALSE(tok.IsSpecial(100));
  EXPECT_EQ(tok.added_tokens().size(), 17u);
}

TEST_F(SmolLM2TokenizerTest, MatchesHuggingFaceOnTestStrings) {
  const nlohmann::json ref = ReadJson("smollm2_tokens.json");
  ExpectMatches(*tokenizer_, ref["texts"], "smollm2");
}

TEST_F(SmolLM2TokenizerTest, MatchesHuggingFaceOnRandomStrings) {
  const nlohmann::json ref = ReadJson("smollm2_tokens.json");
  ASSERT_EQ(ref["random"].size(), 300u);
  ExpectMatches(*tokenizer_, ref["random"], "smollm2 random");
}

TEST_F(SmolLM2TokenizerTest, KnownIds) {
  // Spelled out so a reader sees them (also in smollm2_tokens.json).
  EXPECT_THAT(tokenizer_->Encode("Hello, world!"), ElementsAre(19556, 28, 905, 17));
  EXPECT_THAT(tokenizer_->Encode("<|im_start|>user\n"), ElementsAre(1, 4093, 198));
}

TEST_F(SmolLM2TokenizerTest, RoundTripsAnyBytes) {
  for (const std::string& text :
       {std::string("plain ASCII, with digits 0123 and  spaces\t\n"),
        std::string("日本語 🤗 café\r\n"), std::string("bad \xC3 utf8 \xE2\x82"),
        std::string(1000, ' '), std::string("a\0b", 3)}) {
    EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(text)), text);
  }
  // Bytes without a token (0x04, 0xFF, ...) are dropped, as `tokenizers` drops them.
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode("a\x04"
                                                  "b\xFF")),
            "ab");
  // parse_special=false tokenizes the markers as text.
  const std::vector<int32_t> literal = tokenizer_->Encode("<|im_end|>", /*parse_special=*/false);
  EXPECT_GT(literal.size(), 1u);
  EXPECT_EQ(tokenizer_->Decode(literal), "<|im_end|>");
  EXPECT_EQ(tokenizer_->Decode({1, 4093, 2}, /*skip_special=*/true), "user");
}

class TinyTokenizerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TinyTokenizerTest, MatchesHuggingFace) {
  const std::string name = GetParam();
  absl::StatusOr<Tokenizer> tok =
      Tokenizer::FromTokenizerJsonFile(testing::TestDataPath("tiny_" + name + ".tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->pre_tokenizer_name(), name == "llama3" ? "llama-bpe"
                                       : name == "gpt2" ? "gpt-2"
                                                        : name);
  EXPECT_EQ(tok->normalize_nfc(), name == "qwen2");
  const nlohmann::json ref = ReadJson("tiny_tokenizers_expected.json")[name];
  ExpectMatches(*tok, ref["texts"], name);
  ExpectMatches(*tok, ref["random"], name + " random");
}

INSTANTIATE_TEST_SUITE_P(Families, TinyTokenizerTest,
                         ::testing::Values("gpt2", "smollm", "qwen2", "llama3"));

// The tiny GPT-2 tokenizer.json with one change applied.
absl::Status LoadModified(const std::function<void(nlohmann::json&)>& change) {
  nlohmann::json json = ReadJson("tiny_gpt2.tokenizer.json");
  change(json);
  return Tokenizer::FromTokenizerJson(json.dump(), "tok.json").status();
}

TEST(TokenizerJsonTest, UnsupportedOrMalformedFilesAreErrors) {
  EXPECT_TRUE(LoadModified([](nlohmann::json&) {}).ok());
  struct Case {
    std::function<void(nlohmann::json&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](nlohmann::json& j) { j["model"]["type"] = "WordPiece"; },
       "model.type: WordPiece (only BPE"},
      {[](nlohmann::json& j) { j["model"].erase("vocab"); },
       "tok.json: model: missing field \"vocab\""},
      {[](nlohmann::json& j) { j["model"]["byte_fallback"] = true; }, "model.byte_fallback"},
      {[](nlohmann::json& j) {
         const nlohmann::json& m = j["model"]["merges"][0];
         j["model"]["vocab"].erase(m[0].get<std::string>() + m[1].get<std::string>());
       },
       "uses a token not in the vocabulary"},
      {[](nlohmann::json& j) {
         for (int c = 0x100; c < 0x144; ++c) {  // the 68 remapped bytes, then printable ASCII
           j["model"]["vocab"].erase(std::string(1, static_cast<char>(0xC0 | (c >> 6))) +
                                     std::string(1, static_cast<char>(0x80 | (c & 63))));
         }
         for (char c = '!'; c <= '~'; ++c) j["model"]["vocab"].erase(std::string(1, c));
       },
       "not a byte-level BPE vocabulary"},
      {[](nlohmann::json& j) { j["model"]["unk_token"] = "<nope>"; },
       "unk_token \"<nope>\" is not in the vocabulary"},
      {[](nlohmann::json& j) { j["model"]["merges"][0] = "x y z"; },
       "entry 0 (\"x y z\") is not two tokens"},
      {[](nlohmann::json& j) { j["model"]["merges"][0] = 5; }, "entry 0 is neither"},
      {[](nlohmann::json& j) { j["model"]["vocab"]["dup"] = 5; }, "id 5 is given to both"},
      {[](nlohmann::json& j) {
         j["normalizer"] = {{"type", "Lowercase"}};
       },
       "normalizer"},
      {[](nlohmann::json& j) {
         j["pre_tokenizer"] = {{"type", "Split"},
                               {"pattern", {{"Regex", "\\w+"}}},
                               {"behavior", "Isolated"},
                               {"invert", false}};
       },
       "split regex \\w+ is not one of the implemented ones"},
      {[](nlohmann::json& j) {
         j["pre_tokenizer"] = {{"type", "Whitespace"}};
       },
       "type Whitespace is not implemented"},
      {[](nlohmann::json& j) { j["pre_tokenizer"] = nullptr; }, "no ByteLevel step"},
      {[](nlohmann::json& j) {
         j["decoder"] = {{"type", "WordPiece"}};
       },
       "decoder: only the ByteLevel decoder"},
      {[](nlohmann::json& j) { j["added_tokens"][0]["lstrip"] = true; }, "added_tokens[0].lstrip"},
      {[](nlohmann::json& j) { j["added_tokens"][0]["id"] = 7; }, "which the vocabulary gives to"},
      {[](nlohmann::json& j) { j["model"]["vocab"] = nlohmann::json::object(); },
       "model: field \"vocab\": is empty"},
      {[](nlohmann::json& j) { j["model"]["vocab"]["zz"] = 5000000; },
       "field \"vocab\": token \"zz\": id 5000000 is outside [0, "},
      {[](nlohmann::json& j) { j["added_tokens"][0]["id"] = (1 << 30) - 1; },
       "added_tokens[0]: field \"id\": 1073741823 is outside [0, "},
      {[](nlohmann::json& j) { j["added_tokens"][0]["id"] = -1; },
       "added_tokens[0]: field \"id\": -1 is outside [0, "},
  };
  for (const Case& c : cases) {
    absl::Status s = LoadModified(c.change);
    ASSERT_FALSE(s.ok()) << c.message;
    EXPECT_THAT(Message(s), HasSubstr(c.message));
    EXPECT_THAT(Message(s), HasSubstr("tok.json"));
  }
  EXPECT_THAT(Message(Tokenizer::FromTokenizerJson("{\"model\": ", "tok.json").status()),
              HasSubstr("invalid JSON"));
  EXPECT_TRUE(
      absl::IsNotFound(Tokenizer::FromTokenizerJsonFile("/nonexistent/tokenizer.json").status()));
}

TEST(TokenizerSpecTest, AddedTokenIdsAreBoundedByTheTokenCount) {
  TokenizerSpec spec;
  spec.source = "spec";
  spec.vocab = {"a"};
  spec.added_tokens = {{(1 << 30) - 1, "<|x|>", true}};
  EXPECT_THAT(Message(Tokenizer::Create(spec).status()),
              HasSubstr("spec: added token \"<|x|>\" has id 1073741823, outside [0, 4)"));
}

// LoadTokenizer on a folder: config.json is optional, but a malformed one is an error.
TEST(LoadTokenizerTest, MalformedConfigJsonIsAnErrorNotIgnored) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/deep_config";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  const nlohmann::json tok = ReadJson("tiny_gpt2.tokenizer.json");
  std::ofstream(dir + "/tokenizer.json") << tok.dump();
  EXPECT_TRUE(LoadTokenizer(dir).ok());  // no config.json
  std::ofstream(dir + "/config.json") << std::string(1000, '[') << std::string(1000, ']');
  absl::Status s = LoadTokenizer(dir).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("config.json: JSON nested deeper than 64 levels"));
}

TEST(TokenizerJsonTest, MergesAsStringsOrPairsGiveTheSameTokenizer) {
  nlohmann::json json = ReadJson("tiny_gpt2.tokenizer.json");
  absl::StatusOr<Tokenizer> pairs = Tokenizer::FromTokenizerJson(json.dump(), "pairs");
  nlohmann::json strings = nlohmann::json::array();
  for (const nlohmann::json& m : json["model"]["merges"]) {
    strings.push_back(m.is_array() ? m[0].get<std::string>() + " " + m[1].get<std::string>()
                                   : m.get<std::string>());
  }
  json["model"]["merges"] = strings;
  absl::StatusOr<Tokenizer> lines = Tokenizer::FromTokenizerJson(json.dump(), "lines");
  ASSERT_TRUE(pairs.ok() && lines.ok());
  const std::string text = "The Licensor grants You a perpetual, worldwide license 2024.";
  EXPECT_EQ(pairs->Encode(text), lines->Encode(text));
}

TEST(GgufTokenizerTest, UnsupportedVocabulariesAreErrors) {
  auto load = [](testing::GgufBuilder b) {
    return Tokenizer::FromGguf(*GgufFile::Parse(MappedFile::FromBytes(b.Build(), "v.gguf")))
        .status();
  };
  EXPECT_THAT(Message(load(testing::GgufBuilder().String("tokenizer.ggml.model", "llama"))),
              HasSubstr("v.gguf: tokenizer.ggml.model \"llama\" is not implemented"));
  EXPECT_THAT(Message(load(testing::GgufBuilder()
                               .String("tokenizer.ggml.model", "gpt2")
                               .String("tokenizer.ggml.pre", "falcon"))),
              HasSubstr("tokenizer.ggml.pre \"falcon\" is not implemented"));
  EXPECT_THAT(Message(load(testing::GgufBuilder()
                               .String("tokenizer.ggml.model", "gpt2")
                               .String("tokenizer.ggml.pre", "gpt-2"))),
              HasSubstr("missing metadata key \"tokenizer.ggml.tokens\""));
}

}  // namespace
}  // namespace kvgate::runtime
