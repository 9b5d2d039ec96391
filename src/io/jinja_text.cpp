#include "io/jinja_text.h"
#include "io/tok_unicode.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>

#include "io/jinja_error.h"

namespace wick::io::jinja {

namespace {

// Invalid bytes decode to U+DC80..U+DCFF (Python's surrogateescape convention) so that they can
// never be confused with a real character; they are written back as the original byte.
constexpr uint32_t kRawByteBase = 0xDC00;

bool is_raw_byte(uint32_t cp) { return cp >= 0xDC80 && cp <= 0xDCFF; }

locale_t utf8_locale() {
  static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  return loc;
}

uint32_t map_case(uint32_t cp, bool upper) {
  if (cp < 0x80) {
    if (upper && cp >= 'a' && cp <= 'z') return cp - 32;
    if (!upper && cp >= 'A' && cp <= 'Z') return cp + 32;
    return cp;
  }
  if (is_raw_byte(cp)) return cp;
  locale_t loc = utf8_locale();
  if (!loc) return cp;
  return static_cast<uint32_t>(upper ? towupper_l(static_cast<wint_t>(cp), loc)
                                     : towlower_l(static_cast<wint_t>(cp), loc));
}

void append_cp(std::string& out, std::string_view src, const CodePoint& c, uint32_t mapped) {
  if (mapped == c.value)
    out.append(src.substr(c.offset, c.size));
  else
    append_utf8(out, mapped);
}

// Unicode's one-to-many case mappings (SpecialCasing.txt) that Python applies and the C
// library's one-to-one tables cannot express: German sharp s, Latin ligatures, and letters whose
// capital takes a combining mark. Greek letters with iota subscript are not covered.
struct SpecialCase {
  uint32_t cp;
  const char* upper;
  const char* title;
};
constexpr SpecialCase kSpecialCases[] = {
    {0x00DF, "SS", "Ss"},
    {0x0149, "\u02BCN", "\u02BCN"},
    {0x01F0, "J\u030C", "J\u030C"},
    {0x0390, "\u0399\u0308\u0301", "\u0399\u0308\u0301"},
    {0x03B0, "\u03A5\u0308\u0301", "\u03A5\u0308\u0301"},
    {0x0587, "\u0535\u0552", "\u0535\u0582"},
    {0x1E96, "H\u0331", "H\u0331"},
    {0x1E97, "T\u0308", "T\u0308"},
    {0x1E98, "W\u030A", "W\u030A"},
    {0x1E99, "Y\u030A", "Y\u030A"},
    {0x1E9A, "A\u02BE", "A\u02BE"},
    {0xFB00, "FF", "Ff"},
    {0xFB01, "FI", "Fi"},
    {0xFB02, "FL", "Fl"},
    {0xFB03, "FFI", "Ffi"},
    {0xFB04, "FFL", "Ffl"},
    {0xFB05, "ST", "St"},
    {0xFB06, "ST", "St"},
    {0xFB13, "\u0544\u0546", "\u0544\u0576"},
    {0xFB14, "\u0544\u0535", "\u0544\u0565"},
    {0xFB15, "\u0544\u053B", "\u0544\u056B"},
    {0xFB16, "\u054E\u0546", "\u054E\u0576"},
    {0xFB17, "\u0544\u053D", "\u0544\u056D"},
};

const SpecialCase* special_case(uint32_t cp) {
  if (cp < 0xDF) return nullptr;
  for (const auto& s : kSpecialCases)
    if (s.cp == cp) return &s;
  return nullptr;
}

bool is_cased(uint32_t cp) { return map_case(cp, true) != map_case(cp, false) || special_case(cp); }

// Title case of one code point: the upper case except for the special mappings and the
// Latin digraphs (DŽ, LJ, NJ, DZ), whose title form is a capital followed by a small letter.
void append_title(std::string& out, std::string_view src, const CodePoint& c) {
  if (const SpecialCase* s = special_case(c.value)) {
    out += s->title;
    return;
  }
  uint32_t cp = c.value;
  if (cp >= 0x01C4 && cp <= 0x01CC) {
    append_utf8(out, 0x01C5 + 3 * ((cp - 0x01C4) / 3));
    return;
  }
  if (cp >= 0x01F1 && cp <= 0x01F3) {
    append_utf8(out, 0x01F2);
    return;
  }
  append_cp(out, src, c, map_case(cp, true));
}


bool in_set(uint32_t cp, const std::vector<CodePoint>& set) {
  for (const auto& c : set)
    if (c.value == cp) return true;
  return false;
}

bool is_line_break(uint32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || cp == 0x1c || cp == 0x1d ||
         cp == 0x1e || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

}  // namespace

CodePoint decode_at(std::string_view s, size_t pos) {
  auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t c0 = b(pos);
  CodePoint raw{kRawByteBase + c0, static_cast<uint32_t>(pos), 1};
  if (c0 < 0x80) return {c0, static_cast<uint32_t>(pos), 1};
  size_t n;
  uint32_t cp, min;
  if ((c0 & 0xE0) == 0xC0) {
    n = 2, cp = c0 & 0x1F, min = 0x80;
  } else if ((c0 & 0xF0) == 0xE0) {
    n = 3, cp = c0 & 0x0F, min = 0x800;
  } else if ((c0 & 0xF8) == 0xF0) {
    n = 4, cp = c0 & 0x07, min = 0x10000;
  } else {
    return raw;
  }
  if (pos + n > s.size()) return raw;
  for (size_t i = 1; i < n; ++i) {
    uint8_t ci = b(pos + i);
    if ((ci & 0xC0) != 0x80) return raw;
    cp = (cp << 6) | (ci & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return raw;
  return {cp, static_cast<uint32_t>(pos), static_cast<uint32_t>(n)};
}

std::vector<CodePoint> code_points(std::string_view s) {
  std::vector<CodePoint> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    CodePoint c = decode_at(s, i);
    out.push_back(c);
    i += c.size;
  }
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) i += decode_at(s, i).size;
  return n;
}

void append_utf8(std::string& out, uint32_t cp) {
  // Raw bytes (invalid input kept as is) go out unchanged; code points share the tokenizer's encoder.
  if (is_raw_byte(cp)) out.push_back(static_cast<char>(cp - kRawByteBase));
  else detail::tok::append_utf8(out, static_cast<char32_t>(cp));
}

bool is_py_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f);
  return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

bool is_identifier_char(uint32_t cp, bool start) {
  if (cp < 0x80) {
    bool alpha = (cp | 32) >= 'a' && (cp | 32) <= 'z';
    return alpha || cp == '_' || (!start && cp >= '0' && cp <= '9');
  }
  if (is_raw_byte(cp)) return false;
  locale_t loc = utf8_locale();
  if (!loc) return false;
  auto w = static_cast<wint_t>(cp);
  // Combining marks continue identifiers (Mn/Mc are XID_Continue).
  bool mark = (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
              (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
              (cp >= 0xFE20 && cp <= 0xFE2F);
  return iswalpha_l(w, loc) != 0 || (!start && (iswalnum_l(w, loc) != 0 || mark));
}

bool is_py_printable(uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return false;
  if (cp < 0x7f) return true;
  if (is_raw_byte(cp) || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  // Separators other than the ASCII space (Zs, Zl, Zp).
  if (is_py_space(cp)) return false;
  // Format characters (Cf).
  static const uint32_t kFormat[][2] = {
      {0xad, 0xad},         {0x600, 0x605},       {0x61c, 0x61c},     {0x6dd, 0x6dd},
      {0x70f, 0x70f},       {0x890, 0x891},       {0x8e2, 0x8e2},     {0x180e, 0x180e},
      {0x200b, 0x200f},     {0x202a, 0x202e},     {0x2060, 0x2064},   {0x2066, 0x206f},
      {0xfeff, 0xfeff},     {0xfff9, 0xfffb},     {0x110bd, 0x110bd}, {0x110cd, 0x110cd},
      {0x13430, 0x1343f},   {0x1bca0, 0x1bca3},   {0x1d173, 0x1d17a}, {0xe0001, 0xe0001},
      {0xe0020, 0xe007f},
  };
  for (const auto& r : kFormat)
    if (cp >= r[0] && cp <= r[1]) return false;
  // Private use (Co).
  if ((cp >= 0xe000 && cp <= 0xf8ff) || cp >= 0xf0000) return false;
  // Unassigned code points (Cn), as far as the C library's tables know them.
  locale_t loc = utf8_locale();
  return loc ? iswprint_l(static_cast<wint_t>(cp), loc) != 0 : true;
}

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                     bool right) {
  auto cps = code_points(s);
  std::vector<CodePoint> set;
  if (chars) set = code_points(*chars);
  auto strip_it = [&](uint32_t cp) { return chars ? in_set(cp, set) : is_py_space(cp); };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_it(cps[b].value)) ++b;
  if (right)
    while (e > b && strip_it(cps[e - 1].value)) --e;
  if (b == e) return {};
  size_t from = cps[b].offset, to = cps[e - 1].offset + cps[e - 1].size;
  return std::string(s.substr(from, to - from));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right) {
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) throw TemplateError("empty separator");
    if (!from_right) {
      size_t pos = 0;
      while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
        size_t hit = s.find(*sep, pos);
        if (hit == std::string_view::npos) break;
        out.emplace_back(s.substr(pos, hit - pos));
        pos = hit + sep->size();
      }
      out.emplace_back(s.substr(pos));
    } else {
      size_t end = s.size();
      while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
        if (end < sep->size()) break;
        size_t hit = s.rfind(*sep, end - sep->size());
        if (hit == std::string_view::npos) break;
        out.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
        end = hit;
      }
      out.emplace_back(s.substr(0, end));
      std::reverse(out.begin(), out.end());
    }
    return out;
  }
  // Whitespace runs: no empty pieces; the unsplit remainder keeps its inner whitespace.
  auto cps = code_points(s);
  auto bytes = [&](size_t b, size_t e) {
    return std::string(s.substr(cps[b].offset, cps[e - 1].offset + cps[e - 1].size - cps[b].offset));
  };
  size_t n = cps.size();
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < n && is_py_space(cps[i].value)) ++i;
      if (i == n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        out.push_back(bytes(i, n));  // the remainder keeps its trailing whitespace
        break;
      }
      size_t j = i;
      while (j < n && !is_py_space(cps[j].value)) ++j;
      out.push_back(bytes(i, j));
      i = j;
    }
  } else {
    size_t i = n;
    while (true) {
      while (i > 0 && is_py_space(cps[i - 1].value)) --i;
      if (i == 0) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        out.push_back(bytes(0, i));  // the remainder keeps its leading whitespace
        break;
      }
      size_t j = i;
      while (j > 0 && !is_py_space(cps[j - 1].value)) --j;
      out.push_back(bytes(j, i));
      i = j;
    }
    std::reverse(out.begin(), out.end());
  }
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s) {
  std::vector<std::string> out;
  auto cps = code_points(s);
  size_t start = 0;  // byte offset of the current line
  for (size_t i = 0; i < cps.size(); ++i) {
    if (!is_line_break(cps[i].value)) continue;
    out.emplace_back(s.substr(start, cps[i].offset - start));
    size_t next = cps[i].offset + cps[i].size;
    if (cps[i].value == '\r' && i + 1 < cps.size() && cps[i + 1].value == '\n') {
      ++i;
      next += 1;
    }
    start = next;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl,
                       int64_t count, size_t limit) {
  std::string out;
  auto push = [&](std::string_view piece) {
    if (out.size() + piece.size() > limit)
      throw TemplateError("replace: result larger than " + std::to_string(limit) + " bytes");
    out.append(piece);
  };
  if (old.empty()) {
    // Python inserts `repl` before every code point and at the end.
    auto cps = code_points(s);
    int64_t done = 0;
    for (const auto& c : cps) {
      if (count < 0 || done < count) push(repl), ++done;
      push(s.substr(c.offset, c.size));
    }
    if (count < 0 || done < count) push(repl);
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(old, pos);
    if (hit == std::string_view::npos) break;
    push(s.substr(pos, hit - pos));
    push(repl);
    pos = hit + old.size();
    ++done;
  }
  push(s.substr(pos));
  return out;
}

std::string py_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const auto& c : code_points(s)) {
    if (const SpecialCase* sc = special_case(c.value))
      out += sc->upper;
    else
      append_cp(out, s, c, map_case(c.value, true));
  }
  return out;
}

