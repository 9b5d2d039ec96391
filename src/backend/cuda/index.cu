// Gathers (take, take_along_axis) and their scatter-add gradients. Indices wrap when negative;
// one out of range is reported through the device error flag (read at the next synchronize) and
// clamped, so no kernel touches memory outside its operands.
#include "backend/cuda/common.cuh"

namespace wick::cuda {
namespace {

__device__ __forceinline__ int64_t checked(int64_t v, int64_t n, int64_t code, int64_t* err) {
  int64_t w = v < 0 ? v + n : v;
  if (w < 0 || w >= n) {
    report(err, code, v, n);
    return 0;
  }
  return w;
}

template <class T>
__global__ void take_kernel(const T* x, const __grid_constant__ Space xshape,
                            const __grid_constant__ Walk xs, int axis, DType it, const void* idx,
                            int64_t n_idx, int64_t post, T* out, int64_t total, int64_t* err) {
  int64_t n = xshape.shape[axis];
  WICK_GRID_LOOP(e, total) {
    int64_t q = e % post, rest = e / post, j = rest % n_idx, p = rest / n_idx;
    int64_t w = checked(ld_index(idx, it, j), n, kTakeIndex, err);
    // Offsets of p over the axes before `axis` and of q over those after it.
    int64_t off = w * xs.s[axis];
    for (int d = xshape.nd - 1; d > axis; --d) {
      off += (q % xshape.shape[d]) * xs.s[d];
      q /= xshape.shape[d];
    }
    for (int d = axis - 1; d >= 0; --d) {
      off += (p % xshape.shape[d]) * xs.s[d];
      p /= xshape.shape[d];
    }
    out[e] = x[off];
  }
}

template <class T>
__global__ void take_along_kernel(const T* x, const __grid_constant__ Walk xs, int64_t ax_stride,
                                  int64_t n, DType it, const void* idx,
                                  const __grid_constant__ Walk is, T* out,
                                  const __grid_constant__ Space sp, int64_t* err) {
  WICK_GRID_LOOP(e, sp.numel) {
    int64_t w = checked(ld_index(idx, it, offset_of(e, sp, is)), n, kTakeAlongIndex, err);
    out[e] = x[offset_of(e, sp, xs) + w * ax_stride];
  }
}

template <class T>
__global__ void write_at_kernel(const T* u, T* out, const __grid_constant__ Walks<2> w,
                                const __grid_constant__ Space sp, const int64_t* position,
                                int64_t ax_stride, int64_t rows, int64_t limit, int64_t* err) {
  allow_dependents();
  wait_for_inputs();
  const int64_t p = *position;
  if (p < 0 || p + rows > limit) {
    if (blockIdx.x == 0 && threadIdx.x == 0) report(err, kWriteAt, p + rows - 1, limit);
    return;
  }
  T* base = out + p * ax_stride;
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[2];
    offsets_of<2>(i, sp, w.w, off);
    base[off[0]] = u[off[1]];
  }
}

template <class A>
__global__ void take_grad_kernel(const void* g, DType gt, DType it, const void* idx, int64_t pre,
                                 int64_t n_idx, int64_t post, int64_t n, A* acc, int64_t* err) {
  WICK_GRID_LOOP(e, pre * n_idx * post) {
    int64_t q = e % post, rest = e / post, j = rest % n_idx, p = rest / n_idx;
    int64_t w = checked(ld_index(idx, it, j), n, kTakeIndex, err);
    atomicAdd(acc + (p * n + w) * post + q, static_cast<A>(ld_any(g, gt, e)));
  }
}

template <class A>
__global__ void take_along_grad_kernel(const void* g, DType gt, const __grid_constant__ Walk gs,
                                       DType it, const void* idx, const __grid_constant__ Walk is,
                                       A* acc, const __grid_constant__ Walk os, int64_t ax_stride,
                                       int64_t n, const __grid_constant__ Space sp, int64_t* err) {
  WICK_GRID_LOOP(e, sp.numel) {
    int64_t w = checked(ld_index(idx, it, offset_of(e, sp, is)), n, kTakeAlongIndex, err);
    atomicAdd(acc + offset_of(e, sp, os) + w * ax_stride,
              static_cast<A>(ld_any(g, gt, offset_of(e, sp, gs))));
  }
}

template <class A, class T>
__global__ void store_kernel(const A* acc, T* out, int64_t n) {
  WICK_GRID_LOOP(i, n) st(out + i, acc[i]);
}

/// Runs `scatter(acc)` into an f32 (f64 for f64) accumulator that is the output itself when its
/// dtype allows atomics, else a scratch buffer rounded into the output afterwards.
template <class F>
void accumulate(DType t, void* out, int64_t size, F&& scatter) {
  if (t == DType::f32 || t == DType::f64) {
    check(cudaMemsetAsync(out, 0, size * (t == DType::f64 ? 8 : 4), launch_stream()), "memset");
    if (t == DType::f64)
      scatter(static_cast<double*>(out));
    else
      scatter(static_cast<float*>(out));
    return;
  }
  float* acc = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&acc), size * sizeof(float), launch_stream()),
        "scatter scratch");
  check(cudaMemsetAsync(acc, 0, size * sizeof(float), launch_stream()), "memset");
  scatter(acc);
  dispatch_float(t, "take (gradient)", [&]<class T>() {
    store_kernel<float, T><<<grid_for(size), 256, 0, launch_stream()>>>(acc, static_cast<T*>(out), size);
  });
  check(cudaFreeAsync(acc, launch_stream()), "scatter scratch");
}

}  // namespace

