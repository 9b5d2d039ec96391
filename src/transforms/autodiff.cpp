// Reverse-mode differentiation over the lazy graph. The function is called once with fresh
// handles for the differentiated inputs while every node it builds is retained (keeps its
// inputs and primitive after evaluation); the backward pass then walks the retained nodes that
// lie between those inputs and the outputs, in reverse topological order, asking each
// primitive for its vjp. The result is another lazy graph.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "graph/ops_common.h"
#include "graph/primitives.h"
#include "graph/vjp_common.h"
#include "transforms/autodiff.h"
#include "wick/transforms.h"

namespace wick::detail {

namespace {

/// A view of input 0 that also lists input 1, so evaluation computes input 1 first.
class ViewAfter : public Primitive {
 public:
  const char* name() const override { return "view_after"; }
  bool is_view() const override { return true; }
  void eval_cpu(std::span<Node* const> in, Node& out) override {
    out.storage = in[0]->storage;
    out.strides = in[0]->strides;
    out.offset = in[0]->offset;
  }
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const Tensor& g,
                          const std::vector<bool>&) override {
    return {g, Tensor()};
  }
};

}  // namespace

Tensor fresh_handle(const Tensor& x, const Tensor& after) {
  // A view primitive: no copy, and a node of its own to differentiate with respect to.
  if (after.defined()) return make_node(x.shape(), x.dtype(), std::make_shared<ViewAfter>(), {x, after});
  return make_node(x.shape(), x.dtype(), std::make_shared<Reshape>(), {x});
}

void release_retained(const std::vector<Tensor>& roots) {
  // Only the outermost transform drops retention: an enclosing one may differentiate again.
  if (RetainScope::active()) return;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (const Tensor& r : roots)
    if (r.defined() && r.node()->retained && seen.insert(r.node()).second) stack.push_back(r.node());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Tensor& in : n->inputs)
      if (in.node()->retained && seen.insert(in.node()).second) stack.push_back(in.node());
  }
  // Nodes that evaluation has not reached yet will detach when it does. Nodes the function
  // evaluated itself keep their inputs until they die: detaching them here could race with a
  // worker that is finishing them.
  for (Node* n : seen) n->retained = false;
}

std::vector<Tensor> backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& cots,
                             const std::vector<Tensor>& wrt) {
  std::unordered_set<Node*> targets;
  for (const Tensor& w : wrt) targets.insert(w.node());

  // Post-order walk over retained nodes; `active` marks nodes that depend on a target.
  std::unordered_map<Node*, bool> active;
  std::vector<Tensor> order;  // topological, inputs first
  std::vector<std::pair<Tensor, size_t>> stack;
  for (const Tensor& o : outputs) {
    if (active.count(o.node())) continue;
    active[o.node()] = false;
    stack.emplace_back(o, 0);
    while (!stack.empty()) {
      auto& [t, i] = stack.back();
      Node* n = t.node();
      bool expand = !targets.count(n) && n->retained && n->primitive;
      if (expand && i < n->inputs.size()) {
        const Tensor& in = n->inputs[i++];
        if (!active.count(in.node())) {
          active[in.node()] = false;
          stack.emplace_back(in, 0);
        }
        continue;
      }
      bool a = targets.count(n) > 0;
      if (expand)
        for (const Tensor& in : n->inputs) a = a || active[in.node()];
      active[n] = a;
      if (a) order.push_back(t);
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> cot;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!cots[i].defined()) continue;
    Tensor& c = cot[outputs[i].node()];
    c = add_cotangents(c, cots[i]);
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = it->node();
    if (targets.count(n)) continue;
    auto found = cot.find(n);
    if (found == cot.end() || !found->second.defined()) continue;
    Tensor g = found->second;
    cot.erase(found);  // drop our handle early: the cotangent lives on in the graph
    std::vector<bool> need(n->inputs.size());
    bool any = false;
    for (size_t i = 0; i < need.size(); ++i) any |= need[i] = active[n->inputs[i].node()];
    if (!any) continue;
    if (g.dtype() != n->dtype) g = astype(g, n->dtype);
    // Constants a rule builds (masks, ones) belong on the node's device.
    DeviceScope on_device(n->device);
    std::vector<Tensor> d = n->primitive->vjp(n->inputs, *it, g, need);
    for (size_t i = 0; i < need.size(); ++i) {
      if (!need[i] || i >= d.size() || !d[i].defined()) continue;
      Tensor& c = cot[n->inputs[i].node()];
      c = add_cotangents(c, d[i]);
    }
  }
  std::vector<Tensor> grads;
  for (const Tensor& w : wrt) {
    auto f = cot.find(w.node());
    Tensor g = f != cot.end() && f->second.defined() ? f->second : zeros_like(w);
    if (g.dtype() != w.dtype()) g = astype(g, w.dtype());
    if (g.shape() != w.shape()) g = reshape(g, w.shape());
    grads.push_back(g);
  }
  return grads;
}

