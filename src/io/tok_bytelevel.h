#pragma once
// GPT-2's byte-level alphabet: every byte maps to one printable code point (printable Latin-1
// bytes to themselves, the other 68 to U+0100..U+0143 in byte order), so that any byte string
// becomes a string of "characters" that BPE can merge.
#include <cstdint>
#include <string>
#include <string_view>

namespace wick::detail::tok {

/// The code point that byte b stands for.
char32_t byte_to_char(uint8_t b);

/// Appends the byte-level form of every byte of `in` to `out`.
void byte_level_encode(std::string_view in, std::string& out);

/// Appends the bytes that `token` stands for when every character of it belongs to the
/// alphabet; otherwise appends the token itself (the library's ByteLevel decoder) .
void byte_level_decode_token(std::string_view token, std::string& out);

}  // namespace wick::detail::tok
