// Matrix-vector products for a few rows (decoding): out[m, n] = alpha·Σ_k p(x)[m, k]·w[n, k] +
// beta·out[m, n] + add[m, n], over up to three weights whose columns are laid side by side in
// out (q, k and v). A token's GEMMs are bound by reading the weights once, and cuBLASLt's tiles
// leave most of the GPU idle at one row (14 blocks for a 896×896 projection). Here one warp owns
// one output column and streams its weight row with 16-byte loads, so every SM is busy.
// Two fusions save a decoding layer kernels that would each cost a launch and a few memory
// latencies: the prologue p = rms_norm(x)·g is computed by every block into shared memory (a
// re-read of x per block), and the gated epilogue writes silu(gate)·up from two weights (gate and
// up rows n in the same warp) instead of both products. A LoRA adapter's rank-r path joins the
// product the same way (x·Aᵀ staged per block, (x·Aᵀ)·Bᵀ added in the epilogue), so an adapted
// projection is one kernel, as the bare one is.
#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>

#include "backend/cuda/common.cuh"
#include "backend/cuda/ops.cuh"

namespace wick::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kLoads = 8;  // 16-byte weight loads each lane keeps in flight
constexpr int kLoraLoads = 4;  // the same for an adapter's A (stage_lora)

struct Args {
  const void* x;
  int64_t ldx, K;
  int groups;
  GemvGroup g[kMaxGemvGroups];
  int64_t n0[kMaxGemvGroups + 1];  // first column of each group in out, then the total
  int64_t columns;                 // of out: the total, or the gated width
  void* out;
  int64_t ldo;
  float alpha, beta;
  const void* gamma;
  float eps;
  int split;  // warps per column, each over its share of K (a power of two up to kWarps)
  bool preload;  // GemvFusion::weights_untouched
  // The groups' adapters: x·Aᵀ of group i is rows [lora0[i], lora0[i + 1]) of the staged
  // product, lora0[groups] of them in all (0: no adapter).
  int64_t lora0[kMaxGemvGroups + 1];
};

/// Writes rows [M, K] of rms_norm(x)·g into xs, rounded to T once as norm_kernel does:
/// y = (x·inv)·g with inv = 1 / sqrt(mean(x²) + eps).
template <class T, int MR>
__device__ void stage_norm(const Args& a, T* xs) {
  constexpr int V = Packed16<T>::V;
  const T* x = static_cast<const T*>(a.x);
  const T* g = static_cast<const T*>(a.gamma);
  const int64_t K = a.K, first = threadIdx.x * int64_t(V), step = blockDim.x * int64_t(V);
  // x goes to shared memory as it is summed, and the first pack of g is loaded with it: a row of
  // up to blockDim·V elements waits for memory once (this is on every decoding layer's path).
  const Packed16<T> g0 = first < K ? load16(g + first) : Packed16<T>{};
  for (int m = 0; m < MR; ++m) {
    const T* xr = x + m * a.ldx;
    T* row = xs + m * K;
    float q = 0;
    for (int64_t k = first; k < K; k += step) {
      Packed16<T> v = load16(xr + k);
#pragma unroll
      for (int j = 0; j < V; ++j) q += v[j] * v[j];
      *reinterpret_cast<uint4*>(row + k) = v.raw;
    }
    q = block_sum(q);
    const float inv = 1.0f / sqrtf(q / static_cast<float>(K) + a.eps);
    for (int64_t k = first; k < K; k += step) {
      Packed16<T> v = load16(row + k), w = k == first ? g0 : load16(g + k), y;
#pragma unroll
      for (int j = 0; j < V; ++j) y.set(j, v[j] * inv * w[j]);
      *reinterpret_cast<uint4*>(row + k) = y.raw;
    }
  }
}

