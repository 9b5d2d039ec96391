#pragma once
// Field readers shared by the config.json parsers (decoders, encoders): range-checked sizes and
// numbers, with errors naming the file and the field.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "io/json.h"

namespace wick::detail {

// Bounds that keep every later size product far from int64 overflow and reject absurd files
// before anything is allocated.
constexpr int64_t kMaxDim = int64_t{1} << 20;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxPositions = int64_t{1} << 30;

[[noreturn]] inline void config_fail(const std::string& source, const std::string& field, const std::string& why) {
  throw Error(source + ": " + field + ": " + why);
}

inline int64_t require_dim(const io::Json& j, const char* key, const std::string& src, int64_t max) {
  int64_t v = io::json_require<int64_t>(j, key, src);
  if (v <= 0 || v > max)
    config_fail(src, key, "must be in [1, " + std::to_string(max) + "], got " + std::to_string(v));
  return v;
}

inline std::optional<int64_t> optional_dim(const io::Json& j, const char* key, const std::string& src, int64_t max) {
  auto v = io::json_optional<int64_t>(j, key, src);
  if (v && (*v <= 0 || *v > max))
    config_fail(src, key, "must be in [1, " + std::to_string(max) + "], got " + std::to_string(*v));
  return v;
}

inline double positive_number(const io::Json& j, const char* key, const std::string& src, double dflt) {
  auto v = io::json_optional<double>(j, key, src);
  if (!v) return dflt;
  if (!(std::isfinite(*v) && *v > 0)) config_fail(src, key, "must be a positive finite number");
  return *v;
}

/// Parses config.json text as an object; syntax errors name `source`.
io::Json parse_config_object(std::string_view json_text, const std::string& source);

}  // namespace wick::detail
