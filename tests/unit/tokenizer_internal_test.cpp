// Private parts of the tokenizer checked against references: the hand-written split
// matchers against PCRE2 running the same patterns, and the chunked Unicode normalisation
// against whole-string normalisation.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "io/tok_fastsplit.h"
#include "io/tok_regex.h"
#include "io/tok_unicode.h"

#include <utf8proc.h>
#include <cstdlib>

namespace {

using namespace wick::detail::tok;
using Matches = std::vector<std::pair<size_t, size_t>>;

Matches matches_of(const Pattern& p, std::string_view s) {
  Matches m;
  p.for_each_match(s, [&](size_t b, size_t e) { m.emplace_back(b, e); });
  return m;
}

// Characters of every class the patterns distinguish (assigned long before Unicode 14, so
// that PCRE2's and utf8proc's tables agree on them).
const std::vector<std::string> kPool = {
    "a", "b", "s", "S", "t", "T", "r", "R", "e", "E", "v", "m", "M", "l", "L", "d", "D", "x",
    "'", "'", "'", "\xE2\x80\x99", "0", "1", "9", " ", " ", " ", "  ", "\t", "\r", "\n", "\r\n",
    "\x0B", "\x0C", "\xC2\x85", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8", "\xE1\xA0\x8E",
    "\xE2\x80\x8B", "\xEF\xBB\xBF", ".", ",", "!", "?", "-", "_", "(", "$", "\xE2\x82\xAC",
    "\xC2\xA9", "\xC3\xA9", "\xC3\x9F", "\xC5\xBF", "\xD0\x96", "\xE4\xB8\xAD", "\xE3\x81\x82",
    "\xED\x95\x9C", "\xCC\x81", "\xE0\xA4\x83", "\xC2\xB2", "\xE2\x91\xA0", "\xE2\x85\xAB",
    "\xD9\xA3", "\xF0\x9F\x98\x80", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", "\xE2\x80\x8D",
    "\xEF\xB8\x8F", "\xF0\x9D\x90\x80"};

TEST(TokenizerInternal, FastSplitMatchesPcre2) {
  const char* patterns[] = {
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
  std::mt19937 rng(99);
  for (const char* text : patterns) {
    Pattern fast = Pattern::regex(text, "test");
    Pattern slow = Pattern::regex_only(text, "test");
    ASSERT_TRUE(fast.is_fast()) << text;
    ASSERT_FALSE(slow.is_fast());
    for (int trial = 0; trial < 60000; ++trial) {
      std::string s;
      size_t len = rng() % (trial % 100 == 0 ? 200 : 14);
      for (size_t k = 0; k < len; ++k) s += kPool[rng() % kPool.size()];
      Matches a = matches_of(fast, s), b = matches_of(slow, s);
      ASSERT_EQ(a, b) << "pattern " << text << "\ntext: \"" << s << "\"";
    }
  }
  // A near miss of a known pattern stays on PCRE2.
  EXPECT_FALSE(Pattern::regex("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+", "test").is_fast());
}

TEST(TokenizerInternal, ChunkedNormalizationMatchesWholeString) {
  // Runs of stable characters are copied and only the rest goes through utf8proc; the result
  // must equal one utf8proc pass over the whole text.
  const std::vector<std::string> pool = {
      "a", "e", "o", " ", "x", "\xCC\x81", "\xCC\xA3", "\xCC\x88", "\xC3\xA9", "\xE1\x84\x80",
      "\xE1\x85\xA1", "\xE1\x86\xA8", "\xEA\xB0\x80", "\xE2\x84\xAB", "\xEF\xAC\x81",
      "\xE2\x91\xA0", "\xE4\xB8\xAD", "\xEF\xA4\x80", "\xE3\x81\x8B", "\xE3\x82\x99",
      "\xE0\xAE\x92", "\xE0\xAF\x97", "\xCE\x90", "\xF0\x9D\x85\x9E", "\xC3\x85",
      "\xE1\xBA\xB9", "\xF3\xA0\x84\x80", "\xF0\x9F\x98\x80"};
  std::mt19937 rng(5);
  const std::pair<NormForm, int> forms[] = {
      {NormForm::nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE},
      {NormForm::nfd, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE},
      {NormForm::nfkc, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT},
      {NormForm::nfkd, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT}};
  for (const auto& [form, options] : forms) {
    for (int trial = 0; trial < 20000; ++trial) {
      std::string s;
      size_t len = 1 + rng() % 16;
      for (size_t k = 0; k < len; ++k) s += pool[rng() % pool.size()];
      utf8proc_uint8_t* dst = nullptr;
      utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                        static_cast<utf8proc_ssize_t>(s.size()), &dst,
                                        static_cast<utf8proc_option_t>(options));
      ASSERT_GE(n, 0);
      std::string whole(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
      std::free(dst);
      ASSERT_EQ(normalize(s, form), whole) << "form " << int(form) << " on \"" << s << "\"";
    }
  }
}

}  // namespace
