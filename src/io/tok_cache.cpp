#include "io/tok_cache.h"

#include <array>
#include <atomic>
#include <cstring>
#include <memory>

namespace wick::detail::tok {

namespace {
constexpr size_t kSlots = WordCache::kMaxEntries * 2;  // load factor at most 1/2
static_assert((kSlots & (kSlots - 1)) == 0);
}  // namespace

WordCache::WordCache() { clear(); }

void WordCache::clear() {
  slots_.assign(kSlots, Slot{0, 0, 0, 0, 0});
  keys_.clear();
  ids_.clear();
  entries_ = 0;
}

bool WordCache::lookup(std::string_view key, uint64_t hash, std::vector<int32_t>& out) const {
  size_t i = hash & (kSlots - 1);
  while (true) {
    const Slot& s = slots_[i];
    if (s.ids_len == 0) return false;
    if (s.hash == hash && s.key_len == key.size() &&
        std::memcmp(keys_.data() + s.key_off, key.data(), key.size()) == 0) {
      out.insert(out.end(), ids_.begin() + s.ids_off, ids_.begin() + s.ids_off + s.ids_len);
      return true;
    }
    i = (i + 1) & (kSlots - 1);
  }
}

void WordCache::insert(std::string_view key, uint64_t hash, const int32_t* ids, size_t n) {
  if (key.size() > kMaxKeyBytes || n == 0 || n > 0xFFFF) return;
  if (entries_ >= kMaxEntries) clear();
  size_t i = hash & (kSlots - 1);
  while (slots_[i].ids_len != 0) {
    if (slots_[i].hash == hash && slots_[i].key_len == key.size() &&
        std::memcmp(keys_.data() + slots_[i].key_off, key.data(), key.size()) == 0)
      return;
    i = (i + 1) & (kSlots - 1);
  }
  Slot& s = slots_[i];
  s.hash = hash;
  s.key_off = static_cast<uint32_t>(keys_.size());
  s.key_len = static_cast<uint16_t>(key.size());
  s.ids_off = static_cast<uint32_t>(ids_.size());
  s.ids_len = static_cast<uint16_t>(n);
  keys_.append(key);
  ids_.insert(ids_.end(), ids, ids + n);
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
