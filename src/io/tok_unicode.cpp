#include "io/tok_unicode.h"

#include <utf8proc.h>

#include <array>
#include <cstring>
#include <cstdlib>
#include <memory>
#include <vector>

#include "wick/error.h"

namespace wick::detail::tok {

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when none starts there; `maximal` receives
// the length of the longest prefix that could still have become valid (the "maximal subpart"
// that one U+FFFD replaces).
size_t valid_seq(std::string_view s, size_t i, size_t& maximal) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = at(i);
  maximal = 1;
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;       // no overlong forms
    if (c == 0xED) hi = 0x9F;       // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;       // nothing past U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) return 0;
    unsigned char b = at(i + k);
    bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return 0;
    maximal = k + 1;
  }
  return n;
}

}  // namespace

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0, m;
  while (i < s.size()) {
    // ASCII runs dominate real text.
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    size_t n = valid_seq(s, i, m);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0, m;
  while (i < bytes.size()) {
    size_t n = valid_seq(bytes, i, m);
    if (n) {
      out.append(bytes.data() + i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += m;
    }
  }
  return out;
}

bool is_white_space(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

namespace {
utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}
}  // namespace

bool is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  auto k = category(c);
  return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  auto k = category(c);
  return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool is_punctuation(char32_t c) {
  auto k = category(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool is_other(char32_t c) {
  // Unassigned code points (Cn) do not count: the unicode_categories crate that the library
  // uses has no table for them (U+0378, U+FFFF survive BertNormalizer's clean_text there).
  auto k = category(c);
  return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
         k == UTF8PROC_CATEGORY_CO;
}

bool is_mark_nonspacing(char32_t c) { return category(c) == UTF8PROC_CATEGORY_MN; }

bool is_word_char(char32_t c) {
  if (c < 0x80) return is_letter(c) || (c >= '0' && c <= '9') || c == '_';
  auto k = category(c);
  if (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_ME) return true;  // letters, marks
  if (k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_PC)
    return true;
  if (c == 0x200C || c == 0x200D) return true;  // Join_Control
  // Symbols that are Other_Alphabetic: circled and squared Latin letters.
  return (c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
         (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
}

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void append_lowercase(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  // The one unconditional multi-character lowercase mapping (SpecialCasing.txt).
  if (c == 0x130) {
    out += "i\xCC\x87";
    return;
  }
  append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) append_lowercase(out, next_cp(s, i));
  return out;
}

// ---- normalisation ------------------------------------------------------------------------
//
// A character is "stable" for a form when the text can be cut just before it without changing
// the result: it is a starter (combining class 0), the form leaves it unchanged, and (for the
// composing forms) it can never be the second half of a canonical composition. Text between
// two stable characters is normalised on its own; runs of stable characters are copied.

namespace {

constexpr char32_t kTableSize = 0x30000;  // past this every character takes the slow path
enum : uint8_t { kStableNfc = 1, kStableNfd = 2, kStableNfkc = 4, kStableNfkd = 8 };

utf8proc_option_t options_of(NormForm f) {
  int o = UTF8PROC_STABLE;
  switch (f) {
    case NormForm::nfc: o |= UTF8PROC_COMPOSE; break;
    case NormForm::nfd: o |= UTF8PROC_DECOMPOSE; break;
    case NormForm::nfkc: o |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormForm::nfkd: o |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  return static_cast<utf8proc_option_t>(o);
}

// True when `form` maps the single character c to itself.
bool maps_to_itself(char32_t c, NormForm form) {
  utf8proc_int32_t buf[32];
  int last_boundclass = 0;
  int opts = form == NormForm::nfkc || form == NormForm::nfkd ? UTF8PROC_COMPAT : 0;
  utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32,
                                               static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | opts),
                                               &last_boundclass);
  if (n <= 0 || n > 32) return false;
  if (form == NormForm::nfc || form == NormForm::nfkc) {
    n = utf8proc_normalize_utf32(buf, n, options_of(form));
    if (n <= 0) return false;
  }
  return n == 1 && buf[0] == static_cast<utf8proc_int32_t>(c);
}

const uint8_t* stable_table() {
  static const std::unique_ptr<uint8_t[]> table = [] {
    auto t = std::make_unique<uint8_t[]>(kTableSize);
    std::vector<bool> second(kTableSize, false);
    for (char32_t c = 0; c < kTableSize; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
      bool hangul = c >= 0xAC00 && c <= 0xD7A3;
      if (p->decomp_seqindex == UINT16_MAX && !hangul) {
        if (p->combining_class == 0) t[c] = kStableNfc | kStableNfd | kStableNfkc | kStableNfkd;
        continue;
      }
      if (p->combining_class == 0) {
        uint8_t f = 0;
        if (maps_to_itself(c, NormForm::nfc)) f |= kStableNfc;
        if (maps_to_itself(c, NormForm::nfd)) f |= kStableNfd;
        if (maps_to_itself(c, NormForm::nfkc)) f |= kStableNfkc;
        if (maps_to_itself(c, NormForm::nfkd)) f |= kStableNfkd;
        t[c] = f;
      }
      // Everything after the first character of a canonical decomposition may combine with
      // what precedes it.
      utf8proc_int32_t buf[32];
      int lbc = 0;
      utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32,
                                                   UTF8PROC_DECOMPOSE, &lbc);
      for (utf8proc_ssize_t k = 1; k < n && k < 32; ++k)
        if (buf[k] >= 0 && static_cast<char32_t>(buf[k]) < kTableSize) second[buf[k]] = true;
    }
    for (char32_t c = 0; c < kTableSize; ++c)
      if (second[c]) t[c] &= static_cast<uint8_t>(~(kStableNfc | kStableNfkc));
    return t;
  }();
  return table.get();
}

void append_normalized(std::string& out, std::string_view run, NormForm form) {
  utf8proc_uint8_t* dst = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                                    static_cast<utf8proc_ssize_t>(run.size()), &dst,
                                    options_of(form));
  if (n < 0) {
    std::free(dst);
    throw Error(std::string("tokenizer: Unicode normalisation failed: ") +
                utf8proc_errmsg(n));
  }
  out.append(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  std::free(dst);
}

}  // namespace

std::string normalize(std::string_view s, NormForm form) {
  uint8_t bit = form == NormForm::nfc    ? kStableNfc
                : form == NormForm::nfd  ? kStableNfd
                : form == NormForm::nfkc ? kStableNfkc
                                         : kStableNfkd;
  const uint8_t* table = nullptr;
  auto stable = [&](char32_t c) {
    if (c < 0x80) return true;
    if (c >= kTableSize) return false;
    if (!table) table = stable_table();
    return (table[c] & bit) != 0;
  };
  std::string out;
  size_t copied = 0;       // s[0, copied) has been written to out
  size_t last_stable = 0;  // start of the last stable character seen (a cut point)
  size_t i = 0;
  while (i < s.size()) {
    size_t at = i;
    char32_t c = next_cp(s, i);
    if (stable(c)) {
      last_stable = at;
      continue;
    }
    // Normalise from the last cut point to the next stable character.
    size_t end = i;
    while (end < s.size()) {
      size_t j = end;
      if (stable(next_cp(s, j))) break;
      end = j;
    }
    if (out.empty()) out.reserve(s.size() + 16);
    out.append(s.data() + copied, last_stable - copied);
    append_normalized(out, s.substr(last_stable, end - last_stable), form);
    copied = end;
    last_stable = end;
    i = end;
  }
  if (copied == 0) return std::string(s);
  out.append(s.data() + copied, s.size() - copied);
  return out;
}

}  // namespace wick::detail::tok
