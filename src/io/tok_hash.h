#pragma once
// Flat hash tables for the tokenizer's hot lookups: string -> id (vocabularies) and
// (id, id) -> (rank, id) (BPE merges). Open addressing with linear probing, power-of-two
// capacity, keys of the string table in one arena; built once at load, read-only afterwards.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace wick::detail::tok {

/// 64-bit hash of a byte string (multiply-mix over 8-byte words).
inline uint64_t hash_bytes(std::string_view s) {
  constexpr uint64_t k = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0x243F6A8885A308D3ull ^ (s.size() * k);
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * k;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  return h;
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  x ^= x >> 33;
  return x;
}

/// string -> int32 id.
class StringIdMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }
  /// Inserts or overwrites; returns true when the key was new.
  bool set(std::string_view key, int32_t id) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    uint64_t h = hash_bytes(key);
    size_t i = h & mask_;
    while (slots_[i].used) {
      if (slots_[i].hash == h && view(slots_[i]) == key) {
        slots_[i].id = id;
        return false;
      }
      i = (i + 1) & mask_;
    }
    Slot& s = slots_[i];
    s.used = true;
    s.hash = h;
    s.offset = arena_.size();
    s.len = static_cast<uint32_t>(key.size());
    s.id = id;
    arena_.append(key);
    ++size_;
    return true;
  }
  /// The id of `key`, or -1.
  int32_t find(std::string_view key) const {
    if (size_ == 0) return -1;
    uint64_t h = hash_bytes(key);
    size_t i = h & mask_;
    while (slots_[i].used) {
      if (slots_[i].hash == h && slots_[i].len == key.size() &&
          std::memcmp(arena_.data() + slots_[i].offset, key.data(), key.size()) == 0)
        return slots_[i].id;
      i = (i + 1) & mask_;
    }
    return -1;
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    size_t offset = 0;
    uint32_t len = 0;
    int32_t id = 0;
    bool used = false;
  };
  std::string_view view(const Slot& s) const {
    return std::string_view(arena_).substr(s.offset, s.len);
  }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    size_t cap = old.empty() ? 16 : old.size() * 2;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    for (const Slot& s : old) {
      if (!s.used) continue;
      size_t i = s.hash & mask_;
      while (slots_[i].used) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  std::string arena_;
};

/// (left id, right id) -> (rank, merged id).
class PairMap {
 public:
  struct Value {
    int32_t rank;
    int32_t id;
  };
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }
  /// Inserts or overwrites (a later duplicate merge wins, as in the library's hash map).
  void set(int32_t a, int32_t b, Value v) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    uint64_t key = pack(a, b);
    size_t i = mix64(key) & mask_;
    while (slots_[i].key != kEmpty) {
      if (slots_[i].key == key) {
        slots_[i].value = v;
        return;
      }
      i = (i + 1) & mask_;
    }
    slots_[i] = {key, v};
    ++size_;
  }
  const Value* find(int32_t a, int32_t b) const {
    if (size_ == 0) return nullptr;
    uint64_t key = pack(a, b);
    size_t i = mix64(key) & mask_;
    while (slots_[i].key != kEmpty) {
      if (slots_[i].key == key) return &slots_[i].value;
      i = (i + 1) & mask_;
    }
    return nullptr;
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  struct Slot {
    uint64_t key = kEmpty;
    Value value{0, 0};
  };
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    size_t cap = old.empty() ? 16 : old.size() * 2;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    for (const Slot& s : old) {
      if (s.key == kEmpty) continue;
      size_t i = mix64(s.key) & mask_;
      while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace wick::detail::tok