// Lower case, with Python's two context rules: İ becomes i + combining dot, and a capital sigma
// that ends a word becomes the final form ς.
void append_lower(std::string& out, std::string_view s, const std::vector<CodePoint>& cps, size_t i) {
  uint32_t cp = cps[i].value;
  if (cp == 0x0130) {
    out += "i\u0307";
  } else if (cp == 0x03A3 && i > 0 && is_cased(cps[i - 1].value) &&
             !(i + 1 < cps.size() && is_cased(cps[i + 1].value))) {
    append_utf8(out, 0x03C2);
  } else {
    append_cp(out, s, cps[i], map_case(cp, false));
  }
}

std::string py_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto cps = code_points(s);
  for (size_t i = 0; i < cps.size(); ++i) append_lower(out, s, cps, i);
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto cps = code_points(s);
  for (size_t i = 0; i < cps.size(); ++i) {
    if (i == 0)
      append_title(out, s, cps[i]);
    else
      append_lower(out, s, cps, i);
  }
  return out;
}

std::string py_title(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto cps = code_points(s);
  bool prev_cased = false;
  for (size_t i = 0; i < cps.size(); ++i) {
    bool cased = is_cased(cps[i].value);
    if (!cased)
      out.append(s.substr(cps[i].offset, cps[i].size));
    else if (prev_cased)
      append_lower(out, s, cps, i);
    else
      append_title(out, s, cps[i]);
    prev_cased = cased;
  }
  return out;
}

