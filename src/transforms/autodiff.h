#pragma once
// Internals of the autodiff transform shared with checkpoint and compile.
#include <vector>

#include "wick/transforms.h"

namespace wick::detail {

/// A new node viewing x (no copy), to differentiate with respect to this use of x only. With
/// `after`, the view also waits for `after` to be computed (a scheduling dependency only).
Tensor fresh_handle(const Tensor& x, const Tensor& after = Tensor());

/// Cotangents of `wrt` (fresh handles the outputs were built from, inside a RetainScope) for
/// the outputs' cotangents (undefined = zero). Lazy.
std::vector<Tensor> backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& cots,
                             const std::vector<Tensor>& wrt);

/// Calls fn with fresh handles for the args marked in `diff`, retaining what it builds, and
/// returns its outputs and the cotangents of those args. With `cots_are_ones` the first output
/// is a loss seeded with 1 (value_and_grad); otherwise `cots` seeds each output (vjp).
std::pair<std::vector<Tensor>, std::vector<Tensor>> traced_vjp(const Function& fn,
                                                               const std::vector<Tensor>& args,
                                                               const std::vector<bool>& diff,
                                                               const std::vector<Tensor>& cots,
                                                               bool cots_are_ones,
                                                               const Tensor& after = Tensor());

/// Ends retention of the graph behind `roots` unless an enclosing transform still needs it, so
/// evaluation frees the forward intermediates as soon as the backward pass has used them.
void release_retained(const std::vector<Tensor>& roots);

}  // namespace wick::detail
