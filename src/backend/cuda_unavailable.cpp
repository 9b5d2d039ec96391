// A build without the CUDA backend (no nvcc, or WICK_CUDA=OFF): no device is available, and
// every CUDA entry point says so. CMake compiles this file instead of src/backend/cuda/.
#include "core/cuda_api.h"
#include "graph/primitives.h"

namespace wick::detail {

namespace {
[[noreturn]] void unavailable(const char* what) {
  throw Error(std::string(what) + ": this build of wick has no CUDA backend (rebuild where nvcc is installed)");
}
}  // namespace

// clang-format off
#define WICK_NO_CUDA(cls) \
  void cls::eval_cuda(std::span<Node* const>, Node&) { unavailable(name()); }
WICK_NO_CUDA(Full) WICK_NO_CUDA(Arange) WICK_NO_CUDA(Random) WICK_NO_CUDA(PositionMask)
WICK_NO_CUDA(Unary) WICK_NO_CUDA(Binary) WICK_NO_CUDA(Where) WICK_NO_CUDA(AsType) WICK_NO_CUDA(Copy)
WICK_NO_CUDA(Reduce) WICK_NO_CUDA(ArgReduce) WICK_NO_CUDA(Matmul) WICK_NO_CUDA(FusedLinear)
WICK_NO_CUDA(LoraLinear) WICK_NO_CUDA(Softmax) WICK_NO_CUDA(RmsNorm) WICK_NO_CUDA(LayerNorm)
WICK_NO_CUDA(Rope) WICK_NO_CUDA(Attention) WICK_NO_CUDA(Reshape) WICK_NO_CUDA(SliceUpdate)
WICK_NO_CUDA(Concatenate) WICK_NO_CUDA(Take) WICK_NO_CUDA(TakeAlongAxis) WICK_NO_CUDA(TakeGrad)
WICK_NO_CUDA(TakeAlongAxisGrad) WICK_NO_CUDA(CrossEntropy) WICK_NO_CUDA(CrossEntropyGrad)
WICK_NO_CUDA(FusedElementwise) WICK_NO_CUDA(ScaledMaskedSoftmax) WICK_NO_CUDA(ToDevice)
WICK_NO_CUDA(AttentionProbs) WICK_NO_CUDA(AttentionGrad) WICK_NO_CUDA(RmsNormGrad)
WICK_NO_CUDA(SoftmaxGrad) WICK_NO_CUDA(WriteAt) WICK_NO_CUDA(CachedAttention) WICK_NO_CUDA(GreedyPick)
WICK_NO_CUDA(AdamWStep)
#undef WICK_NO_CUDA
// clang-format on

void ToDevice::eval_cpu(std::span<Node* const>, Node&) { unavailable(name()); }

namespace cuda_api {
int device_count() { return 0; }
bool flash_attention_available(int) { return false; }
void* malloc(size_t, int) { unavailable("cuda malloc"); }
void free(void*, int) {}
void* host_alloc(size_t) {
  return nullptr;
}
void host_free(void*) {}
std::shared_ptr<void> record_event(int) {
  unavailable("cuda event");
}
std::shared_ptr<void> record_event(int, int) {
  unavailable("cuda event");
}
bool event_done(const std::shared_ptr<void>&) {
  return true;
}
void order_reads(const Node&) {}  // no CUDA storage exists without CUDA
void synchronize(int) { unavailable("cuda synchronize"); }
Marker mark(int) { unavailable("cuda synchronize"); }
bool reached(const Marker&) { return true; }
void finish(const Marker&) { unavailable("cuda synchronize"); }
struct Graph {};
void begin_capture(int) { unavailable("cuda graph capture"); }
std::shared_ptr<Graph> end_capture(int, bool) { unavailable("cuda graph capture"); }
void launch(const Graph&) { unavailable("cuda graph launch"); }
void wrote(const Node&, std::span<Node* const>) {}  // no CUDA node exists without CUDA
void copy_dense_many(const std::vector<std::pair<const Node*, void*>>&) { unavailable("cuda copy"); }
}  // namespace cuda_api

}  // namespace wick::detail
