// Elementwise kernels over any views: each thread maps a linear index of the (collapsed)
// iteration space to every operand's offset.
#include "backend/cuda/ops.cuh"

namespace wick::cuda {
namespace {

template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, Walk xs, T* out, Walk os, Space sp) {
  WICK_GRID_LOOP(i, sp.numel) {
    st(out + offset_of(i, sp, os), apply_unary(op, ld(x + offset_of(i, sp, xs))));
  }
}

template <class T, class O>
__global__ void binary_kernel(BinaryOp op, const T* a, Walk as, const T* b, Walk bs, O* out, Walk os, Space sp) {
  WICK_GRID_LOOP(i, sp.numel) {
    auto r = apply_binary(op, ld(a + offset_of(i, sp, as)), ld(b + offset_of(i, sp, bs)));
    st(out + offset_of(i, sp, os), r);
  }
}

template <class T>
__global__ void where_kernel(const uint8_t* c, Walk cs, const T* a, Walk as, const T* b, Walk bs, T* out, Walk os,
                             Space sp) {
  WICK_GRID_LOOP(i, sp.numel) {
    bool pick = c[offset_of(i, sp, cs)] != 0;
    out[offset_of(i, sp, os)] = pick ? a[offset_of(i, sp, as)] : b[offset_of(i, sp, bs)];
  }
}

template <class S, class D>
__global__ void cast_kernel(const S* x, Walk xs, D* out, Walk os, Space sp) {
  WICK_GRID_LOOP(i, sp.numel) {
    auto v = ld(x + offset_of(i, sp, xs));
    if constexpr (std::is_same_v<S, D>) {
      out[offset_of(i, sp, os)] = x[offset_of(i, sp, xs)];
    } else if constexpr (std::is_same_v<D, bool>) {
      st(out + offset_of(i, sp, os), v != decltype(v)(0));
    } else {
      st(out + offset_of(i, sp, os), static_cast<compute_t<D>>(v));
    }
  }
}

}  // namespace

void unary(int op, DType t, const void* x, const Walk& xs, void* out, const Walk& os, const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(t, [&]<class T>() {
    unary_kernel<T><<<grid_for(sp.numel), 256, 0, active().stream>>>(static_cast<UnaryOp>(op), static_cast<const T*>(x),
                                                                     xs, static_cast<T*>(out), os, sp);
  });
  check_launch("unary");
}

void binary(int op, DType in_t, DType out_t, const void* a, const Walk& as, const void* b, const Walk& bs, void* out,
            const Walk& os, const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(in_t, [&]<class T>() {
    auto launch = [&]<class O>() {
      binary_kernel<T, O><<<grid_for(sp.numel), 256, 0, active().stream>>>(
          static_cast<BinaryOp>(op), static_cast<const T*>(a), as, static_cast<const T*>(b), bs, static_cast<O*>(out),
          os, sp);
    };
    if (out_t == DType::boolean) launch.template operator()<bool>();
    else launch.template operator()<T>();
  });
  check_launch("binary");
}

void where(const void* c, const Walk& cs, DType t, const void* a, const Walk& as, const void* b, const Walk& bs,
           void* out, const Walk& os, const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(t, [&]<class T>() {
    where_kernel<T><<<grid_for(sp.numel), 256, 0, active().stream>>>(static_cast<const uint8_t*>(c), cs,
                                                                     static_cast<const T*>(a), as,
                                                                     static_cast<const T*>(b), bs, static_cast<T*>(out),
                                                                     os, sp);
  });
  check_launch("where");
}

void cast(DType from, const void* x, const Walk& xs, DType to, void* out, const Walk& os, const Space& sp) {
  if (sp.numel == 0) return;
  dispatch(from, [&]<class S>() {
    dispatch(to, [&]<class D>() {
      cast_kernel<S, D><<<grid_for(sp.numel), 256, 0, active().stream>>>(static_cast<const S*>(x), xs,
                                                                         static_cast<D*>(out), os, sp);
    });
  });
  check_launch("astype");
}

}  // namespace wick::cuda
