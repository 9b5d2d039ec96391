#pragma once
// Helpers shared by the primitives' vjp rules (src/graph/vjp_*.cpp).
#include <vector>

#include "graph/ops_common.h"

namespace wick::detail {

/// Sums a cotangent of a broadcast result back to the operand's `shape` (over the leading axes
/// the operand lacked and the axes where it had size 1).
Tensor unbroadcast(const Tensor& g, const Shape& shape);

/// A zero cotangent is an undefined tensor; this adds two possibly-undefined ones.
Tensor add_cotangents(const Tensor& a, const Tensor& b);

/// g · mask where mask (bool) selects the elements that pass the gradient.
Tensor masked(const Tensor& g, const Tensor& mask);

}  // namespace wick::detail
