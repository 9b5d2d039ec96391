// Reductions: one block per output element; its threads stride over the reduced elements and
// combine in a fixed tree, so results do not depend on scheduling. Floating sums accumulate in
// f64, as on the CPU.
#include <algorithm>

#include "backend/cuda/common.cuh"
#include "graph/op_codes.h"

namespace wick::cuda {
namespace {

using detail::ReduceOp;
constexpr int kThreads = 256;

template <class T>
__global__ void reduce_kernel(ReduceOp op, const T* x, const __grid_constant__ Space kept,
                              const __grid_constant__ Walk ks, const __grid_constant__ Space red,
                              const __grid_constant__ Walk rs, T* out) {
  using C = compute_t<T>;
  using Acc = std::conditional_t<std::is_floating_point_v<C>, double, int64_t>;
  for (int64_t o = blockIdx.x; o < kept.numel; o += gridDim.x) {
    const T* base = x + offset_of(o, kept, ks);
    bool sum = op == ReduceOp::sum || op == ReduceOp::mean;
    bool is_max = op == ReduceOp::max;
    Acc acc = sum ? Acc(0) : static_cast<Acc>(ld(base));
    bool nan = false;
    for (int64_t r = threadIdx.x; r < red.numel; r += blockDim.x) {
      Acc v = static_cast<Acc>(ld(base + offset_of(r, red, rs)));
      if (sum)
        acc += v;
      else if (v != v)
        nan = true;
      else if (is_max ? v > acc : v < acc)
        acc = v;
    }
    if (sum) {
      acc = block_sum(acc);
    } else {
      // Min/max through shared memory (block_max works on floats only).
      __shared__ Acc part[kThreads];
      __shared__ int any_nan;
      if (threadIdx.x == 0) any_nan = 0;
      __syncthreads();
      if (nan) any_nan = 1;
      part[threadIdx.x] = acc;
      __syncthreads();
      for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
          Acc a = part[threadIdx.x], b = part[threadIdx.x + s];
          part[threadIdx.x] = (is_max ? b > a : b < a) ? b : a;
        }
        __syncthreads();
      }
      acc = part[0];
      if (any_nan) {
        if constexpr (std::is_floating_point_v<Acc>) acc = NAN;
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (op == ReduceOp::mean) {
        if constexpr (std::is_floating_point_v<Acc>) acc = red.numel ? acc / red.numel : Acc(NAN);
      }
      st(out + o, static_cast<compute_t<T>>(acc));
    }
  }
}

/// Accumulator of the fast paths: f32 for f32 and the half types (a fixed tree keeps it exact
/// enough and deterministic), f64 for f64, i64 for integers.
template <class T>
using fast_acc_t =
    std::conditional_t<std::is_same_v<T, double>, double,
                       std::conditional_t<std::is_floating_point_v<compute_t<T>>, float, int64_t>>;

template <class A>
__device__ __forceinline__ A combine(ReduceOp op, A a, A b) {
  if (op == ReduceOp::sum || op == ReduceOp::mean) return a + b;
  if (a != a) return a;
  if (b != b) return b;
  return (op == ReduceOp::max ? b > a : b < a) ? b : a;
}

/// Contiguous rows: one block per output, threads over the row, then a shared-memory tree.
template <class T>
__global__ void row_kernel(ReduceOp op, const T* x, const __grid_constant__ Space kept,
                           const __grid_constant__ Walk ks, int64_t n, T* out) {
  using A = fast_acc_t<T>;
  __shared__ A part[kThreads];
  for (int64_t o = blockIdx.x; o < kept.numel; o += gridDim.x) {
    const T* row = x + offset_of(o, kept, ks);
    bool sum = op == ReduceOp::sum || op == ReduceOp::mean;
    A acc = sum ? A(0) : static_cast<A>(ld(row));
    for (int64_t r = threadIdx.x; r < n; r += blockDim.x)
      acc = combine(op, acc, static_cast<A>(ld(row + r)));
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s)
        part[threadIdx.x] = combine(op, part[threadIdx.x], part[threadIdx.x + s]);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      A v = part[0];
      if (op == ReduceOp::mean) {
        if constexpr (std::is_floating_point_v<A>) v = n ? v / static_cast<A>(n) : A(NAN);
      }
      st(out + o, static_cast<compute_t<T>>(v));
    }
    __syncthreads();
  }
}

