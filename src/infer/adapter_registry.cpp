// AdapterRegistry: one base model, several LoRA adapters in memory, one of them wired in at a time.
// Switching replaces only the adapted modules' handles (LoRALinear modules built over the base
// Linear's own weight tensors), so its cost grows with the adapter, not with the model.
#include <algorithm>

#include "io/adapter_match.h"
#include "wick/adapter.h"

namespace wick {

AdapterRegistry::AdapterRegistry(std::shared_ptr<CausalLM> model) : model_(std::move(model)) {
  if (!model_) throw Error("AdapterRegistry: null model");
  for (const auto& [name, m] : model_->named_modules()) {
    if (dynamic_cast<LoRALinear*>(m.get()))
      throw Error("AdapterRegistry: the model already carries a LoRA adapter at \"" + name +
                  "\"; give the registry the base model");
    if (auto l = std::dynamic_pointer_cast<Linear>(m)) base_linears_.emplace(name, l);
  }
}

std::vector<std::string> AdapterRegistry::load(const std::string& name, const std::string& dir) {
  if (adapters_.count(name)) throw Error("AdapterRegistry: an adapter named \"" + name + "\" is already loaded");
  return add(name, read_peft_adapter(dir));
}

std::vector<std::string> AdapterRegistry::add(const std::string& name, LoraAdapter adapter) {
  if (name.empty()) throw Error("AdapterRegistry: an adapter needs a non-empty name");
  if (adapters_.count(name)) throw Error("AdapterRegistry: an adapter named \"" + name + "\" is already loaded");
  adapter.validate();
  const std::string src = adapter.source.empty() ? "adapter \"" + name + "\"" : adapter.source;
  // Checked now, against the base modules, so that activate() has nothing left to fail on.
  std::map<std::string, io::LinearShape> shapes;
  for (const auto& [mod, l] : base_linears_) shapes.emplace(mod, io::LinearShape{l->out_features(), l->in_features()});
  std::vector<std::string> targets = io::match_adapter(adapter, shapes, src);
  adapters_.emplace(name, std::move(adapter));
  return targets;
}

void AdapterRegistry::activate(const std::string& name) {
  const LoraAdapter& a = adapter(name);
  if (active_ == name) return;
  // Build every wrapper before touching the model, so a failure leaves the previous state.
  const PeftAdapterConfig& c = a.config;
  std::vector<std::pair<std::string, std::shared_ptr<LoRALinear>>> wrapped;
  wrapped.reserve(a.modules.size());
  Generator gen(0);  // the initial A it draws is lazy and replaced before anything evaluates it
  for (const auto& [mod, p] : a.modules) {
    auto l = std::make_shared<LoRALinear>(*base_linears_.at(mod), c.r, c.lora_alpha, c.lora_dropout, c.use_rslora, gen);
    l->update({{"lora_A.weight", p.a}, {"lora_B.weight", p.b}});
    wrapped.emplace_back(mod, std::move(l));
  }
  deactivate();
  for (auto& [mod, l] : wrapped) model_->replace_module(mod, std::move(l));
  active_ = name;
}

void AdapterRegistry::deactivate() {
  if (!active_) return;
  for (const auto& [mod, p] : adapters_.at(*active_).modules) model_->replace_module(mod, base_linears_.at(mod));
  active_.reset();
}

void AdapterRegistry::unload(const std::string& name) {
  adapter(name);  // unknown names throw
  if (active_ == name) deactivate();
  adapters_.erase(name);
}

std::vector<std::string> AdapterRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, a] : adapters_) out.push_back(name);
  return out;
}

const LoraAdapter& AdapterRegistry::adapter(const std::string& name) const {
  auto it = adapters_.find(name);
  if (it == adapters_.end()) {
    std::string list;
    for (const auto& [n, a] : adapters_) list += (list.empty() ? "" : ", ") + n;
    throw Error("AdapterRegistry: no adapter named \"" + name + "\" (loaded: " + (list.empty() ? "none" : list) + ")");
  }
  return it->second;
}

}  // namespace wick
