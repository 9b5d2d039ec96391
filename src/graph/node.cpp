#include "graph/node.h"

#include "graph/primitive.h"
#include "wick/runtime.h"

namespace wick::detail {

bool Node::contiguous() const {
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1) continue;
    if (strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

namespace {
thread_local int retain_depth = 0;
thread_local int trace_depth = 0;
}  // namespace

RetainScope::RetainScope(bool retain) : prev_(retain_depth) {
  retain_depth = retain || trace_depth > 0 ? retain_depth + 1 : 0;
}
RetainScope::~RetainScope() { retain_depth = prev_; }
bool RetainScope::active() { return retain_depth > 0; }

TraceScope::TraceScope() { ++trace_depth; }
TraceScope::~TraceScope() { --trace_depth; }

std::vector<Tensor> Primitive::vjp(const std::vector<Tensor>&, const Tensor&, const Tensor&,
                                   const std::vector<bool>&) {
  throw Error(std::string(name()) + " is not differentiable");
}

Tensor make_node(Shape shape, DType dtype, std::shared_ptr<Primitive> p, std::vector<Tensor> inputs) {
  auto n = std::make_shared<Node>();
  n->shape = std::move(shape);
  n->dtype = dtype;
  n->device = inputs.empty() ? Device::cpu() : inputs[0].device();
  n->primitive = std::move(p);
  n->inputs = std::move(inputs);
  n->retained = RetainScope::active();
  Tensor t(std::move(n));
  if (eager_mode()) eval({t});
  return t;
}

}  // namespace wick::detail

namespace wick::detail {

Node::~Node() {
  // Unhook inputs whose last owner is this node and release them from a flat list, so that
  // destroying a long chain takes constant stack.
  std::vector<Tensor> pending = std::move(inputs);
  while (!pending.empty()) {
    Tensor t = std::move(pending.back());
    pending.pop_back();
    if (t.node_ptr().use_count() == 1) {
      for (auto& in : t.node()->inputs) pending.push_back(std::move(in));
      t.node()->inputs.clear();
    }
  }
}

}  // namespace wick::detail
