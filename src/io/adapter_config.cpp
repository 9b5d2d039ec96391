// PEFT's adapter_config.json for LoRA: parsed strictly (anything that would change the math or
// the parameter set and that wick does not implement is refused) and written field for field as
// PEFT 0.21 writes it, so PEFT loads wick's adapters unchanged.
#include <cmath>

#include "io/files.h"
#include "io/json.h"
#include "wick/adapter.h"

namespace wick {

PeftAdapterConfig PeftAdapterConfig::from_options(const LoraOptions& options, const std::string& base_model) {
  if (options.targets.empty()) throw Error("PeftAdapterConfig: no target modules given");
  if (options.rank <= 0) throw Error("PeftAdapterConfig: rank must be positive, got " + std::to_string(options.rank));
  PeftAdapterConfig c;
  c.r = options.rank;
  c.lora_alpha = options.alpha;
  c.lora_dropout = options.dropout;
  c.target_modules = options.targets;
  c.use_rslora = options.rslora;
  c.layers_to_transform = options.layers;
  c.base_model_name_or_path = base_model;
  return c;
}

LoraOptions PeftAdapterConfig::to_options(uint64_t seed) const {
  LoraOptions o;
  o.targets = target_modules;
  o.rank = r;
  o.alpha = lora_alpha;
  o.dropout = lora_dropout;
  o.rslora = use_rslora;
  o.layers = layers_to_transform;
  o.seed = seed;
  return o;
}

double PeftAdapterConfig::scaling() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
}

PeftAdapterConfig PeftAdapterConfig::parse(std::string_view text, const std::string& path) {
  io::Json j = io::parse_json_strict(text, path);
  if (!j.is_object()) throw Error(path + ": expected a JSON object, got " + io::json_type_name(j));
  auto type = io::json_optional<std::string>(j, "peft_type", path).value_or("LORA");
  if (type != "LORA") throw Error(path + ": peft_type: only LORA adapters are supported, got \"" + type + "\"");
  PeftAdapterConfig c;
  c.r = io::json_require<int64_t>(j, "r", path);
  if (c.r <= 0 || c.r > 65536) throw Error(path + ": r: must be in [1, 65536]");
  c.lora_alpha = io::json_optional<double>(j, "lora_alpha", path).value_or(8.0);
  if (!std::isfinite(c.lora_alpha)) throw Error(path + ": lora_alpha: must be finite");
  c.lora_dropout = io::json_optional<double>(j, "lora_dropout", path).value_or(0.0);
  if (!(c.lora_dropout >= 0 && c.lora_dropout <= 1)) throw Error(path + ": lora_dropout: must be in [0, 1]");
  c.use_rslora = io::json_optional<bool>(j, "use_rslora", path).value_or(false);
  c.base_model_name_or_path = io::json_optional<std::string>(j, "base_model_name_or_path", path).value_or("");
  auto tm = j.find("target_modules");
  if (tm == j.end() || tm->is_null()) throw Error(path + ": missing field \"target_modules\"");
  if (tm->is_string()) {
    std::string s = tm->get<std::string>();
    if (s != "all-linear")
      throw Error(path + ": target_modules: a regular expression (\"" + s + "\") is not supported; use a list");
    c.target_modules = {s};
  } else if (tm->is_array()) {
    for (const auto& t : *tm) {
      std::string s = io::json_as<std::string>(t, path, "target_modules");
      if (s.empty()) throw Error(path + ": target_modules: an empty name matches nothing");
      c.target_modules.push_back(s);
    }
    if (c.target_modules.empty()) throw Error(path + ": target_modules: the list is empty");
  } else {
    throw Error(path + ": target_modules: expected a list or \"all-linear\", got " + io::json_type_name(*tm));
  }
  auto lt = j.find("layers_to_transform");
  if (lt != j.end() && !lt->is_null()) {
    if (lt->is_array()) {
      for (const auto& l : *lt) c.layers_to_transform.push_back(io::json_as<int64_t>(l, path, "layers_to_transform"));
    } else {
      c.layers_to_transform.push_back(io::json_as<int64_t>(*lt, path, "layers_to_transform"));
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
    if (it != j.end() && !it->is_null() && !it->empty())
      throw Error(path + ": " + k + ": per-module ranks are not supported");
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
  if (lp != j.end() && !lp->is_null() &&
      !(lp->is_string() && (lp->get<std::string>() == "layers" || lp->get<std::string>().empty())) &&
      !(lp->is_array() && lp->size() == 1 && (*lp)[0] == "layers"))
    throw Error(path + ": layers_pattern: only \"layers\" is supported");
  return c;
}

PeftAdapterConfig PeftAdapterConfig::load(const std::string& path) {
  // A real config is ~1 KB; 16 MB bounds a hostile one.
  return parse(io::read_file(path, size_t{16} << 20), path);
}

std::string PeftAdapterConfig::to_json() const {
  using io::Json;
  // Every key of PEFT 0.21's LoraConfig.to_dict() for a plain LoRA adapter, with the values it
  // writes when the option is unused; nlohmann's object is ordered by key, like PEFT's
  // json.dumps(sort_keys=True, indent=2). peft_version records the format followed.
  Json j = Json::object();
  j["alora_invocation_tokens"] = nullptr;
  j["alpha_pattern"] = Json::object();
  j["arrow_config"] = nullptr;
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = base_model_name_or_path;
  j["bias"] = "none";
  j["corda_config"] = nullptr;
  j["ensure_weight_tying"] = false;
  j["eva_config"] = nullptr;
  j["exclude_modules"] = nullptr;
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["kasa_config"] = nullptr;
  j["layer_replication"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = layers_to_transform.empty() ? Json(nullptr) : Json(layers_to_transform);
  j["loftq_config"] = Json::object();
  j["lora_alpha"] = lora_alpha;
  j["lora_bias"] = false;
  j["lora_dropout"] = lora_dropout;
  j["lora_ga_config"] = nullptr;
  j["megatron_config"] = nullptr;
  j["megatron_core"] = "megatron.core";
  j["modules_to_save"] = nullptr;
  j["monteclora_config"] = nullptr;
  j["peft_type"] = "LORA";
  j["peft_version"] = "0.21.0";
  j["qalora_group_size"] = 16;
  j["r"] = r;
  j["rank_pattern"] = Json::object();
  j["revision"] = nullptr;
  // PEFT keeps "all-linear" as a string and a list of names as a list.
  if (target_modules.size() == 1 && target_modules[0] == "all-linear")
    j["target_modules"] = "all-linear";
  else
    j["target_modules"] = target_modules;
  j["target_parameters"] = nullptr;
  j["task_type"] = "CAUSAL_LM";
  j["trainable_token_indices"] = nullptr;
  j["use_bdlora"] = nullptr;
  j["use_dora"] = false;
  j["use_qalora"] = false;
  j["use_rslora"] = use_rslora;
  j["velora_config"] = nullptr;
  return j.dump(2);
}

}  // namespace wick
