// PEFT adapter folders without a model: reading them into a LoraAdapter, writing one (from memory
// or from a model's LoRALinear modules).
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "io/files.h"
#include "io/safetensors_header.h"
#include "wick/adapter.h"
#include "wick/ops.h"
#include "wick/safetensors.h"

namespace wick {

namespace {

constexpr std::string_view kPrefix = "base_model.model.";
constexpr std::string_view kSuffixA = ".lora_A.weight";
constexpr std::string_view kSuffixB = ".lora_B.weight";

std::string where(const LoraAdapter& a) { return a.source.empty() ? std::string("adapter") : a.source; }

}  // namespace

int64_t LoraAdapter::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, p] : modules) n += p.a.numel() + p.b.numel();
  return n;
}

void LoraAdapter::validate() const {
  const std::string src = where(*this);
  if (modules.empty()) throw Error(src + ": the adapter holds no LoRA weights");
  for (const auto& [name, p] : modules) {
    if (name.empty()) throw Error(src + ": an adapted module has an empty name");
    if (p.a.ndim() != 2 || p.b.ndim() != 2)
      throw Error(src + ": module " + io::quote_name(name) + ": lora_A " + shape_str(p.a.shape()) + " and lora_B " +
                  shape_str(p.b.shape()) + " must be matrices");
    if (p.a.shape()[0] != config.r || p.b.shape()[1] != config.r)
      throw Error(src + ": module " + io::quote_name(name) + ": lora_A " + shape_str(p.a.shape()) + " and lora_B " +
                  shape_str(p.b.shape()) + " do not have rank r = " + std::to_string(config.r) +
                  " (lora_A [r, in], lora_B [out, r])");
    if (p.a.shape()[1] <= 0 || p.b.shape()[0] <= 0)
      throw Error(src + ": module " + io::quote_name(name) + ": empty lora_A or lora_B");
    if (p.a.dtype() != DType::f32 || p.b.dtype() != DType::f32)
      throw Error(src + ": module " + io::quote_name(name) + ": lora_A and lora_B must be floating-point (got " +
                  dtype_name(p.a.dtype()) + " and " + dtype_name(p.b.dtype()) + ")");
  }
}

LoraAdapter read_peft_adapter(const std::string& dir) {
  std::string config_path = io::join_path(dir, "adapter_config.json");
  std::string weights_path = io::join_path(dir, "adapter_model.safetensors");
  if (!io::is_directory(dir)) throw Error(dir + ": no such adapter folder");
  if (!io::is_file(config_path)) throw Error(config_path + ": missing (not a PEFT adapter folder?)");
  if (!io::is_file(weights_path)) throw Error(weights_path + ": missing");
  LoraAdapter out;
  out.config = PeftAdapterConfig::load(config_path);
  out.source = weights_path;
  std::map<std::string, Tensor> file = load_safetensors(weights_path, DType::f32);
  std::map<std::string, Tensor> a, b;
  for (auto& [name, t] : file) {
    if (name.rfind(kPrefix, 0) != 0)
      throw Error(weights_path + ": tensor " + io::quote_name(name) + " does not start with \"" +
                  std::string(kPrefix) + "\"");
    std::string rest = name.substr(kPrefix.size());
    if (rest.ends_with(kSuffixA))
      a.emplace(rest.substr(0, rest.size() - kSuffixA.size()), t);
    else if (rest.ends_with(kSuffixB))
      b.emplace(rest.substr(0, rest.size() - kSuffixB.size()), t);
    else
      throw Error(weights_path + ": tensor " + io::quote_name(name) +
                  " is neither a lora_A nor a lora_B weight (embedding adapters, DoRA magnitudes and biases are "
                  "not supported)");
  }
  for (const auto& [m, t] : a)
    if (!b.count(m)) throw Error(weights_path + ": missing tensor " + io::quote_name(std::string(kPrefix) + m + std::string(kSuffixB)));
  for (const auto& [m, t] : b)
    if (!a.count(m)) throw Error(weights_path + ": missing tensor " + io::quote_name(std::string(kPrefix) + m + std::string(kSuffixA)));
  for (auto& [m, t] : a) out.modules.emplace(m, LoraPair{t, b.at(m)});
  out.validate();
  return out;
}

