// Elementwise kernels: unary, binary, where and astype. Operands arrive broadcast to the output
// shape (possibly as stride-0 views); StridedLoop merges axes so dense cases run as flat loops.
#include <cmath>
#include <limits>

#include "backend/cpu/kernel.h"
#include "backend/cpu/vmath.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

/// out = f(a) over matching elements; In and Out are storage types, f sees compute types.
template <class In, class Out, class F>
void map1(const Node& a, Node& out, F f) {
  StridedLoop<2> loop(out.shape, {out.strides, aligned_strides(a, out.shape.size())});
  Out* o = out.data<Out>();
  const In* x = a.data<In>();
  loop.run([&](std::array<int64_t, 2> off, std::array<int64_t, 2> st, int64_t n) {
    Out* op = o + off[0];
    const In* xp = x + off[1];
    if (st[1] == 1) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) store(op + i, f(load(xp + i)));
    } else {
      for (int64_t i = 0; i < n; ++i) store(op + i, f(load(xp + i * st[1])));
    }
  });
}

/// out = f(a, b); the two common broadcast cases (a scalar operand) get their own loops so the
/// compiler vectorises them.
template <class In, class Out, class F>
void map2(const Node& a, const Node& b, Node& out, F f) {
  size_t nd = out.shape.size();
  StridedLoop<3> loop(out.shape, {out.strides, aligned_strides(a, nd), aligned_strides(b, nd)});
  Out* o = out.data<Out>();
  const In* x = a.data<In>();
  const In* y = b.data<In>();
  loop.run([&](std::array<int64_t, 3> off, std::array<int64_t, 3> st, int64_t n) {
    Out* op = o + off[0];
    const In* xp = x + off[1];
    const In* yp = y + off[2];
    if (st[1] == 1 && st[2] == 1) {
      for (int64_t i = 0; i < n; ++i) store(op + i, f(load(xp + i), load(yp + i)));
    } else if (st[1] == 1 && st[2] == 0) {
      auto yv = load(yp);
      for (int64_t i = 0; i < n; ++i) store(op + i, f(load(xp + i), yv));
    } else if (st[1] == 0 && st[2] == 1) {
      auto xv = load(xp);
      for (int64_t i = 0; i < n; ++i) store(op + i, f(xv, load(yp + i)));
    } else {
      for (int64_t i = 0; i < n; ++i) store(op + i, f(load(xp + i * st[1]), load(yp + i * st[2])));
    }
  });
}

// Dense f32 loops of the exp-based activations. Kept as small standalone functions: inlined
// into the generic strided template, GCC gave up vectorising fast_exp (8x slower).
[[gnu::noinline]] void exp_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = fast_exp(x[i]);
}
[[gnu::noinline]] void sigmoid_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + fast_exp(-x[i]));
}
[[gnu::noinline]] void silu_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + fast_exp(-x[i]));
}
[[gnu::noinline]] void gelu_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = fast_gelu(x[i]);
}
[[gnu::noinline]] void gelu_tanh_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = fast_gelu_tanh(x[i]);
}
[[gnu::noinline]] void erf_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = fast_erf(x[i]);
}

/// Runs the dense f32 fast path of `op` when there is one; false otherwise.
bool dense_f32_unary(detail::UnaryOp op, const Node& a, Node& out) {
  using detail::UnaryOp;
  if (out.dtype != DType::f32 || !a.contiguous() || a.size() != out.size()) return false;
  void (*fn)(const float*, float*, int64_t) = nullptr;
  switch (op) {
    case UnaryOp::exp: fn = exp_f32; break;
    case UnaryOp::sigmoid: fn = sigmoid_f32; break;
    case UnaryOp::silu: fn = silu_f32; break;
    case UnaryOp::gelu: fn = gelu_f32; break;
    case UnaryOp::gelu_tanh: fn = gelu_tanh_f32; break;
    case UnaryOp::erf: fn = erf_f32; break;
    default: return false;
  }
  const float* x = a.data<float>();
  float* y = out.data<float>();
  parallel_for(out.size(), 8, [&](int64_t b, int64_t e) { fn(x + b, y + b, e - b); });
  return true;
}

