// Matrix-vector products for a few rows (decoding): out[m, n] = alpha·Σ_k p(x)[m, k]·w[n, k] +
// beta·out[m, n] + add[m, n], over up to three weights whose columns are laid side by side in
// out (q, k and v, or gate and up). A token's GEMMs are bound by reading the weights once, and
// cuBLASLt's tiles leave most of the GPU idle at one row (14 blocks for a 896×896 projection).
// Here one warp owns one output column and streams its weight row with 16-byte loads, so every
// SM is busy. The optional prologue p (an RMSNorm, or SwiGLU's silu(gate)·up) is computed by
// every block into shared memory, which costs a re-read of x per block but saves a kernel.
#include <algorithm>

#include "backend/cuda/common.cuh"
#include "backend/cuda/ops.cuh"

namespace wick::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kLoads = 8;  // 16-byte weight loads each lane keeps in flight

struct Args {
  const void* x;
  int64_t ldx, K;
  int groups;
  GemvGroup g[kMaxGemvGroups];
  int64_t n0[kMaxGemvGroups + 1];  // first column of each group in out, then the total
  void* out;
  int64_t ldo;
  float alpha, beta;
  const void* gamma;
  float eps;
  int split;  // warps per column, each over its share of K (a power of two up to kWarps)
};

template <class T>
struct Pack {  // one 16-byte load of T
  static constexpr int V = 16 / sizeof(T);
  uint4 raw;
  __device__ float operator[](int j) const { return ld(reinterpret_cast<const T*>(&raw) + j); }
  __device__ void set(int j, float v) { st(reinterpret_cast<T*>(&raw) + j, v); }
};

template <class T>
__device__ __forceinline__ Pack<T> load16(const T* p) {
  return {*reinterpret_cast<const uint4*>(p)};
}

/// Writes rows [M, K] of the prologue's output into xs, rounded to T as the unfused ops round.
template <class T, int MR, GemvPrologue P>
__device__ void stage(const Args& a, T* xs) {
  constexpr int V = Pack<T>::V;
  const T* x = static_cast<const T*>(a.x);
  const int64_t K = a.K, first = threadIdx.x * int64_t(V), step = blockDim.x * int64_t(V);
  for (int m = 0; m < MR; ++m) {
    const T* xr = x + m * a.ldx;
    T* out = xs + m * K;
    if constexpr (P == GemvPrologue::rms_norm) {
      // As norm_kernel: y = (x·inv)·g with inv = 1 / sqrt(mean(x²) + eps), one rounding.
      float q = 0;
      for (int64_t k = first; k < K; k += step) {
        Pack<T> v = load16(xr + k);
#pragma unroll
        for (int j = 0; j < V; ++j) q += v[j] * v[j];
      }
      q = block_sum(q);
      const float inv = 1.0f / sqrtf(q / static_cast<float>(K) + a.eps);
      const T* g = static_cast<const T*>(a.gamma);
      for (int64_t k = first; k < K; k += step) {
        Pack<T> v = load16(xr + k), w = load16(g + k), y;
#pragma unroll
        for (int j = 0; j < V; ++j) y.set(j, v[j] * inv * w[j]);
        *reinterpret_cast<uint4*>(out + k) = y.raw;
      }
    } else {
      // As the fused elementwise chain: silu rounded to T, then the product rounded to T.
      for (int64_t k = first; k < K; k += step) {
        Pack<T> gate = load16(xr + k), up = load16(xr + K + k), y;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          y.set(j, apply_unary(UnaryOp::silu, gate[j]));
          y.set(j, y[j] * up[j]);
        }
        *reinterpret_cast<uint4*>(out + k) = y.raw;
      }
    }
  }
}

