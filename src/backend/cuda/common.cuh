#pragma once
// Device-side helpers of the CUDA kernels: element types, conversions through f32 (f64 kept
// wide), dtype dispatch, strided walks and block reductions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "backend/cuda/context.h"
#include "backend/cuda/launch.h"
#include "wick/error.h"

namespace wick::cuda {

using bf16_t = __nv_bfloat16;
using f16_t = __half;

template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, bf16_t> || std::is_same_v<T, f16_t>;

/// The type arithmetic runs in: f32 for the half types (as on the CPU), int for bool.
template <class T>
using compute_t =
    std::conditional_t<is_half_v<T>, float, std::conditional_t<std::is_same_v<T, bool>, int, T>>;

template <class T>
__device__ __forceinline__ compute_t<T> ld(const T* p) {
  if constexpr (std::is_same_v<T, bf16_t>)
    return __bfloat162float(*p);
  else if constexpr (std::is_same_v<T, f16_t>)
    return __half2float(*p);
  else if constexpr (std::is_same_v<T, bool>)
    return *reinterpret_cast<const uint8_t*>(p) != 0;
  else
    return *p;
}

template <class T, class V>
__device__ __forceinline__ void st(T* p, V v) {
  if constexpr (std::is_same_v<T, bf16_t>)
    *p = __float2bfloat16_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, f16_t>)
    *p = __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, bool>)
    *reinterpret_cast<uint8_t*>(p) = v != V(0);
  else
    *p = static_cast<T>(v);
}

/// Loads element `i` of a buffer of run-time dtype `t` as double (exact for every wick dtype
/// but i64 beyond 2^53).
__device__ __forceinline__ double ld_any(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::f32:
      return static_cast<const float*>(p)[i];
    case DType::f64:
      return static_cast<const double*>(p)[i];
    case DType::f16:
      return __half2float(static_cast<const f16_t*>(p)[i]);
    case DType::bf16:
      return __bfloat162float(static_cast<const bf16_t*>(p)[i]);
    case DType::i32:
      return static_cast<const int32_t*>(p)[i];
    case DType::i64:
      return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::boolean:
      return static_cast<const uint8_t*>(p)[i] != 0;
  }
  return 0;
}

__device__ __forceinline__ int64_t ld_index(const void* p, DType t, int64_t i) {
  return t == DType::i32 ? static_cast<const int32_t*>(p)[i] : static_cast<const int64_t*>(p)[i];
}

/// Adds each operand's offset of the `linear`-th element to off[k], dividing in index type I.
template <class I, int K>
__device__ __forceinline__ void add_offsets(I l, const Space& sp, const Walk* w, int64_t* off, int k_used) {
  for (int d = sp.nd - 1; d > 0; --d) {
    I n = static_cast<I>(sp.shape[d]);
    int64_t c = static_cast<int64_t>(l % n);
    l /= n;
#pragma unroll
    for (int k = 0; k < K; ++k)
      if (k < k_used) off[k] += c * w[k].s[d];
  }
#pragma unroll
  for (int k = 0; k < K; ++k)
    if (k < k_used) off[k] += static_cast<int64_t>(l) * w[k].s[0];
}

/// Offsets of the `linear`-th element for K operands at once: the coordinates are found once
/// (the divisions dominate an elementwise kernel's cost) and dotted with each operand's strides.
/// One merged axis (every operand dense or broadcast) needs no division; spaces under 2^31
/// elements divide in 32 bits, several times cheaper than 64.
template <int K>
__device__ __forceinline__ void offsets_of(int64_t linear, const Space& sp, const Walk* w,
                                           int64_t* off, int k_used = K) {
#pragma unroll
  for (int k = 0; k < K; ++k) off[k] = 0;
  if (sp.nd == 0) return;
  if (sp.numel < (int64_t(1) << 31)) add_offsets<uint32_t, K>(static_cast<uint32_t>(linear), sp, w, off, k_used);
  else add_offsets<int64_t, K>(linear, sp, w, off, k_used);
}

/// The same for one operand.
__device__ __forceinline__ int64_t offset_of(int64_t linear, const Space& sp, const Walk& w) {
  int64_t off;
  offsets_of<1>(linear, sp, &w, &off);
  return off;
}

/// K operands' walks, passed to a kernel by value.
template <int K>
struct Walks {
  Walk w[K];
};

/// Grid-stride loop bounds: enough blocks of 256 threads to cover n, at most 65535·8.
inline unsigned grid_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  if (b > 65535 * 8) b = 65535 * 8;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

#define WICK_GRID_LOOP(i, n)                                                \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

