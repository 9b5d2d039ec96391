// `wick bench tokenize`: encoding (and decoding) throughput of the tokenizers on a large,
// varied, deterministic text: English prose with a long tail of rare words, code, numbers,
// markup, several scripts, emoji and whitespace runs. --write-text saves that text so that
// bench/peers/tokenize_hf.py can time the Rust `tokenizers` library on exactly the same input.
//
// Every timed call returns only when its ids (or text) are complete: encode/encode_batch and
// decode are synchronous.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "command.h"
#include "wick/wick.h"

namespace wick::bench {
namespace {

struct Options {
  bool json = false;
  bool quick = false;
  std::vector<std::string> tokenizers;
  std::string write_text;
  std::string text_file;
  double megabytes = 4.0;
  int threads = 0;
};

// splitmix64: the corpus must be the same on every machine.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

constexpr const char* kWords[] = {
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "I", "this", "are", "or", "his", "from", "at", "which", "but",
    "have", "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her",
    "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "model",
    "training", "token", "language", "system", "people", "between", "important", "however",
    "government", "information", "development", "university", "performance", "particular",
    "understanding", "environment", "relationship", "experience", "especially", "example",
    "different", "following", "including", "although", "community", "international",
    "research", "results", "significant", "analysis", "process", "structure", "available",
    "computer", "network", "memory", "function", "variable", "history", "century", "water",
    "children", "morning", "beautiful", "question", "answer", "really", "thought", "should",
    "don't", "it's", "we're", "they'll", "I've", "she'd", "you're", "can't", "won't"};
constexpr const char* kSyllables[] = {"ka", "ren", "to", "mi", "lo", "stra", "ven", "qui", "dor",
                                      "pha", "zel", "nu", "gra", "tiv", "os", "el", "an", "ri",
                                      "sum", "bex", "tor", "wyn", "cla", "dre", "ix", "ulm"};
constexpr const char* kForeign[] = {
    "今天天气很好，我们去公园散步吧。", "機械学習は面白いです。", "한국어 문장을 토큰화합니다.",
    "Привет, как дела? Всё хорошо.", "مرحبا بكم في عالم التعلم الآلي.", "यह एक परीक्षण वाक्य है।",
    "Ελληνικά κείμενα για δοκιμή.", "Tiếng Việt có dấu rất phức tạp.", "ภาษาไทยไม่มีช่องว่าง",
    "Größenordnung über Straße.", "naïve café résumé coöperate"};
constexpr const char* kCode[] = {
    "def forward(self, x):\n    h = self.norm(x)\n    return x + self.attn(h, mask=None)\n",
    "for (size_t i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "{\"name\": \"wick\", \"version\": \"0.1.0\", \"deps\": [\"pcre2\", \"utf8proc\"]}\n",
    "<div class=\"row\"><a href=\"https://example.com/a?b=1&c=2\">link</a></div>\n",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY id;\n"};
constexpr const char* kEmoji[] = {"😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "❤️", "🚀"};

std::string rare_word(Rng& r) {
  std::string w;
  size_t n = 2 + r.below(3);
  for (size_t i = 0; i < n; ++i) w += kSyllables[r.below(std::size(kSyllables))];
  return w;
}

// Lines of mixed content, about `bytes` in total.
std::vector<std::string> make_corpus(size_t bytes) {
  Rng r{42};
  std::vector<std::string> lines;
  size_t total = 0;
  while (total < bytes) {
    std::string line;
    size_t kind = r.below(20);
    if (kind < 13) {  // prose
      size_t words = 8 + r.below(40);
      for (size_t i = 0; i < words; ++i) {
        std::string w;
        size_t pick = r.below(100);
        if (pick < 80) {
          // Zipf-like: small indices are much more frequent.
          size_t n = std::size(kWords);
          size_t a = r.below(n), b = r.below(n);
          w = kWords[std::min(a, b)];
        } else if (pick < 92) {
          w = rare_word(r);
        } else if (pick < 97) {
          w = std::to_string(r.below(pick < 95 ? 100 : 100000000));
        } else {
          w = kEmoji[r.below(std::size(kEmoji))];
        }
        if (i == 0 || r.below(30) == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        line += (i ? " " : "") + w;
        if (r.below(12) == 0) line += ",";
      }
      line += r.below(5) == 0 ? "?" : ".";
    } else if (kind < 16) {
      line = kCode[r.below(std::size(kCode))];
      line.pop_back();
    } else if (kind < 19) {
      line = kForeign[r.below(std::size(kForeign))];
    } else {
      line = std::string(1 + r.below(8), ' ') + "| " + std::to_string(r.below(1000)) + "\t|  " +
             rare_word(r) + "   |";
    }
    total += line.size() + 1;
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string name_of(const std::string& path) {
  std::string p = path;
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.size() > 15 && p.compare(p.size() - 15, 15, "/tokenizer.json") == 0) p.resize(p.size() - 15);
  size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

int run(const Options& o) {
  std::vector<std::string> lines;
  if (!o.text_file.empty()) {
    std::ifstream in(o.text_file, std::ios::binary);
    if (!in) throw Error(o.text_file + ": cannot open");
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  } else {
    lines = make_corpus(static_cast<size_t>((o.quick ? 0.25 : o.megabytes) * 1e6));
  }
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  if (!o.write_text.empty()) {
    std::ofstream out(o.write_text, std::ios::binary);
    out << text;
    if (!out) throw Error(o.write_text + ": write failed");
  }

  std::vector<std::string> paths = o.tokenizers;
  if (paths.empty()) {
    for (const char* n : {"qwen3", "llama3", "gemma3"}) {
      std::string p = std::string(".cache/tokenizers/") + n;
      if (std::ifstream(p + "/tokenizer.json").good()) paths.push_back(p);
    }
    if (paths.empty())
      throw Error("bench tokenize: no tokenizer given and none in .cache/tokenizers "
                  "(run scripts/fetch-tokenizers.sh, or pass --tokenizer PATH)");
  }
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  TimingOptions topt{.min_time_s = o.quick ? 0.2 : 2.0, .min_iters = o.quick ? 2 : 5,
                     .max_iters = 1000, .warmup = 1};
  Reporter rep(o.json);
  rep.note("corpus: " + std::to_string(lines.size()) + " lines, " + std::to_string(text.size()) +
           " bytes; batch threads: " + std::to_string(threads));
  const double mb = static_cast<double>(text.size()) / 1e6;

  for (const std::string& path : paths) {
    Tokenizer tok = Tokenizer::load(path);
    std::string name = "tokenize/" + name_of(path);
    std::vector<int32_t> all = tok.encode(text, false);
    size_t batch_tokens = 0;
    for (const auto& v : tok.encode_batch(lines, false, threads)) batch_tokens += v.size();
    auto add = [&](const std::string& what, const Timing& t, double tokens, std::string baseline = "") {
      Result r;
      r.name = name + "/" + what;
      r.timing = t;
      r.baseline = baseline.empty() ? "" : name + "/" + baseline;
      double s = t.median_us * 1e-6;
      r.extra["mb_per_s"] = mb / s;
      r.extra["tokens_per_s"] = tokens / s;
      r.extra["tokens"] = tokens;
      rep.add(std::move(r));
    };
    // One call on the whole text (one thread).
    add("encode_text_1t", measure([&] { keep(tok.encode(text, false).data()); }, topt),
        static_cast<double>(all.size()));
    // Line by line, one thread and all threads.
    add("encode_batch_1t", measure([&] { keep(tok.encode_batch(lines, false, 1).data()); }, topt),
        static_cast<double>(batch_tokens));
    add("encode_batch_mt",
        measure([&] { keep(tok.encode_batch(lines, false, threads).data()); }, topt),
        static_cast<double>(batch_tokens), "encode_batch_1t");
    add("decode_1t", measure([&] { keep(tok.decode(all).data()); }, topt),
        static_cast<double>(all.size()));
  }
  return 0;
}

[[maybe_unused]] const wick::cli::Command bench_tokenize{
    "bench tokenize", "Time tokenizer encoding and decoding (MB/s, tokens/s)",
    [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_flag("--json", o->json, "One JSON object per line instead of a table");
      app.add_flag("--quick", o->quick, "Small corpus and short runs (smoke test)");
      app.add_option("--tokenizer", o->tokenizers,
                     "tokenizer.json or model folder (repeatable; default: the fetched "
                     ".cache/tokenizers/{qwen3,llama3,gemma3})");
      app.add_option("--megabytes", o->megabytes, "Size of the generated corpus")->check(CLI::Range(0.01, 1024.0));
      app.add_option("--text-file", o->text_file, "Use this text (one line per batch item) instead");
      app.add_option("--write-text", o->write_text,
                     "Also write the corpus here (input for bench/peers/tokenize_hf.py)");
      app.add_option("--threads", o->threads, "Threads for encode_batch (default: all)");
      return [o] { return run(*o); };
    }};

}  // namespace
}  // namespace wick::bench
