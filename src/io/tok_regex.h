#pragma once
// Regular expressions of tokenizer.json files. The `tokenizers` library compiles them with
// Oniguruma (Ruby syntax); wick uses PCRE2 (UTF + UCP, JIT) after translating the constructs
// whose meaning differs (\s, \w, \h and their negations, \uHHHH), and iterates matches with the
// rules of the Rust onig crate. Literal patterns (SplitPattern::String) skip the regex engine.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/tok_fastsplit.h"

namespace wick::detail::tok {

/// Rewrites an Oniguruma pattern into PCRE2 syntax with the same meaning; throws wick::Error
/// naming `where` for constructs PCRE2 cannot express (class intersection `&&`).
std::string onig_to_pcre2(std::string_view pattern, const std::string& where);

/// A compiled pattern: a PCRE2 regex or a literal string. Immutable and thread-safe.
class Pattern {
 public:
  /// A regex (Oniguruma syntax). Errors name `where` (file and field).
  static Pattern regex(std::string_view pattern, const std::string& where);
  /// A literal string.
  static Pattern literal(std::string_view text, const std::string& where);

  Pattern(Pattern&& other) noexcept;
  Pattern& operator=(Pattern&& other) noexcept;
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;
  ~Pattern();

  /// Calls fn(begin, end) for every match in `s`, left to right, never overlapping; an empty
  /// match right after the previous match is skipped (the onig crate's find_iter). `s` must be
  /// valid UTF-8.
  template <class F>
  void for_each_match(std::string_view s, F&& fn) const {
    if (fast_ != FastSplit::none) {
      fast_split(fast_, s, fn);
      return;
    }
    if (!code_) {
      if (s.size() < literal_.size()) return;
      size_t pos = 0;
      while ((pos = s.find(literal_, pos)) != std::string_view::npos) {
        fn(pos, pos + literal_.size());
        pos += literal_.size();
      }
      return;
    }
    size_t last_end = 0;
    bool have_last = false;
    size_t last_match_end = 0;
    while (last_end <= s.size()) {
      size_t b, e;
      if (!search(s, last_end, b, e)) return;
      if (b == e && have_last && last_match_end == e) {
        last_end += last_end < s.size() ? char_len(s, last_end) : 1;
        continue;
      }
      last_end = e;
      last_match_end = e;
      have_last = true;
      fn(b, e);
    }
  }

  /// Splits `s` into (begin, end, is_match) pieces covering it, like the tokenizers Pattern
  /// trait's find_matches (an empty `s` gives one empty non-match).
  void find_matches(std::string_view s, std::vector<std::pair<size_t, size_t>>& ranges,
                    std::vector<bool>& is_match) const;

  /// The pattern text as written in the file (for messages).
  const std::string& source() const { return source_; }
  /// Whether matching uses a hand-written matcher instead of PCRE2.
  bool is_fast() const { return fast_ != FastSplit::none; }
  /// The same pattern without the hand-written matcher (for differential tests).
  static Pattern regex_only(std::string_view pattern, const std::string& where);

 private:
  Pattern() = default;
  bool search(std::string_view s, size_t start, size_t& begin, size_t& end) const;
  static size_t char_len(std::string_view s, size_t i);

  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
  FastSplit fast_ = FastSplit::none;
  std::string literal_;
  std::string source_;
  std::string where_;
};

}  // namespace wick::detail::tok
