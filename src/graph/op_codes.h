#pragma once
// Operation codes of the elementwise and reduction primitives, in a header of their own so that
// device code (src/backend/cuda/*.cu) can switch on them without the graph's headers.

namespace wick::detail {

enum class UnaryOp {
  neg, abs, exp, log, sqrt, rsqrt, sin, cos, tanh, sigmoid, silu, gelu, gelu_tanh, relu, square,
  logical_not, erf
};

enum class BinaryOp {
  add, sub, mul, div, pow, max, min, eq, ne, lt, le, gt, ge, logical_and, logical_or
};

enum class ReduceOp { sum, mean, max, min };

}  // namespace wick::detail