template <class V>
V erf_value(V x) {
  if constexpr (std::is_same_v<V, float>) return fast_erf(x);
  else return static_cast<V>(std::erf(x));
}

template <class T>
void unary_kernel(detail::UnaryOp op, const Node& a, Node& out) {
  using C = compute_t<T>;
  using detail::UnaryOp;
  auto run = [&](auto f) { map1<T, T>(a, out, f); };
  if constexpr (std::is_same_v<T, bool>) {
    if (op != UnaryOp::logical_not) throw Error("unary op on bool");
    run([](bool v) { return !v; });
  } else {
    switch (op) {
      case UnaryOp::neg: return run([](C v) { return C(-v); });
      case UnaryOp::abs: return run([](C v) { return v < 0 ? C(-v) : v; });
      case UnaryOp::relu: return run([](C v) { return v > 0 ? v : C(0); });
      case UnaryOp::square: return run([](C v) { return C(v * v); });
      case UnaryOp::logical_not: return run([](C v) { return C(v == 0); });
      default: break;
    }
    if constexpr (std::is_floating_point_v<C>) {
      switch (op) {
        case UnaryOp::exp:
          if constexpr (std::is_same_v<C, float>) return run([](C v) { return fast_exp(v); });
          else return run([](C v) { return std::exp(v); });
        case UnaryOp::log: return run([](C v) { return std::log(v); });
        case UnaryOp::sqrt: return run([](C v) { return std::sqrt(v); });
        case UnaryOp::rsqrt: return run([](C v) { return C(1) / std::sqrt(v); });
        case UnaryOp::sin: return run([](C v) { return std::sin(v); });
        case UnaryOp::cos: return run([](C v) { return std::cos(v); });
        case UnaryOp::tanh: return run([](C v) { return std::tanh(v); });
        case UnaryOp::sigmoid:
          if constexpr (std::is_same_v<C, float>) return run([](C v) { return 1.0f / (1.0f + fast_exp(-v)); });
          else return run([](C v) { return C(1) / (C(1) + std::exp(-v)); });
        case UnaryOp::silu:
          if constexpr (std::is_same_v<C, float>) return run([](C v) { return v / (1.0f + fast_exp(-v)); });
          else return run([](C v) { return v / (C(1) + std::exp(-v)); });
        case UnaryOp::gelu:
          if constexpr (std::is_same_v<C, float>) return run([](C v) { return fast_gelu(v); });
          else return run([](C v) { return C(0.5) * v * (C(1) + erf_value(v * C(0.70710678118654752440))); });
        case UnaryOp::erf: return run([](C v) { return erf_value(v); });
        case UnaryOp::gelu_tanh:
          if constexpr (std::is_same_v<C, float>) return run([](C v) { return fast_gelu_tanh(v); });
          else return run([](C v) {
            C inner = C(0.79788456080286535588) * (v + C(0.044715) * v * v * v);
            return C(0.5) * v * (C(1) + std::tanh(inner));
          });
        default: break;
      }
    }
    throw Error(std::string(detail::unary_name(op)) + ": unsupported dtype " + dtype_name(out.dtype));
  }
}

template <class V>
V int_pow(V base, V e) {
  if (e < 0) return base == 1 ? V(1) : base == -1 ? (e % 2 ? V(-1) : V(1)) : V(0);
  V r = 1;
  while (e) {
    if (e & 1) r *= base;
    base *= base;
    e >>= 1;
  }
  return r;
}

