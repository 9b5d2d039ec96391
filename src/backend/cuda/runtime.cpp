// The CUDA backend's device state and the services the rest of wick reaches through
// core/cuda_api.h: memory, and waiting for a device with error reporting.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <string>

#include "backend/cuda/context.h"
#include "backend/cuda/cublaslt.h"
#include "backend/cuda/launch.h"
#include "core/allocator.h"
#include "core/cuda_api.h"
#include "graph/node.h"
#include "wick/error.h"

namespace wick::cuda {
namespace {

constexpr int kMaxDevices = 16;
constexpr size_t kWorkspaceBytes = 32u << 20;  // cuBLASLt's recommended size on Hopper

std::array<Context*, kMaxDevices>& contexts() {
  static std::array<Context*, kMaxDevices> c{};  // leaked: streams outlive static destructors
  return c;
}
std::mutex& context_mutex() {
  static std::mutex m;
  return m;
}
thread_local Context* current = nullptr;

Lane* create_lane(Context& c, int index) {
  auto* l = new Lane();  // leaked with its context
  l->index = index;
  check(cudaStreamCreateWithFlags(&l->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cudaMalloc(&l->workspace, c.workspace_bytes), "cuBLASLt workspace");
  check(cudaMalloc(reinterpret_cast<void**>(&l->error), 3 * sizeof(int64_t)), "error flag");
  check(cudaMemsetAsync(l->error, 0, 3 * sizeof(int64_t), l->stream), "error flag");
  check(cudaMalloc(reinterpret_cast<void**>(&l->pick_counters), kPickCounters * sizeof(unsigned)),
        "greedy_pick");
  check(cudaMemsetAsync(l->pick_counters, 0, kPickCounters * sizeof(unsigned), l->stream),
        "greedy_pick");
  begin_unit(*l);
  return l;
}

Context* create(int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  auto* c = new Context();
  c->device = device;
  check(cudaDeviceGetAttribute(&c->sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  int major = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  const char* pdl = std::getenv("WICK_PDL");
  c->overlap = major >= 9 && !(pdl && std::string(pdl) == "0");
  check(cudaStreamCreateWithFlags(&c->copy_stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (lt().create(&c->lt) != CUBLAS_STATUS_SUCCESS) throw Error("cuda: cublasLtCreate failed");
  c->workspace_bytes = kWorkspaceBytes;
  c->lanes[0].store(create_lane(*c, 0), std::memory_order_release);
  return c;
}

const char* code_text(int64_t code) {
  switch (code) {
    case kTakeIndex:
      return "take";
    case kTakeAlongIndex:
      return "take_along_axis";
    case kWriteAt:
      return "write_at: position";
    case kCrossEntropyLabel:
      return "cross_entropy: label";
    default:
      return "kernel";
  }
}

std::atomic<uint64_t> next_unit{1};

}  // namespace

uint64_t new_unit_id() {
  return next_unit.fetch_add(1, std::memory_order_relaxed);
}

void begin_unit(Lane& l) {
  l.unit.store(new_unit_id(), std::memory_order_release);
  l.unit_started.store(false, std::memory_order_release);
}

Lane& lane(Context& c, int index) {
  if (Lane* l = c.lanes[static_cast<size_t>(index)].load(std::memory_order_acquire)) return *l;
  std::lock_guard lock(c.lanes_mutex);
  Lane* l = c.lanes[static_cast<size_t>(index)].load(std::memory_order_acquire);
  if (!l) {
    check(cudaSetDevice(c.device), "cudaSetDevice");
    l = create_lane(c, index);
    c.lanes[static_cast<size_t>(index)].store(l, std::memory_order_release);
  }
  return *l;
}

Lane& active_lane() {
  return lane(active(), detail::this_lane);
}

OverlapAttr overlap_attr() {
  OverlapAttr a;
  if (active().overlap && !starts_unit()) {
    a.attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    a.attr[0].val.programmaticStreamSerializationAllowed = 1;
    a.count = 1;
  }
  return a;
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string("cuda: ") + what + ": " + cudaGetErrorString(e));
}

void check_launch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

Context& activate(int device) {
  if (current && current->device == device) return *current;
  if (device < 0 || device >= kMaxDevices)
    throw Error("cuda: device index " + std::to_string(device) + " out of range");
  Context* c;
  {
    std::lock_guard lock(context_mutex());
    c = contexts()[device];
    if (!c) c = contexts()[device] = create(device);
  }
  check(cudaSetDevice(device), "cudaSetDevice");
  current = c;
  return *c;
}

Context& active() {
  if (!current) throw Error("cuda: no device is active on this thread");
  return *current;
}

int64_t* error_flag() {
  Lane& l = active_lane();
  l.error_check_pending.store(true, std::memory_order_release);
  return l.error;
}

}  // namespace wick::cuda

namespace wick::detail::cuda_api {

bool flash_attention_available(int device) { return device < device_count() && cuda::flash_available(device); }

int device_count() {
  static int n = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();  // no driver or no device: clear the sticky error, report none
      return 0;
    }
    return count;
  }();
  return n;
}

void* malloc(size_t bytes, int device) {
  cuda::activate(device);
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError();  // out of memory is not sticky; the caller frees its cache and retries
    return nullptr;
  }
  return p;
}

void free(void* p, int device) {
  cuda::activate(device);
  cudaFree(p);
}

void* host_alloc(size_t bytes) {
  if (device_count() == 0) return nullptr;
  void* p = nullptr;
  if (cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();  // as malloc: not sticky, the caller retries after freeing its cache
    return nullptr;
  }
  return p;
}

void host_free(void* p) {
  cudaFreeHost(p);
}

namespace {
std::shared_ptr<void> record_on(cudaStream_t stream) {
  cudaEvent_t e = nullptr;
  cuda::check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  std::shared_ptr<void> event(e, [](void* p) { cudaEventDestroy(static_cast<cudaEvent_t>(p)); });
  cuda::check(cudaEventRecord(e, stream), "cudaEventRecord");
  return event;
}
}  // namespace

std::shared_ptr<void> record_event(int device) {
  cuda::activate(device);
  return record_on(cuda::launch_stream());
}

std::shared_ptr<void> record_event(int device, int lane) {
  return record_on(cuda::lane(cuda::activate(device), lane).stream);
}

bool event_done(const std::shared_ptr<void>& event) {
  return cudaEventQuery(static_cast<cudaEvent_t>(event.get())) != cudaErrorNotReady;
}

namespace {
// Per device and lane, the unit that lane was in when this thread last made its own lane wait
// for it: a value written in an earlier unit there is already waited for.
thread_local std::array<std::array<uint64_t, kLanes>, cuda::kMaxDevices> waited_units{};
}  // namespace

void order_reads(const Node& n) {
  Storage* s = n.storage.get();
  if (!s || s->device.type != Device::Type::cuda) return;
  const uint32_t mine = lane_bit(this_lane);
  if (!(s->lanes.load(std::memory_order_acquire) & mine))
    s->lanes.fetch_or(mine, std::memory_order_acq_rel);
  // The unit first: a writer stores its lane, then its unit (glue.h: mark_written). Settled or
  // not, a block may have been written in place since (a cache), so the writer decides.
  const uint64_t written = s->written_unit.load(std::memory_order_acquire);
  const int writer = s->written_lane.load(std::memory_order_relaxed);
  if (writer == this_lane) return;  // stream order
  cuda::Context& c = cuda::activate(s->device.index);
  uint64_t& seen = waited_units[static_cast<size_t>(c.device)][static_cast<size_t>(writer)];
  if (written < seen) return;  // written in a unit that ended before this lane's last wait there
  cuda::Lane& me = cuda::lane(c, this_lane);
  cuda::Lane& other = cuda::lane(c, writer);
  // The unit is read before the event is recorded, so everything queued in earlier units of
  // that lane is behind the event.
  const uint64_t unit = other.unit.load(std::memory_order_acquire);
  auto event = record_on(other.stream);
  cuda::check(cudaStreamWaitEvent(me.stream, static_cast<cudaEvent_t>(event.get()), 0),
              "cudaStreamWaitEvent");
  seen = unit;
  // The next kernel starts after the wait, not overlapped with the kernel before it.
  cuda::begin_unit(me);
}

namespace {
/// Throws the error a kernel reported through the lane's flag (copied to e), after clearing the
/// flag behind the work already queued.
void throw_if_reported(cuda::Lane& l, const int64_t (&e)[3]) {
  if (e[0] == cuda::kNoError) return;
  cuda::check(cudaMemsetAsync(l.error, 0, sizeof e, l.stream), "error flag");
  throw Error(std::string(cuda::code_text(e[0])) + ": index " + std::to_string(e[1]) +
              " is out of range for size " + std::to_string(e[2]));
}

/// A marker's slot (the vector may grow under another thread; the slot itself does not move).
cuda::MarkSlot& slot_of(cuda::Context& c, const Marker& marker) {
  std::lock_guard lock(c.marks_mutex);
  return *c.marks[static_cast<size_t>(marker.slot)];
}
}  // namespace

void synchronize(int device) {
  cuda::Lane& l = cuda::lane(cuda::activate(device), this_lane);
  cuda::check(cudaStreamSynchronize(l.stream), "kernel execution");
  if (!l.error_check_pending.exchange(false, std::memory_order_acq_rel)) return;
  int64_t e[3] = {};
  cuda::check(cudaMemcpy(e, l.error, sizeof e, cudaMemcpyDeviceToHost), "error flag");
  throw_if_reported(l, e);
}

Marker mark(int device) {
  cuda::Context& c = cuda::activate(device);
  cuda::Lane& l = cuda::lane(c, this_lane);
  int slot;
  cuda::MarkSlot* mp;
  {
    std::lock_guard lock(c.marks_mutex);
    if (c.free_marks.empty()) {
      auto m = std::make_unique<cuda::MarkSlot>();
      cuda::check(cudaEventCreateWithFlags(&m->event, cudaEventDisableTiming), "cudaEventCreate");
      cuda::check(cudaHostAlloc(reinterpret_cast<void**>(&m->flag), 3 * sizeof(int64_t), cudaHostAllocMapped),
                  "cudaHostAlloc");
      cuda::check(cudaHostGetDevicePointer(reinterpret_cast<void**>(&m->flag_device), m->flag, 0),
                  "cudaHostGetDevicePointer");
      c.free_marks.push_back(static_cast<int>(c.marks.size()));
      c.marks.push_back(std::move(m));
    }
    slot = c.free_marks.back();
    c.free_marks.pop_back();
    mp = c.marks[static_cast<size_t>(slot)].get();
  }
  cuda::MarkSlot& m = *mp;
  // The flag is copied in stream order, so it holds what the kernels before the mark reported.
  m.check = l.error_check_pending.exchange(false, std::memory_order_acq_rel);
  // A kernel, not a copy: a copy between two kernels costs the stream ~7 us each side (measured
  // between decoding steps), an overlapped kernel ~1.
  if (m.check) cuda::copy_error_flag(l.error, m.flag_device);
  cuda::check(cudaEventRecord(m.event, l.stream), "cudaEventRecord");
  cuda::begin_unit(l);
  return {device, l.index, slot};
}

bool reached(const Marker& marker) {
  cuda::Context& c = cuda::activate(marker.device);
  return cudaEventQuery(slot_of(c, marker).event) != cudaErrorNotReady;
}

void finish(const Marker& marker) {
  cuda::Context& c = cuda::activate(marker.device);
  cuda::MarkSlot& m = slot_of(c, marker);
  const cudaError_t done = cudaEventSynchronize(m.event);
  int64_t e[3] = {};
  if (m.check && done == cudaSuccess) std::copy(m.flag, m.flag + 3, e);
  {
    std::lock_guard lock(c.marks_mutex);
    c.free_marks.push_back(marker.slot);
  }
  cuda::check(done, "kernel execution");
  throw_if_reported(cuda::lane(c, marker.lane), e);
}

}  // namespace wick::detail::cuda_api
