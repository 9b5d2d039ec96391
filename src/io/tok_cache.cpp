#include "io/tok_cache.h"

#include <array>
#include <atomic>
#include <cstring>

namespace wick::detail::tok {

namespace {

// Key comparison without a library call: the keys are short.
inline bool same_bytes(const char* a, const char* b, size_t n) {
  if (n >= 8) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
      uint64_t x, y;
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      if (x != y) return false;
    }
    uint64_t x, y;  // the last 8 bytes (overlapping the loop's last chunk)
    std::memcpy(&x, a + n - 8, 8);
    std::memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

constexpr size_t kSlots = WordCache::kMaxEntries * 2;  // load factor at most 1/2
static_assert((kSlots & (kSlots - 1)) == 0);
// Ids are at most 255 per entry (n_ids is a byte); longer pieces are rare and not cached.
constexpr size_t kMaxIds = 255;

}  // namespace

WordCache::WordCache() : slots_(new Slot[kSlots]) {
  std::memset(static_cast<void*>(slots_.get()), 0, kSlots * sizeof(Slot));
}

bool WordCache::lookup(std::string_view key, uint64_t hash, std::vector<int32_t>& out) const {
  size_t i = hash & (kSlots - 1);
  while (true) {
    const Slot& s = slots_[i];
    if (s.n_ids == 0) return false;
    if (s.hash == hash && s.key_len == key.size()) {
      const char* k = key.size() <= kInlineKey ? s.key : keys_.data() + s.key_ext;
      if (same_bytes(k, key.data(), key.size())) {
        const int32_t* ids = s.n_ids <= kInlineIds ? s.ids : ids_.data() + s.ids_ext;
        out.insert(out.end(), ids, ids + s.n_ids);
        return true;
      }
    }
    i = (i + 1) & (kSlots - 1);
  }
}

void WordCache::insert(std::string_view key, uint64_t hash, const int32_t* ids, size_t n) {
  if (key.size() > kMaxKeyBytes || n == 0 || n > kMaxIds || entries_ >= kMaxEntries) return;
  size_t i = hash & (kSlots - 1);
  while (slots_[i].n_ids != 0) {
    if (slots_[i].hash == hash && slots_[i].key_len == key.size()) return;  // present (or a twin)
    i = (i + 1) & (kSlots - 1);
  }
  Slot& s = slots_[i];
  s.hash = hash;
  s.key_len = static_cast<uint8_t>(key.size());
  s.n_ids = static_cast<uint8_t>(n);
  if (key.size() <= kInlineKey) {
    std::memcpy(s.key, key.data(), key.size());
  } else {
    s.key_ext = static_cast<uint32_t>(keys_.size());
    keys_.append(key);
  }
  if (n <= kInlineIds) {
    std::memcpy(s.ids, ids, n * sizeof(int32_t));
  } else {
    s.ids_ext = static_cast<uint32_t>(ids_.size());
    ids_.insert(ids_.end(), ids, ids + n);
  }
  ++entries_;
}

uint64_t new_cache_key() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

WordCache& thread_cache(uint64_t key) {
  // A handful of models per thread; the least recently used slot is recycled.
  struct Entry {
    uint64_t key = 0;
    uint64_t used = 0;
    std::unique_ptr<WordCache> cache;
  };
  thread_local std::array<Entry, 4> entries;
  thread_local uint64_t tick = 0;
  ++tick;
  Entry* victim = &entries[0];
  for (Entry& e : entries) {
    if (e.key == key) {
      e.used = tick;
      return *e.cache;
    }
    if (e.used < victim->used) victim = &e;
  }
  victim->key = key;
  victim->used = tick;
  victim->cache = std::make_unique<WordCache>();
  return *victim->cache;
}

}  // namespace wick::detail::tok