/// Calls f.template operator()<T>() with the element type of `t`.
template <class F>
void dispatch(DType t, F&& f) {
  switch (t) {
    case DType::f32:
      return f.template operator()<float>();
    case DType::f64:
      return f.template operator()<double>();
    case DType::f16:
      return f.template operator()<f16_t>();
    case DType::bf16:
      return f.template operator()<bf16_t>();
    case DType::i32:
      return f.template operator()<int32_t>();
    case DType::i64:
      return f.template operator()<int64_t>();
    case DType::boolean:
      return f.template operator()<bool>();
  }
}

template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  if (!is_floating(t)) throw Error(std::string(op) + ": floating dtype expected, got " + dtype_name(t));
  dispatch(t, [&]<class T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) f.template operator()<T>();
  });
}

/// Sum and max over a warp; every lane gets the result.
template <class A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class A>
__device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// N consecutive elements moved as one access (N·sizeof(T) a power of two, at most 16 bytes):
/// the memory-bound row kernels need 16-byte loads to reach the card's bandwidth, which 2-byte
/// element loads do not.
template <class T, int N = 16 / sizeof(T)>
struct alignas(N * sizeof(T)) Pack {
  static constexpr int n = N;
  T v[N];
};

template <int N, class T>
__device__ __forceinline__ Pack<T, N> ld_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, N>*>(p);
}

/// Sixteen bytes of T kept as one uint4 and widened per element on access. Where T is 2 bytes,
/// a Pack<T>'s array gives each element a register of its own, and splitting a load into them
/// costs an instruction per element before any arithmetic (ncu: the decoding attention kernel
/// went from 1142 to 1041 instructions a warp).
template <class T>
struct Packed16 {
  static constexpr int V = 16 / sizeof(T);
  uint4 raw;
  __device__ float operator[](int j) const { return ld(reinterpret_cast<const T*>(&raw) + j); }
  __device__ void set(int j, float v) { st(reinterpret_cast<T*>(&raw) + j, v); }
};

template <class T>
__device__ __forceinline__ Packed16<T> load16(const T* p) {
  return {*reinterpret_cast<const uint4*>(p)};
}

/// Stores N values (computed wider) as T, in one access.
template <class T, int N, class V>
__device__ __forceinline__ void st_pack(T* p, const V (&v)[N]) {
  Pack<T, N> r;
#pragma unroll
  for (int k = 0; k < N; ++k) st(&r.v[k], v[k]);
  *reinterpret_cast<Pack<T, N>*>(p) = r;
}

/// Whether a dense row of n T's at p (and at every p + i·n) can be walked in 16-byte packs.
template <class T>
inline bool packs_fit(const void* p, int64_t n) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && (n * static_cast<int64_t>(sizeof(T))) % 16 == 0;
}

/// Sum over a block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <class A>
__device__ A block_sum(A v) {
  __shared__ A part[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  int warps = blockDim.x >> 5;
  A r = lane < warps ? part[lane] : A(0);
  for (int o = 16; o > 0; o >>= 1) r += __shfl_xor_sync(0xffffffffu, r, o);
  return r;
}

template <class A>
__device__ A block_max(A v) {
  __shared__ A part[32];
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  int warps = blockDim.x >> 5;
  A r = lane < warps ? part[lane] : A(-INFINITY);
  for (int o = 16; o > 0; o >>= 1) r = fmax(r, __shfl_xor_sync(0xffffffffu, r, o));
  return r;
}

/// Programmatic dependent launch (Hopper and newer). A kernel started with launch_overlapped may
/// begin while the kernel before it on the stream drains, so it calls wait_for_inputs() before
/// it reads anything an earlier kernel may have written or writes anything. Until then it may
/// prefetch (prefetch_l2: L2 is where writes land, so a prefetched line is never stale) and read
/// memory no kernel of its launch unit wrote (context.h; the host tells it, e.g.
/// GemvFusion::weights_untouched). It calls allow_dependents() to let the next such kernel start.
__device__ __forceinline__ void wait_for_inputs() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/// kernel<<<grid, block, smem, launch_stream()>>>(args...), overlapped with the kernel before it
/// where the device allows (context.h: overlap_attr).
template <class... P, class... A>
void launch_overlapped(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = launch_stream();
  OverlapAttr o = overlap_attr();
  cfg.attrs = o.attr;
  cfg.numAttrs = o.count;
  check(cudaLaunchKernelEx(&cfg, kernel, static_cast<P>(args)...), "kernel launch");
}

/// Records the first bad index a kernel meets (read back by the next synchronize).
__device__ __forceinline__ void report(int64_t* flag, int64_t code, int64_t index, int64_t bound) {
  if (atomicCAS(reinterpret_cast<unsigned long long*>(flag), 0ull,
                static_cast<unsigned long long>(code)) == 0ull) {
    flag[1] = index;
    flag[2] = bound;
  }
}

}  // namespace wick::cuda
