#pragma once
#include <atomic>
#include <exception>
#include <memory>
#include <vector>

#include "core/allocator.h"
#include "wick/tensor.h"

namespace wick::detail {

class Primitive;

/// Evaluation state of a node. Pending nodes may be scheduled by exactly one submission; the
/// runtime moves them to ready (data present) or failed (error present) and notifies waiters.
enum class NodeState : uint32_t { pending, scheduled, ready, failed };  // 32-bit: futex-sized waits

/// One value of the graph. Shape and dtype are fixed when the op is built; storage, strides and
/// offset exist once it is evaluated, after which inputs and primitive are dropped (detached) so
/// the graph behind it can be freed.
struct Node {
  Shape shape;
  DType dtype = DType::f32;
  Device device = Device::cpu();

  std::shared_ptr<Primitive> primitive;  // null for leaves
  std::vector<Tensor> inputs;

  std::shared_ptr<Storage> storage;
  Strides strides;
  int64_t offset = 0;  // in elements

  std::atomic<NodeState> state{NodeState::pending};
  // A device value whose kernels are known to have finished: a root of a completed submission.
  // (A ready CUDA node has only been launched; later work on its stream may still be queued.)
  std::atomic<bool> settled{false};
  // Built while a transform (vjp, checkpoint, compile) records the graph: evaluation keeps the
  // inputs and primitive, which the backward pass or the trace still needs.
  bool retained = false;
  // Position in the submission being scheduled (used only by the scheduler, under its lock).
  uint32_t sched_index = 0;
  std::exception_ptr error;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  /// Releases the graph behind this node iteratively: a 100,000-node chain must not recurse.
  ~Node();

  int64_t size() const { return numel(shape); }
  bool ready() const { return state.load(std::memory_order_acquire) == NodeState::ready; }
  template <class T>
  T* data() const {
    return static_cast<T*>(storage->ptr) + offset;
  }
  void* raw() const { return static_cast<char*>(storage->ptr) + offset * itemsize(dtype); }
  /// Dense row-major layout (size-1 axes may have any stride).
  bool contiguous() const;
};

/// While alive, nodes built on this thread are retained (see Node::retained). Nests; a
/// `RetainScope(false)` suspends retention (a checkpointed block's inner nodes), except while a
/// compile trace records (it needs every node).
class RetainScope {
 public:
  explicit RetainScope(bool retain = true);
  ~RetainScope();
  RetainScope(const RetainScope&) = delete;
  RetainScope& operator=(const RetainScope&) = delete;
  static bool active();

 private:
  int prev_;
};

/// Marks a compile trace on this thread (RetainScope(false) then keeps retaining).
class TraceScope {
 public:
  TraceScope();
  ~TraceScope();
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;
};

/// A new pending node computed by `p` from `inputs`, on their device (the first non-host one;
/// default_device() when there are none). Host scalars and pending full/arange/random operands
/// follow that device; any other operand elsewhere is an error.
Tensor make_node(Shape shape, DType dtype, std::shared_ptr<Primitive> p, std::vector<Tensor> inputs);
/// The same on an explicit device, operands as they are (to() crosses devices this way).
Tensor make_node_on(Device device, Shape shape, DType dtype, std::shared_ptr<Primitive> p,
                    std::vector<Tensor> inputs);

}  // namespace wick::detail
