// Normalizers, pre-tokenizers, decoders, post-processors, added tokens and truncation, each
// on small hand-made tokenizers, with expectations taken from the tokenizers library's
// documented behaviour (its own unit tests use these sentences).
//
// Two observation tricks keep the tests on the public API:
// - pieces: a WordLevel model whose vocabulary lists the expected pieces (anything else is
//   <unk>), so the ids spell out how the text was cut;
// - bytes: a byte-level BPE without merges (id = byte value), so the ids spell out the exact
//   normalized text.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wick/error.h"
#include "wick/tokenizer.h"

namespace {

using Json = nlohmann::json;
using Strings = std::vector<std::string>;

Json base(Json model) {
  return {{"version", "1.0"}, {"added_tokens", Json::array()}, {"normalizer", nullptr},
          {"pre_tokenizer", nullptr}, {"post_processor", nullptr}, {"decoder", nullptr},
          {"model", std::move(model)}};
}

Json word_level(const Strings& tokens) {
  Json v = {{"<unk>", 0}};
  for (const auto& t : tokens)
    if (!v.contains(t)) v[t] = static_cast<int>(v.size());
  return {{"type", "WordLevel"}, {"vocab", v}, {"unk_token", "<unk>"}};
}

// The pieces the pipeline produced (each must be in the vocabulary to be seen).
Strings pieces(const wick::Tokenizer& t, const std::string& text) {
  Strings out;
  for (int32_t id : t.encode(text, false)) out.push_back(t.id_to_token(id).value_or("?"));
  return out;
}

wick::Tokenizer with_pre_tokenizer(const Json& pre, const Strings& expected) {
  Json j = base(word_level(expected));
  j["pre_tokenizer"] = pre;
  return wick::Tokenizer::from_json(j.dump(), "pre-tokenizer-test");
}

void expect_pieces(const Json& pre, const std::string& text, const Strings& expected) {
  wick::Tokenizer t = with_pre_tokenizer(pre, expected);
  EXPECT_EQ(pieces(t, text), expected) << pre.dump() << " on \"" << text << "\"";
}

// Byte-level BPE without merges: ids are the bytes of the normalized text.
Json byte_model() {
  Json v = Json::object();
  // The GPT-2 byte alphabet: printable Latin-1 bytes stand for themselves.
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    v[s] = b;
  }
  return {{"type", "BPE"}, {"vocab", v}, {"merges", Json::array()}};
}

std::string normalized(const Json& normalizer, const std::string& text) {
  Json j = base(byte_model());
  j["normalizer"] = normalizer;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  wick::Tokenizer t = wick::Tokenizer::from_json(j.dump(), "normalizer-test");
  std::string out;
  for (int32_t id : t.encode(text, false)) out.push_back(static_cast<char>(id));
  return out;
}

Json split(Json pattern, const char* behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", std::move(pattern)}, {"behavior", behavior}, {"invert", invert}};
}

TEST(TokenizerPreTokenizers, SplitBehaviors) {
  Json space = {{"String", " "}};
  const std::string s = "How are you doing?";
  expect_pieces(split(space, "Removed"), s, {"How", "are", "you", "doing?"});
  expect_pieces(split(space, "Isolated"), s, {"How", " ", "are", " ", "you", " ", "doing?"});
  expect_pieces(split(space, "MergedWithPrevious"), s, {"How ", "are ", "you ", "doing?"});
  expect_pieces(split(space, "MergedWithNext"), s, {"How", " are", " you", " doing?"});
  expect_pieces(split({{"String", "-"}}, "Contiguous"), "The-final--countdown",
                {"The", "-", "final", "--", "countdown"});
  // invert: the regex matches the pieces to keep.
  expect_pieces(split({{"Regex", "\\w+"}}, "Removed", true), "hey, you!", {"hey", "you"});
  expect_pieces(split({{"Regex", "\\s+"}}, "Removed", true), "a  b", {"  "});
}

TEST(TokenizerPreTokenizers, RegexesUseOnigurumaClasses) {
  // \s is Unicode White_Space: U+3000 splits, U+180E (no longer a space since Unicode 6.3)
  // and U+200B do not.
  Json ws = split({{"Regex", "\\s+"}}, "Removed");
  expect_pieces(ws, "a\xE3\x80\x80" "b", {"a", "b"});
  expect_pieces(ws, "a\xE1\xA0\x8E" "b", {"a\xE1\xA0\x8E" "b"});
  // \w takes marks (U+0301) and excludes other numbers (U+00B2 superscript two).
  Json w = split({{"Regex", "\\w+"}}, "Isolated");
  expect_pieces(w, "e\xCC\x81x", {"e\xCC\x81x"});
  expect_pieces(w, "x\xC2\xB2y", {"x", "\xC2\xB2", "y"});
  // (?i) folds the long s: 'ſ matches 's.
  expect_pieces(split({{"Regex", "(?i:'s)"}}, "Isolated"), "it'\xC5\xBF", {"it", "'\xC5\xBF"});
}

