#include "io/tok_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "io/tok_unicode.h"
#include "wick/error.h"

namespace wick::detail::tok {

namespace {

// Oniguruma's \s is Unicode White_Space; PCRE2's (with UCP) also takes U+180E. Spelled out as
// class contents so that it works inside a bracket expression too.
constexpr const char* kSpaceClass =
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}";
// Oniguruma's \w is letters, marks, decimal numbers and connector punctuation; PCRE2 10.42's
// takes every number and only the underscore.
constexpr const char* kWordClass = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
// Oniguruma (Ruby syntax) \h is a hexadecimal digit, not horizontal space.
constexpr const char* kHexClass = "0-9a-fA-F";

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

std::string onig_to_pcre2(std::string_view p, const std::string& where) {
  std::string out;
  out.reserve(p.size() + 32);
  int class_depth = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      const char* cls = nullptr;
      bool negated = false;
      switch (n) {
        case 's': cls = kSpaceClass; break;
        case 'S': cls = kSpaceClass; negated = true; break;
        case 'w': cls = kWordClass; break;
        case 'W': cls = kWordClass; negated = true; break;
        case 'h': cls = kHexClass; break;
        case 'H': cls = kHexClass; negated = true; break;
        default: break;
      }
      if (cls) {
        if (class_depth == 0) {
          out += negated ? "[^" : "[";
          out += cls;
          out += "]";
        } else if (!negated) {
          out += cls;
        } else if (n == 'H') {
          throw Error(where + ": regex construct \\H inside a character class is not supported");
        } else {
          // A negated shorthand inside a class cannot be spelled out without class
          // subtraction; PCRE2's own \S / \W differ only on rare characters.
          out += '\\';
          out += n;
        }
        ++i;
        continue;
      }
      if (n == 'u' && i + 5 < p.size() && is_hex(p[i + 2]) &&
          is_hex(p[i + 3]) && is_hex(p[i + 4]) && is_hex(p[i + 5])) {
        out += "\\x{";
        out.append(p.substr(i + 2, 4));
        out += "}";
        i += 5;
        continue;
      }
      out += c;
      out += n;
      ++i;
      continue;
    }
    if (c == '[') {
      if (class_depth > 0 && i + 1 < p.size() && p[i + 1] == ':') {
        // POSIX class [:alpha:] inside a bracket expression: copy through its closing ":]".
        size_t end = p.find(":]", i + 2);
        if (end != std::string_view::npos) {
          out.append(p.substr(i, end + 2 - i));
          i = end + 1;
          continue;
        }
      }
      if (class_depth > 0) throw Error(where + ": nested character classes are not supported");
      ++class_depth;
      out += c;
      // A ']' right after '[' or '[^' is a literal in both syntaxes.
      if (i + 1 < p.size() && p[i + 1] == '^') {
        out += '^';
        ++i;
      }
      if (i + 1 < p.size() && p[i + 1] == ']') {
        out += "\\]";
        ++i;
      }
      continue;
    }
    if (c == ']' && class_depth > 0) {
      --class_depth;
      out += c;
      continue;
    }
    if (c == '&' && class_depth > 0 && i + 1 < p.size() && p[i + 1] == '&')
      throw Error(where + ": character class intersection (&&) is not supported");
    out += c;
  }
  return out;
}

namespace {

// Per-thread PCRE2 match state: match data (its first pair is all we read), and a JIT stack
// large enough for long runs of one character class.
struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ThreadMatchState() {
    data = pcre2_match_data_create(16, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (!data || !context || !stack) throw Error("tokenizer: out of memory for regex matching");
    pcre2_jit_stack_assign(context, nullptr, stack);
    // Bounds the work of a pathological pattern from an untrusted file: a clean error, not a
    // hang.
    pcre2_set_match_limit(context, 100'000'000);
    pcre2_set_depth_limit(context, 1'000'000);
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

Pattern Pattern::regex(std::string_view pattern, const std::string& where) {
  Pattern p;
  p.source_ = std::string(pattern);
  p.where_ = where;
  std::string translated = onig_to_pcre2(pattern, where);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
                                   translated.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE,
                                   &err, &err_off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(where + ": invalid regex \"" + p.source_ + "\": " +
                reinterpret_cast<const char*>(msg));
  }
  p.code_ = code;
  p.jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  p.fast_ = recognize_fast_split(pattern);
  return p;
}

Pattern Pattern::regex_only(std::string_view pattern, const std::string& where) {
  Pattern p = regex(pattern, where);
  p.fast_ = FastSplit::none;
  return p;
}

Pattern Pattern::literal(std::string_view text, const std::string& where) {
  // The library escapes the string into a regex; an empty one then matches (emptily)
  // everywhere, which only the regex path reproduces.
  if (text.empty()) return regex("", where);
  Pattern p;
  p.literal_ = std::string(text);
  p.source_ = p.literal_;
  return p;
}

Pattern::Pattern(Pattern&& o) noexcept
    : code_(o.code_), jit_(o.jit_), fast_(o.fast_), literal_(std::move(o.literal_)),
      source_(std::move(o.source_)), where_(std::move(o.where_)) {
  o.code_ = nullptr;
}

Pattern& Pattern::operator=(Pattern&& o) noexcept {
  if (this != &o) {
    if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
    code_ = o.code_;
    o.code_ = nullptr;
    jit_ = o.jit_;
    fast_ = o.fast_;
    literal_ = std::move(o.literal_);
    source_ = std::move(o.source_);
    where_ = std::move(o.where_);
  }
  return *this;
}

Pattern::~Pattern() {
  if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

size_t Pattern::char_len(std::string_view s, size_t i) {
  return utf8_len(static_cast<unsigned char>(s[i]));
}

bool Pattern::search(std::string_view s, size_t start, size_t& begin, size_t& end) const {
  ThreadMatchState& st = thread_state();
  auto* code = static_cast<pcre2_code*>(code_);
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  int rc = jit_ ? pcre2_jit_match(code, subject, s.size(), start, 0, st.data, st.context)
                : pcre2_match(code, subject, s.size(), start, PCRE2_NO_UTF_CHECK, st.data,
                              st.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    throw Error(where_ + ": regex \"" + source_ + "\" failed on the input: " +
                reinterpret_cast<const char*>(msg));
  }
  // rc == 0 only says that some capture groups did not fit; the whole match is in pair 0.
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
  begin = ov[0];
  end = ov[1];
  // \K can put the start after the end; the tokenizers library never sees that form.
  if (end < begin) end = begin;
  return true;
}

void Pattern::find_matches(std::string_view s, std::vector<std::pair<size_t, size_t>>& ranges,
                           std::vector<bool>& is_match) const {
  ranges.clear();
  is_match.clear();
  if (s.empty()) {
    ranges.emplace_back(0, 0);
    is_match.push_back(false);
    return;
  }
  size_t prev = 0;
  for_each_match(s, [&](size_t b, size_t e) {
    if (prev != b) {
      ranges.emplace_back(prev, b);
      is_match.push_back(false);
    }
    ranges.emplace_back(b, e);
    is_match.push_back(true);
    prev = e;
  });
  if (prev != s.size()) {
    ranges.emplace_back(prev, s.size());
    is_match.push_back(false);
  }
}

}  // namespace wick::detail::tok
