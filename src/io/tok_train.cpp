// train_bpe_tokenizer: counts the words of the corpus with the pre-tokenizer of the tokenizer
// being trained (loaded from the same tokenizer.json layout, minus the merges), runs the merges
// (tok_bpe_train) and writes the tokenizer.json.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "io/files.h"
#include "io/json.h"
#include "io/tok_bpe_train.h"
#include "io/tok_bytelevel.h"
#include "io/tok_fastsplit.h"
#include "io/tok_hash.h"
#include "io/tok_tokenizer.h"
#include "io/tok_unicode.h"
#include "wick/error.h"
#include "wick/tokenizer_train.h"

namespace wick {

namespace {

using detail::TokenizerImpl;
namespace tok = detail::tok;
using Clock = std::chrono::steady_clock;

// Qwen 2's split regex, as the fast matcher of tok_fastsplit recognises it.
constexpr std::string_view kSplitRegex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

std::string quote(std::string_view s) { return io::Json(std::string(s)).dump(); }

// The 256 byte symbols in code point order (GPT-2's vocabulary order, and the library
// trainer's order for its initial alphabet).
std::vector<std::string> byte_symbols() {
  std::vector<std::pair<char32_t, std::string>> syms;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    tok::append_utf8(s, tok::byte_to_char(static_cast<uint8_t>(b)));
    syms.emplace_back(tok::byte_to_char(static_cast<uint8_t>(b)), std::move(s));
  }
  std::sort(syms.begin(), syms.end());
  std::vector<std::string> out;
  for (auto& [c, s] : syms) out.push_back(std::move(s));
  return out;
}

// The tokenizer.json text; `vocab` by id (special tokens first), merges as id pairs.
std::string tokenizer_json(const std::vector<std::string>& vocab, size_t n_special,
                           const std::vector<std::pair<int32_t, int32_t>>& merges) {
  std::string o;
  o.reserve(vocab.size() * 24 + merges.size() * 24 + 2048);
  o += "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n";
  o += "  \"added_tokens\": [";
  for (size_t i = 0; i < n_special; ++i) {
    o += i ? ",\n    " : "\n    ";
    o += "{\"id\": " + std::to_string(i) + ", \"content\": " + quote(vocab[i]) +
         ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
         "\"special\": true}";
  }
  o += n_special ? "\n  ],\n" : "],\n";
  o += "  \"normalizer\": null,\n";
  o += "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n";
  o += "    {\"type\": \"Split\", \"pattern\": {\"Regex\": " + quote(kSplitRegex) +
       "}, \"behavior\": \"Isolated\", \"invert\": false},\n";
  o += "    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, "
       "\"use_regex\": false}]},\n";
  o += "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
       "\"trim_offsets\": false, \"use_regex\": false},\n";
  o += "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": "
       "false, \"use_regex\": false},\n";
  o += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
       "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
       "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n";
  o += "    \"vocab\": {";
  for (size_t i = 0; i < vocab.size(); ++i) {
    o += i ? ",\n      " : "\n      ";
    o += quote(vocab[i]) + ": " + std::to_string(i);
  }
  o += "\n    },\n    \"merges\": [";
  for (size_t i = 0; i < merges.size(); ++i) {
    o += i ? ",\n      [" : "\n      [";
    o += quote(vocab[merges[i].first]) + ", " + quote(vocab[merges[i].second]) + "]";
  }
  o += merges.empty() ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n";
  return o;
}

struct ViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return static_cast<size_t>(tok::hash_bytes(s)); }
};
using WordCounts = std::unordered_map<std::string, uint64_t, ViewHash, std::equal_to<>>;

// Pieces of `text` at which splitting changes no pre-token: after a line break and before a
// printable ASCII character, no pattern alternative can run across (none continues past a line
// break into a non-space), and no special token spans it (checked by the caller).
std::vector<std::string_view> chunks_of(std::string_view text, size_t target) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (text.size() - start > target) {
    size_t i = start + target;
    while (i < text.size()) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (text[i - 1] == '\n' && c > ' ' && c < 0x7F) break;
      ++i;
    }
    if (i >= text.size()) break;
    out.push_back(text.substr(start, i - start));
    start = i;
  }
  out.push_back(text.substr(start));
  return out;
}

