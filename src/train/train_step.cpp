#include "train/train_step.h"

#include <utility>

#include "wick/error.h"
#include "wick/losses.h"
#include "wick/memory.h"
#include "wick/ops.h"
#include "wick/runtime.h"

namespace wick::detail {
namespace {

std::vector<Tensor> take(const std::vector<Tensor>& in, size_t from, size_t n) {
  return {in.begin() + static_cast<std::ptrdiff_t>(from), in.begin() + static_cast<std::ptrdiff_t>(from + n)};
}

void append(std::vector<Tensor>& out, const std::vector<Tensor>& more) { out.insert(out.end(), more.begin(), more.end()); }

}  // namespace

TrainStep::TrainStep(CausalLM& model, std::vector<std::string> names, AdamWOptions adam, double max_grad_norm,
                     bool compiled, bool cuda_graphs)
    : model_(model), names_(std::move(names)), adam_(std::move(adam)), max_grad_norm_(max_grad_norm),
      compiled_(compiled) {
  if (names_.empty()) throw Error("train: nothing to train (no trainable parameters)");
  head_ = model_.config().tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  const size_t n = names_.size();
  fused_fn_ = [this, n](const std::vector<Tensor>& in) {
    std::vector<Tensor> lg = loss_and_grads(take(in, 0, n), {in[3 * n + 3], in[3 * n + 4], in[3 * n + 5]});
    std::vector<Tensor> up = update(take(in, 0, n), take(lg, 1, n), take(in, n, n), take(in, 2 * n, n), take(in, 3 * n, 3));
    std::vector<Tensor> out = {lg[0]};
    append(out, up);
    return out;
  };
  micro_fn_ = [this, n](const std::vector<Tensor>& in) {
    std::vector<Tensor> lg = loss_and_grads(take(in, 0, n), {in[2 * n], in[2 * n + 1], in[2 * n + 2]});
    std::vector<Tensor> out = {lg[0]};
    for (size_t i = 0; i < n; ++i) out.push_back(in[n + i] + lg[1 + i]);
    return out;
  };
  apply_fn_ = [this, n](const std::vector<Tensor>& in) {
    return update(take(in, 0, n), take(in, n, n), take(in, 2 * n, n), take(in, 3 * n, n), take(in, 4 * n, 3));
  };
  eval_fn_ = [this, n](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{summed_loss(take(in, 0, n), in[n], in[n + 1])};
  };
  // The one-micro-batch step may replay as a CUDA graph: its graphs keep their memory between
  // calls, which is the step's own working set, since nothing else runs between steps. The
  // accumulation and evaluation functions run alongside it, so each would hold a second working
  // set: they launch plainly.
  CompileOptions step, plain;
  step.cuda_graphs = cuda_graphs;
  plain.cuda_graphs = false;
  if (compiled_) {
    fns_.push_back(compile(fused_fn_, step));
    for (const Function* f : {&micro_fn_, &apply_fn_, &eval_fn_}) fns_.push_back(compile(*f, plain));
  }
}

Tensor TrainStep::summed_loss(const std::vector<Tensor>& p, const Tensor& ids, const Tensor& labels) {
  TensorMap current = model_.trainable_parameters(), q;
  for (size_t i = 0; i < names_.size(); ++i) q.emplace(names_[i], p[i]);
  model_.update(q);
  Tensor h = model_.hidden_states(ids);
  Tensor head = model_.parameters().at(head_);
  // The model's parameters go back to what they were: the graph holds the ones it used.
  model_.update(current);
  const int64_t t = ids.shape()[1];
  CrossEntropyOptions ce;
  ce.reduction = Reduction::sum;
  // Position i predicts token i + 1 (transformers' causal-LM loss); the [tokens, vocab] logits
  // are never materialised.
  return linear_cross_entropy(slice(h, 1, 0, t - 1), head, slice(labels, 1, 1, t), ce);
}

std::vector<Tensor> TrainStep::loss_and_grads(const std::vector<Tensor>& params, const MicroBatch& mb) {
  const size_t n = params.size();
  std::vector<int> argnums;
  for (size_t i = 0; i < n; ++i) argnums.push_back(static_cast<int>(i));
  Function loss_fn = [&](const std::vector<Tensor>& p) {
    return std::vector<Tensor>{summed_loss(p, mb.ids, mb.labels) * mb.inv_targets};
  };
  auto [values, grads] = value_and_grad(loss_fn, argnums)(params);
  std::vector<Tensor> out = {values[0]};
  append(out, grads);
  return out;
}

std::vector<Tensor> TrainStep::update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                                      const std::vector<Tensor>& m, const std::vector<Tensor>& v,
                                      const std::vector<Tensor>& scalars) {
  TensorMap p, g, mm, vv;
  for (size_t i = 0; i < names_.size(); ++i) {
    p.emplace(names_[i], params[i]);
    g.emplace(names_[i], grads[i]);
    mm.emplace(names_[i], m[i]);
    vv.emplace(names_[i], v[i]);
  }
  Tensor norm;
  if (max_grad_norm_ > 0) {
    std::tie(g, norm) = clip_grad_norm(g, max_grad_norm_);
  } else {
    norm = global_norm(g);
  }
  AdamW::Result r = adam_.update(p, g, mm, vv, scalars);
  std::vector<Tensor> out = {norm};
  for (const auto& name : names_) out.push_back(r.params.at(name));
  for (const auto& name : names_) out.push_back(r.m.at(name));
  for (const auto& name : names_) out.push_back(r.v.at(name));
  return out;
}

