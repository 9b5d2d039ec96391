// Importing mlx-lm LoRA adapters (adapters.safetensors + adapter_config.json) as PEFT adapters.
// mlx-lm computes y = x·W + scale · (dropout(x)·lora_a)·lora_b with lora_a [in, r] and lora_b
// [r, out], on the last num_layers blocks, for module keys relative to a block.
#include <cctype>
#include <cmath>
#include <set>

#include "io/files.h"
#include "io/json.h"
#include "io/safetensors_header.h"
#include "wick/adapter.h"
#include "wick/ops.h"
#include "wick/safetensors.h"

namespace wick {

namespace {

/// Splits "model.layers.3.self_attn.q_proj" into layer 3 and suffix "self_attn.q_proj"; false
/// when the name has no "layers.{i}." component followed by something.
bool split_layer(const std::string& module, int64_t& layer, std::string& suffix) {
  size_t pos = 0;
  while ((pos = module.find("layers.", pos)) != std::string::npos) {
    bool at_component = pos == 0 || module[pos - 1] == '.';
    size_t d = pos + 7, e = d;
    while (e < module.size() && std::isdigit(static_cast<unsigned char>(module[e]))) ++e;
    if (at_component && e > d && e - d < 10 && e + 1 < module.size() && module[e] == '.') {
      layer = std::stoll(module.substr(d, e - d));
      suffix = module.substr(e + 1);
      return true;
    }
    pos = d;
  }
  return false;
}

}  // namespace

LoraAdapter import_mlx_adapter(const std::string& dir) {
  std::string config_path = io::join_path(dir, "adapter_config.json");
  std::string weights_path = io::join_path(dir, "adapters.safetensors");
  if (!io::is_directory(dir)) throw Error(dir + ": no such adapter folder");
  if (!io::is_file(config_path)) throw Error(config_path + ": missing (not an mlx-lm adapter folder?)");
  if (!io::is_file(weights_path)) throw Error(weights_path + ": missing (not an mlx-lm adapter folder?)");

  // mlx-lm writes every training argument into the config; only the LoRA ones matter here.
  io::Json j = io::parse_json_strict(io::read_file(config_path, size_t{16} << 20), config_path);
  if (!j.is_object()) throw Error(config_path + ": expected a JSON object, got " + io::json_type_name(j));
  std::string type = io::json_optional<std::string>(j, "fine_tune_type", config_path).value_or("lora");
  if (io::json_optional<bool>(j, "use_dora", config_path).value_or(false)) type = "dora";
  if (type != "lora")
    throw Error(config_path + ": fine_tune_type: only \"lora\" adapters can be imported, got \"" + type + "\"");
  auto lp = j.find("lora_parameters");
  if (lp == j.end() || !lp->is_object())
    throw Error(config_path + ": missing object \"lora_parameters\" (rank, scale, dropout)");
  const std::string lsrc = config_path + ": lora_parameters";
  int64_t rank = io::json_require<int64_t>(*lp, "rank", lsrc);
  // The default scale changed between mlx-lm versions, so a config without it is ambiguous.
  double scale = io::json_require<double>(*lp, "scale", lsrc);
  double dropout = io::json_optional<double>(*lp, "dropout", lsrc).value_or(0.0);
  if (rank <= 0 || rank > 65536) throw Error(lsrc + ": rank: must be in [1, 65536]");
  if (!std::isfinite(scale)) throw Error(lsrc + ": scale: must be finite");
  if (!(dropout >= 0 && dropout <= 1)) throw Error(lsrc + ": dropout: must be in [0, 1]");
  std::set<std::string> keys;
  auto kit = lp->find("keys");
  if (kit != lp->end() && !kit->is_null()) {
    if (!kit->is_array()) throw Error(lsrc + ": keys: expected a list, got " + io::json_type_name(*kit));
    for (const auto& k : *kit) keys.insert(io::json_as<std::string>(k, lsrc, "keys"));
  }

  std::map<std::string, Tensor> file = load_safetensors(weights_path, DType::f32);
  std::map<std::string, Tensor> a, b;
  for (auto& [name, t] : file) {
    if (name.ends_with(".lora_a"))
      a.emplace(name.substr(0, name.size() - 7), t);
    else if (name.ends_with(".lora_b"))
      b.emplace(name.substr(0, name.size() - 7), t);
    else
      throw Error(weights_path + ": tensor " + io::quote_name(name) +
                  " is neither a lora_a nor a lora_b weight (DoRA, embedding adapters and full fine-tuning are not "
                  "supported)");
  }
  if (a.empty()) throw Error(weights_path + ": holds no LoRA weights");

  LoraAdapter out;
  out.source = weights_path;
  std::map<std::string, std::set<int64_t>> layers_of;  // suffix -> layers
  std::set<int64_t> layers;
  for (const auto& [m, ta] : a) {
    auto bit = b.find(m);
    if (bit == b.end()) throw Error(weights_path + ": missing tensor " + io::quote_name(m + ".lora_b"));
    const Tensor& tb = bit->second;
    if (ta.ndim() != 2 || tb.ndim() != 2 || ta.shape()[1] != rank || tb.shape()[0] != rank)
      throw Error(weights_path + ": module " + io::quote_name(m) + ": lora_a " + shape_str(ta.shape()) + " and lora_b " +
                  shape_str(tb.shape()) + " do not have rank " + std::to_string(rank) +
                  " (lora_a [in, r], lora_b [r, out])");
    int64_t layer = -1;
    std::string suffix;
    if (!split_layer(m, layer, suffix))
      throw Error(weights_path + ": module " + io::quote_name(m) +
                  " is not inside a \"layers.{i}.\" block; PEFT's layers_to_transform cannot express it");
    if (!keys.empty() && !keys.count(suffix))
      throw Error(weights_path + ": module " + io::quote_name(m) + " is not one of lora_parameters.keys in " +
                  config_path);
    layers_of[suffix].insert(layer);
    layers.insert(layer);
    out.modules.emplace(m, LoraPair{contiguous(transpose(ta)).eval(), contiguous(transpose(tb)).eval()});
  }
  for (const auto& [m, tb] : b)
    if (!a.count(m)) throw Error(weights_path + ": missing tensor " + io::quote_name(m + ".lora_a"));
  // PEFT's config adapts every target in every listed layer: the modules must be that product.
  for (const auto& [suffix, ls] : layers_of)
    if (ls != layers)
      throw Error(weights_path + ": \"" + suffix + "\" is adapted in " + std::to_string(ls.size()) + " of the " +
                  std::to_string(layers.size()) +
                  " adapted layers; a PEFT config (target_modules x layers_to_transform) cannot express that");

  PeftAdapterConfig& c = out.config;
  c.r = rank;
  c.lora_alpha = scale * static_cast<double>(rank);  // PEFT scales by alpha / r
  c.lora_dropout = dropout;
  c.use_rslora = false;
  for (const auto& [suffix, ls] : layers_of) c.target_modules.push_back(suffix);
  // mlx-lm adapts the last num_layers blocks: a set that starts at block 0 and has no gap is every
  // block of the model, which PEFT writes as null.
  bool all = *layers.begin() == 0 && *layers.rbegin() == static_cast<int64_t>(layers.size()) - 1;
  if (!all) c.layers_to_transform.assign(layers.begin(), layers.end());
  c.base_model_name_or_path = io::json_optional<std::string>(j, "model", config_path).value_or("");
  out.validate();
  return out;
}

}  // namespace wick
