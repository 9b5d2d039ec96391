// The CUDA backend's device state and the services the rest of wick reaches through
// core/cuda_api.h: memory, and waiting for a device with error reporting.
#include <array>
#include <cstdlib>
#include <mutex>
#include <string>

#include "backend/cuda/context.h"
#include "backend/cuda/launch.h"
#include "core/cuda_api.h"
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

Context* create(int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  auto* c = new Context();
  c->device = device;
  check(cudaDeviceGetAttribute(&c->sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  int major = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  const char* pdl = std::getenv("WICK_PDL");
  c->overlap = major >= 9 && !(pdl && std::string(pdl) == "0");
  check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (cublasLtCreate(&c->lt) != CUBLAS_STATUS_SUCCESS) throw Error("cuda: cublasLtCreate failed");
  c->workspace_bytes = kWorkspaceBytes;
  check(cudaMalloc(&c->workspace, c->workspace_bytes), "cuBLASLt workspace");
  check(cudaMalloc(reinterpret_cast<void**>(&c->error), 3 * sizeof(int64_t)), "error flag");
  check(cudaMemset(c->error, 0, 3 * sizeof(int64_t)), "error flag");
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

}  // namespace

OverlapAttr overlap_attr() {
  OverlapAttr a;
  if (active().overlap) {
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
  Context& c = active();
  c.error_check_pending = true;
  return c.error;
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

void synchronize(int device) {
  cuda::Context& c = cuda::activate(device);
  cuda::check(cudaStreamSynchronize(c.stream), "kernel execution");
  if (!c.error_check_pending) return;
  c.error_check_pending = false;
  int64_t e[3] = {};
  cuda::check(cudaMemcpy(e, c.error, sizeof e, cudaMemcpyDeviceToHost), "error flag");
  if (e[0] == cuda::kNoError) return;
  cuda::check(cudaMemset(c.error, 0, sizeof e), "error flag");
  throw Error(std::string(cuda::code_text(e[0])) + ": index " + std::to_string(e[1]) +
              " is out of range for size " + std::to_string(e[2]));
}

}  // namespace wick::detail::cuda_api
