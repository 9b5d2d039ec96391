#pragma once
// The loaded tokenizer behind wick::Tokenizer.
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/tok_added.h"
#include "io/tok_components.h"

namespace wick::detail {

struct TokenizerImpl {
  std::string source;
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::Model> model;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  tok::AddedVocab added;

  struct Truncation {
    size_t max_length = 0;
    size_t stride = 0;
    bool left = false;         // direction Left keeps the end
    bool only_second = false;  // strategy OnlySecond (an error for a single sequence)
  };
  std::optional<Truncation> truncation;

  // tokenizer_config.json
  std::string bos, eos, pad, unk, chat_template;
  std::optional<bool> add_bos, add_eos;

  int32_t vocab_size = 0;

  /// The string decode() uses for each id (an added token's, else the model's), and whether
  /// that string is a special token's; built once at load.
  std::vector<std::string_view> id_text;
  std::vector<uint8_t> id_known, id_special;
  const std::string_view* text_of(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= id_known.size() || !id_known[id]) return nullptr;
    return &id_text[id];
  }

  /// Parses tokenizer.json (and tokenizer_config.json when given).
  void load(std::string_view json, std::string_view config_json);

  void encode(std::string_view text, bool add_special_tokens, std::vector<int32_t>& out) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;

  /// Calls fn(piece) for every piece that encode() would hand the model for `text` (valid
  /// UTF-8): added tokens cut out, normalized, pre-tokenized. What a BPE trainer counts, so that
  /// training sees exactly the words that encoding will.
  void pre_tokenize(std::string_view text, const std::function<void(std::string_view)>& fn) const;

 private:
  void encode_text(std::string_view text, bool at_origin, std::vector<int32_t>& out) const;
  // Cuts `text` at the added tokens and normalizes the rest: on_id(id) for an added token,
  // on_text(piece, at_origin) for normalized text (defined in tok_tokenizer.cpp).
  template <class OnId, class OnText>
  void for_each_segment(std::string_view text, OnId&& on_id, OnText&& on_text) const;
  void load_config(std::string_view config_json);
};

}  // namespace wick::detail