/// Writes t[m·R + j] = Σ_k x[m, k]·A[j, k] over the R rows of every group's A, in f32: each
/// warp takes rows j and streams them with 16-byte loads. Every block computes all of t (R·K
/// multiply-adds per row of x, A from L2 after the first block): the columns' epilogue needs it,
/// and the alternative, a kernel of its own, costs more than the repeated work.
template <class T, int MR>
__device__ void stage_lora(const Args& a, const T* x, int64_t ldx, float* t) {
  constexpr int V = Packed16<T>::V;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t R = a.lora0[a.groups];
  for (int64_t j = warp; j < R; j += kWarps) {
    int gi = 0;
    while (j >= a.lora0[gi + 1]) ++gi;
    const GemvLora& l = a.g[gi].lora;
    const T* row = static_cast<const T*>(l.a) + (j - a.lora0[gi]) * l.lda;
    float acc[MR] = {};
    // kLoraLoads loads of the row in flight before any is used: one at a time, a 4864-long row
    // waited for memory 19 times in a row. (Eight held the kernel's registers above 80, which
    // cost every GEMV a resident block.)
    for (int64_t k0 = lane * V; k0 < a.K; k0 += kLoraLoads * 32 * V) {
      uint4 w[kLoraLoads];
#pragma unroll
      for (int u = 0; u < kLoraLoads; ++u) {
        const int64_t k = k0 + u * 32 * V;
        w[u] = k < a.K ? *reinterpret_cast<const uint4*>(row + k) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kLoraLoads; ++u) {
        const int64_t k = k0 + u * 32 * V;
        if (k >= a.K) break;
#pragma unroll
        for (int m = 0; m < MR; ++m) {
          const Packed16<T> xv = load16(x + m * ldx + k), wv{w[u]};
#pragma unroll
          for (int e = 0; e < V; ++e) acc[m] += wv[e] * xv[e];
        }
      }
    }
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      for (int o = 16; o > 0; o >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], o);
      if (lane == 0) t[m * R + j] = acc[m];
    }
  }
}

/// Rounds to T (as a stored intermediate would be).
template <class T>
__device__ __forceinline__ float round_to(float v) {
  T r;
  st(&r, v);
  return ld(&r);
}

/// The group that holds weight row r of column n (gated: r is the group, gate or up).
template <bool GATED>
__device__ __forceinline__ int group_of(const Args& a, int64_t n, int r) {
  if (GATED) return r;
  int gi = 0;
  while (gi + 1 < a.groups && n >= a.n0[gi + 1]) ++gi;
  return gi;
}

/// Weight row r of column n.
template <class T, bool GATED>
__device__ __forceinline__ const T* weight_row(const Args& a, int64_t n, int r) {
  const int gi = group_of<GATED>(a, n, r);
  return static_cast<const T*>(a.g[gi].w) + (n - a.n0[gi] * !GATED) * a.g[gi].ldw;
}

constexpr int kLoraPerLane = kMaxGemvLoraRank / 32;

/// Loads, for column n, lane's elements i = lane + 32·c of its adapters' B rows (0 past a rank,
/// or without an adapter), issued with the column's weight loads so that they have long arrived
/// when the epilogue needs them (one lane reading them at the store waited for memory per
/// column, ~8 µs a gate/up projection).
template <class T, bool GATED>
__device__ __forceinline__ void load_lora_row(const Args& a, int64_t n, int lane,
                                              float (&bv)[GATED ? 2 : 1][kLoraPerLane]) {
#pragma unroll
  for (int r = 0; r < (GATED ? 2 : 1); ++r) {
    const int gi = group_of<GATED>(a, n, r);
    const GemvLora& l = a.g[gi].lora;
    const T* b = static_cast<const T*>(l.b) + (n - a.n0[gi] * !GATED) * l.ldb;
#pragma unroll
    for (int c = 0; c < kLoraPerLane; ++c) {
      const int64_t i = lane + 32 * c;
      bv[r][c] = l.a && i < l.rank ? static_cast<float>(ld(b + i)) : 0.0f;
    }
  }
}

/// This lane's share of column n's adapter terms, scale·Σ_i t[m, i]·B[n, i] (summed over the
/// warp with the dot products).
template <int MR, bool GATED>
__device__ __forceinline__ void lora_partials(const Args& a, int64_t n, int lane,
                                              const float (&bv)[GATED ? 2 : 1][kLoraPerLane],
                                              const float* lora_t, float (&dl)[GATED ? 2 : 1][MR]) {
#pragma unroll
  for (int r = 0; r < (GATED ? 2 : 1); ++r) {
    const int gi = group_of<GATED>(a, n, r);
    const GemvLora& l = a.g[gi].lora;
    if (!l.a) continue;
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      const float* t = lora_t + m * a.lora0[a.groups] + a.lora0[gi];
      float v = 0;
#pragma unroll
      for (int c = 0; c < kLoraPerLane; ++c)
        if (lane + 32 * c < l.rank) v += t[lane + 32 * c] * bv[r][c];
      dl[r][m] = l.scale * v;
    }
  }
}

