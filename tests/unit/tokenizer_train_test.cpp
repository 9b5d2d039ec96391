// BPE training (wick/tokenizer_train.h): merges derived by hand on a tiny corpus, merges of a
// naive reference trainer on a random corpus (ties and repeated symbols everywhere),
// determinism, round trips, special tokens, errors, the tokenizer_config.json and its ChatML
// template, and the committed wick-trained tokenizer against the Hugging Face `tokenizers`
// library (tests/fixtures/tokenizers/wick-bpe, written by tests/tools/check_bpe_tokenizer.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/tokenizer_util.h"
#include "wick/chat_template.h"
#include "wick/error.h"
#include "wick/tokenizer.h"
#include "wick/tokenizer_train.h"

namespace {

using Json = nlohmann::json;
using Merges = std::vector<std::pair<std::string, std::string>>;

const std::vector<std::string> kSpecials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
const char* kFixtureDir = "tests/fixtures/tokenizers/wick-bpe";

wick::BpeTrainResult train(const std::vector<std::string>& texts, wick::BpeTrainerOptions o) {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  return wick::train_bpe_tokenizer(views, o);
}

Merges merges_of(const std::string& tokenizer_json) {
  Json j = Json::parse(tokenizer_json);
  Merges out;
  for (const Json& m : j.at("model").at("merges"))
    out.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
  return out;
}

std::string expect_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const wick::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no wick::Error";
  return "";
}

// "low"(1) " low"(2) " lower" " lowest": (l,o) and (o,w) both occur 5 times and (l,o) is the
// smaller pair ('l' < 'o'); then "lo w" (5), "Ġ low" (4), "Ġlow e" (2); every other pair occurs
// once, below min_frequency 2.
TEST(BpeTrain, TinyCorpusMergesByHand) {
  wick::BpeTrainerOptions o;
  o.min_frequency = 2;
  wick::BpeTrainResult r = train({"low low low lower lowest"}, o);
  EXPECT_EQ(merges_of(r.tokenizer_json),
            (Merges{{"l", "o"}, {"lo", "w"}, {"Ġ", "low"}, {"Ġlow", "e"}}));
  EXPECT_EQ(r.stopped_by, "min_frequency");
  EXPECT_EQ(r.vocab_size, 256 + 4);
  EXPECT_EQ(r.words, 5u);
  EXPECT_EQ(r.unique_words, 4u);
  EXPECT_EQ(r.corpus_bytes, 24u);

  // With min_frequency 1 the ties among the pairs seen once go to the smallest ids: (s,t) has
  // two byte symbols, so it comes before (Ġlowe, r); then (Ġlowe, r) before (Ġlowe, st).
  o.min_frequency = 1;
  o.vocab_size = 256 + 6;
  r = train({"low low low lower lowest"}, o);
  EXPECT_EQ(merges_of(r.tokenizer_json), (Merges{{"l", "o"},
                                                 {"lo", "w"},
                                                 {"Ġ", "low"},
                                                 {"Ġlow", "e"},
                                                 {"s", "t"},
                                                 {"Ġlowe", "r"}}));
  EXPECT_EQ(r.stopped_by, "vocab_size");

  // Ids: special tokens, then the byte symbols in code point order, then merges.
  o.special_tokens = {"<|endoftext|>"};
  o.vocab_size = 1 + 256 + 2;
  r = train({"low low low lower lowest"}, o);
  wick::Tokenizer tok = wick::Tokenizer::from_json(r.tokenizer_json, "trained");
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(tok.token_to_id("!"), 1);   // U+0021, the smallest code point of the alphabet
  EXPECT_EQ(tok.token_to_id("Ā"), 1 + 188);  // U+0100 = byte 0, after the 188 printable bytes
  EXPECT_EQ(tok.token_to_id("lo"), 257);
  EXPECT_EQ(tok.token_to_id("low"), 258);
  EXPECT_TRUE(tok.is_special(0));
  EXPECT_EQ(tok.vocab_size(), 259);
}

