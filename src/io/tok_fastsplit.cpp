#include "io/tok_fastsplit.h"

#include <utf8proc.h>

namespace wick::detail::tok {

FastSplit recognize_fast_split(std::string_view p) {
  static constexpr std::string_view kGpt2 =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
  static constexpr std::string_view kCl100k =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  static constexpr std::string_view kQwen =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  if (p == kGpt2) return FastSplit::gpt2;
  if (p == kCl100k) return FastSplit::cl100k;
  if (p == kQwen) return FastSplit::qwen;
  return FastSplit::none;
}

namespace fast {

uint8_t classify_slow(char32_t c) {
  if (is_white_space(c)) return kWs;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return kL;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return kN;
    default: return 0;
  }
}

}  // namespace fast
}  // namespace wick::detail::tok