/// Writes column n of the M rows from the dot products acc[r][m] of its R weight rows and the
/// adapter terms dl[r][m].
template <class T, int MR, bool GATED, bool LORA>
__device__ void store_column(const Args& a, int64_t n, const float (&acc)[GATED ? 2 : 1][MR],
                             const float (&dl)[GATED ? 2 : 1][MR]) {
  constexpr int R = GATED ? 2 : 1;
#pragma unroll
  for (int m = 0; m < MR; ++m) {
    T* p = static_cast<T*>(a.out) + m * a.ldo + n;
    float y[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int gi = group_of<GATED>(a, n, r);
      const GemvGroup& g = a.g[gi];
      y[r] = a.alpha * acc[r][m] + (a.beta != 0.0f ? a.beta * static_cast<float>(ld(p)) : 0.0f);
      const int64_t j = n - a.n0[gi] * !GATED;  // the column within the group
      if (g.add) y[r] += ld(static_cast<const T*>(g.add) + m * g.add_ld + j);
      if (LORA) y[r] += dl[r][m];
    }
    if constexpr (GATED) {
      // As the unfused ops: both products, silu(gate) and the product each rounded to T.
      st(p, round_to<T>(apply_unary(UnaryOp::silu, round_to<T>(y[0]))) * round_to<T>(y[1]));
    } else {
      st(p, y[0]);
    }
  }
}

// LORA: some group has an adapter (its own instantiations, so that the others keep their
// registers: the adapter's code took the multi-row kernels from 80 to ~100; holding it to 80
// with spills measured no faster).
template <class T, int MR, bool NORM, bool GATED, bool LORA>
__global__ void __launch_bounds__(32 * kWarps) gemv_kernel(const __grid_constant__ Args a) {
  constexpr int V = Packed16<T>::V;  // elements per 16-byte load
  constexpr int R = GATED ? 2 : 1;  // weight rows per column (gate and up)
  constexpr int L = kLoads / R;     // loads in flight per row
  constexpr int64_t kStep = 32 * V, kChunk = L * kStep;
  extern __shared__ uint4 smem[];
  __shared__ float partial[kWarps][R * MR];
  __shared__ float lora_t[LORA ? MR * kMaxGemvLoraRank : 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, part = warp % a.split;
  const int64_t N = a.columns, columns = kWarps / a.split, stride = gridDim.x * columns;
  // This warp's share of K, in whole 16-byte loads.
  const int64_t share = (a.K / V + a.split - 1) / a.split * V;
  const int64_t k_begin = part * share, k_end = min(a.K, k_begin + share);
  // Blocks stay resident and walk the columns (every block the same number of times, for the
  // barriers): the prologue is staged once per block, and the next column's first loads go out
  // while this column is reduced and stored, so the weights stream without gaps between waves.
  uint4 buf[R][L];
  float bv[R][LORA ? kLoraPerLane : 1];  // the column's adapter rows (load_lora_row)
  auto load = [&](int64_t n, int64_t k0) {
    if constexpr (LORA)
      if (part == 0 && k0 == k_begin) load_lora_row<T, GATED>(a, n, lane, bv);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const T* wr = weight_row<T, GATED>(a, n, r);
#pragma unroll
      for (int u = 0; u < L; ++u) {
        int64_t k = k0 + u * kStep + lane * V;
        buf[r][u] = k < k_end ? *reinterpret_cast<const uint4*>(wr + k) : make_uint4(0, 0, 0, 0);
      }
    }
  };
  int64_t n = blockIdx.x * columns + warp / a.split;
  allow_dependents();
  if (a.preload) {
    // Weights no kernel ahead writes: the first column's loads go out while the previous kernel
    // drains (measured 1300 → 1400 tok/s decoding).
    if (n < N) load(n, k_begin);
    wait_for_inputs();
  } else {
    // Only to L2 before the wait (where writes land, so never stale), then the loads.
    if (n < N) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const T* wr = weight_row<T, GATED>(a, n, r);
        for (int64_t k = k_begin + lane * V; k < k_end && k < k_begin + kChunk; k += kStep) prefetch_l2(wr + k);
      }
    }
    wait_for_inputs();
    if (n < N) load(n, k_begin);
  }
  const T* x = static_cast<const T*>(a.x);
  int64_t ldx = a.ldx;
  if constexpr (NORM) {
    T* xs = reinterpret_cast<T*>(smem);
    stage_norm<T, MR>(a, xs);
    __syncthreads();
    x = xs;
    ldx = a.K;
  }
  if constexpr (LORA) {
    stage_lora<T, MR>(a, x, ldx, lora_t);
    __syncthreads();
  }
  for (int64_t base = blockIdx.x * columns; base < N; base += stride, n += stride) {
    const bool live = n < N;
    float acc[R][MR] = {};
    if (live)
      for (int64_t k0 = k_begin; k0 < k_end; k0 += kChunk) {
        if (k0 > k_begin) load(n, k0);
#pragma unroll
        for (int u = 0; u < L; ++u) {
          int64_t k = k0 + u * kStep + lane * V;
          if (k >= k_end) break;
#pragma unroll
          for (int m = 0; m < MR; ++m) {
            Packed16<T> xv = load16(x + m * ldx + k);
#pragma unroll
            for (int r = 0; r < R; ++r) {
              Packed16<T> w{buf[r][u]};
#pragma unroll
              for (int j = 0; j < V; ++j) acc[r][m] += w[j] * xv[j];
            }
          }
        }
      }
    float dl[R][MR] = {};
    if constexpr (LORA)
      if (live && part == 0) lora_partials<MR, GATED>(a, n, lane, bv, lora_t, dl);
    if (n + stride < N) load(n + stride, k_begin);
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int m = 0; m < MR; ++m)
        for (int o = 16; o > 0; o >>= 1) {
          acc[r][m] += __shfl_xor_sync(0xffffffffu, acc[r][m], o);
          if constexpr (LORA) dl[r][m] += __shfl_xor_sync(0xffffffffu, dl[r][m], o);
        }
    if (a.split > 1) {
      // The column's warps add their shares through shared memory.
      if (lane == 0)
        for (int r = 0; r < R; ++r)
          for (int m = 0; m < MR; ++m) partial[warp][r * MR + m] = acc[r][m];
      __syncthreads();
      if (part == 0 && lane == 0)
        for (int r = 0; r < R; ++r)
          for (int m = 0; m < MR; ++m)
            for (int w = 1; w < a.split; ++w) acc[r][m] += partial[warp + w][r * MR + m];
      __syncthreads();  // partial[] is written again by the next column
    }
    if (live && part == 0 && lane == 0) store_column<T, MR, GATED, LORA>(a, n, acc, dl);
  }
}

