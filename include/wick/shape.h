#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wick {

/// Sizes per axis, outermost first.
using Shape = std::vector<int64_t>;
/// Element (not byte) steps per axis; 0 marks a broadcast axis.
using Strides = std::vector<int64_t>;

int64_t numel(const Shape& shape);
/// Row-major strides of a dense tensor of this shape.
Strides contiguous_strides(const Shape& shape);
/// "[4,16,512]"
std::string shape_str(const Shape& shape);
/// NumPy broadcasting of two shapes; throws wick::Error naming `op` when they don't broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
/// Maps a possibly negative axis into [0, ndim); throws naming `op` when out of range.
int normalize_axis(int axis, int ndim, const char* op);

}  // namespace wick