void write_at(DType t, const void* u, const Walk& us, void* out, const Walk& os, const Space& sp,
              const int64_t* position, int64_t ax_stride, int64_t rows, int64_t limit) {
  if (sp.numel == 0) return;
  int64_t* err = error_flag();
  dispatch(t, [&]<class T>() {
    launch_overlapped(write_at_kernel<T>, grid_for(sp.numel), 256, 0, static_cast<const T*>(u), static_cast<T*>(out),
                      Walks<2>{{os, us}}, sp, position, ax_stride, rows, limit, err);
  });
  check_launch("write_at");
}

void take(DType t, const void* x, const Space& xshape, const Walk& xs, int axis, DType it,
          const void* idx, int64_t n_idx, void* out) {
  int64_t pre = 1, post = 1;
  for (int d = 0; d < axis; ++d) pre *= xshape.shape[d];
  for (int d = axis + 1; d < xshape.nd; ++d) post *= xshape.shape[d];
  int64_t total = pre * n_idx * post;
  if (total == 0) return;
  int64_t* err = error_flag();
  dispatch(t, [&]<class T>() {
    take_kernel<T><<<grid_for(total), 256, 0, launch_stream()>>>(static_cast<const T*>(x), xshape,
                                                                 xs, axis, it, idx, n_idx, post,
                                                                 static_cast<T*>(out), total, err);
  });
  check_launch("take");
}

void take_along_axis(DType t, const void* x, const Walk& xs, int64_t ax_stride, int64_t n, DType it,
                     const void* idx, const Walk& is, void* out, const Space& sp) {
  if (sp.numel == 0) return;
  int64_t* err = error_flag();
  dispatch(t, [&]<class T>() {
    take_along_kernel<T><<<grid_for(sp.numel), 256, 0, launch_stream()>>>(
        static_cast<const T*>(x), xs, ax_stride, n, it, idx, is, static_cast<T*>(out), sp, err);
  });
  check_launch("take_along_axis");
}

void take_grad(DType t, const void* g, DType it, const void* idx, int64_t pre, int64_t n_idx,
               int64_t post, int64_t n, void* out) {
  int64_t size = pre * n * post, total = pre * n_idx * post;
  if (size == 0) return;
  int64_t* err = error_flag();
  accumulate(t, out, size, [&]<class A>(A* acc) {
    if (total)
      take_grad_kernel<A><<<grid_for(total), 256, 0, launch_stream()>>>(g, t, it, idx, pre, n_idx,
                                                                        post, n, acc, err);
  });
  check_launch("take_grad");
}

void take_along_axis_grad(DType t, const void* g, const Walk& gs, DType it, const void* idx,
                          const Walk& is, void* out, int64_t out_size, const Walk& os,
                          int64_t ax_stride, int64_t n, const Space& sp) {
  if (out_size == 0) return;
  int64_t* err = error_flag();
  DType gt = t;
  accumulate(t, out, out_size, [&]<class A>(A* acc) {
    if (sp.numel)
      take_along_grad_kernel<A><<<grid_for(sp.numel), 256, 0, launch_stream()>>>(
          g, gt, gs, it, idx, is, acc, os, ax_stride, n, sp, err);
  });
  check_launch("take_along_axis_grad");
}

}  // namespace wick::cuda
