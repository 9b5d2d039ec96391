// Matrix-vector products for a few rows (decoding): out[m, n] = alpha·Σ_k x[m, k]·w[n, k] +
// beta·out[m, n]. A token's GEMMs are bound by reading the weights once, and cuBLASLt's tiles
// leave most of the GPU idle at one row (14 blocks for a 896×896 projection). Here one warp owns
// one output column and streams its weight row with 16-byte loads, so every SM is busy.
#include "backend/cuda/common.cuh"

namespace wick::cuda {
namespace {

constexpr int kWarps = 8;

template <class T, int MR>
__global__ void gemv_kernel(const T* x, int64_t ldx, const T* w, int64_t ldw, const T* add,
                            int64_t add_ld, T* out, int64_t N, int64_t K, float alpha, float beta) {
  constexpr int V = 16 / sizeof(T);  // elements per 16-byte load
  const int lane = threadIdx.x & 31;
  const int64_t n = blockIdx.x * int64_t(kWarps) + (threadIdx.x >> 5);
  if (n >= N) return;
  const T* wr = w + n * ldw;
  float acc[MR] = {};
  // Unrolled so that several 16-byte loads are in flight per lane: a warp's row is only a few
  // loads long, and their latency, not bandwidth, would otherwise set the time.
#pragma unroll 4
  for (int64_t k = int64_t(lane) * V; k < K; k += 32 * V) {
    uint4 wv = *reinterpret_cast<const uint4*>(wr + k);
    const T* wp = reinterpret_cast<const T*>(&wv);
    float wf[V];
#pragma unroll
    for (int j = 0; j < V; ++j) wf[j] = static_cast<float>(ld(wp + j));
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      uint4 xv = *reinterpret_cast<const uint4*>(x + m * ldx + k);
      const T* xp = reinterpret_cast<const T*>(&xv);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[m] += wf[j] * static_cast<float>(ld(xp + j));
    }
  }
#pragma unroll
  for (int m = 0; m < MR; ++m) {
    float v = acc[m];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) {
      T* p = out + m * N + n;
      float r = alpha * v + (beta != 0.0f ? beta * static_cast<float>(ld(p)) : 0.0f);
      st(p, add ? r + static_cast<float>(ld(add + m * add_ld + n)) : r);
    }
  }
}

template <class T, int MR>
void launch_rows(const void* x, int64_t ldx, const void* w, int64_t ldw, const void* add, int64_t add_ld,
                 void* out, int64_t N, int64_t K, float alpha, float beta) {
  unsigned blocks = static_cast<unsigned>((N + kWarps - 1) / kWarps);
  gemv_kernel<T, MR><<<blocks, 32 * kWarps, 0, launch_stream()>>>(
      static_cast<const T*>(x), ldx, static_cast<const T*>(w), ldw, static_cast<const T*>(add),
      add_ld, static_cast<T*>(out), N, K, alpha, beta);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool gemv(DType t, int64_t M, int64_t N, int64_t K, const void* x, int64_t ldx, const void* w,
          int64_t ldw, void* out, float alpha, float beta, const void* add, int64_t add_ld) {
  if (M < 1 || M > kMaxGemvRows || N < 1 || N > (int64_t(1) << 31) * kWarps) return false;
  if (t != DType::f32 && t != DType::bf16 && t != DType::f16) return false;
  const int64_t v = 16 / static_cast<int64_t>(itemsize(t));
  if (K % v || ldx % v || ldw % v || !aligned16(x) || !aligned16(w)) return false;
  dispatch(t, [&]<class T>() {
    if constexpr (std::is_same_v<T, float> || is_half_v<T>) {
      switch (M) {
        case 1: return launch_rows<T, 1>(x, ldx, w, ldw, add, add_ld, out, N, K, alpha, beta);
        case 2: return launch_rows<T, 2>(x, ldx, w, ldw, add, add_ld, out, N, K, alpha, beta);
        case 3: return launch_rows<T, 3>(x, ldx, w, ldw, add, add_ld, out, N, K, alpha, beta);
        case 4: return launch_rows<T, 4>(x, ldx, w, ldw, add, add_ld, out, N, K, alpha, beta);
        case 5: return launch_rows<T, 5>(x, ldx, w, ldw, add, add_ld, out, N, K, alpha, beta);
        case 6: return launch_rows<T, 6>(x, ldx, w, ldw, add, add_ld, out, N, K, alpha, beta);
        case 7: return launch_rows<T, 7>(x, ldx, w, ldw, add, add_ld, out, N, K, alpha, beta);
        default: return launch_rows<T, 8>(x, ldx, w, ldw, add, add_ld, out, N, K, alpha, beta);
      }
    }
  });
  check_launch("gemv");
  return true;
}

}  // namespace wick::cuda
