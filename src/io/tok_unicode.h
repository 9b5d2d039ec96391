#pragma once
// UTF-8 and Unicode character facts used by the tokenizer, with the definitions of the Rust
// `tokenizers` library (Rust's char methods and the unicode_categories crate): White_Space,
// general categories, full lowercase mapping, and the four normalisation forms.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wick::detail::tok {

/// Byte length of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte,
/// so that loops over possibly broken text always advance).
inline size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

/// Decodes the code point at s[i] of VALID UTF-8 and advances i.
inline char32_t next_cp(std::string_view s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    ++i;
    return c;
  }
  size_t n = utf8_len(c);
  char32_t cp = n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

/// Appends the UTF-8 encoding of `cp` (a valid scalar value).
void append_utf8(std::string& out, char32_t cp);

/// Byte offset of the first invalid UTF-8 sequence in `s` (overlong forms, surrogates and values
/// past U+10FFFF are invalid), or npos when `s` is valid.
size_t find_invalid_utf8(std::string_view s);

/// `bytes` as UTF-8 with every maximal invalid subsequence replaced by U+FFFD (the substitution
/// that Rust's String::from_utf8_lossy and the WHATWG decoder make).
std::string utf8_lossy(std::string_view bytes);

/// Unicode White_Space (Rust's char::is_whitespace).
bool is_white_space(char32_t c);

/// General category tests.
bool is_letter(char32_t c);             // L*
bool is_numeric(char32_t c);            // Nd Nl No (Rust's char::is_numeric)
bool is_punctuation(char32_t c);        // P*
bool is_other(char32_t c);              // Cc Cf Cs Co (not Cn, as in the library)
bool is_mark_nonspacing(char32_t c);    // Mn
/// Rust regex's \w: Alphabetic, marks, decimal numbers, connector punctuation, Join_Control.
bool is_word_char(char32_t c);
/// The CJK ideograph blocks that BERT pads with spaces.
bool is_chinese_char(char32_t c);

/// Appends the full lowercase mapping of `c` (Rust's char::to_lowercase, no context rules).
void append_lowercase(std::string& out, char32_t c);
/// Lowercases every character of `s`.
std::string lowercase(std::string_view s);

enum class NormForm { nfc, nfd, nfkc, nfkd };
/// Unicode normalisation of VALID UTF-8. Text whose characters cannot change under `form`
/// (for NFC: ASCII, most Latin, CJK, ...) is returned without a call into utf8proc.
std::string normalize(std::string_view s, NormForm form);

}  // namespace wick::detail::tok
