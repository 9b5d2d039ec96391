#include "io/jinja_lexer.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "io/jinja_text.h"

namespace wick::io::jinja {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_bin_digit(char c) { return c == '0' || c == '1'; }
bool is_oct_digit(char c) { return c >= '0' && c <= '7'; }
bool is_hex_digit(char c) { return is_digit(c) || ((c | 32) >= 'a' && (c | 32) <= 'f'); }

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src.size(); ++i)
      if (src[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    bool line_starting = true;  // the previous match ended with a newline (or nothing yet)
    size_t pos = 0;
    while (pos < src_.size()) {
      size_t open = find_opener(pos);
      if (open == std::string_view::npos) {
        push_data(pos, src_.size());
        break;
      }
      char kind = src_[open + 1];
      char sign = open + 2 < src_.size() && (src_[open + 2] == '-' || src_[open + 2] == '+')
                      ? src_[open + 2]
                      : 0;
      size_t raw_body = kind == '%' ? match_raw_begin(open) : 0;
      size_t text_end = strip_text(pos, open, sign, kind != '{', line_starting);
      push_data(pos, text_end);
      size_t after = open + 2 + (sign ? 1 : 0);
      if (raw_body) {
        pos = lex_raw(raw_body, line_starting);
      } else if (kind == '#') {
        pos = lex_comment(open, after, line_starting);
      } else {
        pos = lex_tag(open, after, kind == '%', line_starting);
      }
    }
    Token eof;
    eof.type = Tok::eof;
    eof.pos = pos_at(src_.size());
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  // Tokens come in source order, so the column is counted on from the previous position
  // (counting from the line start every time would be quadratic on one long line).
  Pos pos_at(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    size_t start = line_starts_[line - 1];
    size_t from = start, col = 1;
    if (memo_line_ == line && memo_offset_ <= offset) from = memo_offset_, col = memo_col_;
    col += utf8_length(src_.substr(from, offset - from));
    memo_line_ = line, memo_offset_ = offset, memo_col_ = col;
    return {static_cast<uint32_t>(line), static_cast<uint32_t>(col)};
  }

  [[noreturn]] void fail(const std::string& msg, size_t offset) const {
    throw TemplateError(msg, pos_at(offset));
  }

  size_t find_opener(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string_view::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return std::string_view::npos;
  }

  // An identifier character at `i` (see is_identifier_char); returns its size or 0.
  size_t ident_char_at(size_t i, bool start) const {
    CodePoint c = decode_at(src_, i);
    return is_identifier_char(c.value, start) ? c.size : 0;
  }

  // Python's str.isspace over the code point at `i`; returns its size or 0.
  size_t space_at(size_t i) const {
    CodePoint c = decode_at(src_, i);
    return is_py_space(c.value) ? c.size : 0;
  }
  size_t skip_spaces(size_t i) const {
    while (i < src_.size()) {
      size_t n = space_at(i);
      if (!n) break;
      i += n;
    }
    return i;
  }
  // Start of the trailing whitespace run of [from, to).
  size_t rstrip_from(size_t from, size_t to) const {
    auto cps = code_points(src_.substr(from, to - from));
    size_t e = cps.size();
    while (e > 0 && is_py_space(cps[e - 1].value)) --e;
    return e == 0 ? from : from + cps[e - 1].offset + cps[e - 1].size;
  }

  // Applies `-` (strip all whitespace before the tag) or lstrip_blocks (strip the tag's
  // indentation when only whitespace precedes it on its line); returns the new end of the text.
  size_t strip_text(size_t from, size_t to, char sign, bool lstrip_kind, bool line_starting) const {
    if (sign == '-') return rstrip_from(from, to);
    if (sign == '+' || !lstrip_kind) return to;
    size_t nl = src_.substr(from, to - from).rfind('\n');
    size_t l_pos = nl == std::string_view::npos ? from : from + nl + 1;
    if (l_pos == from && nl == std::string_view::npos && !line_starting) return to;
    if (l_pos == to) return to;
    return rstrip_from(l_pos, to) == l_pos ? l_pos : to;
  }

  void push_data(size_t from, size_t to) {
    if (to <= from) return;
    Token t;
    t.type = Tok::data;
    t.pos = pos_at(from);
    t.text = std::string(src_.substr(from, to - from));
    tokens_.push_back(std::move(t));
  }

  void push(Tok type, size_t offset, std::string text = {}) {
    Token t;
    t.type = type;
    t.pos = pos_at(offset);
    t.text = std::move(text);
    tokens_.push_back(std::move(t));
  }

  // Matches `{%[-+]? raw [-]%}`; returns the offset after it, or 0.
  size_t match_raw_begin(size_t open) const {
    size_t i = open + 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    i = skip_spaces(i);
    if (src_.substr(i, 3) != "raw") return 0;
    i = skip_spaces(i + 3);
    if (src_.substr(i, 3) == "-%}") return skip_spaces(i + 3);
    if (src_.substr(i, 2) == "%}") return i + 2;
    return 0;
  }

  // Block end at `i`: `+%}`, `-%}` plus whitespace, or `%}` plus one newline (trim_blocks).
  // Returns the offset after it, or 0.
  size_t match_end(size_t i, char close) const {
    if ((src_[i] == '+' || src_[i] == '-') && i + 2 < src_.size() && src_[i + 1] == close &&
        src_[i + 2] == '}')
      return src_[i] == '-' ? skip_spaces(i + 3) : i + 3;
    if (src_[i] == close && i + 1 < src_.size() && src_[i + 1] == '}') {
      size_t e = i + 2;
      if (close != '}' && e < src_.size() && src_[e] == '\n') ++e;
      return e;
    }
    return 0;
  }

  size_t lex_raw(size_t body, bool& line_starting) {
    line_starting = src_[body - 1] == '\n';
    for (size_t i = src_.find("{%", body); i != std::string_view::npos;
         i = src_.find("{%", i + 1)) {
      size_t j = i + 2;
      char sign = j < src_.size() && (src_[j] == '-' || src_[j] == '+') ? src_[j] : 0;
      if (sign) ++j;
      j = skip_spaces(j);
      if (src_.substr(j, 6) != "endraw") continue;
      j = skip_spaces(j + 6);
      if (j >= src_.size()) continue;
      size_t end = match_end(j, '%');
      if (!end) continue;
      push_data(body, strip_text(body, i, sign, true, line_starting));
      line_starting = src_[end - 1] == '\n';
      return end;
    }
    fail("missing end of raw directive", body);
  }

  size_t lex_comment(size_t open, size_t i, bool& line_starting) {
    for (; i < src_.size(); ++i) {
      size_t end = match_end(i, '#');
      if (end) {
        line_starting = src_[end - 1] == '\n';
        return end;
      }
    }
    fail("missing end of comment tag", open);
  }

  size_t lex_tag(size_t open, size_t i, bool block, bool& line_starting) {
    push(block ? Tok::block_begin : Tok::var_begin, open);
    std::vector<char> balance;
    char close = block ? '%' : '}';
    while (true) {
      if (i >= src_.size()) fail("unexpected end of template inside a tag", open);
      if (balance.empty()) {
        size_t end = match_end(i, close);
        // `}}` ends a variable tag; `-}}` strips what follows, `+}}` is not an end there.
        if (end && !(close == '}' && src_[i] == '+')) {
          push(block ? Tok::block_end : Tok::var_end, i);
          line_starting = src_[end - 1] == '\n';
          return end;
        }
      }
      if (size_t n = space_at(i)) {
        i += n;
        continue;
      }
      char c = src_[i];
      if (is_digit(c)) {
        i = lex_number(i);
      } else if (size_t n = ident_char_at(i, true)) {
        size_t j = i + n;
        while (j < src_.size()) {
          size_t m = ident_char_at(j, false);
          if (!m) break;
          j += m;
        }
        push(Tok::name, i, std::string(src_.substr(i, j - i)));
        i = j;
      } else if (c == '\'' || c == '"') {
        i = lex_string(i);
      } else {
        i = lex_operator(i, balance);
      }
    }
  }

  size_t lex_operator(size_t i, std::vector<char>& balance) {
    static const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : two)
      if (src_.substr(i, 2) == op) {
        push(Tok::op, i, op);
        return i + 2;
      }
    char c = src_[i];
    static const std::string_view singles = "+-/*%~[](){}><=.:|,;";
    if (singles.find(c) == std::string_view::npos) {
      CodePoint cp = decode_at(src_, i);
      std::string ch(src_.substr(i, cp.size));
      fail("unexpected char '" + ch + "'", i);
    }
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) fail(std::string("unexpected '") + c + "'", i);
      if (balance.back() != c)
        fail(std::string("unexpected '") + c + "', expected '" + balance.back() + "'", i);
      balance.pop_back();
    }
    push(Tok::op, i, std::string(1, c));
    return i + 1;
  }

  // Digits with single underscores between them ("1_000"); returns the end or `i`.
  size_t digits_run(size_t i, bool (*ok)(char)) const {
    size_t j = i;
    if (j >= src_.size() || !ok(src_[j])) return i;
    ++j;
    while (j < src_.size()) {
      if (ok(src_[j])) {
        ++j;
      } else if (src_[j] == '_' && j + 1 < src_.size() && ok(src_[j + 1])) {
        j += 2;
      } else {
        break;
      }
    }
    return j;
  }

  size_t lex_number(size_t i) {
    auto strip = [](std::string_view s) {
      std::string out;
      for (char c : s)
        if (c != '_') out.push_back(c);
      return out;
    };
    bool after_dot = i > 0 && src_[i - 1] == '.';
    size_t int_end = digits_run(i, is_digit);
    if (!after_dot) {
      // A float needs a fraction or an exponent.
      size_t j = int_end;
      bool is_float = false;
      if (j + 1 < src_.size() && src_[j] == '.' && is_digit(src_[j + 1])) {
        j = digits_run(j + 1, is_digit);
        is_float = true;
      }
      if (j < src_.size() && (src_[j] == 'e' || src_[j] == 'E')) {
        size_t k = j + 1;
        if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
        size_t e = digits_run(k, is_digit);
        if (e > k) j = e, is_float = true;
      }
      if (is_float) {
        std::string text = strip(src_.substr(i, j - i));
        Token t;
        t.type = Tok::floating;
        t.pos = pos_at(i);
        t.fval = std::strtod(text.c_str(), nullptr);
        tokens_.push_back(std::move(t));
        return j;
      }
    }
    // Integers: 0b / 0o / 0x prefixes, decimals without leading zeros, or zeros.
    int base = 10;
    size_t start = i, end;
    char p = i + 1 < src_.size() ? static_cast<char>(src_[i + 1] | 32) : 0;
    auto prefixed = [&](bool (*ok)(char)) {
      size_t j = i + 2;
      while (j < src_.size() && (ok(src_[j]) || (src_[j] == '_' && j + 1 < src_.size() &&
                                                 ok(src_[j + 1]))))
        ++j;
      return j;
    };
    if (src_[i] == '0' && (p == 'b' || p == 'o' || p == 'x')) {
      base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
      end = prefixed(base == 2 ? is_bin_digit : base == 8 ? is_oct_digit : is_hex_digit);
      if (end == i + 2) {
        base = 10, end = i + 1;
      } else {
        start = i + 2;
      }
    } else if (src_[i] == '0') {
      end = digits_run(i, [](char c) { return c == '0'; });
    } else {
      end = int_end;
    }
    std::string digits = strip(src_.substr(start, end - start));
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (ec != std::errc() || ptr != digits.data() + digits.size())
      fail("integer literal out of range", i);
    Token t;
    t.type = Tok::integer;
    t.pos = pos_at(i);
    t.ival = v;
    tokens_.push_back(std::move(t));
    return end;
  }

  size_t lex_string(size_t i) {
    char quote = src_[i];
    std::string out;
    size_t j = i + 1;
    auto hex_escape = [&](size_t at, int n) -> uint32_t {
      uint32_t v = 0;
      for (int k = 0; k < n; ++k) {
        size_t q = at + static_cast<size_t>(k);
        char c = q < src_.size() ? src_[q] : 0;
        int d = is_digit(c) ? c - '0' : ((c | 32) >= 'a' && (c | 32) <= 'f') ? (c | 32) - 'a' + 10 : -1;
        if (d < 0) fail("truncated \\" + std::string(1, src_[at - 1]) + " escape in string", at);
        v = v * 16 + static_cast<uint32_t>(d);
      }
      return v;
    };
    while (true) {
      if (j >= src_.size()) fail("unterminated string", i);
      char c = src_[j];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        ++j;
        continue;
      }
      if (j + 1 >= src_.size()) fail("unterminated string", i);
      char e = src_[j + 1];
      j += 2;
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = hex_escape(j, n);
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            fail("string escape names an invalid code point", j - 2);
          append_utf8(out, cp);
          j += static_cast<size_t>(n);
          break;
        }
        case 'N': fail("\\N{...} escapes are not supported", j - 2);
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && j < src_.size() && src_[j] >= '0' && src_[j] <= '7'; ++k, ++j)
              v = v * 8 + static_cast<uint32_t>(src_[j] - '0');
            append_utf8(out, v);
          } else {
            // Python keeps unknown escapes as written.
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    Token t;
    t.type = Tok::string;
    t.pos = pos_at(i);
    t.text = std::move(out);
    tokens_.push_back(std::move(t));
    return j + 1;
  }

  std::string_view src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  mutable size_t memo_line_ = 0, memo_offset_ = 0, memo_col_ = 1;
};

}  // namespace

std::string normalize_template_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> lex_template(std::string_view source) { return Lexer(source).run(); }

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::data: return "template text";
    case Tok::var_begin: return "'{{'";
    case Tok::var_end: return "'}}'";
    case Tok::block_begin: return "'{%'";
    case Tok::block_end: return "'%}'";
    case Tok::name:
    case Tok::op: return "'" + t.text + "'";
    case Tok::string: return "string";
    case Tok::integer: return "integer";
    case Tok::floating: return "float";
    case Tok::eof: return "end of template";
  }
  return "token";
}

}  // namespace wick::io::jinja