template <class T>
void binary_kernel(detail::BinaryOp op, const Node& a, const Node& b, Node& out) {
  using C = compute_t<T>;
  using detail::BinaryOp;
  auto arith = [&](auto f) { map2<T, T>(a, b, out, f); };
  auto compare = [&](auto f) { map2<T, bool>(a, b, out, f); };
  switch (op) {
    case BinaryOp::eq: return compare([](C x, C y) { return x == y; });
    case BinaryOp::ne: return compare([](C x, C y) { return x != y; });
    case BinaryOp::lt: return compare([](C x, C y) { return x < y; });
    case BinaryOp::le: return compare([](C x, C y) { return x <= y; });
    case BinaryOp::gt: return compare([](C x, C y) { return x > y; });
    case BinaryOp::ge: return compare([](C x, C y) { return x >= y; });
    case BinaryOp::logical_and: return compare([](C x, C y) { return bool(x) && bool(y); });
    case BinaryOp::logical_or: return compare([](C x, C y) { return bool(x) || bool(y); });
    // NaN propagates through maximum/minimum, as in PyTorch.
    case BinaryOp::max: return arith([](C x, C y) { return x > y || x != x ? x : y; });
    case BinaryOp::min: return arith([](C x, C y) { return x < y || x != x ? x : y; });
    default: break;
  }
  if constexpr (!std::is_same_v<T, bool>) {
    switch (op) {
      case BinaryOp::add: return arith([](C x, C y) { return C(x + y); });
      case BinaryOp::sub: return arith([](C x, C y) { return C(x - y); });
      case BinaryOp::mul: return arith([](C x, C y) { return C(x * y); });
      case BinaryOp::div: return arith([](C x, C y) { return C(x / y); });
      case BinaryOp::pow:
        if constexpr (std::is_integral_v<C>) return arith([](C x, C y) { return int_pow(x, y); });
        else return arith([](C x, C y) { return std::pow(x, y); });
      default: break;
    }
  }
  throw Error(std::string(detail::binary_name(op)) + ": unsupported dtype " + dtype_name(a.dtype));
}

/// Float to integer conversion without UB: NaN -> 0, out-of-range saturates.
template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    if (v != v) return 0;
    if (v >= static_cast<From>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    if (v <= static_cast<From>(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace

void unary_in_place(detail::UnaryOp op, Node& x) {
  if (dense_f32_unary(op, x, x)) return;
  dispatch(x.dtype, [&]<class T>() { unary_kernel<T>(op, x, x); });
}

}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void Unary::eval_cpu(std::span<Node* const> in, Node& out) {
  alloc_output_donating(out, in);
  if (dense_f32_unary(op, *in[0], out)) return;
  dispatch(out.dtype, [&]<class T>() { unary_kernel<T>(op, *in[0], out); });
}

void Binary::eval_cpu(std::span<Node* const> in, Node& out) {
  if (out.dtype == in[0]->dtype) alloc_output_donating(out, in);
  else alloc_output(out);
  dispatch(in[0]->dtype, [&]<class T>() { binary_kernel<T>(op, *in[0], *in[1], out); });
}

void Where::eval_cpu(std::span<Node* const> in, Node& out) {
  alloc_output(out);
  size_t nd = out.shape.size();
  StridedLoop<4> loop(out.shape, {out.strides, aligned_strides(*in[0], nd), aligned_strides(*in[1], nd),
                                  aligned_strides(*in[2], nd)});
  dispatch(out.dtype, [&]<class T>() {
    T* o = out.data<T>();
    const bool* c = in[0]->data<bool>();
    const T* x = in[1]->data<T>();
    const T* y = in[2]->data<T>();
    loop.run([&](std::array<int64_t, 4> off, std::array<int64_t, 4> st, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        o[off[0] + i] = c[off[1] + i * st[1]] ? x[off[2] + i * st[2]] : y[off[3] + i * st[3]];
    });
  });
}

void AsType::eval_cpu(std::span<Node* const> in, Node& out) {
  alloc_output(out);
  dispatch(in[0]->dtype, [&]<class From>() {
    dispatch(out.dtype, [&]<class To>() {
      using CF = compute_t<From>;
      using CT = compute_t<To>;
      map1<From, To>(*in[0], out, [](CF v) { return convert<CT>(v); });
    });
  });
}

}  // namespace wick::detail
