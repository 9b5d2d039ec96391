// Module: the parameter tree with dotted names, freezing, training mode and module surgery.
#include <algorithm>

#include "wick/nn.h"
#include "wick/ops.h"
#include "wick/runtime.h"

namespace wick {

namespace {

void check_local_name(const std::string& name, const char* what) {
  if (name.empty() || name.find('.') != std::string::npos)
    throw Error(std::string("Module: ") + what + " name \"" + name + "\" must be non-empty without dots");
}

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

/// Splits "a.b.c" into ("a.b", "c"); ("", "c") without a dot.
std::pair<std::string, std::string> split_last(const std::string& dotted) {
  size_t dot = dotted.rfind('.');
  if (dot == std::string::npos) return {"", dotted};
  return {dotted.substr(0, dot), dotted.substr(dot + 1)};
}

}  // namespace

Tensor Module::forward(const Tensor&) {
  throw Error(kind() + ": this module has no single-input forward");
}

void Module::register_parameter(const std::string& name, Tensor value, bool trainable) {
  check_local_name(name, "parameter");
  if (!value.defined()) throw Error("Module: parameter \"" + name + "\" is a null tensor");
  for (const auto& p : params_)
    if (p.name == name) throw Error("Module: parameter \"" + name + "\" registered twice");
  for (const auto& c : children_)
    if (c.first == name) throw Error("Module: \"" + name + "\" is already a child module");
  params_.push_back({name, std::move(value), trainable});
}

void Module::register_module(const std::string& name, std::shared_ptr<Module> module) {
  check_local_name(name, "module");
  if (!module) throw Error("Module: child \"" + name + "\" is null");
  for (const auto& c : children_)
    if (c.first == name) throw Error("Module: child module \"" + name + "\" registered twice");
  for (const auto& p : params_)
    if (p.name == name) throw Error("Module: \"" + name + "\" is already a parameter");
  module->train(training_);
  children_.emplace_back(name, std::move(module));
}

size_t Module::parameter_index(const std::string& name) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].name == name) return i;
  throw Error(kind() + ": no parameter \"" + name + "\"");
}

bool Module::has_parameter(const std::string& name) const {
  return std::any_of(params_.begin(), params_.end(), [&](const Param& p) { return p.name == name; });
}

size_t Module::child_index(const std::string& name) const {
  for (size_t i = 0; i < children_.size(); ++i)
    if (children_[i].first == name) return i;
  throw Error(kind() + ": no child module \"" + name + "\"");
}

void Module::collect(const std::string& prefix, bool only_trainable,
                     std::map<std::string, Tensor>& out) const {
  for (const auto& p : params_)
    if (!only_trainable || p.trainable) out.emplace(join(prefix, p.name), p.value);
  for (const auto& [name, m] : children_) m->collect(join(prefix, name), only_trainable, out);
}

std::map<std::string, Tensor> Module::parameters() const {
  std::map<std::string, Tensor> out;
  collect("", false, out);
  return out;
}

void Module::to(Device d) {
  std::map<std::string, Tensor> moved;
  std::vector<Tensor> copies;
  for (auto& [name, t] : parameters()) {
    if (t.device() == d) continue;
    Tensor c = wick::to(t, d);
    copies.push_back(c);
    moved.emplace(name, c);
  }
  eval(copies);
  update(moved);
}

Device Module::device() const {
  auto ps = parameters();
  return ps.empty() ? Device::cpu() : ps.begin()->second.device();
}

std::map<std::string, Tensor> Module::trainable_parameters() const {
  std::map<std::string, Tensor> out;
  collect("", true, out);
  return out;
}

Module::Param* Module::find_param(const std::string& dotted) {
  auto [path, local] = split_last(dotted);
  Module* owner = this;
  if (!path.empty()) {
    std::shared_ptr<Module> m = find_module(path);
    if (!m) return nullptr;
    owner = m.get();
  }
  for (auto& p : owner->params_)
    if (p.name == local) return &p;
  return nullptr;
}

void Module::update(const std::map<std::string, Tensor>& values) {
  std::vector<std::pair<Param*, const Tensor*>> todo;
  todo.reserve(values.size());
  for (const auto& [name, t] : values) {
    Param* p = find_param(name);
    if (!p) throw Error("Module::update: unknown parameter \"" + name + "\"");
    if (!t.defined()) throw Error("Module::update: " + name + ": null tensor");
    if (t.shape() != p->value.shape())
      throw Error("Module::update: " + name + ": shape " + shape_str(t.shape()) +
                  " does not match the parameter's " + shape_str(p->value.shape()));
    if (t.dtype() != p->value.dtype())
      throw Error("Module::update: " + name + ": dtype " + dtype_name(t.dtype()) +
                  " does not match the parameter's " + dtype_name(p->value.dtype()));
    todo.emplace_back(p, &t);
  }
  for (auto& [p, t] : todo) p->value = *t;
}

void Module::set_trainable(const std::string& prefix, const NamePredicate* which, bool on) {
  for (auto& p : params_)
    if (!which || (*which)(join(prefix, p.name))) p.trainable = on;
  for (auto& [name, m] : children_) m->set_trainable(join(prefix, name), which, on);
}

void Module::freeze() { set_trainable("", nullptr, false); }
void Module::unfreeze() { set_trainable("", nullptr, true); }
void Module::freeze(const NamePredicate& which) { set_trainable("", &which, false); }
void Module::unfreeze(const NamePredicate& which) { set_trainable("", &which, true); }

bool Module::is_trainable(const std::string& name) const {
  Param* p = const_cast<Module*>(this)->find_param(name);
  if (!p) throw Error("Module: unknown parameter \"" + name + "\"");
  return p->trainable;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

std::shared_ptr<Module> Module::find_module(const std::string& dotted_name) const {
  if (dotted_name.empty()) return nullptr;
  const Module* cur = this;
  std::shared_ptr<Module> found;
  size_t pos = 0;
  while (pos <= dotted_name.size()) {
    size_t dot = dotted_name.find('.', pos);
    std::string part = dotted_name.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    found = nullptr;
    for (const auto& [name, m] : cur->children_)
      if (name == part) {
        found = m;
        break;
      }
    if (!found) return nullptr;
    cur = found.get();
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return found;
}

void Module::replace_module(const std::string& dotted_name, std::shared_ptr<Module> module) {
  if (!module) throw Error("Module::replace_module: \"" + dotted_name + "\": null module");
  auto [path, local] = split_last(dotted_name);
  Module* parent = this;
  std::shared_ptr<Module> hold;
  if (!path.empty()) {
    hold = find_module(path);
    if (!hold) throw Error("Module::replace_module: no module \"" + path + "\"");
    parent = hold.get();
  }
  for (auto& [name, m] : parent->children_)
    if (name == local) {
      module->train(parent->training_);
      m = std::move(module);
      return;
    }
  throw Error("Module::replace_module: no module \"" + dotted_name + "\"");
}

void Module::collect_modules(const std::string& prefix,
                             std::vector<std::pair<std::string, std::shared_ptr<Module>>>& out) const {
  for (const auto& [name, m] : children_) {
    std::string full = join(prefix, name);
    out.emplace_back(full, m);
    m->collect_modules(full, out);
  }
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  collect_modules("", out);
  return out;
}

}  // namespace wick
