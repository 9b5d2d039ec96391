#pragma once
// Per-thread cache of piece -> token ids for the BPE model. Each thread keeps a few caches,
// one per model (identified by a process-unique key, never reused), so that concurrent encodes
// need no locks; a full cache is simply emptied.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wick::detail::tok {

class WordCache {
 public:
  static constexpr size_t kMaxKeyBytes = 255;  // longer pieces are not cached
  static constexpr size_t kMaxEntries = 16384;

  WordCache();
  /// Appends the cached ids of `key` to `out`; false on a miss.
  bool lookup(std::string_view key, uint64_t hash, std::vector<int32_t>& out) const;
  void insert(std::string_view key, uint64_t hash, const int32_t* ids, size_t n);

 private:
  struct Slot {
    uint64_t hash;
    uint32_t key_off, ids_off;
    uint16_t key_len, ids_len;  // ids_len 0: empty slot
  };
  void clear();
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t entries_ = 0;
};

/// A fresh key for a model instance.
uint64_t new_cache_key();
/// The calling thread's cache for the model with this key.
WordCache& thread_cache(uint64_t key);

}  // namespace wick::detail::tok
