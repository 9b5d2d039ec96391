// Elementwise kernels over any views: each thread maps a linear index of the (collapsed)
// iteration space to every operand's offset. They are launched overlapped (common.cuh): a small
// one (a decoding step's mask, its token's cast) then starts while the kernel before it drains.
#include <algorithm>

#include "backend/cuda/ops.cuh"

namespace wick::cuda {
namespace {

template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* out, const __grid_constant__ Walks<2> w,
                             const __grid_constant__ Space sp) {
  allow_dependents();
  wait_for_inputs();
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[2];
    offsets_of<2>(i, sp, w.w, off);
    st(out + off[0], apply_unary(op, ld(x + off[1])));
  }
}

template <class T, class O>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, O* out,
                              const __grid_constant__ Walks<3> w,
                              const __grid_constant__ Space sp) {
  allow_dependents();
  wait_for_inputs();
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[3];
    offsets_of<3>(i, sp, w.w, off);
    st(out + off[0], apply_binary(op, ld(a + off[1]), ld(b + off[2])));
  }
}

template <class T>
__global__ void where_kernel(const uint8_t* c, const T* a, const T* b, T* out,
                             const __grid_constant__ Walks<4> w, const __grid_constant__ Space sp) {
  allow_dependents();
  wait_for_inputs();
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[4];
    offsets_of<4>(i, sp, w.w, off);
    out[off[0]] = c[off[1]] != 0 ? a[off[2]] : b[off[3]];
  }
}

template <class S, class D>
__global__ void cast_kernel(const S* x, D* out, const __grid_constant__ Walks<2> w,
                            const __grid_constant__ Space sp) {
  allow_dependents();
  wait_for_inputs();
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[2];
    offsets_of<2>(i, sp, w.w, off);
    if constexpr (std::is_same_v<S, D>) {
      out[off[0]] = x[off[1]];
    } else {
      auto v = ld(x + off[1]);
      if constexpr (std::is_same_v<D, bool>)
        st(out + off[0], v != decltype(v)(0));
      else
        st(out + off[0], static_cast<compute_t<D>>(v));
    }
  }
}

/// The plain kernels below over packs of W elements (see pack_walk): a packed operand is
/// read and written 16 bytes at a time, a splat one (stride 0 along the innermost axis) is one
/// element repeated over the pack. Element-sized accesses leave the loads too few bytes in
/// flight to reach the card's bandwidth.
template <class T, int W>
__global__ void unary_packed_kernel(UnaryOp op, const T* x, T* out, const __grid_constant__ Walks<2> w,
                                    const __grid_constant__ Space sp) {
  allow_dependents();
  wait_for_inputs();
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[2];
    offsets_of<2>(i, sp, w.w, off);
    Pack<T, W> a = ld_pack<W>(x + off[1] * W);
    compute_t<T> r[W];
#pragma unroll
    for (int k = 0; k < W; ++k) r[k] = apply_unary(op, ld(&a.v[k]));
    st_pack<T, W>(out + off[0] * W, r);
  }
}

/// A pack of W elements of x at pack offset `off`, or x[off] repeated when `splat`.
template <int W, class T>
__device__ __forceinline__ Pack<T, W> ld_pack_or_splat(const T* x, int64_t off, bool splat) {
  Pack<T, W> r;
  if (splat) {
#pragma unroll
    for (int k = 0; k < W; ++k) r.v[k] = x[off];
    return r;
  }
  return ld_pack<W>(x + off * W);
}

template <class T, class O, int W>
__global__ void binary_packed_kernel(BinaryOp op, const T* a, bool a_splat, const T* b, bool b_splat, O* out,
                                     const __grid_constant__ Walks<3> w, const __grid_constant__ Space sp) {
  allow_dependents();
  wait_for_inputs();
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[3];
    offsets_of<3>(i, sp, w.w, off);
    Pack<T, W> x = ld_pack_or_splat<W>(a, off[1], a_splat), y = ld_pack_or_splat<W>(b, off[2], b_splat);
    decltype(apply_binary(op, ld(a), ld(b))) r[W];
#pragma unroll
    for (int k = 0; k < W; ++k) r[k] = apply_binary(op, ld(&x.v[k]), ld(&y.v[k]));
    st_pack<O, W>(out + off[0] * W, r);
  }
}

template <class S, class D, int W>
__global__ void cast_packed_kernel(const S* x, D* out, const __grid_constant__ Walks<2> w,
                                   const __grid_constant__ Space sp) {
  allow_dependents();
  wait_for_inputs();
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[2];
    offsets_of<2>(i, sp, w.w, off);
    Pack<S, W> a = ld_pack<W>(x + off[1] * W);
    if constexpr (std::is_same_v<S, D>) {
      *reinterpret_cast<Pack<D, W>*>(out + off[0] * W) = a;
    } else {
      Pack<D, W> r;
#pragma unroll
      for (int k = 0; k < W; ++k) {
        auto v = ld(&a.v[k]);
        if constexpr (std::is_same_v<D, bool>)
          st(&r.v[k], v != decltype(v)(0));
        else
          st(&r.v[k], static_cast<compute_t<D>>(v));
      }
      *reinterpret_cast<Pack<D, W>*>(out + off[0] * W) = r;
    }
  }
}

/// Pack width: 16 bytes of the widest operand type.
template <class... T>
constexpr int pack_width() {
  return static_cast<int>(16 / std::max({sizeof(T)...}));
}

