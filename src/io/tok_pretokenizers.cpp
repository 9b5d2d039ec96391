// Pre-tokenizers: Split, ByteLevel, BertPreTokenizer, Whitespace, WhitespaceSplit, Digits,
// Punctuation, CharDelimiterSplit, Metaspace and Sequence, as the tokenizers library defines
// them.
#include "io/tok_bytelevel.h"
#include "io/tok_components.h"
#include "io/tok_regex.h"
#include "io/tok_unicode.h"
#include "wick/error.h"

namespace wick::detail::tok {

namespace {

using Ranges = std::vector<std::pair<size_t, size_t>>;
using Flags = std::vector<bool>;

// Scratch vectors reused across calls on one thread (pre-tokenizers are const and shared).
struct SplitScratch {
  Ranges ranges;
  Flags flags;
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  std::string joined;
};
SplitScratch& split_scratch() {
  thread_local SplitScratch s;
  return s;
}

// The tokenizers Pattern impl for a char predicate: every matching character is a match of
// its own; the text between is a non-match.
template <class Pred>
void char_matches(std::string_view s, Pred pred, Ranges& ranges, Flags& flags) {
  ranges.clear();
  flags.clear();
  if (s.empty()) {
    ranges.emplace_back(0, 0);
    flags.push_back(false);
    return;
  }
  size_t last = 0;
  for (size_t i = 0; i < s.size();) {
    size_t at = i;
    char32_t c = next_cp(s, i);
    if (pred(c)) {
      if (last < at) {
        ranges.emplace_back(last, at);
        flags.push_back(false);
      }
      ranges.emplace_back(at, i);
      flags.push_back(true);
      last = i;
    }
  }
  if (last < s.size()) {
    ranges.emplace_back(last, s.size());
    flags.push_back(false);
  }
}

// Splits every piece in place (the buffer is unchanged): `find` fills (ranges, flags) for one
// piece, `behavior` turns them into pieces.
template <class Find>
void split_pieces(Pieces& p, SplitBehavior behavior, Find&& find) {
  SplitScratch& sc = split_scratch();
  std::vector<std::pair<uint32_t, uint32_t>>& out = sc.spans;
  out.clear();
  for (size_t i = 0; i < p.spans.size(); ++i) {
    auto [b, e] = p.spans[i];
    find(std::string_view(p.buf).substr(b, e - b), sc.ranges, sc.flags);
    size_t before = out.size();
    apply_behavior(behavior, sc.ranges, sc.flags, b, out);
    if (i == 0 && p.first_at_origin && (out.size() == before || out[before].first != b))
      p.first_at_origin = false;
  }
  p.spans.swap(out);
}

bool is_bert_punc(char32_t c) {
  if (c < 0x80)
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
  return is_punctuation(c);
}

class Split final : public PreTokenizer {
 public:
  Split(Pattern p, SplitBehavior b, bool invert) : pattern_(std::move(p)), behavior_(b), invert_(invert) {}
  void pre_tokenize(Pieces& p, Pieces&) const override {
    split_pieces(p, behavior_, [&](std::string_view s, Ranges& r, Flags& f) {
      pattern_.find_matches(s, r, f);
      if (invert_) f.flip();
    });
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

template <class Pred>
class CharSplit final : public PreTokenizer {
 public:
  CharSplit(Pred pred, SplitBehavior b) : pred_(pred), behavior_(b) {}
  void pre_tokenize(Pieces& p, Pieces&) const override {
    split_pieces(p, behavior_, [&](std::string_view s, Ranges& r, Flags& f) {
      char_matches(s, pred_, r, f);
    });
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};

template <class Pred>
std::unique_ptr<PreTokenizer> char_split(Pred pred, SplitBehavior b) {
  return std::make_unique<CharSplit<Pred>>(pred, b);
}

class BertPre final : public PreTokenizer {
 public:
  void pre_tokenize(Pieces& p, Pieces& tmp) const override {
    ws_.pre_tokenize(p, tmp);
    punct_.pre_tokenize(p, tmp);
  }

 private:
  static bool ws(char32_t c) { return is_white_space(c); }
  CharSplit<bool (*)(char32_t)> ws_{&BertPre::ws, SplitBehavior::removed};
  CharSplit<bool (*)(char32_t)> punct_{&is_bert_punc, SplitBehavior::isolated};
};

// `\w+|[^\w\s]+` (Rust regex classes), inverted and removed: maximal runs of word characters
// and maximal runs of other non-space characters; spaces are dropped.
class Whitespace final : public PreTokenizer {
 public:
  void pre_tokenize(Pieces& p, Pieces&) const override {
    split_pieces(p, SplitBehavior::removed, [](std::string_view s, Ranges& r, Flags& f) {
      r.clear();
      f.clear();
      if (s.empty()) {
        r.emplace_back(0, 0);
        f.push_back(false);
        return;
      }
      // kind: 0 space, 1 word, 2 other
      size_t i = 0, run_start = 0;
      int run_kind = -1;
      size_t prev_end = 0;
      auto close = [&](size_t end) {
        if (run_kind == 1 || run_kind == 2) {
          if (prev_end < run_start) {
            r.emplace_back(prev_end, run_start);
            f.push_back(true);
          }
          r.emplace_back(run_start, end);
          f.push_back(false);
          prev_end = end;
        }
      };
      while (i < s.size()) {
        size_t at = i;
        char32_t c = next_cp(s, i);
        int kind = is_word_char(c) ? 1 : is_white_space(c) ? 0 : 2;
        if (kind != run_kind) {
          close(at);
          run_kind = kind;
          run_start = at;
        }
      }
      close(s.size());
      if (prev_end < s.size()) {
        r.emplace_back(prev_end, s.size());
        f.push_back(true);
      }
    });
  }
};

class ByteLevelPre final : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex, const Where& where)
      : prefix_(add_prefix_space), use_regex_(use_regex) {
    if (use_regex_)
      regex_.emplace(Pattern::regex(
          "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
          where.str()));
  }
  void pre_tokenize(Pieces& p, Pieces& tmp) const override {
    tmp.buf.clear();
    tmp.spans.clear();
    tmp.first_at_origin = p.first_at_origin;
    std::string& joined = split_scratch().joined;
    for (size_t i = 0; i < p.spans.size(); ++i) {
      std::string_view piece = p.piece(i);
      if (prefix_ && (piece.empty() || piece[0] != ' ')) {
        joined.clear();
        joined.push_back(' ');
        joined.append(piece);
        piece = joined;
      }
      auto emit = [&](size_t b, size_t e) {
        if (e <= b) return;
        uint32_t start = static_cast<uint32_t>(tmp.buf.size());
        byte_level_encode(piece.substr(b, e - b), tmp.buf);
        tmp.spans.emplace_back(start, static_cast<uint32_t>(tmp.buf.size()));
      };
      if (use_regex_) {
        // Isolated: matches and the gaps between them are all pieces.
        size_t prev = 0;
        regex_->for_each_match(piece, [&](size_t b, size_t e) {
          emit(prev, b);
          emit(b, e);
          prev = e;
        });
        emit(prev, piece.size());
      } else {
        emit(0, piece.size());
      }
    }
    std::swap(p.buf, tmp.buf);
    std::swap(p.spans, tmp.spans);
  }

 private:
  bool prefix_, use_regex_;
  std::optional<Pattern> regex_;
};

class Metaspace final : public PreTokenizer {
 public:
  enum class Scheme { always, first, never };
  Metaspace(char32_t replacement, Scheme scheme, bool split)
      : scheme_(scheme), split_(split) {
    append_utf8(rep_, replacement);
  }
  void pre_tokenize(Pieces& p, Pieces& tmp) const override {
    tmp.buf.clear();
    tmp.spans.clear();
    tmp.first_at_origin = p.first_at_origin;
    std::string s;
    for (size_t i = 0; i < p.spans.size(); ++i) {
      std::string_view piece = p.piece(i);
      s.clear();
      for (char ch : piece) {
        if (ch == ' ')
          s += rep_;
        else
          s.push_back(ch);
      }
      bool at_origin = i == 0 && p.first_at_origin;
      bool starts = s.compare(0, rep_.size(), rep_) == 0;
      if (!s.empty() && !starts &&
          (scheme_ == Scheme::always || (scheme_ == Scheme::first && at_origin)))
        s.insert(0, rep_);
      uint32_t base = static_cast<uint32_t>(tmp.buf.size());
      tmp.buf += s;
      if (!split_) {
        if (!s.empty()) tmp.spans.emplace_back(base, base + static_cast<uint32_t>(s.size()));
        continue;
      }
      // MergedWithNext on every replacement character.
      SplitScratch& sc = split_scratch();
      char_matches(s, [&](char32_t c) { return c == rep_cp(); }, sc.ranges, sc.flags);
      apply_behavior(SplitBehavior::merged_with_next, sc.ranges, sc.flags, base, tmp.spans);
    }
    std::swap(p.buf, tmp.buf);
    std::swap(p.spans, tmp.spans);
  }