/// Reduction over outer axes with a dense innermost kept axis (a bias or norm-weight gradient):
/// threads take neighbouring outputs so loads coalesce, and blockIdx.y splits the reduced
/// elements into chunks whose partial results a second kernel combines in order.
template <class T, class A>
__global__ void column_kernel(ReduceOp op, const T* x, const __grid_constant__ Space kept,
                              const __grid_constant__ Walk ks, const __grid_constant__ Space red,
                              const __grid_constant__ Walk rs, int64_t chunk, A* partial) {
  int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (o >= kept.numel) return;
  int64_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < red.numel ? r0 + chunk : red.numel;
  const T* base = x + offset_of(o, kept, ks);
  bool sum = op == ReduceOp::sum || op == ReduceOp::mean;
  A acc = sum ? A(0) : static_cast<A>(ld(base + offset_of(r0, red, rs)));
  for (int64_t r = r0; r < r1; ++r)
    acc = combine(op, acc, static_cast<A>(ld(base + offset_of(r, red, rs))));
  partial[blockIdx.y * kept.numel + o] = acc;
}

/// Few outputs over many elements (a loss, a gradient norm): blocks (o, s) each reduce chunk s of
/// output o with a tree; finish_kernel combines the chunks in order.
template <class T, class A>
__global__ void split_kernel(ReduceOp op, const T* x, const __grid_constant__ Space kept,
                             const __grid_constant__ Walk ks, const __grid_constant__ Space red,
                             const __grid_constant__ Walk rs, int64_t chunk, A* partial) {
  __shared__ A part[kThreads];
  int64_t o = blockIdx.x;
  int64_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < red.numel ? r0 + chunk : red.numel;
  const T* base = x + offset_of(o, kept, ks);
  bool sum = op == ReduceOp::sum || op == ReduceOp::mean;
  A acc = sum ? A(0) : static_cast<A>(ld(base + offset_of(r0, red, rs)));
  for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x)
    acc = combine(op, acc, static_cast<A>(ld(base + offset_of(r, red, rs))));
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] = combine(op, part[threadIdx.x], part[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.y * kept.numel + o] = part[0];
}

template <class T, class A>
__global__ void finish_kernel(ReduceOp op, const A* partial, int splits, int64_t n_out,
                              int64_t count, T* out) {
  WICK_GRID_LOOP(o, n_out) {
    A acc = partial[o];
    for (int s = 1; s < splits; ++s) acc = combine(op, acc, partial[s * n_out + o]);
    if (op == ReduceOp::mean) {
      if constexpr (std::is_floating_point_v<A>) acc = count ? acc / static_cast<A>(count) : A(NAN);
    }
    st(out + o, static_cast<compute_t<T>>(acc));
  }
}

/// (value, index) candidates of argmax/argmin: a NaN beats any number (the first NaN wins, as on
/// the CPU), then the larger (smaller) value, then the smaller index.
template <class C>
__device__ __forceinline__ bool better(bool is_max, C v, int64_t i, C bv, int64_t bi) {
  bool vn = v != v, bn = bv != bv;
  if (vn || bn) return vn && (!bn || i < bi);
  if (v != bv) return is_max ? v > bv : v < bv;
  return i < bi;
}

/// One block per (output, chunk of the axis): threads scan strided parts of the chunk, then a
/// tree picks the winner. With one chunk its index is the result; with several, each block
/// leaves its candidate (value, index) for arg_finish_kernel.
template <class T>
__global__ void arg_kernel(bool is_max, const T* x, const __grid_constant__ Space kept, const __grid_constant__ Walk ks,
                           int64_t n, int64_t stride, int64_t chunk, int64_t* out, compute_t<T>* cand_v) {
  using C = compute_t<T>;
  __shared__ C vals[kThreads];
  __shared__ int64_t idx[kThreads];
  const int64_t k0 = blockIdx.y * chunk, k1 = k0 + chunk < n ? k0 + chunk : n;
  for (int64_t o = blockIdx.x; o < kept.numel; o += gridDim.x) {
    const T* p = x + offset_of(o, kept, ks);
    C best = ld(p + k0 * stride);
    int64_t bi = k0;
    for (int64_t k = k0 + threadIdx.x; k < k1; k += blockDim.x) {
      C v = ld(p + k * stride);
      if (better(is_max, v, k, best, bi)) {
        best = v;
        bi = k;
      }
    }
    vals[threadIdx.x] = best;
    idx[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s && better(is_max, vals[threadIdx.x + s], idx[threadIdx.x + s], vals[threadIdx.x], idx[threadIdx.x])) {
        vals[threadIdx.x] = vals[threadIdx.x + s];
        idx[threadIdx.x] = idx[threadIdx.x + s];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (cand_v) {
        cand_v[blockIdx.y * kept.numel + o] = vals[0];
        out[blockIdx.y * kept.numel + o] = idx[0];
      } else {
        out[o] = idx[0];
      }
    }
    __syncthreads();
  }
}