TEST(TokenizerPreTokenizers, ByteLevel) {
  Json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  expect_pieces(bl, "Hello my friend, how is your day going?",
                {"Hello", "\xC4\xA0my", "\xC4\xA0" "friend", ",", "\xC4\xA0how", "\xC4\xA0is",
                 "\xC4\xA0your", "\xC4\xA0" "day", "\xC4\xA0going", "?"});
  bl["add_prefix_space"] = true;
  expect_pieces(bl, "Hello  world", {"\xC4\xA0Hello", "\xC4\xA0", "\xC4\xA0world"});
  bl["use_regex"] = false;
  expect_pieces(bl, "a b\n", {"\xC4\xA0" "a\xC4\xA0" "b\xC4\x8A"});
}

TEST(TokenizerPreTokenizers, WhitespaceBertDigitsPunctuationMetaspace) {
  expect_pieces({{"type", "Whitespace"}}, "How are you doing?", {"How", "are", "you", "doing", "?"});
  expect_pieces({{"type", "Whitespace"}}, "\n", {});
  expect_pieces({{"type", "WhitespaceSplit"}}, "Hey man!", {"Hey", "man!"});
  expect_pieces({{"type", "BertPreTokenizer"}}, "Hey friend!     How are you?!?",
                {"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"});
  expect_pieces({{"type", "Digits"}, {"individual_digits", true}}, "Hey 123 friend!",
                {"Hey ", "1", "2", "3", " friend!"});
  expect_pieces({{"type", "Digits"}, {"individual_digits", false}}, "Hey 123 friend!",
                {"Hey ", "123", " friend!"});
  expect_pieces({{"type", "Punctuation"}, {"behavior", "Isolated"}}, "Hey friend!     How are you?!?",
                {"Hey friend", "!", "     How are you", "?", "!", "?"});
  expect_pieces({{"type", "CharDelimiterSplit"}, {"delimiter", "-"}}, "a-b--c", {"a", "b", "c"});
  Json ms = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"},
             {"split", true}};
  expect_pieces(ms, "Hey   friend!",
                {"\xE2\x96\x81Hey", "\xE2\x96\x81", "\xE2\x96\x81", "\xE2\x96\x81" "friend!"});
  // "first": only the piece at the start of the text gets the prefix.
  Json seq = {{"type", "Sequence"},
              {"pretokenizers", Json::array({{{"type", "WhitespaceSplit"}},
                                             {{"type", "Metaspace"},
                                              {"replacement", "\xE2\x96\x81"},
                                              {"prepend_scheme", "first"},
                                              {"split", false}}})}};
  expect_pieces(seq, "Hey friend", {"\xE2\x96\x81Hey", "friend"});
  expect_pieces(seq, " Hey friend", {"Hey", "friend"});  // the first piece starts at 1
}

