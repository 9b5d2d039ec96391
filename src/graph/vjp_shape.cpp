// Reverse-mode rules of the view, joining, indexing and reduction primitives.
#include <numeric>

#include "graph/vjp_common.h"

namespace wick::detail {

std::vector<Tensor> Reshape::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                 const std::vector<bool>&) {
  return {reshape(g, p[0].shape())};
}

std::vector<Tensor> Transpose::vjp(const std::vector<Tensor>&, const Tensor&, const Tensor& g,
                                   const std::vector<bool>&) {
  std::vector<int> inverse(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) inverse[perm[d]] = static_cast<int>(d);
  return {transpose(g, inverse)};
}

std::vector<Tensor> Slice::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                               const std::vector<bool>&) {
  return {slice_update(zeros(p[0].shape(), g.dtype()), g, start, step)};
}

std::vector<Tensor> SliceUpdate::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                     const std::vector<bool>& need) {
  Tensor dx, du;
  const Shape& region = p[1].shape();
  if (need[0]) dx = slice_update(g, zeros(region, g.dtype()), start, step);
  if (need[1]) {
    std::vector<int64_t> stop(start.size());
    for (size_t d = 0; d < stop.size(); ++d) stop[d] = start[d] + (region[d] - 1) * step[d] + 1;
    du = slice(g, start, stop, step);
  }
  return {dx, du};
}

std::vector<Tensor> BroadcastTo::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                     const std::vector<bool>&) {
  return {unbroadcast(g, p[0].shape())};
}

std::vector<Tensor> StopGradient::vjp(const std::vector<Tensor>&, const Tensor&, const Tensor&,
                                      const std::vector<bool>&) {
  return {Tensor()};
}

std::vector<Tensor> ToDevice::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                  const std::vector<bool>&) {
  return {to(g, p[0].device())};
}

std::vector<Tensor> Concatenate::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                     const std::vector<bool>& need) {
  std::vector<Tensor> out(p.size());
  int64_t at = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    int64_t n = p[i].shape()[axis];
    if (need[i]) out[i] = slice(g, axis, at, at + n);
    at += n;
  }
  return out;
}

std::vector<Tensor> Take::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                              const std::vector<bool>& need) {
  if (!need[0]) return {Tensor(), Tensor()};
  return {build<TakeGrad>(p[0].shape(), g.dtype(), {g, p[1]}, axis), Tensor()};
}

std::vector<Tensor> TakeAlongAxis::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                       const std::vector<bool>& need) {
  if (!need[0]) return {Tensor(), Tensor()};
  return {build<TakeAlongAxisGrad>(p[0].shape(), g.dtype(), {g, p[1]}, axis), Tensor()};
}

std::vector<Tensor> TakeGrad::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                  const std::vector<bool>& need) {
  return {take(g, p[1], axis), Tensor()};
}

std::vector<Tensor> TakeAlongAxisGrad::vjp(const std::vector<Tensor>& p, const Tensor&,
                                           const Tensor& g, const std::vector<bool>& need) {
  return {take_along_axis(g, p[1], axis), Tensor()};
}

std::vector<Tensor> Reduce::vjp(const std::vector<Tensor>& p, const Tensor& y, const Tensor& g,
                                const std::vector<bool>&) {
  const Tensor& x = p[0];
  if (!is_floating(x.dtype()) || !is_floating(y.dtype())) return {Tensor()};
  // The primitive keeps reduced axes as size 1, so g broadcasts straight back to x.
  switch (op) {
    case ReduceOp::sum: return {broadcast_to(g, x.shape())};
    case ReduceOp::mean: {
      int64_t count = 1;
      for (int a : axes) count *= x.shape()[a];
      return {broadcast_to(g * (1.0 / static_cast<double>(count)), x.shape())};
    }
    case ReduceOp::max:
    case ReduceOp::min: {
      // Ties share the gradient evenly (PyTorch's amax/amin convention).
      Tensor hit = equal(x, y);
      Tensor ties = sum(astype(hit, g.dtype()), axes, true);
      return {where(hit, broadcast_to(g / ties, x.shape()), 0.0)};
    }
  }
  return {Tensor()};
}

}  // namespace wick::detail