template <class T, int MR, bool NORM, bool GATED, bool LORA>
void launch(const Args& a, size_t smem) {
  // The staged rows (up to 48 KiB) come on top of the kernel's static shared memory, which
  // counts against the same default limit unless the kernel is allowed more. Allowed once per
  // device and size reached (each call is a trip into the driver, on every eager launch).
  // Under the lock the allowance only grows, so `most` never exceeds it.
  static std::array<std::atomic<int>, 16> allowed{};
  static std::mutex grow;
  std::atomic<int>& most = allowed[static_cast<size_t>(active().device)];
  if (static_cast<int>(smem) > most.load(std::memory_order_acquire)) {
    std::lock_guard lock(grow);
    if (static_cast<int>(smem) > most.load(std::memory_order_acquire)) {
      check(
          cudaFuncSetAttribute(gemv_kernel<T, MR, NORM, GATED, LORA>,
                               cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
          "gemv shared memory");
      most.store(static_cast<int>(smem), std::memory_order_release);
    }
  }
  // At most as many blocks as stay resident together, each taking the same number of column
  // groups: 608 groups (gate/up) on 396 resident blocks left 212 of them a second round while
  // the rest idled; 304 blocks of two groups each measured faster.
  int per_sm = 1;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
            &per_sm, gemv_kernel<T, MR, NORM, GATED, LORA>, 32 * kWarps, smem),
        "gemv occupancy");
  const int64_t columns = kWarps / a.split, needed = (a.columns + columns - 1) / columns;
  const int64_t resident = int64_t(active().sms) * std::max(per_sm, 1);
  const int64_t rounds = (needed + resident - 1) / resident;
  const unsigned blocks = static_cast<unsigned>((needed + rounds - 1) / rounds);
  launch_overlapped(gemv_kernel<T, MR, NORM, GATED, LORA>, blocks, 32 * kWarps, smem, a);
}

template <class T, int MR, bool LORA>
void launch_fused(const Args& a, bool norm, bool gated, size_t smem) {
  if (norm && gated) return launch<T, MR, true, true, LORA>(a, smem);
  if (norm) return launch<T, MR, true, false, LORA>(a, smem);
  if (gated) return launch<T, MR, false, true, LORA>(a, 0);
  return launch<T, MR, false, false, LORA>(a, 0);
}

