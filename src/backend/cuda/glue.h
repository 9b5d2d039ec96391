#pragma once
// Helpers of the primitives' CUDA implementations (host side): iteration spaces over nodes,
// dense copies of inputs a kernel needs dense, and output allocation.
#include <array>
#include <memory>
#include <span>

#include "backend/cuda/context.h"
#include "backend/cuda/launch.h"
#include "backend/output.h"
#include "graph/primitives.h"

namespace wick::cuda {

using detail::Node;

/// An iteration space over `shape` and each operand's strides (aligned to it), with size-1 axes
/// dropped and neighbours merged where every operand is contiguous across them.
template <size_t K>
struct Spaced {
  Space space;
  std::array<Walk, K> walks;
};

template <size_t K>
Spaced<K> make_space(const Shape& shape, const std::array<Strides, K>& strides) {
  Spaced<K> r;
  int nd = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (size_t k = 0; k < K && merge; ++k) merge = r.walks[k].s[nd - 1] == strides[k][d] * shape[d];
    if (merge) {
      r.space.shape[nd - 1] *= shape[d];
      for (size_t k = 0; k < K; ++k) r.walks[k].s[nd - 1] = strides[k][d];
      continue;
    }
    if (nd == kMaxDims) throw Error("cuda: more than 8 axes that cannot be merged: " + shape_str(shape));
    r.space.shape[nd] = shape[d];
    for (size_t k = 0; k < K; ++k) r.walks[k].s[nd] = strides[k][d];
    ++nd;
  }
  r.space.nd = nd;
  r.space.numel = numel(shape);
  return r;
}

/// Activates the node's device and returns its context.
inline Context& on(const Node& n) { return activate(n.device.index); }

/// A dense row-major copy of `n` when it is not one already; keeps the copy alive with `hold`.
/// (The copy's buffer returns to the cache when `hold` dies; any later user is a kernel queued
/// after this one on the same stream.)
const void* dense(const Node& n, std::shared_ptr<detail::Storage>& hold);

}  // namespace wick::cuda