/// The winner of each output's chunk candidates.
template <class C>
__global__ void arg_finish_kernel(bool is_max, const C* cand_v, const int64_t* cand_i, int chunks,
                                  int64_t n_out, int64_t* out) {
  WICK_GRID_LOOP(o, n_out) {
    C best = cand_v[o];
    int64_t bi = cand_i[o];
    for (int c = 1; c < chunks; ++c)
      if (better(is_max, cand_v[c * n_out + o], cand_i[c * n_out + o], best, bi)) {
        best = cand_v[c * n_out + o];
        bi = cand_i[c * n_out + o];
      }
    out[o] = bi;
  }
}

// ---- greedy_pick ----

/// A stretch of a row summarised: the running maximum m and Σ exp(x − m) of its elements, and
/// its argmax candidate (v, i).
struct Pick {
  float m, s, v;
  int64_t i;

  /// Nothing seen yet (no default member initialisers: Pick lives in shared memory).
  __device__ static Pick none() { return {-INFINITY, 0.0f, -INFINITY, INT64_MAX}; }

  __device__ void add(float x, int64_t k) {
    if (better(true, x, k, v, i)) {
      v = x;
      i = k;
    }
    if (x > m) {
      s = s * expf(m - x) + 1.0f;
      m = x;
    } else if (x != -INFINITY) {
      s += expf(x - m);  // a NaN makes s NaN; the result is NaN through v anyway
    }
  }
  __device__ void add(const Pick& o) {
    if (o.m != -INFINITY) {
      if (m == -INFINITY) {
        m = o.m;
        s = o.s;
      } else {
        const float t = fmaxf(m, o.m);
        s = s * expf(m - t) + o.s * expf(o.m - t);
        m = t;
      }
    }
    if (better(true, o.v, o.i, v, i)) {
      v = o.v;
      i = o.i;
    }
  }
  __device__ Pick shuffled(int lane) const {
    Pick o;  // every field set below
    o.m = __shfl_xor_sync(0xffffffffu, m, lane);
    o.s = __shfl_xor_sync(0xffffffffu, s, lane);
    o.v = __shfl_xor_sync(0xffffffffu, v, lane);
    o.i = __shfl_xor_sync(0xffffffffu, static_cast<long long>(i), lane);
    return o;
  }
};

__device__ Pick warp_pick(Pick p) {
  for (int o = 16; o > 0; o >>= 1) p.add(p.shuffled(o));
  return p;
}