template <class T, int MR>
void launch_rows(const Args& a, bool norm, bool gated, size_t smem) {
  if (a.lora0[a.groups] > 0) return launch_fused<T, MR, true>(a, norm, gated, smem);
  return launch_fused<T, MR, false>(a, norm, gated, smem);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool gemv_groups(DType t, int64_t M, int64_t K, const void* x, int64_t ldx, std::span<const GemvGroup> groups,
                 void* out, int64_t ldo, float alpha, float beta, const GemvFusion& f) {
  if (M < 1 || M > kMaxGemvRows || groups.empty() || groups.size() > kMaxGemvGroups) return false;
  if (t != DType::f32 && t != DType::bf16 && t != DType::f16) return false;
  if (f.gated && (groups.size() != 2 || groups[0].n != groups[1].n || beta != 0.0f)) return false;
  const int64_t v = 16 / static_cast<int64_t>(itemsize(t));
  if (K % v || ldx % v || !aligned16(x) || (f.gamma && !aligned16(f.gamma))) return false;
  Args a{};
  a.x = x;
  a.ldx = ldx;
  a.K = K;
  a.groups = static_cast<int>(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    const GemvGroup& g = groups[i];
    if (g.n < 1 || g.ldw % v || !aligned16(g.w)) return false;
    if (g.lora.a && (g.lora.rank < 1 || g.lora.lda % v || !aligned16(g.lora.a))) return false;
    a.g[i] = g;
    a.n0[i + 1] = a.n0[i] + g.n;
    a.lora0[i + 1] = a.lora0[i] + (g.lora.a ? g.lora.rank : 0);
  }
  if (a.lora0[groups.size()] > kMaxGemvLoraRank ||
      a.lora0[groups.size()] * K * static_cast<int64_t>(itemsize(t)) > kMaxGemvLoraBytes)
    return false;
  a.columns = f.gated ? groups[0].n : a.n0[groups.size()];
  if (a.columns > (int64_t(1) << 31) * kWarps) return false;
  // The normalised rows live in shared memory; past the default 48 KiB the caller splits the work.
  const size_t smem = f.gamma ? static_cast<size_t>(M * K) * itemsize(t) : 0;
  if (smem > 48 * 1024) return false;
  a.out = out;
  a.ldo = ldo;
  a.alpha = alpha;
  a.beta = beta;
  a.gamma = f.gamma;
  a.eps = f.eps;
  a.preload = f.weights_untouched;
  // Split K over a column's warps until each share fits the loads a lane keeps in flight, and
  // further while the GPU would hold few warps (a 896-wide projection has 896 columns only).
  const int64_t chunk = kLoads / (f.gated ? 2 : 1) * 32 * v;
  a.split = 1;
  while (a.split < kWarps && (K > a.split * chunk || (a.columns * a.split < 2048 && K / (2 * a.split) >= 32 * v)))
    a.split *= 2;
  const bool norm = f.gamma != nullptr;
  dispatch(t, [&]<class T>() {
    if constexpr (std::is_same_v<T, float> || is_half_v<T>) {
      switch (M) {
        case 1: return launch_rows<T, 1>(a, norm, f.gated, smem);
        case 2: return launch_rows<T, 2>(a, norm, f.gated, smem);
        case 3: return launch_rows<T, 3>(a, norm, f.gated, smem);
        case 4: return launch_rows<T, 4>(a, norm, f.gated, smem);
        case 5: return launch_rows<T, 5>(a, norm, f.gated, smem);
        case 6: return launch_rows<T, 6>(a, norm, f.gated, smem);
        case 7: return launch_rows<T, 7>(a, norm, f.gated, smem);
        default: return launch_rows<T, 8>(a, norm, f.gated, smem);
      }
    }
  });
  check_launch("gemv");
  return true;
}

bool gemv(DType t, int64_t M, int64_t N, int64_t K, const void* x, int64_t ldx, const void* w, int64_t ldw,
          void* out, float alpha, float beta, const void* add, int64_t add_ld, bool w_untouched) {
  const GemvGroup g{w, ldw, N, add, add_ld};
  GemvFusion f;
  f.weights_untouched = w_untouched;
  return gemv_groups(t, M, K, x, ldx, {&g, 1}, out, N, alpha, beta, f);
}

}  // namespace wick::cuda