template <class T, int MR, GemvPrologue P>
__global__ void __launch_bounds__(32 * kWarps) gemv_kernel(const __grid_constant__ Args a) {
  constexpr int V = Pack<T>::V;  // elements per 16-byte load
  constexpr int64_t kStep = 32 * V, kChunk = kLoads * kStep;
  extern __shared__ uint4 smem[];
  __shared__ float partial[kWarps][MR];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, part = warp % a.split;
  const int64_t N = a.n0[a.groups], columns = kWarps / a.split, stride = gridDim.x * columns;
  // This warp's share of K, in whole 16-byte loads.
  const int64_t share = (a.K / V + a.split - 1) / a.split * V;
  const int64_t k_begin = part * share, k_end = min(a.K, k_begin + share);
  // Blocks stay resident and walk the columns (every block the same number of times, for the
  // barriers): the prologue is staged once per block, and the next column's first loads go out
  // while this column is reduced and stored, so the weights stream without gaps between waves.
  uint4 buf[kLoads];
  auto row = [&](int64_t n) {
    int gi = 0;
    while (gi + 1 < a.groups && n >= a.n0[gi + 1]) ++gi;
    return gi;
  };
  auto load = [&](int64_t n, int64_t k0) {
    const int gi = row(n);
    const T* wr = static_cast<const T*>(a.g[gi].w) + (n - a.n0[gi]) * a.g[gi].ldw;
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      int64_t k = k0 + u * kStep + lane * V;
      buf[u] = k < k_end ? *reinterpret_cast<const uint4*>(wr + k) : make_uint4(0, 0, 0, 0);
    }
  };
  int64_t n = blockIdx.x * columns + warp / a.split;
  if (n < N) load(n, k_begin);
  const T* x = static_cast<const T*>(a.x);
  int64_t ldx = a.ldx;
  if constexpr (P != GemvPrologue::none) {
    T* xs = reinterpret_cast<T*>(smem);
    stage<T, MR, P>(a, xs);
    __syncthreads();
    x = xs;
    ldx = a.K;
  }
  for (int64_t base = blockIdx.x * columns; base < N; base += stride, n += stride) {
    const bool live = n < N;
    float acc[MR] = {};
    if (live)
      for (int64_t k0 = k_begin; k0 < k_end; k0 += kChunk) {
        if (k0 > k_begin) load(n, k0);
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
          int64_t k = k0 + u * kStep + lane * V;
          if (k >= k_end) break;
          Pack<T> w{buf[u]};
          float wf[V];
#pragma unroll
          for (int j = 0; j < V; ++j) wf[j] = w[j];
#pragma unroll
          for (int m = 0; m < MR; ++m) {
            Pack<T> xv = load16(x + m * ldx + k);
#pragma unroll
            for (int j = 0; j < V; ++j) acc[m] += wf[j] * xv[j];
          }
        }
      }
    if (n + stride < N) load(n + stride, k_begin);
#pragma unroll
    for (int m = 0; m < MR; ++m)
      for (int o = 16; o > 0; o >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], o);
    if (a.split > 1) {
      // The column's warps add their shares through shared memory.
      if (lane == 0)
        for (int m = 0; m < MR; ++m) partial[warp][m] = acc[m];
      __syncthreads();
      if (part == 0 && lane == 0)
        for (int m = 0; m < MR; ++m)
          for (int w = 1; w < a.split; ++w) acc[m] += partial[warp + w][m];
      __syncthreads();  // partial[] is written again by the next column
    }
    if (!live || part != 0 || lane != 0) continue;
    const int gi = row(n);
    const GemvGroup& g = a.g[gi];
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      T* p = static_cast<T*>(a.out) + m * a.ldo + n;
      float r = a.alpha * acc[m] + (a.beta != 0.0f ? a.beta * static_cast<float>(ld(p)) : 0.0f);
      if (g.add) r += ld(static_cast<const T*>(g.add) + m * g.add_ld + (n - a.n0[gi]));
      st(p, r);
    }
  }
}

