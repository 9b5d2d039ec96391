#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "wick/device.h"

namespace wick::detail {

/// A block of device memory. Returned to its allocator's cache when the last owner drops it.
class PrivatePool;

struct Storage {
  void* ptr = nullptr;
  /// The CUDA launch unit whose kernels last wrote the block (backend/cuda/context.h): a
  /// kernel may read it before waiting for the kernels ahead of it only from another unit.
  std::atomic<uint64_t> written_unit{0};
  /// The lane (core/lane.h) of those kernels: another lane reads the block after an event there.
  std::atomic<int> written_lane{0};
  /// Device memory: the lanes whose queued work touches the block, as lane_bit()s.
  /// A block one lane touched goes back to that lane's free list; one that several touched is
  /// handed out again only after an event on each of them.
  std::atomic<uint32_t> lanes{0};
  /// A by-product the block's writer left after its value, which a later reader of that value
  /// may use instead of recomputing it (flash attention's log-sum-exp rows, for its gradient):
  /// a tag saying what it is (0: none) and its byte offset in the block. A block handed to
  /// another value, or written in place, loses it.
  std::atomic<uint64_t> side_tag{0};
  size_t side_offset = 0;
  size_t bytes = 0;      // bytes asked for
  size_t capacity = 0;   // bytes of the block (size class)
  Device device;
  /// Set for memory wick does not own (an mmap'ed file, a caller's buffer): the storage keeps
  /// the owner alive and never returns the block to an allocator.
  std::shared_ptr<const void> external_owner;
  /// Set for a block of a private pool (a captured CUDA graph's memory): freed, it goes back there.
  std::shared_ptr<PrivatePool> pool;
  /// Page-locked host memory (allocate_pinned): copies from it to a device are asynchronous.
  bool pinned = false;
  /// Pinned memory: per device and lane (device · kLanes + lane), an event after the copies
  /// queued from it there so far (note_device_read); they must complete before the block is
  /// handed out again.
  std::vector<std::pair<int, std::shared_ptr<void>>> read_by;
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
};

/// Allocates `bytes` (64-byte aligned) from the device's caching allocator. Throws wick::Error
/// when the memory limit would be exceeded even after dropping the cache.
std::shared_ptr<Storage> allocate(size_t bytes, Device device = Device::cpu());

/// Memory private to one captured CUDA graph. While a PoolScope is active on a thread, that
/// thread's allocations on the pool's device come from the pool, and blocks freed go back to it,
/// never to the shared cache: a graph's kernels write its blocks on every replay, so no other
/// tensor may ever be handed one. A freed block is handed out again inside the pool, which is
/// safe because captured graphs run their kernels in the order they were recorded, one graph
/// after another on the stream of the pool's lane (a compiled function has a pool per device and
/// lane). The pool returns its blocks to the device's cache when the last of its storages is gone.
class PrivatePool {
 public:
  explicit PrivatePool(Device d, int lane = 0) : device_(d), lane_(lane) {}
  ~PrivatePool();
  PrivatePool(const PrivatePool&) = delete;
  PrivatePool& operator=(const PrivatePool&) = delete;
  Device device() const { return device_; }
  /// Bytes of device memory the pool holds (live and free blocks).
  size_t bytes() const { return bytes_; }

  /// A block for `bytes` (its capacity in *capacity): a free one of the pool, else a new one.
  void* acquire(size_t bytes, size_t* capacity);
  void release(void* p, size_t capacity);

 private:
  Device device_;
  int lane_;
  std::mutex mutex_;  // storages die on whichever thread drops them last
  std::vector<std::pair<void*, size_t>> owned_;  // every block, with its capacity
  std::multimap<size_t, void*> free_;  // by capacity
  size_t bytes_ = 0;
};

/// Routes this thread's allocations on the pool's device to the pool while alive.
class PoolScope {
 public:
  explicit PoolScope(std::shared_ptr<PrivatePool> pool);
  ~PoolScope();
  PoolScope(const PoolScope&) = delete;
  PoolScope& operator=(const PoolScope&) = delete;

 private:
  std::shared_ptr<PrivatePool> prev_;
};

/// Page-locked host memory (see pin_memory) from its own cache: a freed block is handed out again
/// once the device copies queued from it have run. nullptr without a CUDA device. Throws
/// wick::Error when the system has no page-locked memory left for it.
std::shared_ptr<Storage> allocate_pinned(size_t bytes);
/// Notes that work just queued on `lane` of `device` reads the pinned storage `s`: `event`
/// completes after it.
void note_device_read(Storage& s, int device, int lane, std::shared_ptr<void> event);

/// Storage over `bytes` of memory at `ptr` that `owner` keeps alive (zero-copy loading).
std::shared_ptr<Storage> wrap_external(void* ptr, size_t bytes, std::shared_ptr<const void> owner,
                                       Device device = Device::cpu());

}  // namespace wick::detail
