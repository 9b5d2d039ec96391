#pragma once
// Output placement shared by every backend (definitions in output.cpp).
#include <span>

#include "graph/node.h"

namespace wick::detail {

/// Gives `out` a fresh dense buffer on its device.
void alloc_output(Node& out);
/// Gives `out` a dense buffer, reusing input `i`'s storage when nothing else can see it (its
/// only owner is this op, it is dense, on out's device, and it has out's byte size). Returns
/// true when donated.
bool alloc_output_donating(Node& out, std::span<Node* const> candidates);
/// Makes `out` a view of `in`'s storage with the given strides and element offset.
void make_view(Node& out, const Node& in, Strides strides, int64_t offset);
/// Strides of `n` aligned to `ndim` output axes (missing leading axes get stride 0).
Strides aligned_strides(const Node& n, size_t ndim);

/// Strides for viewing `in` as `shape` without copying, or false when its layout does not
/// allow it (reshape copies then).
bool reshape_strides(const Node& in, const Shape& shape, Strides& out);

}  // namespace wick::detail
