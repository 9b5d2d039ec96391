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
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
};

/// Allocates `bytes` (64-byte aligned) from the device's caching allocator. Throws wick::Error
/// when the memory limit would be exceeded even after dropping the cache.
std::shared_ptr<Storage> allocate(size_t bytes, Device device = Device::cpu());

}  // namespace wick::detail
