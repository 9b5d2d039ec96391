#pragma once
// The elementwise operations as device functions, shared by the plain and the fused kernels.
// Each computes like the CPU kernel: in f32 for the half types, f64 for f64, in the integer type
// for integers; NaN propagates through max/min as in PyTorch.
#include "backend/cuda/common.cuh"
#include "graph/op_codes.h"

namespace wick::cuda {

using detail::BinaryOp;
using detail::UnaryOp;

template <class C>
__device__ __forceinline__ C apply_unary(UnaryOp op, C v) {
  switch (op) {
    case UnaryOp::neg:
      return C(-v);
    case UnaryOp::abs:
      return v < C(0) ? C(-v) : v;
    case UnaryOp::relu:
      return v > C(0) ? v : C(0);
    case UnaryOp::square:
      return C(v * v);
    case UnaryOp::logical_not:
      return C(v == C(0));
    default:
      break;
  }
  if constexpr (std::is_floating_point_v<C>) {
    switch (op) {
      case UnaryOp::exp:
        return exp(v);
      case UnaryOp::log:
        return log(v);
      case UnaryOp::sqrt:
        return sqrt(v);
      case UnaryOp::rsqrt:
        return C(1) / sqrt(v);
      case UnaryOp::sin:
        return sin(v);
      case UnaryOp::cos:
        return cos(v);
      case UnaryOp::tanh:
        return tanh(v);
      case UnaryOp::sigmoid:
        return C(1) / (C(1) + exp(-v));
      case UnaryOp::silu:
        return v / (C(1) + exp(-v));
      case UnaryOp::erf:
        return erf(v);
      case UnaryOp::gelu:
        return C(0.5) * v * (C(1) + erf(v * C(0.70710678118654752440)));
      case UnaryOp::gelu_tanh: {
        C inner = C(0.79788456080286535588) * (v + C(0.044715) * v * v * v);
        return C(0.5) * v * (C(1) + tanh(inner));
      }
      default:
        return v;
    }
  } else {
    return static_cast<C>(apply_unary<double>(op, static_cast<double>(v)));
  }
}

template <class C>
__device__ __forceinline__ C int_pow(C x, C y) {
  if (y < 0) return x == 1 ? C(1) : (x == -1 ? (y % 2 ? C(-1) : C(1)) : C(0));
  C r = 1;
  while (y) {
    if (y & 1) r *= x;
    x *= x;
    y >>= 1;
  }
  return r;
}

/// Arithmetic ops return C; comparisons and logical ops return 0/1 in C.
template <class C>
__device__ __forceinline__ C apply_binary(BinaryOp op, C x, C y) {
  switch (op) {
    case BinaryOp::add:
      return C(x + y);
    case BinaryOp::sub:
      return C(x - y);
    case BinaryOp::mul:
      return C(x * y);
    case BinaryOp::div:
      if constexpr (std::is_integral_v<C>)
        return y == 0 ? C(0) : C(x / y);
      else
        return x / y;
    case BinaryOp::pow:
      if constexpr (std::is_integral_v<C>)
        return int_pow(x, y);
      else
        return pow(x, y);
    case BinaryOp::max:
      return x > y || x != x ? x : y;
    case BinaryOp::min:
      return x < y || x != x ? x : y;
    case BinaryOp::eq:
      return C(x == y);
    case BinaryOp::ne:
      return C(x != y);
    case BinaryOp::lt:
      return C(x < y);
    case BinaryOp::le:
      return C(x <= y);
    case BinaryOp::gt:
      return C(x > y);
    case BinaryOp::ge:
      return C(x >= y);
    case BinaryOp::logical_and:
      return C(x != C(0) && y != C(0));
    case BinaryOp::logical_or:
      return C(x != C(0) || y != C(0));
  }
  return x;
}

}  // namespace wick::cuda
