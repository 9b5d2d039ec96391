#pragma once
#include <cstddef>

#include "wick/device.h"

namespace wick {

/// Byte counts of a device's caching allocator.
struct MemoryStats {
  size_t active = 0;  // held by live buffers
  size_t peak = 0;    // highest `active` since start or reset_peak_memory()
  size_t cached = 0;  // freed buffers kept for reuse
  size_t limit = 0;   // 0: no limit
  size_t allocations = 0;  // buffers handed out (cache hits included)
  size_t cache_hits = 0;
};

MemoryStats memory_stats(Device d = Device::cpu());
/// Caps active + cached bytes; an allocation past it first drops the cache, then fails with a
/// wick::Error that states the request, the active bytes and the limit. 0 removes the cap.
void set_memory_limit(size_t bytes, Device d = Device::cpu());
void reset_peak_memory(Device d = Device::cpu());
/// Returns all cached buffers to the system.
void clear_memory_cache(Device d = Device::cpu());

}  // namespace wick