// A naive trainer: recounts every pair of every word after each merge.
Merges naive_merges(const std::vector<std::string>& words_in, size_t n_merges) {
  // Byte-level form of the lowercase-letters-and-single-spaces corpus: a space is "Ġ".
  std::map<std::vector<std::string>, uint64_t> words;
  for (const std::string& w : words_in) {
    std::vector<std::string> syms;
    for (char c : w) syms.push_back(c == ' ' ? "Ġ" : std::string(1, c));
    ++words[syms];
  }
  std::map<std::string, int> id;  // the byte symbols in code point order: letters < Ġ
  for (char c = 'a'; c <= 'z'; ++c) id[std::string(1, c)] = c;
  id["Ġ"] = 0x120;
  int next = 1000;
  Merges out;
  while (out.size() < n_merges) {
    std::map<std::pair<int, int>, uint64_t> counts;
    std::map<std::pair<int, int>, std::pair<std::string, std::string>> names;
    for (const auto& [syms, c] : words)
      for (size_t i = 0; i + 1 < syms.size(); ++i) {
        std::pair<int, int> k{id.at(syms[i]), id.at(syms[i + 1])};
        counts[k] += c;
        names[k] = {syms[i], syms[i + 1]};
      }
    if (counts.empty()) break;
    auto best = counts.begin();  // ascending keys: the first of the highest count wins ties
    for (auto it = counts.begin(); it != counts.end(); ++it)
      if (it->second > best->second) best = it;
    auto [a, b] = names[best->first];
    out.emplace_back(a, b);
    if (!id.count(a + b)) id[a + b] = next++;
    std::map<std::vector<std::string>, uint64_t> merged;
    for (const auto& [syms, c] : words) {
      std::vector<std::string> s;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == a && syms[i + 1] == b) {
          s.push_back(a + b);
          ++i;
        } else {
          s.push_back(syms[i]);
        }
      }
      merged[s] += c;
    }
    words.swap(merged);
  }
  return out;
}

TEST(BpeTrain, MatchesNaiveTrainerOnRandomCorpus) {
  std::mt19937 rng(7);
  std::string text;
  std::vector<std::string> words;
  for (int i = 0; i < 600; ++i) {
    std::string w = i ? " " : "";
    int len = 1 + static_cast<int>(rng() % 7);
    for (int k = 0; k < len; ++k) w += "abc"[rng() % 3];  // "aaa", "abab": overlaps and reuses
    text += w;
    words.push_back(w);
  }
  const size_t n = 120;
  wick::BpeTrainerOptions o;
  o.min_frequency = 1;
  o.vocab_size = 256 + static_cast<int32_t>(n);
  Merges got = merges_of(train({text}, o).tokenizer_json);
  Merges want = naive_merges(words, n);
  ASSERT_GE(want.size(), 100u);
  // A merge whose token already exists adds no vocabulary entry, so wick may do more merges.
  ASSERT_GE(got.size(), want.size());
  got.resize(want.size());
  EXPECT_EQ(got, want);
}

TEST(BpeTrain, DeterministicAcrossRunsAndThreads) {
  std::string corpus = wt::read_text(wt::source_path(std::string(kFixtureDir) + "/corpus.txt"));
  // Repeated so that the word counting runs in several chunks.
  std::string big;
  for (int i = 0; i < 200; ++i) big += corpus;
  wick::BpeTrainerOptions o;
  o.vocab_size = 700;
  o.special_tokens = kSpecials;
  o.threads = 1;
  wick::BpeTrainResult one = train({big}, o);
  o.threads = 3;
  wick::BpeTrainResult three = train({big}, o);
  EXPECT_EQ(one.tokenizer_json, three.tokenizer_json);
  EXPECT_EQ(one.words, three.words);
  EXPECT_EQ(one.unique_words, three.unique_words);
  // The same text split into two texts at a line start counts the same words.
  size_t cut = big.find("\nGe2:1 ") + 1;
  wick::BpeTrainResult split = train({big.substr(0, cut), big.substr(cut)}, o);
  EXPECT_EQ(split.tokenizer_json, one.tokenizer_json);
}

