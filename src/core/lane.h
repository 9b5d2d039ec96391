#pragma once
// Lanes: the CUDA streams of a device. Each wick Stream's work on a CUDA device goes to a lane
// of its own, so the evaluations of two streams run side by side on the GPU; the default stream
// (id 0) has lane 0, and other streams share the remaining lanes round-robin (two streams on one
// lane are ordered by submission, which is correct, only not concurrent). Values cross lanes
// through events (backend/cuda/runtime.cpp: order_reads), and a block of device memory that
// several lanes touched is handed out again only after events on each of them (allocator.cpp).
#include <cstdint>

namespace wick::detail {

constexpr int kLanes = 8;

/// The lane of the stream whose worker runs on this thread (0 on any other thread).
inline thread_local int this_lane = 0;

constexpr int lane_of_stream(int stream_id) {
  return stream_id == 0 ? 0 : 1 + (stream_id - 1) % (kLanes - 1);
}

constexpr uint32_t lane_bit(int lane) {
  return 1u << lane;
}

}  // namespace wick::detail
