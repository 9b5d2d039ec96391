#pragma once
// The few CUDA runtime services that code outside src/backend needs (the allocator, host reads
// and the scheduler). Defined by src/backend/cuda/runtime.cpp, or by
// src/backend/cuda_unavailable.cpp in a build without CUDA, where device_count() is 0 and the
// rest throw.
#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace wick::detail {
struct Node;
}

namespace wick::detail::cuda_api {

/// Usable CUDA devices (0 without a CUDA build, a driver or a GPU).
int device_count();
/// Whether `device` runs the tensor-core attention kernels (the vjp then builds AttentionGrad).
bool flash_attention_available(int device);
/// Device memory, or nullptr when the device has none left.
void* malloc(size_t bytes, int device);
void free(void* p, int device);
/// Waits for everything queued on this thread's lane (core/lane.h) of the device; throws
/// wick::Error for a failed kernel or an error a kernel reported (an index out of range).
void synchronize(int device);

/// Page-locked host memory, usable by every device's copies (cudaHostAlloc, portable), or
/// nullptr when there is none left or no CUDA device.
void* host_alloc(size_t bytes);
void host_free(void* p);
/// An event recorded now on this thread's lane of `device` (the capture stream while
/// recording): it completes once the work queued there so far has run. Destroyed with its last
/// owner.
std::shared_ptr<void> record_event(int device);
/// The same on lane `lane` of `device`.
std::shared_ptr<void> record_event(int device, int lane);
/// Whether an event of record_event has completed.
bool event_done(const std::shared_ptr<void>& event);

/// Before this thread's lane queues work that reads or writes `n` (evaluated, on any device):
/// notes the lane among those that use n's storage and, where the kernels that last wrote it
/// ran on another lane and this lane has not waited for them yet, makes this lane wait for
/// that lane's work queued so far.
void order_reads(const Node& n);

/// A point in a lane's stream: the work queued there before mark() was called.
struct Marker {
  int device = 0;
  int lane = 0;
  int slot = -1;
};
/// Marks the work queued so far on this thread's lane of `device`, without waiting for it.
Marker mark(int device);
/// Whether the marked work has finished (it may have failed: finish() says).
bool reached(const Marker& m);
/// Waits for the marked work and releases the marker; throws as synchronize() does, for a
/// failed kernel or an error a kernel queued before the mark reported. Work queued after the
/// mark may still be running: the scheduler launches the next evaluation before it waits here.
void finish(const Marker& m);

/// An instantiated CUDA graph (opaque outside the backend).
struct Graph;
/// From now until end_capture, this thread's launches on `device` are recorded, not run. One
/// thread captures a device at a time; others wait here.
void begin_capture(int device);
/// Stops recording and instantiates what was recorded. With `keep` false, or when recording
/// failed (an operation that cannot be captured), the recording is discarded; the latter throws
/// wick::Error with CUDA's reason.
std::shared_ptr<Graph> end_capture(int device, bool keep = true);
/// Queues the graph on this thread's lane of its device (the lane that captured it: its kernels
/// use that lane's workspace and error flag).
void launch(const Graph& g);
/// Notes that the kernels just queued for the CUDA node `n` (over `inputs`) wrote its storage,
/// unless it is a view of its input, so that kernels after them in the same launch unit do not
/// read it early (backend/cuda/context.h).
void wrote(const Node& n, std::span<Node* const> inputs);
/// Queues copies of each `src` (any view, on a CUDA device) into the dense buffer `dst` on its
/// device, many to a launch.
void copy_dense_many(const std::vector<std::pair<const Node*, void*>>& copies);

}  // namespace wick::detail::cuda_api
