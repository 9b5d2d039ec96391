#pragma once
#include <cstddef>

#include "wick/device.h"
#include "wick/tensor.h"

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

/// A dense copy of host tensor `t` in page-locked (pinned) memory. A copy of it to a GPU
/// (to(x, Device::cuda(i))) is then queued without the host waiting for it, and its block is
/// handed out again only after that copy has run; the blocks are cached for reuse. Without a
/// CUDA device there is nothing to pin for: it returns `t` made dense (is_pinned false).
/// Throws wick::Error for a tensor on a GPU, or when the system has no page-locked memory left.
Tensor pin_memory(const Tensor& t);
/// Whether `t` is evaluated and its data is in page-locked host memory.
bool is_pinned(const Tensor& t);

}  // namespace wick
