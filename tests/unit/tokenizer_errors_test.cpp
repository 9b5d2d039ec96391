// Untrusted tokenizer files: every malformed or unsupported input is a wick::Error whose
// message names the file and the field; truncated and corrupted files never crash.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "common/tokenizer_util.h"
#include "wick/error.h"
#include "wick/tokenizer.h"

namespace {

using Json = nlohmann::json;

Json valid() {
  return {{"version", "1.0"},
          {"added_tokens", Json::array({{{"id", 3}, {"content", "<s>"}, {"special", true},
                                         {"single_word", false}, {"lstrip", false},
                                         {"rstrip", false}, {"normalized", false}}})},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"},
            {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}},
            {"merges", Json::array({"a b"})}}}};
}

// Loading `j` fails with a message that contains every fragment.
void expect_error(const Json& j, std::initializer_list<std::string> fragments) {
  try {
    wick::Tokenizer::from_json(j.dump(), "broken.json");
    ADD_FAILURE() << "loaded without error: " << j.dump().substr(0, 300);
  } catch (const wick::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("broken.json"), std::string::npos) << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

TEST(TokenizerErrors, ValidBaselineLoads) {
  wick::Tokenizer t = wick::Tokenizer::from_json(valid().dump(), "ok.json");
  EXPECT_EQ(t.encode("ab<s>"), (std::vector<int32_t>{2, 3}));
}

TEST(TokenizerErrors, SyntaxAndShape) {
  EXPECT_THROW(wick::Tokenizer::from_json("{\"model\": ", "broken.json"), wick::Error);
  EXPECT_THROW(wick::Tokenizer::from_json("[]", "broken.json"), wick::Error);
  EXPECT_THROW(wick::Tokenizer::from_json("", "broken.json"), wick::Error);
  // A number literal too large for a double (the fuzzer's find).
  EXPECT_THROW(wick::Tokenizer::from_json("{\"version\": 1e999999}", "broken.json"), wick::Error);
  EXPECT_THROW(wick::Tokenizer::from_json("111.1e0000000000000000008000000000012618085355", "broken.json"),
               wick::Error);
  Json j = valid();
  j["version"] = "2.0";
  expect_error(j, {"version"});
  j = valid();
  j.erase("model");
  expect_error(j, {"model"});
  j = valid();
  j["added_tokens"] = "nope";
  expect_error(j, {"added_tokens"});
  j = valid();
  j["added_tokens"][0]["content"] = 5;
  expect_error(j, {"added_tokens[0]", "content"});
}

TEST(TokenizerErrors, UnsupportedComponentsAreNamed) {
  Json j = valid();
  j["model"]["type"] = "Unigram";
  expect_error(j, {"model", "Unigram"});
  j = valid();
  j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "xx"}};
  expect_error(j, {"normalizer", "Precompiled"});
  j = valid();
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", Json::array({{{"type", "UnicodeScripts"}}})}};
  expect_error(j, {"pre_tokenizer.pretokenizers[0]", "UnicodeScripts"});
  j = valid();
  j["decoder"] = {{"type", "CTC"}};
  expect_error(j, {"decoder", "CTC"});
  j = valid();
  j["post_processor"] = {{"type", "Mystery"}};
  expect_error(j, {"post_processor", "Mystery"});
  j = valid();
  j["normalizer"] = {{"kind", "NFC"}};
  expect_error(j, {"normalizer", "type"});
  j = valid();
  j["model"]["dropout"] = 0.1;
  expect_error(j, {"dropout"});
}

TEST(TokenizerErrors, VocabularyIds) {
  Json j = valid();
  j["model"]["vocab"]["c"] = "3";
  expect_error(j, {"model.vocab", "\"c\""});
  j = valid();
  j["model"]["vocab"]["c"] = -1;
  expect_error(j, {"model.vocab", "out of range"});
  j = valid();
  j["model"]["vocab"]["c"] = 4294967296LL;
  expect_error(j, {"model.vocab", "out of range"});
  j = valid();
  j["model"]["vocab"]["c"] = 1;
  expect_error(j, {"model.vocab", "id 1"});
  j = valid();
  j["model"]["vocab"] = Json::array();
  expect_error(j, {"model.vocab"});
}

