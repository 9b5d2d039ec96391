// Loading a PEFT LoRA adapter folder onto a model: adapter_config.json decides which Linear
// layers get a LoRALinear (through apply_lora) and adapter_model.safetensors fills lora_A/lora_B.
#include <set>

#include "io/files.h"
#include "wick/adapter.h"
#include "wick/nn.h"
#include "wick/ops.h"
#include "wick/runtime.h"
#include "wick/safetensors.h"

namespace wick {

namespace {

constexpr const char* kPrefix = "base_model.model.";

}  // namespace

std::vector<std::string> load_peft_adapter(Module& root, const std::string& dir) {
  std::string config_path = io::join_path(dir, "adapter_config.json");
  std::string weights_path = io::join_path(dir, "adapter_model.safetensors");
  if (!io::is_file(config_path)) throw Error(config_path + ": missing (not a PEFT adapter folder?)");
  if (!io::is_file(weights_path)) throw Error(weights_path + ": missing");
  LoraOptions opts = PeftAdapterConfig::load(config_path).to_options();
  std::map<std::string, Tensor> file = load_safetensors(weights_path, DType::f32);

  // Prefixes are checked before the model is touched; names and shapes can only be checked once
  // the targets are wrapped, so such an error leaves the model wrapped (with B = 0).
  std::map<std::string, Tensor> values;
  for (const auto& [name, t] : file) {
    if (name.rfind(kPrefix, 0) != 0)
      throw Error(weights_path + ": tensor \"" + name + "\" does not start with \"" + kPrefix + "\"");
    values.emplace(name.substr(std::string(kPrefix).size()), t);
  }
  std::vector<std::string> wrapped = apply_lora(root, opts);
  std::set<std::string> expected;
  for (const auto& m : wrapped) {
    expected.insert(m + ".lora_A.weight");
    expected.insert(m + ".lora_B.weight");
  }
  for (const auto& [name, t] : values)
    if (!expected.count(name))
      throw Error(weights_path + ": tensor \"" + kPrefix + name + "\" matches no adapted module of the model");
  for (const auto& name : expected)
    if (!values.count(name)) throw Error(weights_path + ": missing tensor \"" + kPrefix + name + "\"");
  try {
    root.update(values);
  } catch (const Error& e) {
    throw Error(weights_path + ": " + e.what());
  }
  return wrapped;
}

}  // namespace wick
