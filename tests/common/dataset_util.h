#pragma once
// Shared by the dataset tests: a byte-level tokenizer with ChatML-style special tokens, a naive
// reference encoder for it, and JSONL files in a scratch folder.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/byte_tokenizer.h"
#include "common/file_util.h"
#include "wick/data.h"
#include "wick/error.h"

namespace wt {

inline const std::vector<std::string>& data_specials() {
  static const std::vector<std::string> s = {"<|im_start|>", "<|im_end|>", "</s>"};
  return s;
}
constexpr int32_t kImStart = 256, kImEnd = 257, kEos = 258;

/// Bytes are ids 0..255, the specials 256..258; EOS is "</s>".
inline const wick::Tokenizer& data_tokenizer() {
  static const wick::Tokenizer t =
      byte_tokenizer(R"({"eos_token": "</s>", "pad_token": "</s>"})", {}, data_specials());
  return t;
}

/// The ids data_tokenizer() gives `s`, worked out by hand: special tokens whole, else bytes.
inline std::vector<int32_t> ref_encode(std::string_view s) {
  std::vector<int32_t> out;
  const auto& sp = data_specials();
  for (size_t i = 0; i < s.size();) {
    size_t k = 0;
    while (k < sp.size() && s.substr(i, sp[k].size()) != sp[k]) ++k;
    if (k < sp.size()) {
      out.push_back(256 + static_cast<int32_t>(k));
      i += sp[k].size();
    } else {
      out.push_back(static_cast<unsigned char>(s[i++]));
    }
  }
  return out;
}

/// The example made of text pieces, each a target or not.
inline wick::Example pieces(const std::vector<std::pair<std::string, bool>>& parts) {
  wick::Example e;
  for (const auto& [text, target] : parts) {
    auto ids = ref_encode(text);
    e.ids.insert(e.ids.end(), ids.begin(), ids.end());
    e.target.resize(e.ids.size(), target ? 1 : 0);
  }
  return e;
}

/// A JSONL file in a scratch folder, loaded with data_tokenizer().
struct DataFile {
  TempDir dir;
  std::string path = dir.file("d.jsonl");
  explicit DataFile(std::string_view text) { write_raw(path, text); }
  wick::Dataset load(const wick::DatasetOptions& opts = {},
                     const wick::ChatTemplateConfig* chat = nullptr,
                     const wick::Tokenizer& tok = data_tokenizer()) const {
    return wick::Dataset::load_jsonl(path, tok, chat, opts);
  }
  /// The error message of loading; fails the test when it loads.
  std::string error(const wick::DatasetOptions& opts = {},
                    const wick::ChatTemplateConfig* chat = nullptr) const {
    try {
      load(opts, chat);
    } catch (const wick::Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "loaded without error";
    return "";
  }
};

}  // namespace wt
