#include "graph/node.h"

#include <cstring>

#include "graph/primitives.h"
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

void Primitive::eval_cuda(std::span<Node* const> inputs, Node& out) {
  if (is_view()) return eval_cpu(inputs, out);
  throw Error(std::string(name()) + ": no CUDA kernel");
}

std::vector<Tensor> Primitive::vjp(const std::vector<Tensor>&, const Tensor&, const Tensor&,
                                   const std::vector<bool>&) {
  throw Error(std::string(name()) + " is not differentiable");
}

namespace {

thread_local Device scope_device = Device::cpu();

/// The value of an evaluated one-element host tensor, as a double.
double host_scalar(const Node& n) {
  const void* p = n.raw();
  switch (n.dtype) {
    case DType::f32: return *static_cast<const float*>(p);
    case DType::f64: return *static_cast<const double*>(p);
    case DType::f16: return static_cast<float>(*static_cast<const float16*>(p));
    case DType::bf16: return static_cast<float>(*static_cast<const bfloat16*>(p));
    case DType::i32: return *static_cast<const int32_t*>(p);
    case DType::i64: return static_cast<double>(*static_cast<const int64_t*>(p));
    case DType::boolean: return *static_cast<const uint8_t*>(p) != 0;
  }
  return 0;
}

/// `x` as an operand on device `d`: itself when it is there; a constant built afresh there when
/// it is a one-element host value or a pending input-less node (full, arange, random); an error
/// naming the op otherwise, since moving real data must be explicit (to()).
Tensor operand_on(const Tensor& x, Device d, const Primitive& p) {
  Node* n = x.node();
  if (n->device == d) return x;
  if (n->ready() && n->device.type == Device::Type::cpu && n->size() == 1) {
    Tensor c = make_node_on(d, n->shape, n->dtype, std::make_shared<Full>(host_scalar(*n)), {});
    return c;
  }
  if (n->primitive && n->inputs.empty() && n->state.load(std::memory_order_acquire) == NodeState::pending)
    return make_node_on(d, n->shape, n->dtype, n->primitive, {});
  throw Error(std::string(p.name()) + ": an operand of shape " + shape_str(n->shape) + " is on " +
              n->device.str() + " and another on " + d.str() + "; move it with to()");
}

}  // namespace

Tensor make_node(Shape shape, DType dtype, std::shared_ptr<Primitive> p, std::vector<Tensor> inputs) {
  Device d = inputs.empty() ? scope_device : Device::cpu();
  for (const Tensor& t : inputs)
    if (t.defined() && t.device().type != Device::Type::cpu) {
      d = t.device();
      break;
    }
  for (Tensor& t : inputs)
    if (t.defined()) t = operand_on(t, d, *p);
  return make_node_on(d, std::move(shape), dtype, std::move(p), std::move(inputs));
}

Tensor make_node_on(Device device, Shape shape, DType dtype, std::shared_ptr<Primitive> p,
                    std::vector<Tensor> inputs) {
  auto n = std::make_shared<Node>();
  n->shape = std::move(shape);
  n->dtype = dtype;
  n->device = device;
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

namespace wick {

Device default_device() { return detail::scope_device; }
DeviceScope::DeviceScope(Device d) : prev_(detail::scope_device) { detail::scope_device = d; }
DeviceScope::~DeviceScope() { detail::scope_device = prev_; }

}  // namespace wick