/// Block (chunk c, row r) summarises its chunk into parts[r·chunks + c]; the row's last block to
/// finish (counted in done[r], zero at launch) combines the chunks, writes the row and sets
/// done[r] back to zero for the next launch. One launch instead of a max, an argmax and a sum,
/// each in two.
template <class T>
__global__ void greedy_pick_kernel(const T* x, int64_t row_stride, int64_t n, int64_t chunk, bool packed, Pick* parts,
                                   unsigned* done, float* out) {
  __shared__ Pick warps[kThreads / 32];
  __shared__ bool last;
  allow_dependents();
  wait_for_inputs();
  const int64_t r = blockIdx.y, k0 = blockIdx.x * chunk, k1 = k0 + chunk < n ? k0 + chunk : n;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, chunks = gridDim.x;
  const T* p = x + r * row_stride;
  Pick mine = Pick::none();
  if (packed) {
    constexpr int W = Pack<T>::n;
    for (int64_t k = k0 + int64_t(threadIdx.x) * W; k < k1; k += int64_t(blockDim.x) * W) {
      const Pack<T> v = ld_pack<W>(p + k);
#pragma unroll
      for (int j = 0; j < W; ++j) mine.add(static_cast<float>(ld(&v.v[j])), k + j);
    }
  } else {
    for (int64_t k = k0 + threadIdx.x; k < k1; k += blockDim.x) mine.add(static_cast<float>(ld(p + k)), k);
  }
  mine = warp_pick(mine);
  if (lane == 0) warps[warp] = mine;
  __syncthreads();
  if (threadIdx.x == 0) {
    Pick b = warps[0];
    for (int w = 1; w < kThreads / 32; ++w) b.add(warps[w]);
    parts[r * chunks + blockIdx.x] = b;
    __threadfence();
    last = atomicAdd(done + r, 1u) == static_cast<unsigned>(chunks - 1);
  }
  __syncthreads();
  if (!last || warp != 0) return;
  __threadfence();
  if (lane == 0) done[r] = 0;  // every other block of the row has counted
  Pick all = Pick::none();
  for (int c = lane; c < chunks; c += 32) {
    const Pick* q = parts + r * chunks + c;
    Pick o;  // read around L1: other blocks wrote it
    o.m = __ldcg(&q->m);
    o.s = __ldcg(&q->s);
    o.v = __ldcg(&q->v);
    o.i = __ldcg(reinterpret_cast<const long long*>(&q->i));
    all.add(o);
  }
  all = warp_pick(all);
  if (lane == 0) {
    // The maximum's log-probability; NaN where the maximum is NaN, +inf or −inf.
    out[2 * r] = isfinite(all.v) ? -logf(all.s) : NAN;
    out[2 * r + 1] = static_cast<float>(all.i);
  }
}

// Logits a block summarises: 149 blocks over a 152k vocabulary finish a step's pick ~8 us after
// the logits are written, where 38 blocks of 4096 took ~9.
constexpr int64_t kPickChunk = 1024;

}  // namespace

size_t greedy_pick_scratch(int64_t rows, int64_t n) {
  const int64_t chunks = (n + kPickChunk - 1) / kPickChunk;
  return static_cast<size_t>(rows * chunks) * sizeof(Pick) + static_cast<size_t>(rows) * sizeof(unsigned);
}

void greedy_pick(DType t, const void* x, int64_t rows, int64_t n, int64_t ld, float* out, void* scratch) {
  if (rows == 0) return;
  const int64_t chunks = (n + kPickChunk - 1) / kPickChunk;
  auto* parts = static_cast<Pick*>(scratch);
  // The lane's counters, which each launch leaves at zero: a memset in front of the kernel cost
  // a decoding step ~4 us (the set, and the kernel's start behind it). Kernels on the lane's
  // stream run in order, and a graph replays on the lane that captured it, so no two launches
  // use them at once.
  unsigned* done = active_lane().pick_counters;
  if (rows > kPickCounters) {
    done = reinterpret_cast<unsigned*>(parts + rows * chunks);
    check(cudaMemsetAsync(done, 0, static_cast<size_t>(rows) * sizeof(unsigned), launch_stream()), "greedy_pick");
  }
  dispatch_float(t, "greedy_pick", [&]<class T>() {
    if constexpr (!std::is_same_v<T, double>) {
      const bool packed = packs_fit<T>(x, ld) && packs_fit<T>(x, n);
      launch_overlapped(greedy_pick_kernel<T>, dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(rows)),
                        kThreads, 0, static_cast<const T*>(x), ld, n, kPickChunk, packed, parts, done, out);
    } else {
      throw Error("greedy_pick: f64 has no CUDA kernel; use the CPU");
    }
  });
  check_launch("greedy_pick");
}

