// An adapter fits a model when its config selects exactly the modules it has weights for.
#include "io/adapter_match.h"

#include "io/safetensors_header.h"

namespace wick::io {

std::vector<std::string> match_adapter(const LoraAdapter& adapter, const std::map<std::string, LinearShape>& linears,
                                       const std::string& source) {
  LoraOptions opts = adapter.config.to_options();
  std::vector<std::string> targets;
  for (const auto& [mod, shape] : linears)
    if (lora_targets_module(opts, mod)) targets.push_back(mod);
  if (targets.empty()) throw Error(source + ": the config's target_modules match no Linear module of the model");
  for (const auto& mod : targets)
    if (!adapter.modules.count(mod))
      throw Error(source + ": no LoRA weights for the targeted module " + quote_name(mod));
  for (const auto& [mod, p] : adapter.modules) {
    auto it = linears.find(mod);
    if (it == linears.end() || !lora_targets_module(opts, mod))
      throw Error(source + ": LoRA weights for " + quote_name(mod) +
                  ", which is not a Linear module of the model that the config targets");
    if (p.a.shape()[1] != it->second.in || p.b.shape()[0] != it->second.out)
      throw Error(source + ": " + quote_name(mod) + ": lora_A " + shape_str(p.a.shape()) + " and lora_B " +
                  shape_str(p.b.shape()) + " do not fit the module's weight [" + std::to_string(it->second.out) +
                  ", " + std::to_string(it->second.in) + "]");
  }
  return targets;
}

std::map<std::string, LinearShape> linear_shapes(const Module& root) {
  std::map<std::string, LinearShape> out;
  std::vector<std::string> inside;
  for (const auto& [name, m] : root.named_modules()) {
    if (dynamic_cast<LoRALinear*>(m.get())) {
      inside.push_back(name + ".");
      continue;
    }
    bool nested = false;
    for (const auto& p : inside) nested = nested || name.rfind(p, 0) == 0;
    if (nested) continue;
    if (auto* l = dynamic_cast<Linear*>(m.get())) out.emplace(name, LinearShape{l->out_features(), l->in_features()});
  }
  return out;
}

}  // namespace wick::io