void save_peft_adapter(const LoraAdapter& adapter, const std::string& dir) {
  adapter.validate();
  std::map<std::string, Tensor> tensors;
  for (const auto& [m, p] : adapter.modules) {
    std::string key(kPrefix);
    key.append(m);
    tensors.emplace(key + ".lora_A.weight", p.a);
    tensors.emplace(key + ".lora_B.weight", p.b);
  }
  std::string config = adapter.config.to_json();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !io::is_directory(dir)) throw Error(dir + ": cannot create the adapter folder: " + ec.message());

  // Per file rather than a temporary folder renamed over `dir`: a trainer writes its adapter into
  // folders that hold other things (optimizer state, metrics, a model card) that a folder rename
  // would throw away. Removing the old config first and writing the new one last means that at
  // every instant the folder is the old adapter, no adapter (loaders require the config), or the
  // new adapter: never new weights read under an old config's rank or scaling.
  std::string config_path = io::join_path(dir, "adapter_config.json");
  if (std::remove(config_path.c_str()) != 0 && errno != ENOENT)
    throw Error(config_path + ": cannot replace: " + std::strerror(errno));
  save_safetensors(io::join_path(dir, "adapter_model.safetensors"), tensors, {{"format", "pt"}});
  io::write_file_atomic(config_path, config);
}

LoraAdapter extract_lora_adapter(const Module& root, const PeftAdapterConfig& cfg) {
  LoraOptions opts = cfg.to_options();
  LoraAdapter out;
  out.config = cfg;
  for (const auto& [name, m] : root.named_modules()) {
    if (auto* l = dynamic_cast<LoRALinear*>(m.get())) {
      if (!lora_targets_module(opts, name))
        throw Error("save_peft_adapter: module " + io::quote_name(name) +
                    " has a LoRA adapter but the config's target_modules / layers_to_transform do not select it");
      if (l->rank() != cfg.r)
        throw Error("save_peft_adapter: module " + io::quote_name(name) + " has rank " + std::to_string(l->rank()) +
                    ", the config says r = " + std::to_string(cfg.r));
      if (std::abs(l->scaling() - cfg.scaling()) > 1e-12 * std::max(1.0, std::abs(cfg.scaling())))
        throw Error("save_peft_adapter: module " + io::quote_name(name) + " has scaling " +
                    std::to_string(l->scaling()) + ", the config's lora_alpha and use_rslora give " +
                    std::to_string(cfg.scaling()));
      out.modules.emplace(name, LoraPair{astype(l->lora_a(), DType::f32), astype(l->lora_b(), DType::f32)});
    } else if (dynamic_cast<Linear*>(m.get()) && lora_targets_module(opts, name)) {
      // A Linear inside a LoRALinear (its lora_A / lora_B) never matches a target suffix that a
      // model module matches, except by accident of naming: only flag modules outside adapters.
      bool inside = false;
      for (const auto& [other, p] : out.modules)
        if (name.size() > other.size() && name.compare(0, other.size(), other) == 0 && name[other.size()] == '.')
          inside = true;
      if (!inside)
        throw Error("save_peft_adapter: module " + io::quote_name(name) +
                    " matches the config's targets but has no LoRA adapter: the folder would not load back");
    }
  }
  if (out.modules.empty()) throw Error("save_peft_adapter: the model has no LoRALinear modules");
  // PEFT refuses "all-linear" together with layers_to_transform: name the adapted modules instead
  // (the same selection, since every one of them lies under layers.{i}.).
  const auto& tm = out.config.target_modules;
  if (tm.size() == 1 && tm[0] == "all-linear" && !out.config.layers_to_transform.empty()) {
    std::set<std::string> leaves;
    for (const auto& [name, pair] : out.modules) leaves.insert(name.substr(name.rfind('.') + 1));
    out.config.target_modules.assign(leaves.begin(), leaves.end());
  }
  return out;
}

void save_peft_adapter(const Module& root, const std::string& dir, const PeftAdapterConfig& cfg) {
  save_peft_adapter(extract_lora_adapter(root, cfg), dir);
}

}  // namespace wick
