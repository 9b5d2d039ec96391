// Elementwise kernels over any views: each thread maps a linear index of the (collapsed)
// iteration space to every operand's offset.
#include "backend/cuda/ops.cuh"

namespace wick::cuda {
namespace {

template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* out, const __grid_constant__ Walks<2> w,
                             const __grid_constant__ Space sp) {
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
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[3];
    offsets_of<3>(i, sp, w.w, off);
    st(out + off[0], apply_binary(op, ld(a + off[1]), ld(b + off[2])));
  }
}

template <class T>
__global__ void where_kernel(const uint8_t* c, const T* a, const T* b, T* out,
                             const __grid_constant__ Walks<4> w, const __grid_constant__ Space sp) {
  WICK_GRID_LOOP(i, sp.numel) {
    int64_t off[4];
    offsets_of<4>(i, sp, w.w, off);
    out[off[0]] = c[off[1]] != 0 ? a[off[2]] : b[off[3]];
  }
}

template <class S, class D>
__global__ void cast_kernel(const S* x, D* out, const __grid_constant__ Walks<2> w,
                            const __grid_constant__ Space sp) {
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

}  // namespace

void unary(int op, DType t, const void* x, const Walk& xs, void* out, const Walk& os,
           const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(t, [&]<class T>() {
    unary_kernel<T><<<grid_for(sp.numel), 256, 0, launch_stream()>>>(
        static_cast<UnaryOp>(op), static_cast<const T*>(x), static_cast<T*>(out),
        Walks<2>{{os, xs}}, sp);
  });
  check_launch("unary");
}

void binary(int op, DType in_t, DType out_t, const void* a, const Walk& as, const void* b,
            const Walk& bs, void* out, const Walk& os, const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(in_t, [&]<class T>() {
    auto launch = [&]<class O>() {
      binary_kernel<T, O><<<grid_for(sp.numel), 256, 0, launch_stream()>>>(
          static_cast<BinaryOp>(op), static_cast<const T*>(a), static_cast<const T*>(b),
          static_cast<O*>(out), Walks<3>{{os, as, bs}}, sp);
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
    where_kernel<T><<<grid_for(sp.numel), 256, 0, launch_stream()>>>(
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
      cast_kernel<S, D><<<grid_for(sp.numel), 256, 0, launch_stream()>>>(
          static_cast<const S*>(x), static_cast<D*>(out), Walks<2>{{os, xs}}, sp);
    });
  });
  check_launch("astype");
}

}  // namespace wick::cuda
