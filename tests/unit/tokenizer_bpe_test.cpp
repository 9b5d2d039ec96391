// The BPE model against a naive reference (string symbols, repeated scan for the lowest-rank
// adjacent pair, leftmost on ties), on random vocabularies grown the way BPE training grows
// them, plus the model options: merges as "a b" strings or pairs, ignore_merges, unk and
// fuse_unk, byte_fallback, continuing_subword_prefix / end_of_word_suffix.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wick/error.h"
#include "wick/tokenizer.h"

namespace {

using Json = nlohmann::json;

// A tokenizer around a BPE model; the whole text is one piece (no pre-tokenizer).
wick::Tokenizer bpe_tokenizer(const Json& model) {
  Json j = {{"version", "1.0"}, {"added_tokens", Json::array()}, {"normalizer", nullptr},
            {"pre_tokenizer", nullptr}, {"post_processor", nullptr}, {"decoder", nullptr},
            {"model", model}};
  return wick::Tokenizer::from_json(j.dump(), "bpe-test");
}

// Textbook BPE on strings.
std::vector<std::string> naive_bpe(const std::string& word,
                                   const std::vector<std::pair<std::string, std::string>>& merges) {
  // A pair listed twice keeps its last rank (the library collects merges into a hash map).
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t i = 0; i < merges.size(); ++i) rank[merges[i]] = i;
  std::vector<std::string> s;
  for (char c : word) s.emplace_back(1, c);
  while (s.size() > 1) {
    size_t best = s.size(), best_rank = SIZE_MAX;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      auto it = rank.find({s[i], s[i + 1]});
      if (it != rank.end() && it->second < best_rank) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best == s.size()) break;
    s[best] += s[best + 1];
    s.erase(s.begin() + static_cast<ptrdiff_t>(best) + 1);
  }
  return s;
}

TEST(TokenizerBpe, MatchesNaiveReferenceOnRandomVocabularies) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::string> tokens = {"a", "b", "c", "d"};
    std::vector<std::pair<std::string, std::string>> merges;
    std::map<std::string, int> vocab;
    for (const auto& t : tokens) vocab.emplace(t, static_cast<int>(vocab.size()));
    // Grow merges from random pairs of existing tokens (duplicates and all).
    int n_merges = 10 + trial * 5;
    for (int m = 0; m < n_merges; ++m) {
      const std::string& l = tokens[rng() % tokens.size()];
      const std::string& r = tokens[rng() % tokens.size()];
      std::string merged = l + r;
      if (merged.size() > 8) continue;
      merges.emplace_back(l, r);
      if (vocab.emplace(merged, static_cast<int>(vocab.size())).second) tokens.push_back(merged);
    }
    Json v = Json::object();
    for (const auto& [t, id] : vocab) v[t] = id;
    Json pairs = Json::array(), lines = Json::array();
    for (const auto& [l, r] : merges) {
      pairs.push_back({l, r});
      lines.push_back(l + " " + r);
    }
    wick::Tokenizer as_pairs = bpe_tokenizer({{"type", "BPE"}, {"vocab", v}, {"merges", pairs}});
    wick::Tokenizer as_lines = bpe_tokenizer({{"type", "BPE"}, {"vocab", v}, {"merges", lines}});
    for (int w = 0; w < 200; ++w) {
      // Mostly short words, some long enough for the heap path (more than 48 symbols).
      size_t len = 1 + rng() % (w % 10 == 0 ? 120 : 12);
      std::string word;
      for (size_t k = 0; k < len; ++k) word.push_back(static_cast<char>('a' + rng() % 4));
      std::vector<int32_t> want;
      for (const auto& s : naive_bpe(word, merges)) want.push_back(vocab.at(s));
      ASSERT_EQ(as_pairs.encode(word), want) << "trial " << trial << " word " << word;
      ASSERT_EQ(as_lines.encode(word), want) << "trial " << trial << " word " << word;
      // Twice: the second answer comes from the per-thread cache.
      ASSERT_EQ(as_pairs.encode(word), want);
    }
  }
}