 private:
  char32_t rep_cp() const {
    size_t i = 0;
    return next_cp(rep_, i);
  }
  std::string rep_;
  Scheme scheme_;
  bool split_;
};

class SequencePre final : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> items) : items_(std::move(items)) {}
  void pre_tokenize(Pieces& p, Pieces& tmp) const override {
    for (const auto& t : items_) t->pre_tokenize(p, tmp);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const io::Json& j, const Where& where) {
  if (j.is_null()) return nullptr;
  std::string type = type_of(j, where);
  if (type == "Split")
    return std::make_unique<Split>(make_pattern(j, "pattern", where),
                                   parse_behavior(j, "behavior", where),
                                   get_bool(j, "invert", where, false));
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPre>(get_bool(j, "add_prefix_space", where, true),
                                          get_bool(j, "use_regex", where, true), where);
  if (type == "BertPreTokenizer") return std::make_unique<BertPre>();
  if (type == "Whitespace") return std::make_unique<Whitespace>();
  if (type == "WhitespaceSplit")
    return char_split([](char32_t c) { return is_white_space(c); }, SplitBehavior::removed);
  if (type == "Digits") {
    bool individual = get_bool(j, "individual_digits", where, false);
    return char_split([](char32_t c) { return is_numeric(c); },
                      individual ? SplitBehavior::isolated : SplitBehavior::contiguous);
  }
  if (type == "Punctuation") {
    SplitBehavior b = j.contains("behavior") ? parse_behavior(j, "behavior", where)
                                             : SplitBehavior::isolated;
    return char_split(&is_bert_punc, b);
  }
  if (type == "CharDelimiterSplit") {
    char32_t d = get_char(j, "delimiter", where);
    return char_split([d](char32_t c) { return c == d; }, SplitBehavior::removed);
  }
  if (type == "Metaspace") {
    char32_t rep = get_char(j, "replacement", where);
    std::string scheme = opt_string(j, "prepend_scheme", where).value_or("always");
    Metaspace::Scheme s;
    if (scheme == "always")
      s = Metaspace::Scheme::always;
    else if (scheme == "first")
      s = Metaspace::Scheme::first;
    else if (scheme == "never")
      s = Metaspace::Scheme::never;
    else
      throw Error(where.str() + ": prepend_scheme: unknown value \"" + scheme + "\"");
    auto aps = io::json_optional<bool>(j, "add_prefix_space", where.str());
    if (aps && !*aps) {
      // The library insists (prepend_scheme defaults to "always").
      if (s != Metaspace::Scheme::never)
        throw Error(where.str() + ": add_prefix_space does not match declared prepend_scheme");
      s = Metaspace::Scheme::never;
    }
    return std::make_unique<Metaspace>(rep, s, get_bool(j, "split", where, true));
  }
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array())
      throw Error(where.str() + ": pretokenizers: expected an array");
    std::vector<std::unique_ptr<PreTokenizer>> items;
    Where w = where.at("pretokenizers");
    for (size_t i = 0; i < it->size(); ++i) {
      auto t = make_pre_tokenizer((*it)[i], w.index(i));
      if (!t) throw Error(w.index(i).str() + ": expected a pre-tokenizer, got null");
      items.push_back(std::move(t));
    }
    return std::make_unique<SequencePre>(std::move(items));
  }
  throw Error(where.str() + ": unsupported pre-tokenizer type \"" + type + "\"");
}

}  // namespace wick::detail::tok
