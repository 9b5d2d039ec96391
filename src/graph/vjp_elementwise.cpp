// Reverse-mode rules of the elementwise primitives. Each rule is written with ops, so it is lazy,
// differentiable again, and runs on any backend.
#include <cmath>
#include <numbers>

#include "graph/vjp_common.h"

namespace wick::detail {

Tensor unbroadcast(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  size_t lead = g.shape().size() - shape.size();
  std::vector<int> axes;
  for (size_t d = 0; d < g.shape().size(); ++d)
    if (d < lead || (shape[d - lead] == 1 && g.shape()[d] != 1)) axes.push_back(static_cast<int>(d));
  Tensor r = axes.empty() ? g : sum(g, axes, true);
  return reshape(r, shape);
}

Tensor add_cotangents(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return a + b;
}

Tensor masked(const Tensor& g, const Tensor& mask) { return where(mask, g, 0.0); }

std::vector<Tensor> Unary::vjp(const std::vector<Tensor>& p, const Tensor& y, const Tensor& g,
                               const std::vector<bool>& need) {
  const Tensor& x = p[0];
  if (!is_floating(x.dtype())) return {Tensor()};
  Tensor d;
  switch (op) {
    case UnaryOp::neg: d = negative(g); break;
    case UnaryOp::abs: d = where(greater(x, 0.0), g, where(less(x, 0.0), negative(g), 0.0)); break;
    case UnaryOp::exp: d = g * y; break;
    case UnaryOp::log: d = g / x; break;
    case UnaryOp::sqrt: d = g * 0.5 / y; break;
    case UnaryOp::rsqrt: d = g * -0.5 * y * y * y; break;
    case UnaryOp::sin: d = g * cos(x); break;
    case UnaryOp::cos: d = negative(g * sin(x)); break;
    case UnaryOp::tanh: d = g * (1.0 - y * y); break;
    case UnaryOp::sigmoid: d = g * y * (1.0 - y); break;
    case UnaryOp::silu: {
      Tensor s = sigmoid(x);
      d = g * s * (1.0 + x * (1.0 - s));
      break;
    }
    case UnaryOp::gelu: {
      // d/dx x·Φ(x) = Φ(x) + x·φ(x)
      Tensor cdf = 0.5 * (1.0 + erf(x * (1.0 / std::numbers::sqrt2)));
      Tensor pdf = exp(square(x) * -0.5) * (1.0 / std::sqrt(2.0 * std::numbers::pi));
      d = g * (cdf + x * pdf);
      break;
    }
    case UnaryOp::gelu_tanh: {
      constexpr double c = 0.79788456080286535588, k = 0.044715;
      Tensor t = tanh(c * (x + k * x * x * x));
      d = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * k * x * x));
      break;
    }
    case UnaryOp::relu: d = masked(g, greater(x, 0.0)); break;
    case UnaryOp::square: d = g * 2.0 * x; break;
    case UnaryOp::erf: d = g * (2.0 / std::sqrt(std::numbers::pi)) * exp(negative(square(x))); break;
    case UnaryOp::logical_not: return {Tensor()};
  }
  return {d};
}

std::vector<Tensor> Binary::vjp(const std::vector<Tensor>& p, const Tensor& y, const Tensor& g,
                                const std::vector<bool>& need) {
  const Tensor &a = p[0], &b = p[1];
  if (!is_floating(y.dtype())) return {Tensor(), Tensor()};
  Tensor da, db;
  switch (op) {
    case BinaryOp::add: da = g, db = g; break;
    case BinaryOp::sub: da = g, db = negative(g); break;
    case BinaryOp::mul:
      if (need[0]) da = g * b;
      if (need[1]) db = g * a;
      break;
    case BinaryOp::div:
      if (need[0]) da = g / b;
      if (need[1]) db = negative(g * y / b);
      break;
    case BinaryOp::pow:
      if (need[0]) da = g * b * power(a, b - 1.0);
      // a^b·log(a) is only real for a > 0; PyTorch's convention gives 0 where a == 0.
      if (need[1]) db = where(greater(a, 0.0), g * y * log(where(greater(a, 0.0), a, 1.0)), 0.0);
      break;
    case BinaryOp::max:
    case BinaryOp::min: {
      // Ties split the gradient evenly, as PyTorch does for maximum/minimum.
      Tensor wins = op == BinaryOp::max ? greater(a, b) : less(a, b);
      Tensor share = astype(wins, g.dtype()) + 0.5 * astype(equal(a, b), g.dtype());
      if (need[0]) da = g * share;
      if (need[1]) db = g * (1.0 - share);
      break;
    }
    default: return {Tensor(), Tensor()};  // comparisons and logic have no gradient
  }
  return {da.defined() ? unbroadcast(da, a.shape()) : da, db.defined() ? unbroadcast(db, b.shape()) : db};
}

std::vector<Tensor> Where::vjp(const std::vector<Tensor>& p, const Tensor& y, const Tensor& g,
                               const std::vector<bool>& need) {
  if (!is_floating(y.dtype())) return {Tensor(), Tensor(), Tensor()};
  Tensor da, db;
  if (need[1]) da = unbroadcast(where(p[0], g, 0.0), p[1].shape());
  if (need[2]) db = unbroadcast(where(p[0], 0.0, g), p[2].shape());
  return {Tensor(), da, db};
}

std::vector<Tensor> AsType::vjp(const std::vector<Tensor>& p, const Tensor& y, const Tensor& g,
                                const std::vector<bool>& need) {
  if (!is_floating(p[0].dtype()) || !is_floating(y.dtype())) return {Tensor()};
  return {astype(g, p[0].dtype())};
}

std::vector<Tensor> Copy::vjp(const std::vector<Tensor>& p, const Tensor& y, const Tensor& g,
                              const std::vector<bool>& need) {
  return {g};
}

}  // namespace wick::detail
