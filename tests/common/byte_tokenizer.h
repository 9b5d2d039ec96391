#pragma once
// A byte-level tokenizer for tests that generate with the tiny fixture models.
#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wick/tokenizer.h"

namespace wt {

/// Byte-level BPE over the 256 byte tokens: id = byte (the tiny models' vocabulary is 256), so
/// any id sequence is some byte string, valid UTF-8 or not. `merges` of printable ASCII
/// strings add tokens 256, 257, ... (their concatenations); `special` tokens (matched whole in
/// the raw text, like "<|im_end|>") come after them.
/// The tokenizer.json text of that tokenizer (to write into a model folder).
inline std::string byte_tokenizer_json(const std::vector<std::pair<std::string, std::string>>& merges = {},
                                       const std::vector<std::string>& special = {}) {
  std::vector<int> direct;
  for (int b = 33; b <= 126; ++b) direct.push_back(b);
  for (int b = 161; b <= 172; ++b) direct.push_back(b);
  for (int b = 174; b <= 255; ++b) direct.push_back(b);
  nlohmann::json vocab = nlohmann::json::object();
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    bool is_direct = std::find(direct.begin(), direct.end(), b) != direct.end();
    uint32_t cp = is_direct ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[s] = b;
  }
  nlohmann::json merge_list = nlohmann::json::array();
  for (size_t i = 0; i < merges.size(); ++i) {
    vocab[merges[i].first + merges[i].second] = 256 + static_cast<int>(i);
    merge_list.push_back(merges[i].first + " " + merges[i].second);
  }
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < special.size(); ++i)
    added.push_back({{"id", 256 + static_cast<int>(merges.size() + i)}, {"content", special[i]},
                     {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  nlohmann::json j = {{"version", "1.0"},
            {"added_tokens", added},
            {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
            {"post_processor", nullptr},
            {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
  return j.dump();
}

inline wick::Tokenizer byte_tokenizer(const std::string& config_json = "",
                                      const std::vector<std::pair<std::string, std::string>>& merges = {},
                                      const std::vector<std::string>& special = {}) {
  return wick::Tokenizer::from_json(byte_tokenizer_json(merges, special), "byte-tokenizer", config_json);
}

}  // namespace wt