struct Counted {
  WordCounts words;
  uint64_t total = 0;
};

Counted count_words(const TokenizerImpl& pre, std::span<const std::string_view> texts,
                    const std::vector<std::string>& names, bool may_chunk, int threads) {
  std::vector<std::pair<size_t, std::string_view>> work;  // (text index, chunk)
  for (size_t t = 0; t < texts.size(); ++t) {
    if (size_t bad = tok::find_invalid_utf8(texts[t]); bad != std::string_view::npos)
      throw Error(names[t] + ": not valid UTF-8 (at byte " + std::to_string(bad) + ")");
    if (texts[t].empty()) continue;
    if (!may_chunk) {
      work.emplace_back(t, texts[t]);
      continue;
    }
    for (std::string_view c : chunks_of(texts[t], size_t(1) << 20)) work.emplace_back(t, c);
  }
  size_t n = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  n = std::max<size_t>(1, std::min(n, work.size()));
  std::vector<Counted> parts(n);
  std::vector<std::exception_ptr> errors(n);
  auto worker = [&](size_t k) {
    try {
      Counted& c = parts[k];
      for (size_t i = k; i < work.size(); i += n) {
        pre.pre_tokenize(work[i].second, [&](std::string_view piece) {
          ++c.total;
          auto it = c.words.find(piece);
          if (it == c.words.end())
            c.words.emplace(std::string(piece), 1);
          else
            ++it->second;
        });
      }
    } catch (...) {
      errors[k] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (size_t k = 1; k < n; ++k) pool.emplace_back(worker, k);
  worker(0);
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  Counted all = std::move(parts[0]);
  for (size_t k = 1; k < n; ++k) {
    all.total += parts[k].total;
    for (auto& [w, c] : parts[k].words) all.words[w] += c;
  }
  return all;
}

void validate(const BpeTrainerOptions& o) {
  for (size_t i = 0; i < o.special_tokens.size(); ++i) {
    if (o.special_tokens[i].empty()) throw Error("tokenizer training: special token " + std::to_string(i) + " is empty");
    if (size_t bad = tok::find_invalid_utf8(o.special_tokens[i]); bad != std::string_view::npos)
      throw Error("tokenizer training: special token " + std::to_string(i) + " is not valid UTF-8");
    for (const std::string& b : byte_symbols())
      if (o.special_tokens[i] == b)
        throw Error("tokenizer training: special token \"" + b + "\" is one of the 256 byte symbols");
    for (size_t j = 0; j < i; ++j)
      if (o.special_tokens[j] == o.special_tokens[i])
        throw Error("tokenizer training: special token \"" + o.special_tokens[i] + "\" is given twice");
  }
  int64_t base = 256 + static_cast<int64_t>(o.special_tokens.size());
  if (o.vocab_size < base)
    throw Error("tokenizer training: vocab_size " + std::to_string(o.vocab_size) +
                " is below the " + std::to_string(base) + " entries that the 256 byte symbols and " +
                std::to_string(o.special_tokens.size()) + " special tokens take");
  if (tok::recognize_fast_split(kSplitRegex) != tok::FastSplit::qwen)
    throw Error("tokenizer training: internal error: the split regex lost its fast matcher");
}

void print_progress(const BpeTrainProgress& p, bool last) {
  double rate = p.seconds > 0 ? static_cast<double>(p.merges_done) / p.seconds : 0;
  size_t left = p.merges_target > p.merges_done ? p.merges_target - p.merges_done : 0;
  double eta = rate > 0 ? static_cast<double>(left) / rate : 0;
  std::fprintf(stderr, "\rmerges %zu/%zu  %.0f merges/s  ETA %.1f s   ", p.merges_done,
               p.merges_target, rate, last ? 0.0 : eta);
  if (last) std::fputc('\n', stderr);
  std::fflush(stderr);
}

BpeTrainResult train(std::span<const std::string_view> texts, const std::vector<std::string>& names,
                     const BpeTrainerOptions& o) {
  validate(o);
  auto t0 = Clock::now();
  std::vector<std::string> vocab = o.special_tokens;
  size_t n_special = vocab.size();
  std::vector<std::string> bytes = byte_symbols();
  vocab.insert(vocab.end(), bytes.begin(), bytes.end());

  // The tokenizer without merges splits the text exactly as the trained one will.
  TokenizerImpl pre;
  pre.source = "tokenizer training";
  pre.load(tokenizer_json(vocab, n_special, {}), {});
  bool may_chunk = std::none_of(o.special_tokens.begin(), o.special_tokens.end(),
                                [](const std::string& s) { return s.find('\n') != std::string::npos; });
  Counted counted = count_words(pre, texts, names, may_chunk, o.threads);
  if (counted.words.empty()) throw Error("tokenizer training: the input holds no text to train on");

  BpeTrainResult r;
  for (std::string_view t : texts) r.corpus_bytes += t.size();
  r.words = counted.total;
  r.unique_words = counted.words.size();

  // Words in byte order, so that nothing depends on hash order; symbols by code point.
  std::vector<std::pair<std::string, uint64_t>> sorted(counted.words.begin(), counted.words.end());
  counted.words.clear();
  std::sort(sorted.begin(), sorted.end());
  int32_t id_of_char[0x144];
  std::fill(std::begin(id_of_char), std::end(id_of_char), -1);
  for (size_t i = 0; i < bytes.size(); ++i) {
    size_t at = 0;
    char32_t c = tok::next_cp(bytes[i], at);
    id_of_char[c] = static_cast<int32_t>(n_special + i);
  }
  tok::BpeMergeInput in;
  in.words.reserve(sorted.size());
  in.counts.reserve(sorted.size());
  for (auto& [w, c] : sorted) {
    std::vector<int32_t> syms;
    for (size_t i = 0; i < w.size();) {
      char32_t ch = tok::next_cp(w, i);
      if (ch >= 0x144 || id_of_char[ch] < 0)
        throw Error("tokenizer training: internal error: a pre-token is not in the byte alphabet");
      syms.push_back(id_of_char[ch]);
    }
    in.words.push_back(std::move(syms));
    in.counts.push_back(c);
  }
  sorted.clear();
  in.vocab = std::move(vocab);
  in.reserved = n_special;
  in.vocab_size = static_cast<size_t>(o.vocab_size);
  in.min_frequency = o.min_frequency;
  BpeTrainProgress progress;
  progress.merges_target = in.vocab_size - in.vocab.size();
  auto t_merge = Clock::now();
  auto last_print = t_merge;
  bool printed = false;  // short runs print nothing
  if (o.show_progress || o.on_progress) {
    in.progress = [&](size_t done) {
      progress.merges_done = done;
      auto now = Clock::now();
      progress.seconds = std::chrono::duration<double>(now - t_merge).count();
      if (o.on_progress) o.on_progress(progress);
      if (o.show_progress && std::chrono::duration<double>(now - last_print).count() > 0.25) {
        print_progress(progress, false);
        last_print = now;
        printed = true;
      }
    };
  }
  tok::BpeMergeOutput merged = tok::run_bpe_merges(in);
  if (printed) print_progress(progress, true);

  r.tokenizer_json = tokenizer_json(in.vocab, n_special, merged.merges);
  r.vocab_size = static_cast<int32_t>(in.vocab.size());
  r.merges = merged.merges.size();
  r.stopped_by = merged.stopped_by;
  // What we hand out must load: a failure here is a bug, not a user error, but better caught
  // now than when a training run is half done.
  TokenizerImpl check;
  check.source = "tokenizer training (result)";
  check.load(r.tokenizer_json, {});
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

}  // namespace

BpeTrainResult train_bpe_tokenizer(std::span<const std::string_view> texts,
                                   const BpeTrainerOptions& options) {
  std::vector<std::string> names;
  for (size_t i = 0; i < texts.size(); ++i) names.push_back("text " + std::to_string(i));
  return train(texts, names, options);
}

BpeTrainResult train_bpe_tokenizer_files(const std::vector<std::string>& files,
                                         const BpeTrainerOptions& options) {
  if (files.empty()) throw Error("tokenizer training: no input files");
  std::vector<std::string> contents;
  contents.reserve(files.size());
  for (const std::string& f : files) contents.push_back(io::read_file(f));
  std::vector<std::string_view> views(contents.begin(), contents.end());
  return train(views, files, options);
}

}  // namespace wick
