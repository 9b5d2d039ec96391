// SGD, learning-rate schedules, gradient clipping and accumulation.
#include <cmath>
#include <map>
#include <numbers>

#include "graph/ops_common.h"
#include "wick/optim.h"

namespace wick {

Sgd::Sgd(SgdOptions o) : opts_(o) {
  if (o.lr < 0 || o.momentum < 0 || o.weight_decay < 0)
    throw Error("SGD: lr, momentum and weight_decay must be >= 0");
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
    throw Error("SGD: Nesterov momentum requires a momentum and zero dampening");
}

TensorMap Sgd::step(const TensorMap& params, const TensorMap& grads, double lr) {
  TensorMap out;
  for (const auto& [name, p] : params) {
    auto g_it = grads.find(name);
    if (g_it == grads.end()) {
      out.emplace(name, p);
      continue;
    }
    Tensor d = astype(g_it->second, DType::f32);
    Tensor pf = astype(p, DType::f32);
    if (opts_.weight_decay != 0) d = d + pf * opts_.weight_decay;
    if (opts_.momentum != 0) {
      auto b = buf_.find(name);
      // torch: the first step's buffer is the gradient itself (no dampening).
      Tensor nb = b == buf_.end() ? d : b->second * opts_.momentum + d * (1 - opts_.dampening);
      buf_[name] = nb;
      d = opts_.nesterov ? d + nb * opts_.momentum : nb;
    }
    out.emplace(name, astype(pf - d * lr, p.dtype()));
  }
  return out;
}

TensorMap Sgd::state_dict() const {
  TensorMap s;
  for (const auto& [name, t] : buf_) s.emplace("momentum." + name, t);
  return s;
}

void Sgd::load_state_dict(const TensorMap& state) {
  TensorMap b;
  for (const auto& [key, value] : state) {
    if (key.rfind("momentum.", 0) != 0) throw Error("SGD state: unexpected entry \"" + key + "\"");
    b.emplace(key.substr(9), astype(value, DType::f32));
  }
  buf_ = std::move(b);
}

double LrSchedule::lr(int64_t step) const {
  if (step < warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (kind == Kind::constant) return base_lr;
  int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(span);
  if (kind == Kind::linear) return base_lr * std::max(0.0, 1.0 - progress);
  // Cosine to min_lr (transformers' cosine_with_min_lr: the factor is floored at min_lr/base).
  double floor = base_lr > 0 ? min_lr / base_lr : 0.0;
  double f = 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(progress, 1.0)));
  return base_lr * (f * (1.0 - floor) + floor);
}

LrSchedule::Kind LrSchedule::parse(const std::string& name) {
  if (name == "constant") return Kind::constant;
  if (name == "linear") return Kind::linear;
  if (name == "cosine") return Kind::cosine;
  throw Error("unknown learning-rate schedule \"" + name + "\" (constant, linear or cosine)");
}

Tensor global_norm(const TensorMap& grads) {
  // torch takes the norm of the per-tensor norms, in f32. Small gradients are flattened into
  // one vector per dtype and reduced at once (a few hundred LoRA matrices were a few kernels
  // each); a large one is reduced alone (flattening would copy it). The same value up to
  // rounding.
  constexpr int64_t kFlatLimit = int64_t(1) << 20;
  std::map<DType, std::vector<Tensor>> small;
  std::vector<Tensor> sums;
  auto sum_of_squares = [](const Tensor& x) { return reshape(sum(square(astype(x, DType::f32))), {1}); };
  for (const auto& [name, g] : grads) {
    if (g.numel() <= kFlatLimit) small[g.dtype()].push_back(reshape(g, {-1}));
    else sums.push_back(sum_of_squares(g));
  }
  for (auto& entry : small)
    sums.push_back(sum_of_squares(entry.second.size() == 1 ? entry.second[0] : concatenate(entry.second, 0)));
  if (sums.empty()) return scalar(0.0, DType::f32);
  return sqrt(sums.size() == 1 ? reshape(sums[0], {}) : sum(concatenate(sums, 0)));
}

std::pair<TensorMap, Tensor> clip_grad_norm(const TensorMap& grads, double max_norm) {
  if (!(max_norm > 0)) throw Error("clip_grad_norm: max_norm must be positive");
  Tensor norm = global_norm(grads);
  // torch multiplies by min(1, max_norm / (norm + 1e-6)) unconditionally.
  Tensor coef = minimum(max_norm / (norm + 1e-6), 1.0);
  TensorMap out;
  for (const auto& [name, g] : grads) out.emplace(name, astype(astype(g, DType::f32) * coef, g.dtype()));
  return {out, norm};
}

void GradAccumulator::add(const TensorMap& grads) {
  for (const auto& [name, g] : grads) {
    auto it = sum_.find(name);
    if (it == sum_.end()) sum_.emplace(name, g);
    else it->second = it->second + g;
  }
  ++count_;
}

TensorMap GradAccumulator::average() const {
  if (count_ == 0) throw Error("GradAccumulator: no gradients were added");
  TensorMap out;
  for (const auto& [name, g] : sum_) out.emplace(name, count_ == 1 ? g : g / static_cast<double>(count_));
  return out;
}

void GradAccumulator::reset() {
  sum_.clear();
  count_ = 0;
}

}  // namespace wick
