#include "io/tok_bytelevel.h"

#include <array>
#include <cstring>

#include "io/tok_unicode.h"

namespace wick::detail::tok {

namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  // UTF-8 of to_char[b]: length and bytes (at most 2).
  std::array<uint8_t, 256> enc_len{};
  std::array<std::array<char, 2>, 256> enc{};
  // Inverse: code point -> byte + 1 (0: not in the alphabet); the alphabet lies below U+0144.
  std::array<uint16_t, 0x144> from_char{};

  Tables() {
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) to_char[b] = printable(b) ? static_cast<char32_t>(b) : next++;
    for (int b = 0; b < 256; ++b) {
      std::string s;
      append_utf8(s, to_char[b]);
      enc_len[b] = static_cast<uint8_t>(s.size());
      std::memcpy(enc[b].data(), s.data(), s.size());
      from_char[to_char[b]] = static_cast<uint16_t>(b + 1);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return tables().to_char[b]; }

void byte_level_encode(std::string_view in, std::string& out) {
  static const Tables& t = tables();
  size_t at = out.size();
  out.resize(at + 2 * in.size());
  char* d = out.data() + at;
  for (unsigned char b : in) {
    d[0] = t.enc[b][0];
    d[1] = t.enc[b][1];
    d += t.enc_len[b];
  }
  out.resize(static_cast<size_t>(d - out.data()));
}

void byte_level_decode_token(std::string_view token, std::string& out) {
  static const Tables& t = tables();
  size_t at = out.size();
  for (size_t i = 0; i < token.size();) {
    unsigned char lead = static_cast<unsigned char>(token[i]);
    char32_t c;
    if (lead < 0x80) {
      c = lead;
      ++i;
    } else if ((lead & 0xE0) == 0xC0 && i + 1 < token.size()) {
      c = (static_cast<char32_t>(lead & 0x1F) << 6) | (static_cast<unsigned char>(token[i + 1]) & 0x3F);
      i += 2;
    } else {
      c = 0x10000;  // longer sequences are never in the alphabet
    }
    if (c >= t.from_char.size() || t.from_char[c] == 0) {
      out.resize(at);
      out.append(token);
      return;
    }
    out.push_back(static_cast<char>(t.from_char[c] - 1));
  }
}

}  // namespace wick::detail::tok
