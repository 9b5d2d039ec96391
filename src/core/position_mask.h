#pragma once
// The visibility rule of a decoding step over a whole preallocated cache (PositionMask, and the
// attention kernels that apply it without a mask), shared by the CPU and CUDA kernels.
#include <cstdint>

#include "core/host_device.h"

namespace wick::detail {

/// Whether key s is visible to the query at cache position `at` (the step's position + t): not
/// past it and, with a window w > 0, less than w behind it.
WICK_HOST_DEVICE bool position_visible(int64_t s, int64_t at, int64_t window) {
  return s <= at && (window <= 0 || at - s < window);
}

}  // namespace wick::detail