TEST(TokenizerBpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  // "abc" is in the vocabulary but the merges would build "a"+"bc" only through "bc".
  Json v = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}, {"bc", 5}};
  Json merges = Json::array({Json::array({"b", "c"}), Json::array({"a", "b"})});
  wick::Tokenizer plain = bpe_tokenizer({{"type", "BPE"}, {"vocab", v}, {"merges", merges}});
  wick::Tokenizer ignore = bpe_tokenizer(
      {{"type", "BPE"}, {"vocab", v}, {"merges", merges}, {"ignore_merges", true}});
  EXPECT_EQ(plain.encode("abc"), (std::vector<int32_t>{0, 5}));  // b+c first, then nothing
  EXPECT_EQ(ignore.encode("abc"), (std::vector<int32_t>{4}));
  EXPECT_EQ(ignore.encode("abcc"), (std::vector<int32_t>{0, 5, 2}));  // not in vocab: merges
}

TEST(TokenizerBpe, UnknownCharactersUnkFuseAndByteFallback) {
  Json v = {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"<0xC3>", 3}, {"<0xA9>", 4}};
  Json merges = Json::array();
  auto make = [&](Json extra) {
    Json m = {{"type", "BPE"}, {"vocab", v}, {"merges", merges}};
    m.update(extra);
    return bpe_tokenizer(m);
  };
  // No unk token: unknown characters vanish.
  EXPECT_EQ(make(Json::object()).encode("axyb"), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(make({{"unk_token", "<unk>"}}).encode("axyb"), (std::vector<int32_t>{1, 0, 0, 2}));
  EXPECT_EQ(make({{"unk_token", "<unk>"}, {"fuse_unk", true}}).encode("axyb"),
            (std::vector<int32_t>{1, 0, 2}));
  // é is C3 A9: both bytes exist; ü (C3 BC) has no <0xBC>, so it falls to unk.
  EXPECT_EQ(make({{"unk_token", "<unk>"}, {"byte_fallback", true}}).encode("a\xC3\xA9"),
            (std::vector<int32_t>{1, 3, 4}));
  EXPECT_EQ(make({{"unk_token", "<unk>"}, {"byte_fallback", true}}).encode("a\xC3\xBC"),
            (std::vector<int32_t>{1, 0}));
  // An unk token that is not in the vocabulary is an error only when a text needs it.
  wick::Tokenizer bad = make({{"unk_token", "<nope>"}});
  EXPECT_EQ(bad.encode("ab"), (std::vector<int32_t>{1, 2}));
  EXPECT_THROW(bad.encode("ax"), wick::Error);
}

TEST(TokenizerBpe, SubwordPrefixAndSuffix) {
  // Characters after the first carry "##"; the last carries "</w>"; a merge drops the right
  // part's prefix.
  Json v = {{"a", 0}, {"##b", 1}, {"##c</w>", 2}, {"ab", 3}, {"abc</w>", 4}, {"c</w>", 5}};
  Json merges = Json::array({Json::array({"a", "##b"}), Json::array({"ab", "##c</w>"})});
  wick::Tokenizer t = bpe_tokenizer({{"type", "BPE"}, {"vocab", v}, {"merges", merges},
                                     {"continuing_subword_prefix", "##"},
                                     {"end_of_word_suffix", "</w>"}});
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{4}));
  EXPECT_EQ(t.encode("c"), (std::vector<int32_t>{5}));
  EXPECT_EQ(t.encode("ab"), (std::vector<int32_t>{0}));  // "##b</w>" is unknown and dropped
}

TEST(TokenizerBpe, VersionLinesAreSkippedInLegacyMerges) {
  Json v = {{"a", 0}, {"b", 1}, {"ab", 2}};
  wick::Tokenizer t = bpe_tokenizer(
      {{"type", "BPE"}, {"vocab", v}, {"merges", Json::array({"#version: 0.2", "a b"})}});
  EXPECT_EQ(t.encode("ab"), (std::vector<int32_t>{2}));
}

}  // namespace
