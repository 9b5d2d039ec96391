#pragma once
#include <ostream>
#include <span>
#include <vector>

#include "graph/node.h"

namespace wick::detail {

/// One operation of the graph: the builder has already checked shapes and dtypes and fixed the
/// output's; a primitive computes the output from evaluated inputs. Kernels live in
/// src/backend/<device>/ and are reached only through this interface.
class Primitive {
 public:
  virtual ~Primitive() = default;
  virtual const char* name() const = 0;
  /// Computes `out` (which has shape and dtype set) on the CPU. Must set out.storage, strides
  /// and offset: either a fresh buffer (alloc_output) or a view of an input's storage.
  virtual void eval_cpu(std::span<Node* const> inputs, Node& out) = 0;
  /// The same on a CUDA device: launches kernels on the device's stream and returns without
  /// waiting for them. Views (which only set strides) share eval_cpu; other primitives without
  /// a CUDA kernel throw, naming themselves.
  virtual void eval_cuda(std::span<Node* const> inputs, Node& out);
  /// True when `other` would compute the same output from the same inputs (for CSE).
  virtual bool is_equivalent(const Primitive& other) const { return false; }
  virtual void print(std::ostream& os) const { os << name(); }
  /// True for primitives that only make a view of an input (no kernel runs).
  virtual bool is_view() const { return false; }
  /// Reverse mode: the cotangents of the inputs given the forward inputs `primals`, the forward
  /// output `out` and its cotangent `cot` (out's shape and dtype). Returns one tensor per input;
  /// only those with need[i] must be defined, and an undefined tensor means "zero". Built from
  /// ops, so the backward graph is lazy like the forward one. Primitives without a derivative
  /// (comparisons, argmax, random) keep the default, which throws naming the primitive.
  virtual std::vector<Tensor> vjp(const std::vector<Tensor>& primals, const Tensor& out,
                                  const Tensor& cot, const std::vector<bool>& need);
};

}  // namespace wick::detail
