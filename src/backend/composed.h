#pragma once
// Compile's fused primitives evaluated as the ops they replace (definitions in composed.cpp):
// the CPU's kernels for them and the GPU's fallbacks when a fused kernel does not apply. Running
// the same primitives keeps the results identical to the unfused graph's.
#include <memory>
#include <span>
#include <vector>

#include "graph/node.h"

namespace wick::detail {

class FusedLinear;
class Attention;
class CachedAttention;

/// FusedLinear through RmsNorm, one Matmul per weight, and a Concatenate or the gated product.
void fused_linear_unfused(const FusedLinear& f, std::span<Node* const> in, Node& out);

/// x rotated by Rope(freq, offset 0) at position[0] + t, on x's device.
std::unique_ptr<Node> rotated(const std::vector<float>& freq, Node* x, Node* position);

/// Attention whose q is rotated first (its last input is the position).
void attention_rotating_q(const Attention& a, std::span<Node* const> in, Node& out);

/// CachedAttention as its two cache writes, then attention rotating q.
void cached_attention_unfused(const CachedAttention& c, std::span<Node* const> in, Node& out);

}  // namespace wick::detail