StepResult TrainStep::step(const StepState& s, const std::vector<MicroBatch>& micro, const std::vector<Tensor>& scalars) {
  if (micro.empty()) throw Error("train: a step needs at least one micro-batch");
  const size_t n = names_.size();
  const Device dev = model_.device();
  DeviceScope on_device(dev);
  // Batches and per-step scalars are made on the host; they move with the step's graph, from
  // pinned memory on a GPU so that the copies are queued without the host waiting for them.
  auto call = [&](size_t which, const Function& fn, std::vector<Tensor> in) {
    for (Tensor& t : in)
      t = to(dev.type == Device::Type::cuda && t.device().type == Device::Type::cpu ? pin_memory(t)
                                                                                    : t,
             dev);
    return compiled_ ? fns_[which](in) : fn(in);
  };
  std::vector<Tensor> out;
  Tensor loss;
  if (micro.size() == 1) {
    std::vector<Tensor> in = s.params;
    append(in, s.m);
    append(in, s.v);
    append(in, scalars);
    append(in, {micro[0].ids, micro[0].labels, micro[0].inv_targets});
    std::vector<Tensor> r = call(0, fused_fn_, in);
    loss = r[0];
    out = take(r, 1, 3 * n + 1);
  } else {
    std::vector<Tensor> acc;
    for (const Tensor& p : s.params) acc.push_back(zeros(p.shape(), DType::f32));
    for (const MicroBatch& mb : micro) {
      std::vector<Tensor> in = s.params;
      append(in, acc);
      append(in, {mb.ids, mb.labels, mb.inv_targets});
      std::vector<Tensor> r = call(1, micro_fn_, in);
      loss = loss.defined() ? loss + r[0] : r[0];
      acc = take(r, 1, n);
      // Each micro-batch is evaluated before the next is built, so only one micro-batch's
      // activations are alive at a time (the point of accumulating).
      std::vector<Tensor> pending = acc;
      pending.push_back(loss);
      eval(pending);
    }
    std::vector<Tensor> in = s.params;
    append(in, acc);
    append(in, s.m);
    append(in, s.v);
    append(in, scalars);
    out = call(2, apply_fn_, in);
  }
  StepResult res;
  res.loss = loss;
  res.grad_norm = out[0];
  res.next.params = take(out, 1, n);
  res.next.m = take(out, 1 + n, n);
  res.next.v = take(out, 1 + 2 * n, n);
  return res;
}

Tensor TrainStep::loss_sum(const std::vector<Tensor>& params, const Tensor& ids, const Tensor& labels) {
  const Device dev = model_.device();
  DeviceScope on_device(dev);
  std::vector<Tensor> in = params;
  append(in, {to(ids, dev), to(labels, dev)});
  return (compiled_ ? fns_[3](in) : eval_fn_(in))[0];
}

CompileStats TrainStep::stats() const { return compiled_ ? fns_[0].stats() : CompileStats{}; }

}  // namespace wick::detail
