#include <cmath>
#include <map>
#include <tuple>

#include "graph/ops_common.h"
#include "wick/optim.h"

namespace wick {
namespace {

Tensor f32_scalar(double v) { return scalar(v, DType::f32); }

// Parameters of at most this many elements are updated together (see AdamW::update).
constexpr int64_t kFlatLimit = int64_t(1) << 20;

const Tensor& find_or_throw(const TensorMap& m, const std::string& name, const char* what) {
  auto it = m.find(name);
  if (it == m.end()) throw Error(std::string("AdamW: no ") + what + " for parameter \"" + name + "\"");
  return it->second;
}

}  // namespace

AdamW::AdamW(AdamWOptions o) : opts_(o) {
  if (o.lr < 0 || o.eps < 0 || o.weight_decay < 0 || o.beta1 < 0 || o.beta1 >= 1 || o.beta2 < 0 || o.beta2 >= 1)
    throw Error("AdamW: invalid options (need lr, eps, weight_decay >= 0 and betas in [0, 1))");
}

std::vector<Tensor> AdamW::step_scalars(double lr) const {
  // Host arithmetic in double, as torch does with Python floats; the kernels see f32.
  double t = static_cast<double>(t_ + 1);
  double bc1 = 1 - std::pow(opts_.beta1, t), bc2 = 1 - std::pow(opts_.beta2, t);
  return {f32_scalar(1 - lr * opts_.weight_decay), f32_scalar(lr / bc1), f32_scalar(std::sqrt(bc2))};
}

AdamW::Result AdamW::update(const TensorMap& params, const TensorMap& grads, const TensorMap& m,
                            const TensorMap& v, const std::vector<Tensor>& s) const {
  const Tensor &decay = s.at(0), &step_size = s.at(1), &bc2_sqrt = s.at(2);
  const double b1 = opts_.beta1, b2 = opts_.beta2;
  Result r;
  // Small parameters that share their dtype, their gradient's dtype and the decay rule update
  // as one flat vector: the rule is elementwise, so the values are the same, and a few hundred
  // LoRA matrices cost a few kernels instead of a few each (their launches, not their bytes,
  // were the cost). A large one updates alone: flattening would copy it for nothing.
  std::map<std::tuple<DType, DType, bool>, std::vector<std::string>> small;
  std::vector<std::vector<std::string>> groups;
  for (const auto& [name, p] : params) {
    auto g_it = grads.find(name);
    if (g_it == grads.end()) {
      r.params.emplace(name, p);
      continue;
    }
    if (g_it->second.shape() != p.shape())
      throw Error("AdamW: gradient of \"" + name + "\" has shape " + shape_str(g_it->second.shape()) + ", parameter " +
                  shape_str(p.shape()));
    const bool decays = !(opts_.no_decay && opts_.no_decay(name));
    if (p.numel() <= kFlatLimit) small[{p.dtype(), g_it->second.dtype(), decays}].push_back(name);
    else groups.push_back({name});
  }
  for (auto& entry : small) groups.push_back(std::move(entry.second));
  for (const std::vector<std::string>& names : groups) {
    const Tensor& first = params.at(names[0]);
    const DType dtype = first.dtype();
    const bool decays = !(opts_.no_decay && opts_.no_decay(names[0]));
    auto flat = [&](auto&& get) {
      std::vector<Tensor> parts;
      for (const auto& name : names) parts.push_back(reshape(get(name), {-1}));
      return parts.size() == 1 ? parts[0] : concatenate(parts, 0);
    };
    Tensor pf = astype(flat([&](const std::string& n) { return params.at(n); }), DType::f32);
    Tensor g = astype(flat([&](const std::string& n) { return grads.at(n); }), DType::f32);
    Tensor m0 = flat([&](const std::string& n) { return astype(find_or_throw(m, n, "first moment"), DType::f32); });
    Tensor v0 = flat([&](const std::string& n) { return astype(find_or_throw(v, n, "second moment"), DType::f32); });
    // torch: p.mul_(1 - lr·wd); m.mul_(β1).add_(g, 1-β1); v.mul_(β2).addcmul_(g, g, 1-β2);
    //        denom = v.sqrt() / sqrt(bc2) + eps; p.addcdiv_(m, denom, -lr/bc1)
    Tensor p1 = decays ? pf * decay : pf;
    Tensor m1 = m0 * b1 + g * (1 - b1);
    Tensor v1 = v0 * b2 + (g * (1 - b2)) * g;
    Tensor denom = sqrt(v1) / bc2_sqrt + opts_.eps;
    Tensor p2 = astype(p1 - step_size * (m1 / denom), dtype);
    // Each parameter's results are views of the flat ones.
    int64_t at = 0;
    for (const auto& name : names) {
      const Shape& shape = params.at(name).shape();
      const int64_t n = numel(shape);
      r.params.emplace(name, reshape(slice(p2, 0, at, at + n), shape));
      r.m.emplace(name, reshape(slice(m1, 0, at, at + n), shape));
      r.v.emplace(name, reshape(slice(v1, 0, at, at + n), shape));
      at += n;
    }
  }
  return r;
}

TensorMap AdamW::step(const TensorMap& params, const TensorMap& grads, double lr) {
  TensorMap m = m_, v = v_;
  for (const auto& [name, p] : params) {
    if (!grads.count(name)) continue;
    if (!m.count(name)) m.emplace(name, zeros(p.shape(), DType::f32));
    if (!v.count(name)) v.emplace(name, zeros(p.shape(), DType::f32));
  }
  Result r = update(params, grads, m, v, step_scalars(lr));
  for (auto& [name, t] : r.m) m_[name] = t;
  for (auto& [name, t] : r.v) v_[name] = t;
  ++t_;
  return r.params;
}

void AdamW::set_state(TensorMap m, TensorMap v, int64_t t) {
  m_ = std::move(m);
  v_ = std::move(v);
  t_ = t;
}

TensorMap AdamW::state_dict() const {
  TensorMap s;
  for (const auto& [name, t] : m_) s.emplace("m." + name, t);
  for (const auto& [name, t] : v_) s.emplace("v." + name, t);
  s.emplace("step", scalar(static_cast<double>(t_), DType::i64));
  return s;
}

void AdamW::load_state_dict(const TensorMap& state) {
  TensorMap m, v;
  int64_t t = -1;
  for (const auto& [key, value] : state) {
    if (key == "step") {
      t = value.item<int64_t>();
    } else if (key.rfind("m.", 0) == 0) {
      m.emplace(key.substr(2), astype(value, DType::f32));
    } else if (key.rfind("v.", 0) == 0) {
      v.emplace(key.substr(2), astype(value, DType::f32));
    } else {
      throw Error("AdamW state: unexpected entry \"" + key + "\"");
    }
  }
  if (t < 0) throw Error("AdamW state: missing or negative \"step\"");
  for (const auto& [name, mt] : m)
    if (!v.count(name) || v.at(name).shape() != mt.shape())
      throw Error("AdamW state: moments of \"" + name + "\" are missing or differ in shape");
  if (m.size() != v.size()) throw Error("AdamW state: first and second moments name different parameters");
  set_state(std::move(m), std::move(v), t);
}

}  // namespace wick
