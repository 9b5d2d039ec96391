#pragma once
// Reading untrusted JSON (configs, tokenizer files, safetensors headers, datasets) with errors
// that name the source and the field.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "wick/error.h"

namespace wick::io {

using Json = nlohmann::json;

/// Parses `text`; a syntax error names `source` (a file name, "file:line", ...) and the byte.
Json parse_json(std::string_view text, const std::string& source);
/// Like parse_json, for formats where a repeated key is a malformed (or hostile) file rather than
/// something to resolve silently: a key repeated within one object, or nesting deeper than
/// `max_depth` objects/arrays, is an error naming `source` and the key's path.
Json parse_json_strict(std::string_view text, const std::string& source, int max_depth = 64);
/// parse_json_strict keeping object keys in document order (dataset records rendered by chat
/// templates, where key order shows in `tojson`).
nlohmann::ordered_json parse_json_strict_ordered(std::string_view text, const std::string& source,
                                                 int max_depth = 64);
/// Reads and parses a JSON file (at most `max_bytes`).
Json read_json_file(const std::string& path, size_t max_bytes = size_t(1) << 30);

/// JSON type names for messages ("a string", "an array", ...).
const char* json_type_name(const Json& j);
const char* json_type_name(const nlohmann::ordered_json& j);
const char* json_type_name(nlohmann::detail::value_t type);

/// Converts `j` to T (bool, integers, floating point, std::string) or throws naming
/// `source` and `key`: "config.json: hidden_size: expected an integer, got a string".
template <class T>
T json_as(const Json& j, const std::string& source, std::string_view key);
#define WICK_JSON_AS(T) \
  template <>           \
  T json_as<T>(const Json& j, const std::string& source, std::string_view key);
WICK_JSON_AS(bool)
WICK_JSON_AS(int)
WICK_JSON_AS(int64_t)
WICK_JSON_AS(uint64_t)
WICK_JSON_AS(float)
WICK_JSON_AS(double)
WICK_JSON_AS(std::string)
#undef WICK_JSON_AS

/// obj[key] converted to T; missing (or null) is an error.
template <class T>
T json_require(const Json& obj, std::string_view key, const std::string& source) {
  auto it = obj.is_object() ? obj.find(key) : obj.end();
  if (!obj.is_object() || it == obj.end() || it->is_null())
    throw Error(source + ": missing field \"" + std::string(key) + "\"");
  return json_as<T>(*it, source, key);
}

/// obj[key] converted to T, or nullopt when missing or null.
template <class T>
std::optional<T> json_optional(const Json& obj, std::string_view key, const std::string& source) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  return json_as<T>(*it, source, key);
}

}  // namespace wick::io
