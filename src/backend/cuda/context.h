#pragma once
// Per-device state of the CUDA backend: its lanes (core/lane.h: a CUDA stream each, with the
// cuBLASLt workspace, the flag through which kernels report bad indices and the counters its
// kernels use), the cuBLASLt handle, and the marks that end submissions. Host-side only (.cpp
// and .cu files).
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/lane.h"

namespace wick::cuda {

/// An event and a pinned copy of the error flag, taken at a cuda_api::mark().
struct MarkSlot {
  cudaEvent_t event = nullptr;
  int64_t* flag = nullptr;  // pinned host memory: the flag as the stream saw it at the mark
  int64_t* flag_device = nullptr;  // the same memory as the device addresses it
  bool check = false;       // whether a kernel before the mark could have reported
};

/// One CUDA stream of a device and what only the kernels queued there use. A captured graph
/// holds the lane's workspace, flag and counters too, so it is replayed on its lane only
/// (transforms/graph_plan.cpp).
struct Lane {
  int index = 0;
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;  // cuBLASLt's, Context::workspace_bytes
  // [0]: reported error code (0 none), [1]: the offending index, [2]: the bound.
  int64_t* error = nullptr;
  std::atomic<bool> error_check_pending{false};
  // The launch unit of the stream (below) and whether an overlapped kernel has started it.
  std::atomic<uint64_t> unit{0};
  std::atomic<bool> unit_started{false};
  // Counters of greedy_pick's blocks, one per row, each left at zero by the kernel that used it.
  unsigned* pick_counters = nullptr;
};

struct Context {
  int device = 0;
  int sms = 1;  // streaming multiprocessors
  bool overlap = false;  // programmatic dependent launch (Hopper on; WICK_PDL=0 turns it off)
  cudaStream_t copy_stream = nullptr;  // reads of settled values (ToDevice), beside the queued work
  cublasLtHandle_t lt = nullptr;
  size_t workspace_bytes = 0;
  // Created on first use (lane 0 with the context); a lane's address is stable.
  std::array<std::atomic<Lane*>, detail::kLanes> lanes{};
  std::mutex lanes_mutex;
  // cuda_api::mark's slots (kept for reuse; a slot's address is stable) and the free ones.
  std::vector<std::unique_ptr<MarkSlot>> marks;
  std::vector<int> free_marks;
  std::mutex marks_mutex;
};
constexpr int64_t kPickCounters = 1024;

/// Makes `device` current on this thread and returns its context (created on first use).
Context& activate(int device);
/// The context made current by the last activate() on this thread.
Context& active();

/// Lane `index` of c, created on first use.
Lane& lane(Context& c, int index);
/// This thread's lane (detail::this_lane) on the active device.
Lane& active_lane();

/// The stream this thread's launches go to on the active device: its lane's stream, or the
/// capture stream while this thread records a CUDA graph (cuda_api::begin_capture). Every
/// kernel, copy and cuBLASLt call is queued here.
cudaStream_t launch_stream();

/// Launch units. The kernels queued on a lane's stream between two barriers (a cuda_api::mark, a
/// graph launch, a wait for another lane; for a graph being captured, the whole recording) form
/// a unit, and the unit's first
/// overlapped kernel is launched without overlap, so every kernel of a unit starts after all
/// work before the unit has finished. Hence a kernel may read before its wait_for_inputs() the
/// memory that no kernel of its own unit wrote (Storage::written_unit): a model's weights, a
/// cache written by earlier steps, a graph's input slots.
uint64_t current_unit();
/// Starts a new unit on the lane's stream (after a barrier was queued there).
void begin_unit(Lane& l);
/// A unit id never used before (a capture's unit).
uint64_t new_unit_id();
/// Whether this launch is the first overlapped one of the current unit (and marks it started).
bool starts_unit();

/// Launch attributes for a kernel that calls wait_for_inputs() before touching memory earlier
/// kernels wrote (common.cuh): lets it start while the previous kernel drains. Empty (plain
/// stream order) where the device or WICK_PDL=0 says no.
struct OverlapAttr {
  cudaLaunchAttribute attr[1];
  unsigned count = 0;
};
OverlapAttr overlap_attr();
/// Throws wick::Error naming `what` when a CUDA call failed.
void check(cudaError_t e, const char* what);
/// Checks the launch just made (bad configuration, missing kernel image).
void check_launch(const char* kernel);

/// Codes kernels write to Context::error (the first one wins).
enum ErrorCode : int64_t {
  kNoError = 0,
  kTakeIndex = 1,
  kTakeAlongIndex = 2,
  kCrossEntropyLabel = 3,
  kWriteAt = 4
};
/// The lane's device flag to hand to a kernel that validates indices; marks a check due at the
/// lane's next sync.
int64_t* error_flag();

}  // namespace wick::cuda
