#pragma once
// A model vocabulary: token string <-> id, read from an untrusted JSON object.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/tok_components.h"
#include "io/tok_hash.h"

namespace wick::detail::tok {

/// Ids are int32 and dense tables are indexed by them, so a file may not use ids at or past
/// this bound (real vocabularies stay below a few hundred thousand).
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

class Vocab {
 public:
  /// Reads {"token": id, ...}; every id must be an integer in [0, kMaxTokenId] used once.
  void load(const io::Json& obj, const Where& where);

  int32_t find(std::string_view token) const { return to_id_.find(token); }
  /// nullptr when no token has this id.
  const std::string* token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= index_.size() || index_[id] < 0) return nullptr;
    return &tokens_[static_cast<size_t>(index_[id])];
  }
  size_t size() const { return tokens_.size(); }
  int32_t id_bound() const { return static_cast<int32_t>(index_.size()); }

 private:
  StringIdMap to_id_;
  std::vector<std::string> tokens_;  // in file order
  std::vector<int32_t> index_;       // id -> position in tokens_, or -1
};

}  // namespace wick::detail::tok
