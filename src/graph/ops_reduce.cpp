// Builders of reductions. The primitive keeps reduced axes (size 1); dropping them is a free
// reshape of the dense result.
#include <algorithm>
#include <cmath>
#include <limits>

#include "graph/ops_common.h"

namespace wick {
namespace detail {

const char* Reduce::name() const {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::mean: return "mean";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
  }
  return "reduce";
}

bool Reduce::is_equivalent(const Primitive& o) const {
  auto* r = dynamic_cast<const Reduce*>(&o);
  return r && r->op == op && r->axes == axes;
}

namespace {

Shape kept_shape(const Shape& s, const std::vector<int>& axes) {
  Shape k = s;
  for (int a : axes) k[a] = 1;
  return k;
}

Shape dropped_shape(const Shape& s, const std::vector<int>& axes) {
  Shape k;
  for (size_t d = 0; d < s.size(); ++d)
    if (std::find(axes.begin(), axes.end(), static_cast<int>(d)) == axes.end()) k.push_back(s[d]);
  return k;
}

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes_in, bool keepdims,
              const char* name) {
  require_defined(name, {&x});
  std::vector<int> axes = normalize_axes(axes_in, x.ndim(), name);
  DType t = x.dtype();
  if (op == ReduceOp::sum && !is_floating(t)) t = DType::i64;
  if (op == ReduceOp::mean) t = float_dtype(t);
  if (op == ReduceOp::max || op == ReduceOp::min) {
    for (int a : axes)
      if (x.shape()[a] == 0)
        throw Error(std::string(name) + ": zero-size axis " + std::to_string(a) + " of " +
                    shape_str(x.shape()) + " has no " + name);
  }
  Tensor r = build<Reduce>(kept_shape(x.shape(), axes), t, {cast(x, t)}, op, axes);
  return keepdims ? r : reshape(r, dropped_shape(x.shape(), axes));
}

Tensor arg_reduce(bool is_max, const Tensor& x, int axis, bool keepdims) {
  const char* name = is_max ? "argmax" : "argmin";
  require_defined(name, {&x});
  int a = normalize_axis(axis, x.ndim(), name);
  if (x.shape()[a] == 0) throw Error(std::string(name) + ": zero-size axis of " + shape_str(x.shape()));
  Tensor r = build<ArgReduce>(kept_shape(x.shape(), {a}), DType::i64, {x}, is_max, a);
  return keepdims ? r : reshape(r, dropped_shape(x.shape(), {a}));
}

}  // namespace

Tensor greedy_pick(const Tensor& logits) {
  require_defined("greedy_pick", {&logits});
  if (logits.ndim() != 2 || !is_floating(logits.dtype()) || logits.shape()[1] == 0 ||
      logits.shape()[1] >= (int64_t(1) << 24))
    throw Error("greedy_pick: logits must be a float tensor [rows, vocab] with 0 < vocab < 2^24, got " +
                shape_str(logits.shape()) + " " + dtype_name(logits.dtype()));
  return build<GreedyPick>({logits.shape()[0], 2}, DType::f32, {logits});
}

}  // namespace detail

using namespace detail;

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return reduce(ReduceOp::sum, x, axes, keepdims, "sum");
}
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return reduce(ReduceOp::mean, x, axes, keepdims, "mean");
}
Tensor max(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return reduce(ReduceOp::max, x, axes, keepdims, "max");
}
Tensor min(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return reduce(ReduceOp::min, x, axes, keepdims, "min");
}

Tensor logsumexp(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  require_defined("logsumexp", {&x});
  Tensor xf = cast(x, float_dtype(x.dtype()));
  Tensor m = max(xf, axes, true);
  // An all -inf (or inf) slice must not produce inf - inf = NaN in the shifted exponent.
  Tensor shift = where(equal(abs(m), std::numeric_limits<double>::infinity()), 0.0, m);
  Tensor r = log(sum(exp(xf - shift), axes, true)) + shift;
  if (keepdims) return r;
  return reshape(r, dropped_shape(x.shape(), normalize_axes(axes, x.ndim(), "logsumexp")));
}

Tensor var(const Tensor& x, const std::vector<int>& axes, bool keepdims, int ddof) {
  require_defined("var", {&x});
  std::vector<int> ax = normalize_axes(axes, x.ndim(), "var");
  int64_t n = 1;
  for (int a : ax) n *= x.shape()[a];
  Tensor xf = cast(x, float_dtype(x.dtype()));
  Tensor d = xf - mean(xf, ax, true);
  return divide(sum(d * d, ax, keepdims), static_cast<double>(n - ddof));
}

Tensor argmax(const Tensor& x, int axis, bool keepdims) { return arg_reduce(true, x, axis, keepdims); }
Tensor argmin(const Tensor& x, int axis, bool keepdims) { return arg_reduce(false, x, axis, keepdims); }

}  // namespace wick
