// JSON access for tokenizer components, with errors that name the file and the field, and the
// split behaviours shared by several pre-tokenizers.
#include "io/tok_components.h"
#include "io/tok_unicode.h"
#include "wick/error.h"

namespace wick::detail::tok {

const io::Json& require_object(const io::Json& j, const Where& where) {
  if (!j.is_object())
    throw Error(where.str() + ": expected an object, got " + io::json_type_name(j));
  return j;
}

std::string type_of(const io::Json& j, const Where& where) {
  require_object(j, where);
  auto it = j.find("type");
  if (it == j.end()) throw Error(where.str() + ": missing field \"type\"");
  if (!it->is_string())
    throw Error(where.str() + ": type: expected a string, got " + io::json_type_name(*it));
  return it->get<std::string>();
}

std::string get_string(const io::Json& obj, std::string_view key, const Where& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    throw Error(where.str() + ": missing field \"" + std::string(key) + "\"");
  return io::json_as<std::string>(*it, where.str(), key);
}

std::optional<std::string> opt_string(const io::Json& obj, std::string_view key,
                                      const Where& where) {
  return io::json_optional<std::string>(obj, key, where.str());
}

bool get_bool(const io::Json& obj, std::string_view key, const Where& where, bool fallback) {
  return io::json_optional<bool>(obj, key, where.str()).value_or(fallback);
}

int64_t get_int(const io::Json& obj, std::string_view key, const Where& where, int64_t fallback) {
  return io::json_optional<int64_t>(obj, key, where.str()).value_or(fallback);
}

char32_t get_char(const io::Json& obj, std::string_view key, const Where& where) {
  std::string s = get_string(obj, key, where);
  if (s.empty() || find_invalid_utf8(s) != std::string::npos)
    throw Error(where.str() + ": " + std::string(key) + ": expected one character");
  size_t i = 0;
  char32_t c = next_cp(s, i);
  if (i != s.size()) throw Error(where.str() + ": " + std::string(key) + ": expected one character, got \"" + s + "\"");
  return c;
}

SplitBehavior parse_behavior(const io::Json& obj, std::string_view key, const Where& where) {
  std::string b = get_string(obj, key, where);
  if (b == "Removed") return SplitBehavior::removed;
  if (b == "Isolated") return SplitBehavior::isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (b == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (b == "Contiguous") return SplitBehavior::contiguous;
  throw Error(where.str() + ": " + std::string(key) + ": unknown split behavior \"" + b + "\"");
}

void apply_behavior(SplitBehavior b, const std::vector<std::pair<size_t, size_t>>& ranges,
                    const std::vector<bool>& is_match, uint32_t base,
                    std::vector<std::pair<uint32_t, uint32_t>>& out) {
  auto emit = [&](size_t s, size_t e) {
    if (e > s) out.emplace_back(base + static_cast<uint32_t>(s), base + static_cast<uint32_t>(e));
  };
  size_t n = ranges.size();
  switch (b) {
    case SplitBehavior::isolated:
      for (size_t i = 0; i < n; ++i) emit(ranges[i].first, ranges[i].second);
      return;
    case SplitBehavior::removed:
      for (size_t i = 0; i < n; ++i)
        if (!is_match[i]) emit(ranges[i].first, ranges[i].second);
      return;
    case SplitBehavior::contiguous:
    case SplitBehavior::merged_with_previous: {
      // Pending range that a following piece may extend.
      bool have = false, prev_match = false;
      size_t s = 0, e = 0;
      for (size_t i = 0; i < n; ++i) {
        bool m = is_match[i];
        bool extend = b == SplitBehavior::contiguous ? (m == prev_match) : (m && !prev_match);
        if (extend && have) {
          e = ranges[i].second;
        } else {
          if (have) emit(s, e);
          s = ranges[i].first;
          e = ranges[i].second;
          have = true;
        }
        prev_match = m;
      }
      if (have) emit(s, e);
      return;
    }
    case SplitBehavior::merged_with_next: {
      // Walk backwards: a match that follows a non-match (in reverse order) joins the piece
      // after it.
      std::vector<std::pair<size_t, size_t>> rev;
      bool prev_match = false;
      for (size_t k = n; k-- > 0;) {
        bool m = is_match[k];
        if (m && !prev_match && !rev.empty()) {
          rev.back().first = ranges[k].first;
        } else {
          rev.push_back(ranges[k]);
        }
        prev_match = m;
      }
      for (size_t k = rev.size(); k-- > 0;) emit(rev[k].first, rev[k].second);
      return;
    }
  }
}

}  // namespace wick::detail::tok