TEST(BpeTrain, RoundTripsAndCompresses) {
  std::string corpus = wt::read_text(wt::source_path(std::string(kFixtureDir) + "/corpus.txt"));
  wick::BpeTrainerOptions o;
  o.vocab_size = 600;
  o.special_tokens = kSpecials;
  wick::BpeTrainResult r = train({corpus}, o);
  wick::Tokenizer tok = wick::Tokenizer::from_json(r.tokenizer_json, "trained");
  std::vector<int32_t> ids = tok.encode(corpus);
  EXPECT_EQ(tok.decode(ids), corpus);
  EXPECT_LT(ids.size() * 2, corpus.size()) << "expected better than 2 bytes per token";

  // Frequent words of the corpus are single tokens.
  for (const char* w : {" the", " and", " God", " earth", " said"}) {
    EXPECT_EQ(tok.encode(w).size(), 1u) << w;
  }

  // Arbitrary UTF-8: every plane, controls, lone combining marks, \r\n, NUL.
  std::mt19937 rng(3);
  for (int t = 0; t < 50; ++t) {
    std::string s;
    int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      uint32_t c;
      switch (rng() % 4) {
        case 0: c = rng() % 0x80; break;
        case 1: c = 0x80 + rng() % 0x780; break;
        case 2: c = 0x800 + rng() % 0xF800; break;
        default: c = 0x10000 + rng() % 0x100000; break;
      }
      if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
      if (c < 0x80) {
        s += static_cast<char>(c);
      } else if (c < 0x800) {
        s += static_cast<char>(0xC0 | (c >> 6));
        s += static_cast<char>(0x80 | (c & 0x3F));
      } else if (c < 0x10000) {
        s += static_cast<char>(0xE0 | (c >> 12));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
      } else {
        s += static_cast<char>(0xF0 | (c >> 18));
        s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
      }
    }
    s += t % 2 ? "\r\n the earth" : "";
    EXPECT_EQ(tok.decode(tok.encode(s)), s) << "case " << t;
  }
}

TEST(BpeTrain, SpecialTokensAreNeverSplitNorMergedInto) {
  // The special tokens dominate the corpus: were they text, "<|" and "|>" would merge first.
  std::string text;
  for (int i = 0; i < 200; ++i) text += "<|endoftext|><|im_start|>user hi<|im_end|>\n";
  wick::BpeTrainerOptions o;
  o.vocab_size = 256 + 3 + 30;
  o.min_frequency = 1;
  o.special_tokens = kSpecials;
  wick::BpeTrainResult r = train({text}, o);
  for (const auto& [a, b] : merges_of(r.tokenizer_json)) {
    std::string m = a + b;
    EXPECT_EQ(m.find("<|"), std::string::npos) << m;
    EXPECT_EQ(m.find("|>"), std::string::npos) << m;
  }
  wick::Tokenizer tok = wick::Tokenizer::from_json(r.tokenizer_json, "trained");
  std::vector<int32_t> ids = tok.encode("a<|im_start|>b<|endoftext|>");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[1], 1);
  EXPECT_EQ(ids[3], 0);
  EXPECT_EQ(tok.decode(ids), "a<|im_start|>b<|endoftext|>");
  EXPECT_EQ(tok.decode(ids, true), "ab");
  // Words: "user", " hi", "\n" per line, the special tokens not counted.
  EXPECT_EQ(r.words, 600u);

  // A special token written in the byte alphabet ("Ġ" is how a space looks there) is never
  // what a merge produces, though " hello" would merge into exactly that text.
  o.special_tokens = {"Ġhello"};
  o.vocab_size = 1 + 256 + 5;
  r = train({" hello hello hello hello"}, o);
  for (const auto& [a, b] : merges_of(r.tokenizer_json)) EXPECT_NE(a + b, "Ġhello");
  EXPECT_EQ(r.merges, 4u);  // the fifth would have made the whole word
  EXPECT_EQ(r.stopped_by, "min_frequency");
  tok = wick::Tokenizer::from_json(r.tokenizer_json, "trained");
  EXPECT_EQ(tok.decode(tok.encode(" hello")), " hello");
  EXPECT_EQ(tok.encode("Ġhello"), std::vector<int32_t>{0});
}

