#pragma once
// Function transforms: reverse-mode autodiff and gradient checkpointing. Every transform builds
// lazy graphs: the gradients are tensors like any other, so forward, backward and an optimizer
// update can be evaluated together as one graph (and compiled, see compile.h).
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "wick/tensor.h"

namespace wick {

/// A function of several tensors returning several tensors.
using Function = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
/// Named tensors (parameters, gradients), ordered by name.
using TensorMap = std::map<std::string, Tensor>;

/// Calls fn(primals) and returns its outputs together with the cotangents of the primals for the
/// given output cotangents (one per output, each of that output's shape). Inputs that do not
/// influence the outputs get zeros.
std::pair<std::vector<Tensor>, std::vector<Tensor>> vjp(const Function& fn,
                                                        const std::vector<Tensor>& primals,
                                                        const std::vector<Tensor>& cotangents);

/// value_and_grad(fn, argnums)(args) returns (fn(args), d out[0] / d args[argnums]). The first
/// output must have one element (a loss); further outputs are passed through (auxiliary values).
using ValueAndGradFn =
    std::function<std::pair<std::vector<Tensor>, std::vector<Tensor>>(const std::vector<Tensor>&)>;
ValueAndGradFn value_and_grad(Function fn, std::vector<int> argnums = {0});
/// Only the gradients of value_and_grad.
Function grad(Function fn, std::vector<int> argnums = {0});

/// The loss fn(params) and its gradient with respect to every entry of `params` (same names).
std::pair<Tensor, TensorMap> value_and_grad(const std::function<Tensor(const TensorMap&)>& fn,
                                            const TensorMap& params);

/// x itself, but treated as a constant by differentiation.
Tensor stop_gradient(const Tensor& x);

/// fn's outputs, computed without keeping fn's intermediate values for the backward pass: when
/// differentiated, fn is run again from its inputs (trading compute for memory). fn must be
/// deterministic (draw dropout masks outside it or from an explicit seed input); with several
/// outputs, each output's backward recomputes fn.
Function checkpoint(Function fn);

}  // namespace wick
