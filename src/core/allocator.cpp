#include "core/allocator.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "core/cuda_api.h"
#include "core/lane.h"
#include "wick/error.h"
#include "wick/memory.h"

namespace wick::detail {
namespace {

// Size classes: small blocks round up to 256 bytes, larger ones to 1/8 of their power of two,
// so a reused block wastes at most ~12.5%.
size_t size_class(size_t bytes) {
  if (bytes <= 256) return 256;
  size_t p = 1;
  while (p < bytes) p <<= 1;
  size_t step = p >= 8192 ? p / 8 : 256;
  return (bytes + step - 1) / step * step;
}

/// Where a caching allocator's blocks come from: host memory or one CUDA device.
struct BlockSource {
  Device device;
  void* get(size_t bytes) const {
    if (device.type == Device::Type::cpu) return std::aligned_alloc(64, bytes);
    return cuda_api::malloc(bytes, device.index);
  }
  void put(void* p) const {
    if (device.type == Device::Type::cpu) std::free(p);
    else cuda_api::free(p, device.index);
  }
};

/// Size-classed free lists over a BlockSource, one set per lane. On CUDA, a block freed while
/// kernels that use it are still queued is safe to hand out again on the lane that queued them:
/// its next user runs after them on the same stream. A block that several lanes used waits
/// among the shared blocks until an event recorded on each of them at its release has fired.
class CachingAllocator {
 public:
  explicit CachingAllocator(Device d) : source_{d} {}

  void* acquire(size_t bytes, size_t* capacity, int lane) {
    size_t cap = size_class(bytes);
    std::lock_guard lock(mutex_);
    stats_.allocations++;
    if (void* p = reuse(cap, lane)) {
      stats_.cached -= cap;
      stats_.cache_hits++;
      account(cap);
      *capacity = cap;
      return p;
    }
    if (stats_.limit && stats_.active + stats_.cached + cap > stats_.limit) drop_cache();
    if (stats_.limit && stats_.active + cap > stats_.limit) {
      stats_.allocations--;
      throw Error("out of memory on " + source_.device.str() + ": requested " + std::to_string(bytes) + " bytes with " +
                  std::to_string(stats_.active) + " bytes active; limit is " +
                  std::to_string(stats_.limit) + " bytes (set_memory_limit)");
    }
    void* p = source_.get(cap);
    if (!p) {
      drop_cache();
      p = source_.get(cap);
      if (!p) {
        stats_.allocations--;
        throw Error("out of memory on " + source_.device.str() + ": the device refused " +
                    std::to_string(cap) + " bytes with " + std::to_string(stats_.active) +
                    " bytes active in wick's buffers");
      }
    }
    account(cap);
    *capacity = cap;
    return p;
  }

  /// `lanes`: the lane_bit()s of the lanes that used the block (0 on the host).
  void release(void* p, size_t cap, uint32_t lanes) {
    std::vector<std::shared_ptr<void>> events;
    try {
      if (lanes & (lanes - 1))
        for (int l = 0; l < kLanes; ++l)
          if (lanes & lane_bit(l))
            events.push_back(cuda_api::record_event(source_.device.index, l));
    } catch (const Error&) {
      // No event (the device is failing or shutting down): the block is not kept for reuse.
      std::lock_guard lock(mutex_);
      stats_.active -= cap;
      source_.put(p);
      return;
    }
    std::lock_guard lock(mutex_);
    stats_.active -= cap;
    if (stats_.limit && stats_.active + stats_.cached + cap > stats_.limit) {
      source_.put(p);  // (cudaFree waits for the device)
      return;
    }
    if (events.empty())
      free_[lanes ? std::countr_zero(lanes) : 0][cap].push_back(p);
    else
      shared_.emplace(cap, Shared{p, std::move(events)});
    stats_.cached += cap;
  }

