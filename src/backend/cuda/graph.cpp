// CUDA-graph capture for compiled functions (src/transforms/graph_plan.cpp): a thread records
// its launches on a private stream, and the instantiated graph is later queued on the stream of
// the thread's lane, in order with everything else there.
#include <mutex>
#include <utility>

#include "backend/cuda/glue.h"
#include "core/cuda_api.h"

namespace wick::cuda {
namespace {

// The recording of this thread: its stream and device (at most one at a time per thread).
thread_local cudaStream_t capture_stream = nullptr;
thread_local int capture_device = -1;
// The recording's launch unit (context.h), and whether an overlapped kernel has started it.
thread_local uint64_t capture_unit = 0;
thread_local bool capture_started = false;

bool capturing(const Context& c) {
  return capture_stream && capture_device == c.device;
}

std::mutex& capture_mutex(int device) {
  static std::mutex m[16];
  return m[device];
}

}  // namespace

cudaStream_t launch_stream() {
  Context& c = active();
  return capturing(c) ? capture_stream : lane(c, detail::this_lane).stream;
}

uint64_t current_unit() {
  Context& c = active();
  return capturing(c) ? capture_unit
                      : lane(c, detail::this_lane).unit.load(std::memory_order_acquire);
}

bool starts_unit() {
  Context& c = active();
  if (capturing(c)) return !std::exchange(capture_started, true);
  return !lane(c, detail::this_lane).unit_started.exchange(true, std::memory_order_acq_rel);
}

}  // namespace wick::cuda

namespace wick::detail::cuda_api {

struct Graph {
  int device = 0;
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

void begin_capture(int device) {
  cuda::activate(device);
  if (cuda::capture_stream) throw Error("cuda graph: this thread is already capturing");
  cuda::capture_mutex(device).lock();
  cudaStream_t s = nullptr;
  cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  // Relaxed: allocations of new blocks (cudaMalloc) may happen while recording.
  if (e == cudaSuccess) e = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) {
    if (s) cudaStreamDestroy(s);
    cudaGetLastError();
    cuda::capture_mutex(device).unlock();
    cuda::check(e, "begin graph capture");
  }
  cuda::capture_stream = s;
  cuda::capture_device = device;
  cuda::capture_unit = cuda::new_unit_id();
  cuda::capture_started = false;
}

std::shared_ptr<Graph> end_capture(int device, bool keep) {
  cudaStream_t s = cuda::capture_stream;
  cuda::capture_stream = nullptr;
  cuda::capture_device = -1;
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(s, &graph);
  auto g = std::make_shared<Graph>();
  g->device = device;
  if (e == cudaSuccess && keep) e = cudaGraphInstantiate(&g->exec, graph, 0);
  if (graph) cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  cuda::capture_mutex(device).unlock();
  if (e != cudaSuccess) {
    cudaGetLastError();  // a failed capture is not sticky: plain launches still work
    g->exec = nullptr;
    if (keep) throw Error(std::string("cuda graph capture: ") + cudaGetErrorString(e));
  }
  return keep ? g : nullptr;
}

void launch(const Graph& g) {
  cuda::Lane& l = cuda::lane(cuda::activate(g.device), this_lane);
  cuda::check(cudaGraphLaunch(g.exec, l.stream), "graph launch");
  // Work queued after the graph waits for all of it (the graph's buffers are written there).
  cuda::begin_unit(l);
  // Kernels that validate indices may be in the graph: read the flag at the next sync.
  cuda::error_flag();
}

void wrote(const Node& n, std::span<Node* const> inputs) {
  // A view shares its input's storage and writes nothing (a reshape that copies does not).
  if (!n.storage || (n.primitive && n.primitive->is_view() && !inputs.empty() && inputs[0]->storage == n.storage))
    return;
  cuda::activate(n.device.index);
  cuda::mark_written(n);
}

void copy_dense_many(const std::vector<std::pair<const Node*, void*>>& copies) {
  // Dense sources go many to a kernel (a training step's graph has a thousand inputs and
  // outputs); strided ones are made dense first.
  cuda::CopyPieces p;
  std::vector<std::shared_ptr<Storage>> holds;
  for (const auto& [src, dst] : copies) {
    cuda::activate(src->device.index);
    holds.emplace_back();
    const void* from = cuda::dense(*src, holds.back());
    p.add(from, dst, src->size() * static_cast<int64_t>(itemsize(src->dtype)));
  }
  cuda::copy_pieces(p);
}

}  // namespace wick::detail::cuda_api