std::string jinja_title(std::string_view s) {
  auto is_sep = [](uint32_t cp) {
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || is_py_space(cp);
  };
  // Each run between separators: first character upper-cased, the rest lower-cased.
  std::string out;
  out.reserve(s.size());
  auto cps = code_points(s);
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    while (j < cps.size() && is_sep(cps[j].value) == is_sep(cps[i].value)) ++j;
    std::string_view run = s.substr(cps[i].offset, cps[j - 1].offset + cps[j - 1].size - cps[i].offset);
    if (is_sep(cps[i].value)) {
      out.append(run);
    } else {
      size_t first = cps[i].size;
      out += py_upper(run.substr(0, first));
      out += py_lower(run.substr(first));
    }
    i = j;
  }
  return out;
}

bool py_is(std::string_view s, std::string_view what) {
  auto cps = code_points(s);
  locale_t loc = utf8_locale();
  auto alpha = [&](uint32_t cp) {
    if (cp < 0x80) return (cp | 32) >= 'a' && (cp | 32) <= 'z';
    return loc && !is_raw_byte(cp) && iswalpha_l(static_cast<wint_t>(cp), loc) != 0;
  };
  auto digit = [](uint32_t cp) { return cp >= '0' && cp <= '9'; };
  if (what == "islower" || what == "isupper") {
    bool upper = what == "isupper", cased = false;
    for (const auto& c : cps) {
      if (!is_cased(c.value)) continue;
      cased = true;
      // The special-cased letters (ß, ligatures, ...) are all lower case.
      bool is_upper = !special_case(c.value) && c.value == map_case(c.value, true);
      if (is_upper != upper) return false;
    }
    return cased;
  }
  if (cps.empty()) return false;
  for (const auto& c : cps) {
    bool ok = what == "isdigit"   ? digit(c.value)
              : what == "isalpha" ? alpha(c.value)
              : what == "isalnum" ? alpha(c.value) || digit(c.value)
                                  : is_py_space(c.value);
    if (!ok) return false;
  }
  return true;
}