  MemoryStats stats() {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  void set_limit(size_t bytes) {
    std::lock_guard lock(mutex_);
    stats_.limit = bytes;
    if (bytes && stats_.active + stats_.cached > bytes) drop_cache();
  }
  void reset_peak() {
    std::lock_guard lock(mutex_);
    stats_.peak = stats_.active;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    drop_cache();
  }

 private:
  void account(size_t cap) {
    stats_.active += cap;
    if (stats_.active > stats_.peak) stats_.peak = stats_.active;
  }
  /// A cached block of capacity `cap` that `lane` may use now, or nullptr.
  void* reuse(size_t cap, int lane) {
    auto it = free_[lane].find(cap);
    if (it != free_[lane].end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      return p;
    }
    for (auto [s, end] = shared_.equal_range(cap); s != end; ++s)
      if (std::all_of(s->second.events.begin(), s->second.events.end(), cuda_api::event_done)) {
        void* p = s->second.ptr;
        shared_.erase(s);
        return p;
      }
    return nullptr;
  }
  /// Returns every cached block to the source (cudaFree waits for the device, so blocks that
  /// queued work may still use are safe to free).
  void drop_cache() {
    for (auto& lane : free_)
      for (auto& [cap, blocks] : lane) {
        for (void* b : blocks) source_.put(b);
        stats_.cached -= cap * blocks.size();
        blocks.clear();
      }
    for (auto& [cap, block] : shared_) {
      source_.put(block.ptr);
      stats_.cached -= cap;
    }
    shared_.clear();
  }

  struct Shared {
    void* ptr;
    std::vector<std::shared_ptr<void>> events;  // one per lane that used it
  };
  BlockSource source_;
  std::mutex mutex_;
  std::array<std::map<size_t, std::vector<void*>>, kLanes> free_;  // by lane, then capacity
  std::multimap<size_t, Shared> shared_;                           // by capacity
  MemoryStats stats_;
};

constexpr int kMaxCudaDevices = 16;

/// The allocator of a device; throws for a device this build or machine does not have.
CachingAllocator& allocator_for(Device d) {
  // Leaked on purpose: tensors in static storage may be destroyed after any static allocator.
  static CachingAllocator* cpu = new CachingAllocator(Device::cpu());
  if (d.type == Device::Type::cpu) return *cpu;
  static int count = cuda_api::device_count();
  if (d.index < 0 || d.index >= count || d.index >= kMaxCudaDevices)
    throw Error("device " + d.str() + " is not available" +
                (count ? " (this machine has " + std::to_string(count) + " CUDA devices)"
                       : std::string(" (no CUDA device, or a build without CUDA)")));
  static CachingAllocator* cuda[kMaxCudaDevices] = {};
  static std::mutex m;
  std::lock_guard lock(m);
  if (!cuda[d.index]) cuda[d.index] = new CachingAllocator(d);
  return *cuda[d.index];
}

/// Page-locked host blocks. A freed block may still be read by a queued copy, so it is handed
/// out again only once the event of its last queued copy has completed.
class PinnedCache {
 public:
  using Reads = std::vector<std::pair<int, std::shared_ptr<void>>>;

  void* acquire(size_t bytes, size_t* capacity) {
    const size_t cap = size_class(bytes);
    std::lock_guard lock(mutex_);
    // The smallest free block that fits, at most twice the size, that no queued copy reads.
    for (auto it = free_.lower_bound(cap); it != free_.end() && it->first <= 2 * cap; ++it) {
      if (!idle(it->second)) continue;
      *capacity = it->first;
      void* p = it->second.ptr;
      free_.erase(it);
      return p;
    }
    void* p = cuda_api::host_alloc(cap);
    if (!p) {
      drop_idle();
      p = cuda_api::host_alloc(cap);
    }
    if (!p)
      throw Error("pin_memory: the system has no page-locked memory left for " +
                  std::to_string(bytes) + " bytes");
    *capacity = cap;
    return p;
  }

  void release(void* p, size_t capacity, Reads read_by) {
    std::lock_guard lock(mutex_);
    free_.emplace(capacity, Block{p, std::move(read_by)});
  }

  std::mutex& read_mutex() { return read_mutex_; }

 private:
  struct Block {
    void* ptr;
    Reads read_by;
  };
  static bool idle(const Block& b) {
    for (const auto& [device, event] : b.read_by)
      if (!cuda_api::event_done(event)) return false;
    return true;
  }
  /// Returns the free blocks no copy reads any more to the system.
  void drop_idle() {
    for (auto it = free_.begin(); it != free_.end();) {
      if (!idle(it->second)) {
        ++it;
        continue;
      }
      cuda_api::host_free(it->second.ptr);
      it = free_.erase(it);
    }
  }

