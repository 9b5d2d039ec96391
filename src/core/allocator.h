#pragma once
#include <cstddef>
#include <memory>

#include "wick/device.h"

namespace wick::detail {

/// A block of device memory. Returned to its allocator's cache when the last owner drops it.
struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;      // bytes asked for
  size_t capacity = 0;   // bytes of the block (size class)
  Device device;
  /// Set for memory wick does not own (an mmap'ed file, a caller's buffer): the storage keeps
  /// the owner alive and never returns the block to an allocator.
  std::shared_ptr<const void> external_owner;
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
};

/// Allocates `bytes` (64-byte aligned) from the device's caching allocator. Throws wick::Error
/// when the memory limit would be exceeded even after dropping the cache.
std::shared_ptr<Storage> allocate(size_t bytes, Device device = Device::cpu());

/// Storage over `bytes` of memory at `ptr` that `owner` keeps alive (zero-copy loading).
std::shared_ptr<Storage> wrap_external(void* ptr, size_t bytes, std::shared_ptr<const void> owner,
                                       Device device = Device::cpu());

}  // namespace wick::detail
