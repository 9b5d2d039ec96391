#pragma once
// Shared by the tokenizer tests: where the fixtures and the fetched tokenizer files live.
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace wt {

inline std::string source_path(const std::string& rel) {
  return std::string(WICK_SOURCE_DIR) + "/" + rel;
}

/// .cache/tokenizers/<name> (filled by scripts/fetch-tokenizers.sh).
inline std::string fetched_tokenizer(const std::string& name) {
  return source_path(".cache/tokenizers/" + name);
}

inline bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(read_text(path));
}

}  // namespace wt