  std::mutex mutex_;
  std::mutex read_mutex_;              // guards Storage::read_by of live pinned storages
  std::multimap<size_t, Block> free_;  // by capacity
};

PinnedCache& pinned_cache() {
  static PinnedCache* cache = new PinnedCache;  // leaked, as the allocators are
  return *cache;
}

void require_cpu(Device d) {
  if (d.type != Device::Type::cpu) throw Error("device " + d.str() + ": external memory must be host memory");
}

}  // namespace

namespace {
thread_local std::shared_ptr<PrivatePool> current_pool;
}  // namespace

Storage::~Storage() {
  if (!ptr || external_owner) return;
  if (pinned)
    pinned_cache().release(ptr, capacity, std::move(read_by));
  else if (pool)
    pool->release(ptr, capacity);
  else
    allocator_for(device).release(ptr, capacity, lanes.load(std::memory_order_acquire));
}

PrivatePool::~PrivatePool() {
  CachingAllocator& a = allocator_for(device_);
  for (auto [p, cap] : owned_) a.release(p, cap, lane_bit(lane_));
}

void* PrivatePool::acquire(size_t bytes, size_t* capacity) {
  size_t cap = size_class(bytes);
  std::lock_guard lock(mutex_);
  // The smallest free block that fits, if it is at most twice the size: the graphs sharing a
  // pool record batches of different widths, whose buffers differ in size, not in number.
  auto it = free_.lower_bound(cap);
  if (it != free_.end() && it->first <= 2 * cap) {
    *capacity = it->first;
    void* p = it->second;
    free_.erase(it);
    return p;
  }
  void* p = allocator_for(device_).acquire(bytes, capacity, lane_);
  owned_.emplace_back(p, *capacity);
  bytes_ += *capacity;
  return p;
}

void PrivatePool::release(void* p, size_t capacity) {
  std::lock_guard lock(mutex_);
  free_.emplace(capacity, p);
}

PoolScope::PoolScope(std::shared_ptr<PrivatePool> pool) : prev_(std::move(current_pool)) {
  current_pool = std::move(pool);
}
PoolScope::~PoolScope() { current_pool = std::move(prev_); }

std::shared_ptr<Storage> allocate(size_t bytes, Device device) {
  auto s = std::make_shared<Storage>();
  if (current_pool && current_pool->device() == device) {
    s->ptr = current_pool->acquire(bytes, &s->capacity);
    s->pool = current_pool;
    s->bytes = bytes;
    s->device = device;
    s->lanes.store(lane_bit(this_lane), std::memory_order_relaxed);
    return s;
  }
  CachingAllocator& a = allocator_for(device);
  const bool cuda = device.type == Device::Type::cuda;
  s->ptr = a.acquire(bytes, &s->capacity, cuda ? this_lane : 0);
  s->bytes = bytes;
  s->device = device;
  if (cuda) s->lanes.store(lane_bit(this_lane), std::memory_order_relaxed);
  return s;
}

std::shared_ptr<Storage> allocate_pinned(size_t bytes) {
  if (cuda_api::device_count() == 0) return nullptr;
  auto s = std::make_shared<Storage>();
  s->ptr = pinned_cache().acquire(bytes, &s->capacity);
  s->bytes = bytes;
  s->device = Device::cpu();
  s->pinned = true;
  return s;
}

void note_device_read(Storage& s, int device, int lane, std::shared_ptr<void> event) {
  std::lock_guard lock(pinned_cache().read_mutex());
  // One stream a lane: the newest event there follows every earlier copy on it.
  const int key = device * kLanes + lane;
  for (auto& [k, e] : s.read_by)
    if (k == key) {
      e = std::move(event);
      return;
    }
  s.read_by.emplace_back(key, std::move(event));
}

std::shared_ptr<Storage> wrap_external(void* ptr, size_t bytes, std::shared_ptr<const void> owner,
                                       Device device) {
  require_cpu(device);
  auto s = std::make_shared<Storage>();
  s->ptr = ptr;
  s->bytes = s->capacity = bytes;
  s->device = device;
  s->external_owner = owner ? std::move(owner) : std::make_shared<int>(0);
  return s;
}

}  // namespace wick::detail

namespace wick {

MemoryStats memory_stats(Device d) { return detail::allocator_for(d).stats(); }
void set_memory_limit(size_t bytes, Device d) { detail::allocator_for(d).set_limit(bytes); }
void reset_peak_memory(Device d) { detail::allocator_for(d).reset_peak(); }
void clear_memory_cache(Device d) { detail::allocator_for(d).clear(); }

}  // namespace wick
