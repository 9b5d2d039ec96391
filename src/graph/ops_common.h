#pragma once
// Helpers shared by the op builders.
#include <memory>
#include <string>

#include "graph/primitives.h"
#include "wick/ops.h"

namespace wick::detail {

/// Throws unless every tensor is non-null.
void require_defined(const char* op, std::initializer_list<const Tensor*> ts);
/// The tensor cast to `t` (itself when it already has that dtype).
Tensor cast(const Tensor& x, DType t);
/// The tensor viewed with `shape` (itself when it already has it); the shapes must broadcast.
Tensor broadcast_view(const Tensor& x, const Shape& shape);
/// Builds a node with one primitive.
template <class P, class... Args>
Tensor build(Shape shape, DType dtype, std::vector<Tensor> inputs, Args&&... args) {
  return make_node(std::move(shape), dtype, std::make_shared<P>(std::forward<Args>(args)...),
                   std::move(inputs));
}
/// The dtype computing float-only functions of `t` (ints and bool become f32).
inline DType float_dtype(DType t) { return is_floating(t) ? t : DType::f32; }
/// Normalised, sorted, unique axes; empty input means all axes.
std::vector<int> normalize_axes(const std::vector<int>& axes, int ndim, const char* op);

}  // namespace wick::detail
