// The streamed text of one sequence (src/infer/text_stream.h): stop strings across tokens, text
// held back only while it could still become a stop string, whole UTF-8 characters, EOS.
#include <gtest/gtest.h>

#include "common/byte_tokenizer.h"
#include "infer/text_stream.h"
#include "wick/error.h"

namespace {

using wick::detail::TextStream;

struct Fed {
  std::vector<std::string> pieces;
  TextStream::Step last;
};

// Feeds the bytes of `text` as byte tokens (the last one marked last when `last`).
Fed feed(TextStream& s, const std::string& text, bool last = false) {
  Fed f;
  for (size_t i = 0; i < text.size(); ++i) {
    f.last = s.push(static_cast<unsigned char>(text[i]), false, last && i + 1 == text.size());
    f.pieces.push_back(f.last.piece);
    if (f.last.stopped) break;
  }
  return f;
}

const wick::Tokenizer& tok() {
  static wick::Tokenizer t = wt::byte_tokenizer();
  return t;
}

TEST(TextStream, HoldsBackOnlyWhatCouldStillBecomeAStopString) {
  TextStream s(&tok(), false, {"lo!"});
  Fed f = feed(s, "hellox");
  EXPECT_EQ(f.pieces, (std::vector<std::string>{"h", "e", "", "l", "", "lox"}));
  EXPECT_FALSE(f.last.stopped);
  EXPECT_EQ(s.text(), "hellox");
  EXPECT_EQ(s.released_text(), "hellox");
}

TEST(TextStream, StopsAtTheEarliestEndingMatchAndCutsAfterIt) {
  TextStream s(&tok(), false, {"cde", "bc", "xyz"});
  Fed f = feed(s, "abcdef");
  EXPECT_TRUE(f.last.stopped);
  EXPECT_EQ(f.last.stop_string, "bc");
  EXPECT_EQ(s.text(), "abc");
  std::string all;
  for (auto& p : f.pieces) all += p;
  EXPECT_EQ(all, "abc");
}

TEST(TextStream, AStopStringInsideOneTokenCutsThatToken) {
  // Token 256 is "xyz": a stop string ending inside it drops the rest of the token's text.
  wick::Tokenizer t = wt::byte_tokenizer("", {{"x", "y"}, {"xy", "z"}});
  TextStream s(&t, false, {"ax"});
  EXPECT_EQ(s.push('a', false, false).piece, "");
  auto step = s.push(257, false, false);
  EXPECT_TRUE(step.stopped);
  EXPECT_EQ(step.piece, "ax");
  EXPECT_EQ(s.text(), "ax");
}

TEST(TextStream, NeverSplitsACharacter) {
  TextStream s(&tok(), false, {});
  Fed f = feed(s, "\xC3\xA9\xE2\x82\xAC", true);  // é €
  EXPECT_EQ(f.pieces, (std::vector<std::string>{"", "\xC3\xA9", "", "", "\xE2\x82\xAC"}));
}

TEST(TextStream, LastTokenReleasesTheHeldTextAndIncompleteBytes) {
  TextStream s(&tok(), false, {"ab"});
  Fed f = feed(s, "xa", true);
  EXPECT_EQ(f.pieces.back(), "a");
  EXPECT_EQ(s.text(), "xa");
  TextStream t(&tok(), false, {});
  t.push('q', false, false);
  auto step = t.push(0xC3, false, true);  // a lone lead byte at the end
  EXPECT_EQ(step.piece, "\xEF\xBF\xBD");
}

TEST(TextStream, EosAddsNoTextButFlushes) {
  TextStream s(&tok(), false, {"zz"});
  feed(s, "az");
  auto step = s.push('Q', true, true);
  EXPECT_EQ(step.piece, "z");
  EXPECT_EQ(s.text(), "az");
}

TEST(TextStream, NoTokenizerNoText) {
  TextStream s(nullptr, false, {});
  EXPECT_EQ(s.push(65, false, true).piece, "");
  EXPECT_THROW(TextStream(nullptr, false, {"x"}), wick::Error);
  EXPECT_THROW(TextStream(&tok(), false, {"a", ""}), wick::Error);
  EXPECT_THROW(TextStream(&tok(), false, {"\xE2\x82"}), wick::Error);  // not UTF-8: could cut a character
}

}  // namespace
