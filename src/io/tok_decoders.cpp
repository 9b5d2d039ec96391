// Decoders: ByteLevel, WordPiece, Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder and
// Sequence, as the tokenizers library defines them.
#include "io/tok_bytelevel.h"
#include "io/tok_components.h"
#include "io/tok_regex.h"
#include "io/tok_unicode.h"
#include "wick/error.h"

namespace wick::detail::tok {

namespace {

// Rust's str::replace: every non-overlapping occurrence, left to right; an empty pattern
// matches before every character and at the end.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  if (from.empty()) {
    for (size_t i = 0; i < s.size();) {
      out += to;
      size_t n = utf8_len(static_cast<unsigned char>(s[i]));
      out.append(s.substr(i, n));
      i += n;
    }
    out += to;
    return out;
  }
  size_t prev = 0, pos;
  while ((pos = s.find(from, prev)) != std::string_view::npos) {
    out.append(s.substr(prev, pos - prev));
    out += to;
    prev = pos + from.size();
  }
  out.append(s.substr(prev));
  return out;
}

class ByteLevelDec final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) byte_level_decode_token(t, bytes);
    tokens.assign(1, utf8_lossy(bytes));
  }
  bool decode_views(const std::vector<std::string_view>& tokens, std::string& out) const override {
    std::string bytes;
    size_t total = 0;
    for (std::string_view t : tokens) total += t.size();
    bytes.reserve(total);
    for (std::string_view t : tokens) byte_level_decode_token(t, bytes);
    out = find_invalid_utf8(bytes) == std::string::npos ? std::move(bytes) : utf8_lossy(bytes);
    return true;
  }
};

class WordPieceDec final : public Decoder {
 public:
  WordPieceDec(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0)
          t.erase(0, prefix_.size());
        else
          t.insert(t.begin(), ' ');
      }
      if (cleanup_) t = cleanup(t);
    }
  }
  static std::string cleanup(std::string s) {
    static const std::pair<const char*, const char*> kRules[] = {
        {" .", "."},   {" ?", "?"},   {" !", "!"},   {" ,", ","},   {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"},
        {" 're", "'re"}};
    for (const auto& [from, to] : kRules) s = replace_all(s, from, to);
    return s;
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class MetaspaceDec final : public Decoder {
 public:
  MetaspaceDec(char32_t rep, bool prepends) : rep_(rep), prepends_(prepends) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string& t = tokens[i];
      std::string out;
      out.reserve(t.size());
      for (size_t k = 0; k < t.size();) {
        size_t at = k;
        char32_t c = next_cp(t, k);
        if (c == rep_) {
          // The first token loses its replacement characters (the prepended space).
          if (!(i == 0 && prepends_)) out.push_back(' ');
        } else {
          out.append(t, at, k - at);
        }
      }
      tokens[i].swap(out);
    }
  }

 private:
  char32_t rep_;
  bool prepends_;
};

class ReplaceDec final : public Decoder {
 public:
  ReplaceDec(Pattern p, std::string content) : pattern_(std::move(p)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::string out;
      size_t prev = 0;
      pattern_.for_each_match(t, [&](size_t b, size_t e) {
        out.append(t, prev, b - prev);
        out += content_;
        prev = e;
      });
      out.append(t, prev, std::string::npos);
      t.swap(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class ByteFallbackDec final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      if (find_invalid_utf8(bytes) == std::string::npos) {
        out.push_back(bytes);
      } else {
        for (size_t k = 0; k < bytes.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      bytes.clear();
    };
    for (auto& t : tokens) {
      int b = parse_byte(t);
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }

 private:
  // "<0xAB>": u8::from_str_radix(&token[3..5], 16), which also accepts a leading '+'.
  static int parse_byte(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (t[3] == '+') return hex(t[4]);
    int hi = hex(t[3]), lo = hex(t[4]);
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
  }
};

class FuseDec final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
  bool decode_views(const std::vector<std::string_view>& tokens, std::string& out) const override {
    out.clear();
    for (std::string_view t : tokens) out += t;
    return true;
  }
};

class StripDec final : public Decoder {
 public:
  StripDec(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::pair<size_t, char32_t>> chars;  // byte offset, code point
    for (auto& t : tokens) {
      chars.clear();
      for (size_t k = 0; k < t.size();) {
        size_t at = k;
        chars.emplace_back(at, next_cp(t, k));
      }
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < chars.size(); ++i) {
        if (chars[i].second != content_) break;
        start_cut = i + 1;
      }
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        size_t index = chars.size() - i - 1;
        if (chars[index].second != content_) break;
        stop_cut = index;
      }
      // The library would panic when the cuts cross; an empty token is the sane reading.
      if (stop_cut <= start_cut) {
        t.clear();
        continue;
      }
      size_t b = chars[start_cut].first;
      size_t e = stop_cut < chars.size() ? chars[stop_cut].first : t.size();
      t = t.substr(b, e - b);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class BpeDec final : public Decoder {
 public:
  explicit BpeDec(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
  }

 private:
  std::string suffix_;
};

class SequenceDec final : public Decoder {
 public:
  explicit SequenceDec(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const io::Json& j, const Where& where) {
  if (j.is_null()) return nullptr;
  std::string type = type_of(j, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDec>();
  if (type == "WordPiece")
    return std::make_unique<WordPieceDec>(opt_string(j, "prefix", where).value_or("##"),
                                          get_bool(j, "cleanup", where, true));
  if (type == "Metaspace") {
    char32_t rep = get_char(j, "replacement", where);
    std::string scheme = opt_string(j, "prepend_scheme", where).value_or("always");
    if (scheme != "always" && scheme != "first" && scheme != "never")
      throw Error(where.str() + ": prepend_scheme: unknown value \"" + scheme + "\"");
    auto aps = io::json_optional<bool>(j, "add_prefix_space", where.str());
    if (aps && !*aps) {
      if (scheme != "never")
        throw Error(where.str() + ": add_prefix_space does not match declared prepend_scheme");
    }
    return std::make_unique<MetaspaceDec>(rep, scheme != "never");
  }
  if (type == "Replace")
    return std::make_unique<ReplaceDec>(make_pattern(j, "pattern", where),
                                        get_string(j, "content", where));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDec>();
  if (type == "Fuse") return std::make_unique<FuseDec>();
  if (type == "Strip") {
    int64_t start = get_int(j, "start", where, 0), stop = get_int(j, "stop", where, 0);
    if (start < 0 || stop < 0) throw Error(where.str() + ": start and stop must not be negative");
    return std::make_unique<StripDec>(get_char(j, "content", where), static_cast<size_t>(start),
                                      static_cast<size_t>(stop));
  }
  if (type == "BPEDecoder")
    return std::make_unique<BpeDec>(opt_string(j, "suffix", where).value_or("</w>"));
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) throw Error(where.str() + ": decoders: expected an array");
    std::vector<std::unique_ptr<Decoder>> items;
    Where w = where.at("decoders");
    for (size_t i = 0; i < it->size(); ++i) {
      auto d = make_decoder((*it)[i], w.index(i));
      if (!d) throw Error(w.index(i).str() + ": expected a decoder, got null");
      items.push_back(std::move(d));
    }
    return std::make_unique<SequenceDec>(std::move(items));
  }
  throw Error(where.str() + ": unsupported decoder type \"" + type + "\"");
}

}  // namespace wick::detail::tok
