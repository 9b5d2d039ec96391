#pragma once
// The BPE model of the tokenizers library: initial symbols are the characters of a piece
// (optionally with continuing_subword_prefix / end_of_word_suffix, byte fallback or unk), then
// the adjacent pair with the lowest merge rank is merged, leftmost first, until none is left.
// ignore_merges looks the whole piece up first. Results are cached per thread (word -> ids).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/tok_cache.h"
#include "io/tok_components.h"
#include "io/tok_hash.h"
#include "io/tok_vocab.h"

namespace wick::detail::tok {

class Bpe final : public Model {
 public:
  Bpe(const io::Json& j, const Where& where);

  void tokenize(std::string_view piece, std::vector<int32_t>& out) const override;
  void tokenize_pieces(const Pieces& p, std::vector<int32_t>& out) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    int32_t id = vocab_.find(token);
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_entries() const override { return vocab_.size(); }
  int32_t id_bound() const override { return vocab_.id_bound(); }

  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t len;  // bytes covered; 0 marks a symbol merged into its left neighbour
  };

 private:
  void load_merges(const io::Json& merges, const Where& where);
  // Initial symbols of a piece (characters, byte fallback, unk).
  void initial_symbols(std::string_view piece, std::vector<Symbol>& syms) const;
  void merge(std::vector<Symbol>& syms) const;
  int32_t char_id(std::string_view ch, bool first, bool last) const;
  [[noreturn]] void missing_unk() const;
  void tokenize_with(std::string_view piece, WordCache& cache, std::vector<int32_t>& out) const;

  std::string where_;
  Vocab vocab_;
  PairMap merges_;
  std::optional<std::string> unk_;
  int32_t unk_id_ = -1;
  std::string prefix_, suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // ids of "<0xXX>" (byte fallback), -1 if absent
  // Ids of one-character tokens for code points below 0x10000 (-1: none), used when no prefix
  // or suffix decorates the characters.
  std::vector<int32_t> bmp_ids_;
  uint64_t cache_key_;  // identifies this model's entries in the per-thread caches
};

}  // namespace wick::detail::tok
