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
/// A position read on the device: one integer element, as the i64 tensor [1] kernels take;
/// anything else is an error naming `op`.
Tensor position_operand(const Tensor& position, const char* op);
/// RoPE at positions position[0] + t, with `position` an integer tensor [1] read when the op
/// runs, so one compiled graph serves every decoding step.
Tensor rope_at(const Tensor& x, const std::vector<float>& inv_freq, const Tensor& position);
/// A decoding step's additive f32 mask [1, 1, tokens, keys] over a whole preallocated cache (see
/// PositionMask): key s is visible to query t while s <= position + t and, with window > 0,
/// position + t − s < window.
Tensor position_mask(const Tensor& position, int64_t tokens, int64_t keys, int64_t window);
/// Writes `update` into `buffer`'s storage in place at [position, position + update extent) of
/// `axis`, with position an i64 tensor [1] read when the op runs (see WriteAt); returns the
/// buffer after the write. A position out of range is an error of the evaluation.
Tensor write_at(const Tensor& buffer, const Tensor& update, int axis, const Tensor& position);
/// Each row's argmax and its log-probability in one pass (see GreedyPick): logits [rows, vocab]
/// of a float dtype with vocab below 2^24 -> f32 [rows, 2] of (log-probability, index).
Tensor greedy_pick(const Tensor& logits);
/// Normalised, sorted, unique axes; empty input means all axes.
std::vector<int> normalize_axes(const std::vector<int>& axes, int ndim, const char* op);

}  // namespace wick::detail