std::pair<std::vector<Tensor>, std::vector<Tensor>> traced_vjp(const Function& fn,
                                                               const std::vector<Tensor>& args,
                                                               const std::vector<bool>& diff,
                                                               const std::vector<Tensor>& cots,
                                                               bool cots_are_ones,
                                                               const Tensor& after) {
  std::vector<Tensor> inputs = args, wrt;
  for (size_t i = 0; i < args.size(); ++i)
    if (diff[i]) {
      if (!args[i].defined()) throw Error("vjp: argument " + std::to_string(i) + " is a null tensor");
      if (!is_floating(args[i].dtype()))
        throw Error("vjp: argument " + std::to_string(i) + " has dtype " + dtype_name(args[i].dtype()) +
                    "; only floating tensors can be differentiated");
      inputs[i] = fresh_handle(args[i], after);
      wrt.push_back(inputs[i]);
    }
  std::vector<Tensor> outs;
  {
    RetainScope retain;
    outs = fn(inputs);
  }
  std::vector<Tensor> seeds = cots;
  if (cots_are_ones) {
    if (outs.empty() || !outs[0].defined()) throw Error("value_and_grad: the function returned no loss");
    if (outs[0].numel() != 1)
      throw Error("value_and_grad: the loss must have one element, got shape " + shape_str(outs[0].shape()));
    if (!is_floating(outs[0].dtype()))
      throw Error("value_and_grad: the loss must be floating, got " + std::string(dtype_name(outs[0].dtype())));
    seeds.assign(outs.size(), Tensor());
    seeds[0] = ones_like(outs[0]);
  } else {
    if (cots.size() != outs.size())
      throw Error("vjp: " + std::to_string(cots.size()) + " cotangents for " + std::to_string(outs.size()) +
                  " outputs");
    for (size_t i = 0; i < outs.size(); ++i)
      if (cots[i].defined() && cots[i].shape() != outs[i].shape())
        throw Error("vjp: cotangent " + std::to_string(i) + " has shape " + shape_str(cots[i].shape()) +
                    ", output has " + shape_str(outs[i].shape()));
  }
  std::vector<Tensor> grads = backward(outs, seeds, wrt);
  release_retained(outs);
  return {outs, grads};
}

}  // namespace wick::detail

namespace wick {

std::pair<std::vector<Tensor>, std::vector<Tensor>> vjp(const Function& fn,
                                                        const std::vector<Tensor>& primals,
                                                        const std::vector<Tensor>& cotangents) {
  return detail::traced_vjp(fn, primals, std::vector<bool>(primals.size(), true), cotangents, false);
}

ValueAndGradFn value_and_grad(Function fn, std::vector<int> argnums) {
  return [fn = std::move(fn), argnums = std::move(argnums)](const std::vector<Tensor>& args) {
    std::vector<bool> diff(args.size(), false);
    for (int a : argnums) {
      if (a < 0 || a >= static_cast<int>(args.size()))
        throw Error("value_and_grad: argnum " + std::to_string(a) + " but " + std::to_string(args.size()) +
                    " arguments");
      diff[a] = true;
    }
    auto [outs, grads] = detail::traced_vjp(fn, args, diff, {}, true);
    // Gradients in the order argnums lists them.
    std::vector<int> sorted(argnums);
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::vector<Tensor> ordered;
    for (int a : argnums)
      ordered.push_back(grads[std::lower_bound(sorted.begin(), sorted.end(), a) - sorted.begin()]);
    return std::make_pair(outs, ordered);
  };
}

Function grad(Function fn, std::vector<int> argnums) {
  auto vg = value_and_grad(std::move(fn), std::move(argnums));
  return [vg](const std::vector<Tensor>& args) { return vg(args).second; };
}

std::pair<Tensor, TensorMap> value_and_grad(const std::function<Tensor(const TensorMap&)>& fn,
                                            const TensorMap& params) {
  std::vector<Tensor> args;
  std::vector<std::string> names;
  for (const auto& [name, t] : params) {
    names.push_back(name);
    args.push_back(t);
  }
  Function wrapped = [&](const std::vector<Tensor>& xs) {
    TensorMap m;
    for (size_t i = 0; i < xs.size(); ++i) m.emplace(names[i], xs[i]);
    return std::vector<Tensor>{fn(m)};
  };
  auto [outs, grads] = detail::traced_vjp(wrapped, args, std::vector<bool>(args.size(), true), {}, true);
  TensorMap g;
  for (size_t i = 0; i < names.size(); ++i) g.emplace(names[i], grads[i]);
  return {outs[0], g};
}

Tensor stop_gradient(const Tensor& x) {
  detail::require_defined("stop_gradient", {&x});
  return detail::make_node(x.shape(), x.dtype(), std::make_shared<detail::StopGradient>(), {x});
}

}  // namespace wick