template <class T, int MR, GemvPrologue P>
void launch(const Args& a, size_t smem) {
  // As many blocks as stay resident together, and at most one per group of columns.
  int per_sm = 1;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_kernel<T, MR, P>, 32 * kWarps, smem),
        "gemv occupancy");
  const int64_t columns = kWarps / a.split, needed = (a.n0[a.groups] + columns - 1) / columns;
  const int64_t resident = int64_t(active().sms) * std::max(per_sm, 1);
  const unsigned blocks = static_cast<unsigned>(std::min(needed, resident));
  gemv_kernel<T, MR, P><<<blocks, 32 * kWarps, smem, launch_stream()>>>(a);
}

template <class T, int MR>
void launch_rows(const Args& a, GemvPrologue p, size_t smem) {
  switch (p) {
    case GemvPrologue::none: return launch<T, MR, GemvPrologue::none>(a, 0);
    case GemvPrologue::rms_norm: return launch<T, MR, GemvPrologue::rms_norm>(a, smem);
    case GemvPrologue::swiglu: return launch<T, MR, GemvPrologue::swiglu>(a, smem);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool gemv_groups(DType t, int64_t M, int64_t K, const void* x, int64_t ldx, std::span<const GemvGroup> groups,
                 void* out, int64_t ldo, float alpha, float beta, GemvPrologue prologue, const void* gamma,
                 float eps) {
  if (M < 1 || M > kMaxGemvRows || groups.empty() || groups.size() > kMaxGemvGroups) return false;
  if (t != DType::f32 && t != DType::bf16 && t != DType::f16) return false;
  const int64_t v = 16 / static_cast<int64_t>(itemsize(t));
  if (K % v || ldx % v || !aligned16(x) || (gamma && !aligned16(gamma))) return false;
  Args a{};
  a.x = x;
  a.ldx = ldx;
  a.K = K;
  a.groups = static_cast<int>(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    const GemvGroup& g = groups[i];
    if (g.n < 1 || g.ldw % v || !aligned16(g.w)) return false;
    a.g[i] = g;
    a.n0[i + 1] = a.n0[i] + g.n;
  }
  if (a.n0[groups.size()] > (int64_t(1) << 31) * kWarps) return false;
  // The prologue's rows live in shared memory; past the default 48 KiB the caller splits the work.
  const size_t smem = prologue == GemvPrologue::none ? 0 : static_cast<size_t>(M * K) * itemsize(t);
  if (smem > 48 * 1024) return false;
  a.out = out;
  a.ldo = ldo;
  a.alpha = alpha;
  a.beta = beta;
  a.gamma = gamma;
  a.eps = eps;
  // Split K over a column's warps until each share fits the loads a lane keeps in flight, and
  // further while the GPU would hold few warps (a 896-wide projection has 896 columns only).
  const int64_t chunk = kLoads * 32 * v, total = a.n0[groups.size()];
  a.split = 1;
  while (a.split < kWarps && (K > a.split * chunk || (total * a.split < 2048 && K / (2 * a.split) >= 32 * v)))
    a.split *= 2;
  dispatch(t, [&]<class T>() {
    if constexpr (std::is_same_v<T, float> || is_half_v<T>) {
      switch (M) {
        case 1: return launch_rows<T, 1>(a, prologue, smem);
        case 2: return launch_rows<T, 2>(a, prologue, smem);
        case 3: return launch_rows<T, 3>(a, prologue, smem);
        case 4: return launch_rows<T, 4>(a, prologue, smem);
        case 5: return launch_rows<T, 5>(a, prologue, smem);
        case 6: return launch_rows<T, 6>(a, prologue, smem);
        case 7: return launch_rows<T, 7>(a, prologue, smem);
        default: return launch_rows<T, 8>(a, prologue, smem);
      }
    }
  });
  check_launch("gemv");
  return true;
}

bool gemv(DType t, int64_t M, int64_t N, int64_t K, const void* x, int64_t ldx, const void* w, int64_t ldw,
          void* out, float alpha, float beta, const void* add, int64_t add_ld) {
  const GemvGroup g{w, ldw, N, add, add_ld};
  return gemv_groups(t, M, K, x, ldx, {&g, 1}, out, N, alpha, beta, GemvPrologue::none, nullptr, 0.0f);
}

}  // namespace wick::cuda
