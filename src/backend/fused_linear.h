#pragma once
// FusedLinear evaluated as the ops it replaces (definition in fused_linear.cpp): the CPU's
// kernel and the GPU's fallback.
#include <span>

#include "graph/node.h"

namespace wick::detail {

class FusedLinear;

/// Computes `out` on its device through RmsNorm / the gated product, one Matmul per weight and
/// a Concatenate.
void fused_linear_unfused(const FusedLinear& f, std::span<Node* const> in, Node& out);

}  // namespace wick::detail