TEST(BpeTrain, Errors) {
  wick::BpeTrainerOptions o;
  o.special_tokens = kSpecials;
  o.vocab_size = 256 + 2;
  std::string e = expect_error([&] { train({"some text"}, o); });
  EXPECT_NE(e.find("vocab_size 258"), std::string::npos) << e;
  o.vocab_size = 256 + 3;  // exactly the bytes and the specials: no merges, allowed
  EXPECT_EQ(train({"some text"}, o).merges, 0u);

  o.vocab_size = 1000;
  e = expect_error([&] { train({}, o); });
  EXPECT_NE(e.find("no text"), std::string::npos) << e;
  e = expect_error([&] { train({"", ""}, o); });
  EXPECT_NE(e.find("no text"), std::string::npos) << e;
  e = expect_error([&] { train({"<|endoftext|><|im_end|>"}, o); });  // only special tokens
  EXPECT_NE(e.find("no text"), std::string::npos) << e;
  e = expect_error([&] { train({"ok", std::string("bad \xC3(", 6)}, o); });
  EXPECT_NE(e.find("text 1: not valid UTF-8 (at byte 4)"), std::string::npos) << e;

  o.special_tokens = {"<|a|>", ""};
  e = expect_error([&] { train({"x"}, o); });
  EXPECT_NE(e.find("special token 1 is empty"), std::string::npos) << e;
  o.special_tokens = {"<|a|>", "<|a|>"};
  e = expect_error([&] { train({"x"}, o); });
  EXPECT_NE(e.find("given twice"), std::string::npos) << e;
  o.special_tokens = {"x"};
  e = expect_error([&] { train({"x"}, o); });
  EXPECT_NE(e.find("one of the 256 byte symbols"), std::string::npos) << e;

  o.special_tokens = {};
  e = expect_error([&] { wick::train_bpe_tokenizer_files({"/nonexistent/corpus.txt"}, o); });
  EXPECT_NE(e.find("/nonexistent/corpus.txt"), std::string::npos) << e;
  e = expect_error([&] { wick::train_bpe_tokenizer_files({}, o); });
  EXPECT_NE(e.find("no input files"), std::string::npos) << e;
  wt::TempDir dir;
  wt::write_raw(dir.file("bad.txt"), "caf\xE9\n");
  e = expect_error([&] { wick::train_bpe_tokenizer_files({dir.file("bad.txt")}, o); });
  EXPECT_NE(e.find(dir.file("bad.txt") + ": not valid UTF-8 (at byte 3)"), std::string::npos) << e;
}

TEST(BpeTrain, ProgressIsReported) {
  wick::BpeTrainerOptions o;
  o.vocab_size = 256 + 40;
  o.min_frequency = 1;
  std::vector<wick::BpeTrainProgress> seen;
  o.on_progress = [&](const wick::BpeTrainProgress& p) { seen.push_back(p); };
  wick::BpeTrainResult r = train({"the quick brown fox jumps over the lazy dog again and again"}, o);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().merges_done, r.merges);
  EXPECT_EQ(seen.back().merges_target, 40u);
}

TEST(BpeTrain, ConfigAndChatTemplate) {
  wick::BpeTokenizerConfigOptions c;
  c.model_max_length = 512;
  c.chat_template = "chatml";
  std::string config = wick::bpe_tokenizer_config_json(kSpecials, c);
  Json j = Json::parse(config);
  EXPECT_EQ(j.at("tokenizer_class"), "PreTrainedTokenizerFast");
  EXPECT_EQ(j.at("eos_token"), "<|endoftext|>");
  EXPECT_EQ(j.at("pad_token"), "<|endoftext|>");
  EXPECT_TRUE(j.at("bos_token").is_null());
  EXPECT_EQ(j.at("model_max_length"), 512);
  EXPECT_EQ(j.at("added_tokens_decoder").at("2").at("content"), "<|im_end|>");

  std::string corpus = wt::read_text(wt::source_path(std::string(kFixtureDir) + "/corpus.txt"));
  wick::BpeTrainerOptions o;
  o.vocab_size = 400;
  o.special_tokens = kSpecials;
  wick::BpeTrainResult r = train({corpus}, o);
  wt::TempDir dir;
  std::string out = dir.file("tok/nested");
  wick::write_bpe_tokenizer(out, r.tokenizer_json, config);
  wick::Tokenizer tok = wick::Tokenizer::load(out);
  EXPECT_EQ(tok.eos_token_id(), 0);
  EXPECT_EQ(tok.pad_token_id(), 0);
  EXPECT_FALSE(tok.bos_token_id().has_value());
  EXPECT_EQ(tok.chat_template(), wick::chatml_chat_template());

  wick::ChatTemplateConfig cfg = wick::load_chat_template(out);
  wick::ChatTemplateArgs args;
  args.add_generation_prompt = true;
  std::string text = wick::apply_chat_template(
      cfg.tmpl, {{"system", "Be brief."}, {"user", "Who?"}, {"assistant", "God."}, {"user", "Where?"}},
      args);
  EXPECT_EQ(text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho?<|im_end|>\n"
            "<|im_start|>assistant\nGod.<|im_end|>\n<|im_start|>user\nWhere?<|im_end|>\n"
            "<|im_start|>assistant\n");
  std::vector<int32_t> ids = tok.encode(text);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(tok.decode(ids), text);
  args.add_generation_prompt = false;
  EXPECT_EQ(wick::apply_chat_template(cfg.tmpl, {{"user", "a"}}, args), "<|im_start|>user\na<|im_end|>\n");

  // ChatML without its tokens, and unknown templates, are errors.
  std::string e = expect_error([&] { wick::bpe_tokenizer_config_json({"<|endoftext|>"}, c); });
  EXPECT_NE(e.find("<|im_start|>"), std::string::npos) << e;
  c.chat_template = "llama";
  e = expect_error([&] { wick::bpe_tokenizer_config_json(kSpecials, c); });
  EXPECT_NE(e.find("unknown chat template"), std::string::npos) << e;
  // No special tokens: no eos / pad.
  c.chat_template = "";
  Json none = Json::parse(wick::bpe_tokenizer_config_json({}, c));
  EXPECT_TRUE(none.at("eos_token").is_null());
}

