#pragma once
// Per-thread cache of piece -> token ids for the BPE model. Each thread keeps a few caches,
// one per model (identified by a process-unique key, never reused), so that concurrent encodes
// need no locks. A full cache takes no new entries (as the tokenizers library's): the words
// seen first are the frequent ones, and emptying it would throw them away with the tail.
//
// A slot is one cache line holding the hash, a short key and a few ids inline, so that a hit
// on a typical word touches one line; longer keys and id lists live in side arenas.
#include <cstdint>
#include <memory>
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
  static constexpr size_t kInlineKey = 20;
  static constexpr size_t kInlineIds = 6;
  struct alignas(64) Slot {
    uint64_t hash;
    uint8_t key_len;
    uint8_t n_ids;  // 0: empty slot
    uint16_t unused;
    uint32_t key_ext;  // offset in keys_ when key_len > kInlineKey
    uint32_t ids_ext;  // offset in ids_ when n_ids > kInlineIds
    char key[kInlineKey];
    int32_t ids[kInlineIds];
  };
  static_assert(sizeof(Slot) == 64);
  std::unique_ptr<Slot[]> slots_;
  std::string keys_;         // keys longer than kInlineKey
  std::vector<int32_t> ids_; // id lists longer than kInlineIds
  size_t entries_ = 0;
};

/// A fresh key for a model instance.
uint64_t new_cache_key();
/// The calling thread's cache for the model with this key.
WordCache& thread_cache(uint64_t key);

}  // namespace wick::detail::tok