TEST(TokenizerErrors, Merges) {
  Json j = valid();
  j["model"]["merges"] = Json::array({"a x"});
  expect_error(j, {"model.merges[0]", "\"x\""});
  j["model"]["merges"] = Json::array({"a b c"});
  expect_error(j, {"model.merges[0]"});
  j["model"]["merges"] = Json::array({Json::array({"a", "b"}), "a b"});
  expect_error(j, {"model.merges[1]"});
  j["model"]["merges"] = Json::array({Json::array({"a"})});
  expect_error(j, {"model.merges[0]"});
  j["model"]["merges"] = Json::array({Json::array({1, 2})});
  expect_error(j, {"model.merges[0]"});
  j["model"]["merges"] = Json::array({"b a"});  // "ba" is not in the vocabulary
  expect_error(j, {"model.merges[0]", "\"ba\""});
  j["model"]["merges"] = "a b";
  expect_error(j, {"model.merges"});
}

TEST(TokenizerErrors, PatternsTemplatesTruncation) {
  Json j = valid();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"},
                        {"invert", false}};
  expect_error(j, {"pre_tokenizer.pattern", "(unclosed"});
  j["pre_tokenizer"]["pattern"] = {{"Regex", "[a-z&&[^aeiou]]"}};
  expect_error(j, {"pre_tokenizer.pattern"});
  j["pre_tokenizer"]["pattern"] = {{"Glob", "*"}};
  expect_error(j, {"pre_tokenizer.pattern", "Glob"});
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"},
                        {"invert", false}};
  expect_error(j, {"behavior", "Sideways"});
  j = valid();
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", Json::array({{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}}})},
                         {"pair", Json::array()},
                         {"special_tokens", Json::object()}};
  expect_error(j, {"post_processor.single[0]", "<bos>"});
  j["post_processor"]["single"] = Json::array({{{"Sequence", {{"id", "B"}, {"type_id", 0}}}}});
  expect_error(j, {"post_processor.single[0]"});
  j = valid();
  j["post_processor"] = {{"type", "BertProcessing"}, {"sep", {"[SEP]", -4}}, {"cls", {"[CLS]", 0}}};
  expect_error(j, {"post_processor.sep"});
  j = valid();
  j["truncation"] = {{"max_length", -3}};
  expect_error(j, {"truncation", "max_length"});
  j = valid();
  j["decoder"] = {{"type", "Strip"}, {"content", "ab"}, {"start", 1}, {"stop", 0}};
  expect_error(j, {"decoder", "content"});
}

TEST(TokenizerErrors, InvalidTextAndPaths) {
  wick::Tokenizer t = wick::Tokenizer::from_json(valid().dump(), "ok.json");
  EXPECT_THROW(t.encode("a\xC3"), wick::Error);
  EXPECT_THROW(t.encode("\xED\xA0\x80"), wick::Error);  // a surrogate
  EXPECT_THROW(t.encode("\xC0\xAF"), wick::Error);      // overlong
  EXPECT_THROW(wick::Tokenizer::load("/nonexistent/tokenizer.json"), wick::Error);
  EXPECT_THROW(wick::Tokenizer::load(wt::source_path("tests/fixtures")), wick::Error);
  try {
    wick::Tokenizer::from_json(valid().dump(), "ok.json", "{\"bos_token\": 7}");
    ADD_FAILURE() << "bad tokenizer_config.json accepted";
  } catch (const wick::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
  }
}

// Every prefix of a real file fails cleanly; random byte corruption either loads (and then
// encodes and decodes) or fails with wick::Error.
TEST(TokenizerErrors, TruncatedAndCorruptedFiles) {
  std::string text = wt::read_text(wt::source_path("tests/fixtures/tokenizers/bert_tiny/tokenizer.json"));
  ASSERT_GT(text.size(), 1000u);
  for (size_t cut = 0; cut < text.size(); cut += 37) {
    EXPECT_THROW(wick::Tokenizer::from_json(std::string_view(text).substr(0, cut), "cut.json"),
                 wick::Error)
        << "cut at " << cut;
  }
  std::mt19937 rng(7);
  int loaded = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bad = text;
    // Mostly printable replacements (raw bytes would nearly always just break the UTF-8).
    for (int k = 0; k < 3; ++k)
      bad[rng() % bad.size()] = static_cast<char>(k == 0 && trial % 4 == 0 ? rng() % 256 : 32 + rng() % 95);
    try {
      wick::Tokenizer t = wick::Tokenizer::from_json(bad, "corrupt.json");
      std::vector<int32_t> ids = t.encode("Hello, world! unaffable 123 \xE4\xB8\xAD");
      t.decode(ids);
      ++loaded;
    } catch (const wick::Error&) {
    }
  }
  EXPECT_GT(loaded, 0);  // some corruptions hit harmless bytes (inside token strings)
}

}  // namespace
