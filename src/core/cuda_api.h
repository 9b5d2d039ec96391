#pragma once
// The few CUDA runtime services that code outside src/backend needs (the allocator, host reads
// and the scheduler). Defined by src/backend/cuda/runtime.cpp, or by
// src/backend/cuda_unavailable.cpp in a build without CUDA, where device_count() is 0 and the
// rest throw.
#include <cstddef>

namespace wick::detail::cuda_api {

/// Usable CUDA devices (0 without a CUDA build, a driver or a GPU).
int device_count();
/// Device memory, or nullptr when the device has none left.
void* malloc(size_t bytes, int device);
void free(void* p, int device);
/// Waits for everything queued on the device's stream; throws wick::Error for a failed kernel or
/// an error a kernel reported (an index out of range).
void synchronize(int device);

}  // namespace wick::detail::cuda_api