// The committed tokenizer is what `wick tokenizer train` makes of the committed corpus (the
// command is in tests/tools/check_bpe_tokenizer.py).
TEST(BpeTrainFixture, CommittedTokenizerIsReproduced) {
  std::string dir = wt::source_path(kFixtureDir);
  wick::BpeTrainerOptions o;
  o.vocab_size = 500;
  o.special_tokens = kSpecials;
  wick::BpeTrainResult r = wick::train_bpe_tokenizer_files({dir + "/corpus.txt"}, o);
  EXPECT_EQ(r.tokenizer_json, wt::read_text(dir + "/tokenizer.json"));
  wick::BpeTokenizerConfigOptions c;
  c.chat_template = "chatml";
  EXPECT_EQ(wick::bpe_tokenizer_config_json(kSpecials, c), wt::read_text(dir + "/tokenizer_config.json"));
}

// Encodings and decodings of the Hugging Face library on the committed tokenizer, and the merges
// its BpeTrainer learns from the corpus (settings in check_bpe_tokenizer.py).
TEST(BpeTrainFixture, MatchesHuggingFaceTokenizers) {
  std::string dir = wt::source_path(kFixtureDir);
  std::string fixture = dir + "/expected.json";
  if (!wt::file_exists(fixture))
    GTEST_SKIP() << fixture << " is missing: run python3 tests/tools/check_bpe_tokenizer.py";
  Json expected = wt::read_json(fixture);
  wick::Tokenizer tok = wick::Tokenizer::load(dir);
  size_t cases = 0;
  for (const Json& c : expected.at("cases")) {
    std::string text = c.at("text").get<std::string>();
    std::vector<int32_t> ids = tok.encode(text, false);
    EXPECT_EQ(ids, c.at("ids").get<std::vector<int32_t>>()) << c.at("name");
    EXPECT_EQ(tok.decode(ids), c.at("decoded").get<std::string>()) << c.at("name");
    EXPECT_EQ(tok.decode(ids, true), c.at("decoded_skip_special").get<std::string>()) << c.at("name");
    ++cases;
  }
  EXPECT_GE(cases, 80u);

  // The library's trainer (min_frequency 0, trained to exhaustion) and wick's learn the same
  // merges in the same order from the corpus without its special tokens. (The library would
  // count each special token as a word and learn merges inside it; it also reads a file line by
  // line, so wick gets the lines as separate texts.)
  const Json& hf = expected.at("trainer_merges");
  std::string corpus = wt::read_text(dir + "/corpus.txt");
  for (const std::string& special : kSpecials)
    for (size_t at; (at = corpus.find(special)) != std::string::npos;) corpus.erase(at, special.size());
  std::vector<std::string> lines;
  for (size_t at = 0; at < corpus.size();) {
    size_t nl = corpus.find('\n', at);
    size_t end = nl == std::string::npos ? corpus.size() : nl + 1;
    lines.push_back(corpus.substr(at, end - at));
    at = end;
  }
  wick::BpeTrainerOptions o;
  o.vocab_size = 1 << 20;
  o.min_frequency = 0;
  Merges got = merges_of(train(lines, o).tokenizer_json);
  Merges want;
  for (const Json& m : hf) want.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
  EXPECT_GT(want.size(), 500u);
  EXPECT_EQ(got, want);
}

}  // namespace
