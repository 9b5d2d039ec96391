// Module::save / Module::load: the parameter map as a safetensors file.
#include <vector>

#include "wick/nn.h"
#include "wick/ops.h"
#include "wick/runtime.h"
#include "wick/safetensors.h"

namespace wick {

void Module::save(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  std::map<std::string, std::string> meta = metadata;
  meta.emplace("format", "pt");  // what transformers and PEFT write and expect
  save_safetensors(path, parameters(), meta);
}

void Module::load(const std::string& path, bool strict) {
  std::map<std::string, Tensor> file = load_safetensors(path);
  std::map<std::string, Tensor> current = parameters();
  std::map<std::string, Tensor> values;
  for (const auto& [name, t] : file) {
    auto it = current.find(name);
    if (it == current.end()) {
      if (strict) throw Error(path + ": tensor \"" + name + "\" is not a parameter of this " + kind());
      continue;
    }
    if (t.shape() != it->second.shape())
      throw Error(path + ": tensor \"" + name + "\" has shape " + shape_str(t.shape()) + ", the parameter " +
                  shape_str(it->second.shape()));
    if (!is_floating(t.dtype()) && is_floating(it->second.dtype()))
      throw Error(path + ": tensor \"" + name + "\" is " + dtype_name(t.dtype()) + ", the parameter " +
                  dtype_name(it->second.dtype()));
    values.emplace(name, t.dtype() == it->second.dtype() ? t : astype(t, it->second.dtype()));
  }
  if (strict)
    for (const auto& [name, t] : current)
      if (!file.count(name)) throw Error(path + ": missing tensor \"" + name + "\"");
  std::vector<Tensor> pending;
  for (auto& [name, t] : values) pending.push_back(t);
  eval(pending);
  update(values);
}

}  // namespace wick
