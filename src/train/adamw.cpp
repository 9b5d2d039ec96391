#include <cmath>
#include <map>
#include <tuple>

#include "graph/ops_common.h"
#include "wick/optim.h"

namespace wick {
namespace {

Tensor f32_scalar(double v) { return scalar(v, DType::f32); }

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
  Result r;
  // One AdamWStep op per (parameter dtype, gradient dtype, device): a LoRA model's few hundred
  // matrices update in one kernel launch per few dozen, each read where it lies. f64 parameters
  // update in f32 as the rest (the op takes f32 and half types).
  auto op_dtype = [](DType t) { return t == DType::f64 ? DType::f32 : t; };
  std::map<std::tuple<DType, DType, std::string>, std::vector<std::string>> groups;
  for (const auto& [name, p] : params) {
    auto g_it = grads.find(name);
    if (g_it == grads.end()) {
      r.params.emplace(name, p);
      continue;
    }
    if (g_it->second.shape() != p.shape())
      throw Error("AdamW: gradient of \"" + name + "\" has shape " + shape_str(g_it->second.shape()) + ", parameter " +
                  shape_str(p.shape()));
    groups[{op_dtype(p.dtype()), op_dtype(g_it->second.dtype()), p.device().str()}].push_back(name);
  }
  for (const auto& [key, names] : groups) {
    const DType pt = std::get<0>(key), gt = std::get<1>(key);
    const size_t n = names.size();
    std::vector<Tensor> ins(4 * n);
    std::vector<bool> decays(n);
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      const std::string& name = names[i];
      ins[i] = astype(params.at(name), pt);
      ins[n + i] = astype(grads.at(name), gt);
      ins[2 * n + i] = astype(find_or_throw(m, name, "first moment"), DType::f32);
      ins[3 * n + i] = astype(find_or_throw(v, name, "second moment"), DType::f32);
      for (size_t k = 1; k < 4; ++k)
        if (ins[k * n + i].shape() != ins[i].shape())
          throw Error("AdamW: the moments of \"" + name + "\" have shape " +
                      shape_str(ins[k * n + i].shape()) + ", the parameter " +
                      shape_str(ins[i].shape()));
      decays[i] = !(opts_.no_decay && opts_.no_decay(name));
      total += ins[i].numel();
    }
    for (const Tensor& scalar : s) ins.push_back(astype(scalar, DType::f32));
    Tensor out = detail::make_node(
        {3, total}, DType::f32,
        std::make_shared<detail::AdamWStep>(opts_.beta1, opts_.beta2, opts_.eps, decays),
        std::move(ins));
    // Each parameter's results are views of the op's rows.
    int64_t at = 0;
    for (const std::string& name : names) {
      const Tensor& p = params.at(name);
      const int64_t size = p.numel();
      auto row = [&](int64_t k) { return reshape(slice(out, 0, k, k + 1), {-1}); };
      auto part = [&](int64_t k) { return reshape(slice(row(k), 0, at, at + size), p.shape()); };
      r.params.emplace(name, astype(part(0), p.dtype()));
      r.m.emplace(name, part(1));
      r.v.emplace(name, part(2));
      at += size;
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