/// Block (x, y) copies chunk x of piece y: 16 bytes a thread where the piece is aligned.
__global__ void copy_pieces_kernel(const __grid_constant__ CopyPieces p) {
  allow_dependents();
  wait_for_inputs();
  const int k = blockIdx.y;
  const char* src = static_cast<const char*>(p.src[k]);
  char* out = static_cast<char*>(p.dst[k]);
  const int64_t n = p.bytes[k];
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  if ((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(out) | static_cast<uintptr_t>(n)) % 16 == 0) {
    for (int64_t i = first; i < n / 16; i += step)
      reinterpret_cast<uint4*>(out)[i] = reinterpret_cast<const uint4*>(src)[i];
  } else {
    for (int64_t i = first; i < n; i += step) out[i] = src[i];
  }
}

}  // namespace

void unary(int op, DType t, const void* x, const Walk& xs, void* out, const Walk& os,
           const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(t, [&]<class T>() {
    constexpr int W = pack_width<T>();
    Walks<2> w{{os, xs}};
    Space ps = sp;
    const void* ptr[] = {out, x};
    const size_t size[] = {sizeof(T), sizeof(T)};
    if (pack_walk(ps, w.w, ptr, size, 2, W, nullptr))
      launch_overlapped(unary_packed_kernel<T, W>, grid_for(ps.numel), 256, 0,
          static_cast<UnaryOp>(op), static_cast<const T*>(x), static_cast<T*>(out), w, ps);
    else
      launch_overlapped(unary_kernel<T>, grid_for(sp.numel), 256, 0,
          static_cast<UnaryOp>(op), static_cast<const T*>(x), static_cast<T*>(out), w, sp);
  });
  check_launch("unary");
}

void binary(int op, DType in_t, DType out_t, const void* a, const Walk& as, const void* b,
            const Walk& bs, void* out, const Walk& os, const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(in_t, [&]<class T>() {
    auto launch = [&]<class O>() {
      constexpr int W = pack_width<T, O>();
      Walks<3> w{{os, as, bs}};
      Space ps = sp;
      const void* ptr[] = {out, a, b};
      const size_t size[] = {sizeof(O), sizeof(T), sizeof(T)};
      bool splat[3];
      auto ta = static_cast<const T*>(a), tb = static_cast<const T*>(b);
      if (pack_walk(ps, w.w, ptr, size, 3, W, splat))
        launch_overlapped(binary_packed_kernel<T, O, W>, grid_for(ps.numel), 256, 0,
            static_cast<BinaryOp>(op), ta, splat[1], tb, splat[2], static_cast<O*>(out), w, ps);
      else
        launch_overlapped(binary_kernel<T, O>, grid_for(sp.numel), 256, 0,
            static_cast<BinaryOp>(op), ta, tb, static_cast<O*>(out), w, sp);
    };
    if (out_t == DType::boolean)
      launch.template operator()<bool>();
    else
      launch.template operator()<T>();
  });
  check_launch("binary");
}

void where(const void* c, const Walk& cs, DType t, const void* a, const Walk& as, const void* b,
           const Walk& bs, void* out, const Walk& os, const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(t, [&]<class T>() {
    launch_overlapped(where_kernel<T>, grid_for(sp.numel), 256, 0,
        static_cast<const uint8_t*>(c), static_cast<const T*>(a), static_cast<const T*>(b),
        static_cast<T*>(out), Walks<4>{{os, cs, as, bs}}, sp);
  });
  check_launch("where");
}

void cast(DType from, const void* x, const Walk& xs, DType to, void* out, const Walk& os,
          const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(from, [&]<class S>() {
    dispatch(to, [&]<class D>() {
      constexpr int W = pack_width<S, D>();
      Walks<2> w{{os, xs}};
      Space ps = sp;
      const void* ptr[] = {out, x};
      const size_t size[] = {sizeof(D), sizeof(S)};
      if (pack_walk(ps, w.w, ptr, size, 2, W, nullptr))
        launch_overlapped(cast_packed_kernel<S, D, W>, grid_for(ps.numel), 256, 0,
            static_cast<const S*>(x), static_cast<D*>(out), w, ps);
      else
        launch_overlapped(cast_kernel<S, D>, grid_for(sp.numel), 256, 0,
            static_cast<const S*>(x), static_cast<D*>(out), w, sp);
    });
  });
  check_launch("astype");
}

void CopyPieces::add(const void* from, void* to, int64_t n) {
  if (n == 0) return;
  src[count] = from;
  dst[count] = to;
  bytes[count] = n;
  if (++count == kCopyPieces) copy_pieces(*this);
}

void copy_pieces(CopyPieces& p) {
  int64_t most = 0;
  for (int k = 0; k < p.count; ++k) most = std::max(most, p.bytes[k]);
  if (p.count > 0 && most > 0) {
    // Enough blocks for the largest piece at 16 bytes a thread; smaller pieces' extra blocks exit.
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((most / 16 + 255) / 256 + 1, 1024));
    launch_overlapped(copy_pieces_kernel, dim3(blocks, static_cast<unsigned>(p.count)), 256, 0, p);
    check_launch("copy");
  }
  p.count = 0;
}

namespace {

// Writes to mapped host memory are visible to the host once the kernel has finished (the event
// recorded after it).
__global__ void copy_flag_kernel(const int64_t* from, int64_t* to) {
  allow_dependents();
  wait_for_inputs();
  if (threadIdx.x < 3) to[threadIdx.x] = from[threadIdx.x];
}

}  // namespace

void copy_error_flag(const int64_t* flag, int64_t* host) {
  launch_overlapped(copy_flag_kernel, 1, 32, 0, flag, host);
  check_launch("error flag");
}

}  // namespace wick::cuda