void reduce(int op, DType t, const void* x, const Space& kept, const Walk& kept_s, const Space& red,
            const Walk& red_s, void* out) {
  if (kept.numel == 0) return;
  unsigned blocks = static_cast<unsigned>(kept.numel < 65535 * 16 ? kept.numel : 65535 * 16);
  cudaStream_t stream = launch_stream();
  ReduceOp rop = static_cast<ReduceOp>(op);
  bool split = kept.numel < 264 && red.numel >= 65536;
  bool rows = !split && red.nd == 1 && red_s.s[0] == 1;
  bool columns = !split && !rows && red.numel > 1 && kept.nd >= 1 && kept_s.s[kept.nd - 1] == 1;
  dispatch(t, [&]<class T>() {
    using A = fast_acc_t<T>;
    const T* xp = static_cast<const T*>(x);
    T* op_ = static_cast<T*>(out);
    // Two-stage paths: partial results per chunk in scratch, combined in order by finish_kernel.
    auto two_stage = [&](int64_t splits, auto&& first) {
      int64_t chunk = (red.numel + splits - 1) / splits;
      splits = (red.numel + chunk - 1) / chunk;
      A* partial = nullptr;
      check(cudaMallocAsync(reinterpret_cast<void**>(&partial), splits * kept.numel * sizeof(A),
                            stream),
            "reduce scratch");
      first(splits, chunk, partial);
      finish_kernel<T, A><<<grid_for(kept.numel), 256, 0, stream>>>(
          rop, partial, static_cast<int>(splits), kept.numel, red.numel, op_);
      check(cudaFreeAsync(partial, stream), "reduce scratch");
    };
    if (split) {
      int64_t splits =
          std::min<int64_t>((red.numel + 8191) / 8192, std::max<int64_t>(1, 1056 / kept.numel));
      two_stage(splits, [&](int64_t n, int64_t chunk, A* partial) {
        split_kernel<T, A>
            <<<dim3(static_cast<unsigned>(kept.numel), static_cast<unsigned>(n)), kThreads, 0,
               stream>>>(rop, xp, kept, kept_s, red, red_s, chunk, partial);
      });
    } else if (rows) {
      row_kernel<T><<<blocks, kThreads, 0, stream>>>(rop, xp, kept, kept_s, red.numel, op_);
    } else if (columns) {
      // Enough chunks to fill the GPU several times over, each long enough to amortise its start.
      int64_t col_blocks = (kept.numel + 255) / 256;
      int64_t splits =
          std::max<int64_t>(1, std::min<int64_t>(std::min<int64_t>(512, (red.numel + 31) / 32),
                                                 (1056 + col_blocks - 1) / col_blocks));
      two_stage(splits, [&](int64_t n, int64_t chunk, A* partial) {
        column_kernel<T, A>
            <<<dim3(static_cast<unsigned>(col_blocks), static_cast<unsigned>(n)), 256, 0, stream>>>(
                rop, xp, kept, kept_s, red, red_s, chunk, partial);
      });
    } else {
      reduce_kernel<T><<<blocks, kThreads, 0, stream>>>(rop, xp, kept, kept_s, red, red_s, op_);
    }
  });
  check_launch("reduce");
}

void argreduce(bool is_max, DType t, const void* x, const Space& kept, const Walk& kept_s,
               int64_t n, int64_t stride, int64_t* out) {
  if (kept.numel == 0) return;
  cudaStream_t stream = launch_stream();
  dispatch(t, [&]<class T>() {
    using C = compute_t<T>;
    unsigned blocks = static_cast<unsigned>(kept.numel < 65535 * 16 ? kept.numel : 65535 * 16);
    // Few long rows (a decoding step's argmax over the vocabulary): chunks in parallel blocks.
    int64_t chunks = kept.numel < 264 && n >= 16384 ? std::min<int64_t>((n + 4095) / 4096, 1056 / kept.numel) : 1;
    if (chunks <= 1) {
      arg_kernel<T><<<blocks, kThreads, 0, stream>>>(is_max, static_cast<const T*>(x), kept, kept_s, n, stride, n,
                                                     out, nullptr);
      return;
    }
    const int64_t chunk = (n + chunks - 1) / chunks;
    chunks = (n + chunk - 1) / chunk;
    void* scratch = nullptr;
    const size_t cand = static_cast<size_t>(chunks * kept.numel);
    check(cudaMallocAsync(&scratch, cand * (sizeof(C) + sizeof(int64_t)), stream), "argreduce scratch");
    auto* cand_i = static_cast<int64_t*>(scratch);
    auto* cand_v = reinterpret_cast<C*>(cand_i + cand);
    arg_kernel<T><<<dim3(blocks, static_cast<unsigned>(chunks)), kThreads, 0, stream>>>(
        is_max, static_cast<const T*>(x), kept, kept_s, n, stride, chunk, cand_i, cand_v);
    arg_finish_kernel<C><<<grid_for(kept.numel), 256, 0, stream>>>(is_max, cand_v, cand_i,
                                                                    static_cast<int>(chunks), kept.numel, out);
    check(cudaFreeAsync(scratch, stream), "argreduce scratch");
  });
  check_launch("argreduce");
}

}  // namespace wick::cuda
