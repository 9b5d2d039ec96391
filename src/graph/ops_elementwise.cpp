// Builders of unary, binary, where and astype ops: dtype promotion and broadcasting happen
// here, so kernels see operands of one dtype already broadcast to the output shape.
#include <algorithm>
#include <cmath>

#include "graph/ops_common.h"

namespace wick {
namespace detail {

void require_defined(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (!t->defined()) throw Error(std::string(op) + ": null tensor operand");
}

Tensor cast(const Tensor& x, DType t) {
  if (x.dtype() == t) return x;
  return build<AsType>(x.shape(), t, {x});
}

Tensor broadcast_view(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return broadcast_to(x, shape);
}

std::vector<int> normalize_axes(const std::vector<int>& axes, int ndim, const char* op) {
  std::vector<int> out;
  if (axes.empty()) {
    for (int d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int a : axes) out.push_back(normalize_axis(a, ndim, op));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    throw Error(std::string(op) + ": repeated axis");
  return out;
}

const char* unary_name(UnaryOp op) {
  static const char* names[] = {"negative", "abs",  "exp",     "log",     "sqrt",     "rsqrt",
                                "sin",      "cos",  "tanh",    "sigmoid", "silu",     "gelu",
                                "gelu_tanh", "relu", "square", "logical_not", "erf"};
  return names[static_cast<int>(op)];
}

const char* binary_name(BinaryOp op) {
  static const char* names[] = {"add",   "subtract", "multiply",   "divide",    "power",
                                "maximum", "minimum", "equal",     "not_equal", "less",
                                "less_equal", "greater", "greater_equal", "logical_and",
                                "logical_or"};
  return names[static_cast<int>(op)];
}

bool Unary::is_equivalent(const Primitive& o) const {
  auto* u = dynamic_cast<const Unary*>(&o);
  return u && u->op == op;
}
bool Binary::is_equivalent(const Primitive& o) const {
  auto* b = dynamic_cast<const Binary*>(&o);
  return b && b->op == op;
}

namespace {

Tensor unary(UnaryOp op, const Tensor& x) {
  const char* name = unary_name(op);
  require_defined(name, {&x});
  switch (op) {
    case UnaryOp::logical_not:
      return build<Unary>(x.shape(), DType::boolean, {cast(x, DType::boolean)}, op);
    case UnaryOp::neg:
    case UnaryOp::abs:
    case UnaryOp::relu:
    case UnaryOp::square:
      if (x.dtype() == DType::boolean)
        throw Error(std::string(name) + ": not defined for bool tensors");
      return build<Unary>(x.shape(), x.dtype(), {x}, op);
    default: {
      DType t = float_dtype(x.dtype());
      return build<Unary>(x.shape(), t, {cast(x, t)}, op);
    }
  }
}

bool is_comparison(BinaryOp op) {
  return op == BinaryOp::eq || op == BinaryOp::ne || op == BinaryOp::lt || op == BinaryOp::le ||
         op == BinaryOp::gt || op == BinaryOp::ge;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  require_defined(name, {&a, &b});
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  DType t = promote_types(a.dtype(), b.dtype());
  DType out = t;
  if (op == BinaryOp::logical_and || op == BinaryOp::logical_or) {
    t = out = DType::boolean;
  } else if (is_comparison(op)) {
    out = DType::boolean;
  } else if (op == BinaryOp::div) {
    t = out = float_dtype(t);
  } else if (t == DType::boolean && op != BinaryOp::max && op != BinaryOp::min) {
    t = out = DType::i64;  // bool arithmetic counts, as in PyTorch
  }
  // No broadcast views: kernels align operand strides to the output (aligned_strides).
  return build<Binary>(shape, out, {cast(a, t), cast(b, t)}, op);
}

/// A weakly typed scalar operand for tensor `t` (see ops.h).
Tensor weak_scalar(double v, const Tensor& t) {
  DType dt = t.dtype();
  if (!is_floating(dt)) {
    bool integral = std::isfinite(v) && v == std::trunc(v);
    dt = !integral ? DType::f32 : dt == DType::boolean ? DType::i64 : dt;
  }
  return scalar(v, dt);
}

}  // namespace
}  // namespace detail

using namespace detail;

Tensor negative(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x); }
Tensor sin(const Tensor& x) { return unary(UnaryOp::sin, x); }
Tensor cos(const Tensor& x) { return unary(UnaryOp::cos, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x); }
Tensor gelu(const Tensor& x) { return unary(UnaryOp::gelu, x); }
Tensor gelu_tanh(const Tensor& x) { return unary(UnaryOp::gelu_tanh, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::square, x); }
Tensor logical_not(const Tensor& x) { return unary(UnaryOp::logical_not, x); }
Tensor erf(const Tensor& x) { return unary(UnaryOp::erf, x); }

#define WICK_BINARY(fn, op)                                                                \
  Tensor fn(const Tensor& a, const Tensor& b) { return binary(BinaryOp::op, a, b); }      \
  Tensor fn(const Tensor& a, double b) {                                                   \
    require_defined(#fn, {&a});                                                            \
    return binary(BinaryOp::op, a, weak_scalar(b, a));                                     \
  }                                                                                        \
  Tensor fn(double a, const Tensor& b) {                                                   \
    require_defined(#fn, {&b});                                                            \
    return binary(BinaryOp::op, weak_scalar(a, b), b);                                     \
  }
WICK_BINARY(add, add)
WICK_BINARY(subtract, sub)
WICK_BINARY(multiply, mul)
WICK_BINARY(divide, div)
WICK_BINARY(power, pow)
WICK_BINARY(maximum, max)
WICK_BINARY(minimum, min)
WICK_BINARY(equal, eq)
WICK_BINARY(not_equal, ne)
WICK_BINARY(less, lt)
WICK_BINARY(less_equal, le)
WICK_BINARY(greater, gt)
WICK_BINARY(greater_equal, ge)
#undef WICK_BINARY

Tensor logical_and(const Tensor& a, const Tensor& b) { return binary(BinaryOp::logical_and, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return binary(BinaryOp::logical_or, a, b); }

Tensor operator-(const Tensor& x) { return negative(x); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return subtract(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return multiply(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return divide(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return subtract(a, b); }
Tensor operator*(const Tensor& a, double b) { return multiply(a, b); }
Tensor operator/(const Tensor& a, double b) { return divide(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(a, b); }
Tensor operator-(double a, const Tensor& b) { return subtract(a, b); }
Tensor operator*(double a, const Tensor& b) { return multiply(a, b); }
Tensor operator/(double a, const Tensor& b) { return divide(a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  require_defined("where", {&cond, &a, &b});
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  DType t = promote_types(a.dtype(), b.dtype());
  return build<Where>(shape, t, {cast(cond, DType::boolean), cast(a, t), cast(b, t)});
}
Tensor where(const Tensor& cond, const Tensor& a, double b) {
  require_defined("where", {&a});
  return where(cond, a, weak_scalar(b, a));
}
Tensor where(const Tensor& cond, double a, const Tensor& b) {
  require_defined("where", {&b});
  return where(cond, weak_scalar(a, b), b);
}

Tensor astype(const Tensor& x, DType dtype) {
  require_defined("astype", {&x});
  return cast(x, dtype);
}

}  // namespace wick
