#pragma once
// Python `str` semantics over UTF-8 bytes, for the Jinja engine: templates index, slice, strip
// and split strings by code point and with Python's idea of whitespace, and the output must
// match CPython byte for byte. Bytes that are not valid UTF-8 count as one code point each and
// are copied through unchanged, so no input can make these functions fail.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wick::io::jinja {

/// One code point: its value (or the raw byte for invalid UTF-8) and where it sits in the bytes.
struct CodePoint {
  uint32_t value;
  uint32_t offset;
  uint32_t size;
};

/// Decodes the code point at `pos` (pos < s.size()).
CodePoint decode_at(std::string_view s, size_t pos);
/// All code points of `s`.
std::vector<CodePoint> code_points(std::string_view s);
/// Number of code points (Python len()).
size_t utf8_length(std::string_view s);
/// Appends the UTF-8 encoding of `cp`.
void append_utf8(std::string& out, uint32_t cp);

/// Python str.isspace() for one code point.
bool is_py_space(uint32_t cp);
/// Whether `cp` may start (or continue) a Python identifier: ASCII letters, digits and '_', and
/// the letters and digits of other scripts as the C library's Unicode tables classify them.
bool is_identifier_char(uint32_t cp, bool start);
/// Python str.isprintable() for one code point (used by repr()).
bool is_py_printable(uint32_t cp);

/// str.strip / lstrip / rstrip; `chars` = the set to strip (whitespace when absent).
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                     bool right);
/// str.split(sep, maxsplit) and str.rsplit; `sep` absent = runs of whitespace.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right);
/// str.splitlines() (without keepends).
std::vector<std::string> py_splitlines(std::string_view s);
/// str.replace(old, new, count) with count < 0 = all. `limit` bounds the result size.
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl,
                       int64_t count, size_t limit);
/// Case mappings (simple one-to-one mappings from the C library's Unicode tables).
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_capitalize(std::string_view s);
/// str.title(): a cased character after an uncased one starts a word.
std::string py_title(std::string_view s);
/// Jinja's `title` filter (words start after '-', whitespace or an opening bracket).
std::string jinja_title(std::string_view s);
/// str.isdigit / isalpha / isalnum / isspace / islower / isupper.
bool py_is(std::string_view s, std::string_view what);
/// Python repr() of a string: quotes and escapes as CPython writes them.
void py_repr_string(std::string& out, std::string_view s);

/// Python-style index normalisation for slices: fills start/stop/step over a length.
struct SliceBounds {
  int64_t start, stop, step, count;
};
SliceBounds py_slice(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop,
                     std::optional<int64_t> step);

}  // namespace wick::io::jinja
