#pragma once
// Hand-written matchers for the split regexes that almost every byte-level BPE tokenizer uses,
// with exactly the regex's leftmost-first, backtracking semantics (a differential test against
// PCRE2 keeps them honest). They are several times faster than the JIT regex: the patterns
// classify each character once instead of trying seven alternatives at every position.
//
//   gpt2:    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   cl100k:  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+          (Llama 3)
//   qwen:    the same with \p{N} for \p{N}{1,3}                          (Qwen 2 / 2.5 / 3)
//
// Each pattern matches at every position, so the matches tile the text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/tok_unicode.h"

namespace wick::detail::tok {

enum class FastSplit : uint8_t { none, gpt2, cl100k, qwen };

/// The fast matcher for a pattern written exactly as above, or none.
FastSplit recognize_fast_split(std::string_view pattern);

namespace fast {

enum : uint8_t { kL = 1, kN = 2, kWs = 4, kNl = 8 };  // letter, number, White_Space, \r \n

/// Class bits of a non-ASCII code point.
uint8_t classify_slow(char32_t c);

struct Ascii {
  uint8_t cls[128];
  constexpr Ascii() : cls() {
    for (int c = 0; c < 128; ++c) {
      uint8_t k = 0;
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) k = kL;
      if (c >= '0' && c <= '9') k = kN;
      if (c == ' ' || (c >= 9 && c <= 13)) k = kWs;
      if (c == '\r' || c == '\n') k = kWs | kNl;
      cls[c] = k;
    }
  }
};
inline constexpr Ascii kAscii{};

// Class and byte length of the character at s[i] (valid UTF-8, i < size).
inline uint8_t char_at(std::string_view s, size_t i, size_t& len) {
  unsigned char b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    len = 1;
    return kAscii.cls[b];
  }
  size_t j = i;
  char32_t c = next_cp(s, j);
  len = j - i;
  return classify_slow(c);
}

inline bool is_other(uint8_t k) { return (k & (kL | kN | kWs)) == 0; }

// End of the run of characters whose class satisfies `pred`, from i.
template <class Pred>
inline size_t run_end(std::string_view s, size_t i, Pred pred) {
  size_t len;
  while (i < s.size() && pred(char_at(s, i, len))) i += len;
  return i;
}

// Length in bytes of a contraction suffix after the apostrophe at s[i-1], or 0.
inline size_t contraction(std::string_view s, size_t i, bool caseless) {
  auto lower = [&](size_t k) -> int {
    if (k >= s.size()) return -1;
    unsigned char b = static_cast<unsigned char>(s[k]);
    if (b < 0x80) return caseless && b >= 'A' && b <= 'Z' ? b + 32 : b;
    // U+017F LATIN SMALL LETTER LONG S folds to 's'.
    if (caseless && b == 0xC5 && k + 1 < s.size() && static_cast<unsigned char>(s[k + 1]) == 0xBF)
      return 0x17F;
    return -1;
  };
  int a = lower(i);
  if (a == 's' || a == 0x17F) return a == 's' ? 1 : 2;
  if (a == 't' || a == 'm' || a == 'd') return 1;
  if (a == 'r' || a == 'v') return lower(i + 1) == 'e' ? 2 : 0;
  if (a == 'l') return lower(i + 1) == 'l' ? 2 : 0;
  return 0;
}

// Whitespace alternatives shared by the patterns: \s+(?!\S) then \s+, from a space at i.
inline size_t space_run(std::string_view s, size_t i) {
  size_t j = i, last = i, len;
  while (j < s.size()) {
    uint8_t k = char_at(s, j, len);
    if (!(k & kWs)) break;
    last = j;
    j += len;
  }
  if (j == s.size() || last == i) return j;  // at the end, or a single space before \S
  return last;                               // leave the last space for the next word
}

inline size_t match_gpt2(std::string_view s, size_t i) {
  size_t n = s.size(), len0;
  if (s[i] == '\'') {
    size_t c = contraction(s, i + 1, false);
    if (c) return i + 1 + c;
  }
  uint8_t k0 = char_at(s, i, len0);
  size_t from = i;
  uint8_t k = k0;
  if (s[i] == ' ' && i + 1 < n) {
    size_t len1;
    uint8_t k1 = char_at(s, i + 1, len1);
    if ((k1 & kL) || (k1 & kN) || is_other(k1)) {
      from = i + 1;
      k = k1;
    }
  }
  if (k & kL) return run_end(s, from, [](uint8_t c) { return (c & kL) != 0; });
  if (k & kN) return run_end(s, from, [](uint8_t c) { return (c & kN) != 0; });
  if (is_other(k)) return run_end(s, from, [](uint8_t c) { return is_other(c); });
  return space_run(s, i);
}

template <int MaxDigits>
inline size_t match_cl100k(std::string_view s, size_t i) {
  size_t n = s.size(), len0;
  if (s[i] == '\'') {
    size_t c = contraction(s, i + 1, true);
    if (c) return i + 1 + c;
  }
  uint8_t k0 = char_at(s, i, len0);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (k0 & kL) return run_end(s, i, [](uint8_t c) { return (c & kL) != 0; });
  if (!(k0 & (kNl | kN)) && i + len0 < n) {
    size_t len1;
    if (char_at(s, i + len0, len1) & kL)
      return run_end(s, i + len0, [](uint8_t c) { return (c & kL) != 0; });
  }
  // \p{N}{1,MaxDigits}
  if (k0 & kN) {
    size_t j = i, len;
    for (int d = 0; d < MaxDigits && j < n && (char_at(s, j, len) & kN); ++d) j += len;
    return j;
  }
  // ' '?[^\s\p{L}\p{N}]+[\r\n]*
  size_t from = n;
  if (is_other(k0)) {
    from = i;
  } else if (s[i] == ' ' && i + 1 < n) {
    size_t len1;
    if (is_other(char_at(s, i + 1, len1))) from = i + 1;
  }
  if (from < n) {
    size_t j = run_end(s, from, [](uint8_t c) { return is_other(c); });
    while (j < n && (s[j] == '\r' || s[j] == '\n')) ++j;
    return j;
  }
  // k0 is whitespace here. \s*[\r\n]+: up to the last line break of the space run.
  size_t j = i, last_nl = n, len;
  while (j < n) {
    uint8_t k = char_at(s, j, len);
    if (!(k & kWs)) break;
    if (k & kNl) last_nl = j;
    j += len;
  }
  if (last_nl < n) return last_nl + 1;
  return space_run(s, i);
}

}  // namespace fast

/// Calls fn(begin, end) for every match of the fast pattern `kind` in `s` (valid UTF-8).
template <class F>
void fast_split(FastSplit kind, std::string_view s, F&& fn) {
  size_t i = 0;
  while (i < s.size()) {
    size_t e = kind == FastSplit::gpt2     ? fast::match_gpt2(s, i)
               : kind == FastSplit::cl100k ? fast::match_cl100k<3>(s, i)
                                           : fast::match_cl100k<1>(s, i);
    fn(i, e);
    i = e;
  }
}

}  // namespace wick::detail::tok