TEST(TokenizerNormalizers, UnicodeForms) {
  Json nfc = {{"type", "NFC"}}, nfd = {{"type", "NFD"}}, nfkc = {{"type", "NFKC"}},
       nfkd = {{"type", "NFKD"}};
  EXPECT_EQ(normalized(nfc, "e\xCC\x81"), "\xC3\xA9");                  // e + acute -> é
  EXPECT_EQ(normalized(nfc, "\xE2\x84\xAB"), "\xC3\x85");               // Angstrom sign -> Å
  EXPECT_EQ(normalized(nfc, "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // jamo -> 각
  EXPECT_EQ(normalized(nfc, "e\xCC\x81\xCC\xA3"), "\xE1\xBA\xB9\xCC\x81");  // reordered: ẹ + acute
  EXPECT_EQ(normalized(nfc, "x\xEF\xAC\x81y"), "x\xEF\xAC\x81y");       // ﬁ is NFC-stable
  EXPECT_EQ(normalized(nfc, "plain ascii"), "plain ascii");
  EXPECT_EQ(normalized(nfkc, "\xEF\xAC\x81\xE2\x91\xA0\xEF\xBC\xA1"), "fi1A");  // ﬁ ① Ａ
  EXPECT_EQ(normalized(nfd, "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(normalized(nfd, "\xEA\xB0\x81"), "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8");
  EXPECT_EQ(normalized(nfkd, "\xEF\xAC\x81\xC3\xA9"), "fie\xCC\x81");
  // Long mixed text: stable runs are copied, the rest goes through utf8proc.
  std::string mixed, want;
  for (int i = 0; i < 200; ++i) {
    mixed += "abc \xE4\xB8\xAD e\xCC\x81 ";
    want += "abc \xE4\xB8\xAD \xC3\xA9 ";
  }
  EXPECT_EQ(normalized(nfc, mixed), want);
}

TEST(TokenizerNormalizers, LowercaseStripReplacePrependSequence) {
  EXPECT_EQ(normalized({{"type", "Lowercase"}}, "HeLLo \xC4\xB0 \xCE\xA3\xCE\x91\xCE\xA3"),
            "hello i\xCC\x87 \xCF\x83\xCE\xB1\xCF\x83");  // İ -> i + dot; no final sigma
  EXPECT_EQ(normalized({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}},
                       " \t hi there \xE3\x80\x80"),
            "hi there");
  EXPECT_EQ(normalized({{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}, "  hi  "),
            "  hi");
  EXPECT_EQ(normalized({{"type", "StripAccents"}}, "e\xCC\x81t\xC3\xA9"), "et\xC3\xA9");
  EXPECT_EQ(normalized({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}},
                       "a b  c"),
            "a\xE2\x96\x81" "b\xE2\x96\x81\xE2\x96\x81" "c");
  EXPECT_EQ(normalized({{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}},
                       "a b    c"),
            "a b c");
  EXPECT_EQ(normalized({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, "hi"), "\xE2\x96\x81hi");
  EXPECT_EQ(normalized({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, ""), "");
  Json seq = {{"type", "Sequence"},
              {"normalizers", Json::array({{{"type", "NFD"}}, {{"type", "StripAccents"}},
                                           {{"type", "Lowercase"}}})}};
  EXPECT_EQ(normalized(seq, "Caf\xC3\xA9 \xC3\x85ngstr\xC3\xB6m"), "cafe angstrom");
}

TEST(TokenizerNormalizers, BertNormalizer) {
  Json bert = {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
               {"strip_accents", nullptr}, {"lowercase", true}};
  // Controls vanish (also U+0085, which is White_Space too); tabs and other spaces become ' ';
  // ideographs get spaces around them; accents are stripped because lowercase is on.
  EXPECT_EQ(normalized(bert, "H\xC3\xA9llo\tW\x01orld\xC2\x85!\xE4\xB8\xAD\xE2\x80\x83x"),
            "hello world! \xE4\xB8\xAD  x");
  bert["lowercase"] = false;
  bert["strip_accents"] = false;
  EXPECT_EQ(normalized(bert, "H\xC3\xA9llo"), "H\xC3\xA9llo");
}

// ---- decoders ---------------------------------------------------------------------------

std::string decoded(const Json& decoder, const Strings& tokens, bool skip_special = false) {
  Json j = base(word_level(tokens));
  j["decoder"] = decoder;
  wick::Tokenizer t = wick::Tokenizer::from_json(j.dump(), "decoder-test");
  std::vector<int32_t> ids;
  for (const auto& s : tokens) ids.push_back(*t.token_to_id(s));
  return t.decode(ids, skip_special);
}

TEST(TokenizerDecoders, EachDecoder) {
  Json fuse = {{"type", "Fuse"}};
  Json bytes = {{"type", "ByteFallback"}};
  Json seq = {{"type", "Sequence"}, {"decoders", Json::array({bytes, fuse})}};
  // a é x, an invalid byte, y, and "+A" parses as 0x0A; a run of bytes that is not UTF-8
  // becomes one U+FFFD per byte.
  EXPECT_EQ(decoded(seq, {"<0x61>", "<0xC3>", "<0xA9>", "x", "<0xFF>", "y", "<0x+A>"}),
            "a\xC3\xA9x\xEF\xBF\xBDy\n");
  EXPECT_EQ(decoded(seq, {"<0xE4>", "<0xB8>"}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(decoded({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}}, {" ab ", "  c"}),
            "ab c");
  EXPECT_EQ(decoded({{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                    {"\xE2\x96\x81Hey", "\xE2\x96\x81" "friend"}),
            " Hey friend");
  EXPECT_EQ(decoded({{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}},
                    {"\xE2\x96\x81Hey", "\xE2\x96\x81" "friend", "!"}),
            "Hey friend!");
  EXPECT_EQ(decoded({{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}},
                    {"un", "##aff", "##able", ",", "i", "'m", "do", "n't", "."}),
            "unaffable, i'm don't.");
  EXPECT_EQ(decoded({{"type", "BPEDecoder"}, {"suffix", "</w>"}}, {"hel", "lo</w>", "world</w>"}),
            "hello world");
  EXPECT_EQ(decoded({{"type", "ByteLevel"}}, {"Hello", "\xC4\xA0world", "\xC4\x8A"}), "Hello world\n");
  // No decoder: tokens joined by spaces.
  EXPECT_EQ(decoded(nullptr, {"a", "b"}), "a b");
}

TEST(TokenizerDecoders, ByteLevelBrokenUtf8BecomesReplacementCharacters) {
  // Ã = 0xC3 alone, then 'a': one U+FFFD for the lone lead byte.
  EXPECT_EQ(decoded({{"type", "ByteLevel"}}, {"\xC3\x83", "a"}), "\xEF\xBF\xBD" "a");
  // A token outside the byte alphabet is taken as its own UTF-8.
  EXPECT_EQ(decoded({{"type", "ByteLevel"}}, {"\xE4\xB8\xAD"}), "\xE4\xB8\xAD");
}

// ---- added tokens, post-processors, truncation ---------------------------------------------

Json added(const std::string& content, int id, bool special, Json extra = Json::object()) {
  Json t = {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
            {"rstrip", false}, {"normalized", !special}, {"special", special}};
  t.update(extra);
  return t;
}

TEST(TokenizerAddedTokens, LeftmostLongestAndStripping) {
  Strings vocab = {"x", "y", "fill", " x", "here", "<a>", "<a><b>", " ", "a"};
  Json j = base(word_level(vocab));
  j["added_tokens"] = Json::array({added("<a>", 100, true), added("<a><b>", 101, true),
                                   added("<mask>", 102, true, {{"lstrip", true}}),
                                   added("<r>", 103, true, {{"rstrip", true}}),
                                   added("<w>", 104, false, {{"single_word", true}})});
  j["pre_tokenizer"] = {{"type", "WhitespaceSplit"}};
  wick::Tokenizer t = wick::Tokenizer::from_json(j.dump(), "added-test");
  // Ids of new added tokens follow the vocabulary (the file's "id" is not used): "<a>" and
  // "<a><b>" are in the vocabulary already.
  int32_t a = *t.token_to_id("<a>"), ab = *t.token_to_id("<a><b>");
  int32_t mask = *t.token_to_id("<mask>"), r = *t.token_to_id("<r>"), w = *t.token_to_id("<w>");
  EXPECT_EQ(a, 6);
  EXPECT_EQ(ab, 7);
  EXPECT_EQ(mask, 10);  // 10 entries in the vocabulary (with <unk>)
  EXPECT_EQ(r, 11);
  EXPECT_EQ(w, 12);
  int32_t x = *t.token_to_id("x"), y = *t.token_to_id("y"), fill = *t.token_to_id("fill");
  EXPECT_EQ(t.encode("x<a><b>y<a>", false), (std::vector<int32_t>{x, ab, y, a}));
  EXPECT_EQ(t.encode("fill   <mask>x", false), (std::vector<int32_t>{fill, mask, x}));
  EXPECT_EQ(t.encode("<r>   x", false), (std::vector<int32_t>{r, x}));
  // single_word: only between non-word characters.
  EXPECT_EQ(t.encode("x <w> y", false), (std::vector<int32_t>{x, w, y}));
  EXPECT_EQ(t.encode("x<w>", false).size(), 1u);  // "x<w>" is one unknown piece
  EXPECT_EQ(t.vocab_size(), 13);
  EXPECT_TRUE(t.is_special(mask));
  EXPECT_FALSE(t.is_special(w));
  EXPECT_FALSE(t.is_special(x));
}

TEST(TokenizerAddedTokens, SpecialTokensAreSkippedOnRequest) {
  Json j = base(word_level({"hi", " "}));
  j["added_tokens"] = Json::array({added("<s>", 0, true), added("<plain>", 0, false)});
  j["decoder"] = {{"type", "Fuse"}};
  wick::Tokenizer t = wick::Tokenizer::from_json(j.dump(), "skip-test");
  std::vector<int32_t> ids = t.encode("<s>hi<plain>");
  EXPECT_EQ(t.decode(ids), "<s>hi<plain>");
  EXPECT_EQ(t.decode(ids, true), "hi<plain>");
  // Unknown ids are dropped.
  std::vector<int32_t> odd = {*t.token_to_id("hi"), 999, -5};
  EXPECT_EQ(t.decode(odd), "hi");
}

TEST(TokenizerPostProcessors, TemplatesBertRobertaSequenceAndTruncation) {
  Strings vocab = {"<s>", "</s>", "a", "b", "c", "d", "e"};
  auto make = [&](Json post, Json trunc = nullptr) {
    Json j = base(word_level(vocab));
    j["pre_tokenizer"] = {{"type", "WhitespaceSplit"}};
    j["post_processor"] = post;
    j["truncation"] = trunc;
    return wick::Tokenizer::from_json(j.dump(), "post-test");
  };
  Json tmpl = {{"type", "TemplateProcessing"},
               {"single", Json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                       {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
               {"pair", Json::array()},
               {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}},
                                   {"</s>", {{"id", "</s>"}, {"ids", {2}}, {"tokens", {"</s>"}}}}}}};
  EXPECT_EQ(make(tmpl).encode("a b"), (std::vector<int32_t>{1, 3, 4, 2}));
  EXPECT_EQ(make(tmpl).encode("a b", false), (std::vector<int32_t>{3, 4}));
  Json bert = {{"type", "BertProcessing"}, {"sep", {"</s>", 2}}, {"cls", {"<s>", 1}}};
  EXPECT_EQ(make(bert).encode("a"), (std::vector<int32_t>{1, 3, 2}));
  Json roberta = {{"type", "RobertaProcessing"}, {"sep", {"</s>", 2}}, {"cls", {"<s>", 1}},
                  {"trim_offsets", true}, {"add_prefix_space", true}};
  EXPECT_EQ(make(roberta).encode("a"), (std::vector<int32_t>{1, 3, 2}));
  Json seq = {{"type", "Sequence"},
              {"processors", Json::array({{{"type", "ByteLevel"}, {"trim_offsets", false}}, tmpl})}};
  EXPECT_EQ(make(seq).encode("c"), (std::vector<int32_t>{1, 5, 2}));
  // Truncation leaves room for the added tokens.
  Json right = {{"max_length", 4}, {"stride", 0}, {"strategy", "LongestFirst"}, {"direction", "Right"}};
  EXPECT_EQ(make(tmpl, right).encode("a b c d e"), (std::vector<int32_t>{1, 3, 4, 2}));
  EXPECT_EQ(make(tmpl, right).encode("a b c d e", false), (std::vector<int32_t>{3, 4, 5, 6}));
  Json left = right;
  left["direction"] = "Left";
  EXPECT_EQ(make(tmpl, left).encode("a b c d e"), (std::vector<int32_t>{1, 6, 7, 2}));
}

TEST(TokenizerStreamDecoder, HoldsBackIncompleteCharacters) {
  Json j = base(byte_model());
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  j["decoder"] = {{"type", "ByteLevel"}};
  wick::Tokenizer t = wick::Tokenizer::from_json(j.dump(), "stream-test");
  std::string text = "a\xF0\x9F\x98\x80" "b\xC3\xA9";  // a 😀 b é
  std::vector<int32_t> ids = t.encode(text);
  ASSERT_EQ(ids.size(), text.size());
  wick::StreamDecoder s = t.stream_decoder();
  std::vector<std::string> chunks;
  for (int32_t id : ids) chunks.push_back(s.push(id));
  EXPECT_EQ(chunks, (Strings{"a", "", "", "", "\xF0\x9F\x98\x80", "b", "", "\xC3\xA9"}));
  EXPECT_EQ(s.flush(), "");
  // A stream cut inside a character: flush gives what is left, with U+FFFD.
  EXPECT_EQ(s.push(ids[1]), "");
  EXPECT_EQ(s.flush(), "\xEF\xBF\xBD");
}

TEST(TokenizerThreads, BatchAndConcurrentEncodesMatchSerial) {
  Json j = base(byte_model());
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  wick::Tokenizer t = wick::Tokenizer::from_json(j.dump(), "thread-test");
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i)
    texts.push_back("text number " + std::to_string(i) + std::string(static_cast<size_t>(i % 17), 'x'));
  std::vector<std::vector<int32_t>> serial;
  for (const auto& s : texts) serial.push_back(t.encode(s));
  EXPECT_EQ(t.encode_batch(texts, true, 4), serial);
  EXPECT_EQ(t.encode_batch(texts, true, 1), serial);
  EXPECT_EQ(t.encode_batch(std::vector<std::string>{}, true, 4).size(), 0u);
  // An error in one text reaches the caller.
  texts[150] = "bad \xFF utf-8";
  EXPECT_THROW(t.encode_batch(texts, true, 3), wick::Error);
}

}  // namespace
