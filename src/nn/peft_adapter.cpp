// Loading a PEFT LoRA adapter folder onto a model: adapter_config.json decides which Linear
// layers get a LoRALinear (through apply_lora) and adapter_model.safetensors fills lora_A/lora_B.
#include <set>

#include "io/files.h"
#include "io/json.h"
#include "wick/nn.h"
#include "wick/ops.h"
#include "wick/runtime.h"
#include "wick/safetensors.h"

namespace wick {

namespace {

constexpr const char* kPrefix = "base_model.model.";

LoraOptions read_adapter_config(const std::string& path) {
  io::Json j = io::parse_json_strict(io::read_file(path, size_t{16} << 20), path);
  if (!j.is_object()) throw Error(path + ": expected a JSON object, got " + io::json_type_name(j));
  auto type = io::json_optional<std::string>(j, "peft_type", path).value_or("LORA");
  if (type != "LORA") throw Error(path + ": peft_type: only LORA adapters are supported, got \"" + type + "\"");
  LoraOptions o;
  o.rank = io::json_require<int64_t>(j, "r", path);
  if (o.rank <= 0 || o.rank > 65536) throw Error(path + ": r: must be in [1, 65536]");
  o.alpha = io::json_optional<double>(j, "lora_alpha", path).value_or(8.0);
  o.dropout = io::json_optional<double>(j, "lora_dropout", path).value_or(0.0);
  if (!(o.dropout >= 0 && o.dropout <= 1)) throw Error(path + ": lora_dropout: must be in [0, 1]");
  o.rslora = io::json_optional<bool>(j, "use_rslora", path).value_or(false);
  auto tm = j.find("target_modules");
  if (tm == j.end() || tm->is_null()) throw Error(path + ": missing field \"target_modules\"");
  if (tm->is_string()) {
    std::string s = tm->get<std::string>();
    if (s != "all-linear")
      throw Error(path + ": target_modules: a regular expression (\"" + s + "\") is not supported; use a list");
    o.targets = {s};
  } else if (tm->is_array()) {
    for (const auto& t : *tm) o.targets.push_back(io::json_as<std::string>(t, path, "target_modules"));
  } else {
    throw Error(path + ": target_modules: expected a list or \"all-linear\", got " + io::json_type_name(*tm));
  }
  auto lt = j.find("layers_to_transform");
  if (lt != j.end() && !lt->is_null()) {
    if (lt->is_array()) {
      for (const auto& l : *lt) o.layers.push_back(io::json_as<int64_t>(l, path, "layers_to_transform"));
    } else {
      o.layers.push_back(io::json_as<int64_t>(*lt, path, "layers_to_transform"));
    }
  }
  // Features that change the math or the parameter set: refuse rather than load wrongly.
  if (io::json_optional<std::string>(j, "bias", path).value_or("none") != "none")
    throw Error(path + ": bias: only \"none\" is supported");
  if (io::json_optional<bool>(j, "fan_in_fan_out", path).value_or(false))
    throw Error(path + ": fan_in_fan_out: not supported");
  if (io::json_optional<bool>(j, "use_dora", path).value_or(false)) throw Error(path + ": use_dora: not supported");
  for (const char* k : {"rank_pattern", "alpha_pattern"}) {
    auto it = j.find(k);
    if (it != j.end() && !it->is_null() && !it->empty()) throw Error(path + ": " + k + ": per-module ranks are not supported");
  }
  // Options that add parameters or change which modules match: absent, null, false or empty only.
  for (const char* k : {"modules_to_save", "lora_bias", "exclude_modules", "layer_replication", "target_parameters",
                        "trainable_token_indices", "use_qalora", "alora_invocation_tokens"}) {
    auto it = j.find(k);
    if (it == j.end() || it->is_null() || (it->is_boolean() && !it->get<bool>())) continue;
    if ((it->is_array() || it->is_object() || it->is_string()) && it->empty()) continue;
    throw Error(path + ": " + k + ": not supported");
  }
  auto lp = j.find("layers_pattern");
  if (lp != j.end() && !lp->is_null() && !(lp->is_string() && (lp->get<std::string>() == "layers" || lp->get<std::string>().empty())) &&
      !(lp->is_array() && lp->size() == 1 && (*lp)[0] == "layers"))
    throw Error(path + ": layers_pattern: only \"layers\" is supported");
  return o;
}

}  // namespace

std::vector<std::string> load_peft_adapter(Module& root, const std::string& dir) {
  std::string config_path = io::join_path(dir, "adapter_config.json");
  std::string weights_path = io::join_path(dir, "adapter_model.safetensors");
  if (!io::is_file(config_path)) throw Error(config_path + ": missing (not a PEFT adapter folder?)");
  if (!io::is_file(weights_path)) throw Error(weights_path + ": missing");
  LoraOptions opts = read_adapter_config(config_path);
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