void py_repr_string(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  out.push_back(quote);
  static const char* hex = "0123456789abcdef";
  for (const auto& c : code_points(s)) {
    uint32_t cp = c.value;
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (is_py_printable(cp)) {
      out.append(s.substr(c.offset, c.size));
    } else {
      int digits = cp < 0x100 ? 2 : cp < 0x10000 ? 4 : 8;
      out += digits == 2 ? "\\x" : digits == 4 ? "\\u" : "\\U";
      for (int i = digits - 1; i >= 0; --i) out.push_back(hex[(cp >> (4 * i)) & 0xF]);
    }
  }
  out.push_back(quote);
}

SliceBounds py_slice(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop,
                     std::optional<int64_t> step) {
  int64_t st = step.value_or(1);
  if (st == 0) throw TemplateError("slice step cannot be zero");
  // Steps beyond any possible length behave alike; clamping keeps -st representable.
  st = std::clamp<int64_t>(st, -(int64_t(1) << 62), int64_t(1) << 62);
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += length;
      if (x < 0) x = st < 0 ? -1 : 0;
    } else if (x >= length) {
      x = st < 0 ? length - 1 : length;
    }
    return x;
  };
  int64_t b = adjust(start, st < 0 ? length - 1 : 0);
  int64_t e = adjust(stop, st < 0 ? -1 : length);
  int64_t count = 0;
  if (st < 0) {
    if (e < b) count = (b - e - 1) / (-st) + 1;
  } else if (b < e) {
    count = (e - b - 1) / st + 1;
  }
  return {b, e, st, count};
}

}  // namespace wick::io::jinja
