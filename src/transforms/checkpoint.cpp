// Gradient checkpointing. The block's forward graph is built without retention, so evaluation
// frees its intermediates as usual; each output is wrapped in a CheckpointOut node whose inputs
// are the block's inputs (what the backward pass needs) plus the output itself (what evaluation
// needs). Its vjp rebuilds the block from the inputs and differentiates the rebuilt graph.
#include "graph/ops_common.h"
#include "transforms/autodiff.h"

namespace wick::detail {
namespace {

class CheckpointOut : public Primitive {
 public:
  CheckpointOut(Function f, size_t i) : fn(std::move(f)), index(i) {}
  const char* name() const override { return "checkpoint"; }
  bool is_view() const override { return true; }
  void eval_cpu(std::span<Node* const> in, Node& out) override {
    const Node& v = *in.back();
    out.storage = v.storage;
    out.strides = v.strides;
    out.offset = v.offset;
  }
  std::vector<Tensor> vjp(const std::vector<Tensor>& primals, const Tensor&, const Tensor& cot,
                          const std::vector<bool>& need) override {
    std::vector<Tensor> args(primals.begin(), primals.end() - 1);
    std::vector<bool> diff(need.begin(), need.end() - 1);
    for (size_t i = 0; i < args.size(); ++i) diff[i] = diff[i] && is_floating(args[i].dtype());
    Function pick = [this](const std::vector<Tensor>& xs) {
      std::vector<Tensor> outs = fn(xs);
      if (index >= outs.size())
        throw Error("checkpoint: the function returned " + std::to_string(outs.size()) +
                    " outputs on recomputation, fewer than before");
      return std::vector<Tensor>{outs[index]};
    };
    // The recomputation waits for the cotangent: otherwise evaluation could recompute every
    // checkpointed block early and hold all their intermediates at once.
    auto [outs, grads] = traced_vjp(pick, args, diff, {cot}, false, cot);
    std::vector<Tensor> d(primals.size());
    for (size_t i = 0, g = 0; i < args.size(); ++i)
      if (diff[i]) d[i] = grads[g++];
    return d;
  }

  Function fn;
  size_t index;
};

}  // namespace
}  // namespace wick::detail

namespace wick {

Function checkpoint(Function fn) {
  return [fn = std::move(fn)](const std::vector<Tensor>& xs) {
    std::vector<Tensor> outs;
    {
      detail::RetainScope off(false);
      outs = fn(xs);
    }
    std::vector<Tensor> wrapped;
    for (size_t i = 0; i < outs.size(); ++i) {
      std::vector<Tensor> ins = xs;
      ins.push_back(outs[i]);
      wrapped.push_back(detail::make_node(outs[i].shape(), outs[i].dtype(),
                                          std::make_shared<detail::CheckpointOut>(fn, i), std::move(ins)));
    }
    return wrapped;
  };
}

}  // namespace wick
