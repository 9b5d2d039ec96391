// LoRALinear (PEFT semantics) and apply_lora, which wraps a model's Linear layers in place.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "wick/nn.h"
#include "wick/ops.h"

namespace wick {

LoRALinear::LoRALinear(const Linear& base, int64_t rank, double alpha, double dropout, bool rslora,
                       Generator& gen)
    : rank_(rank) {
  if (rank <= 0) throw Error("LoRALinear: rank must be positive, got " + std::to_string(rank));
  if (!std::isfinite(alpha)) throw Error("LoRALinear: alpha must be finite");
  scaling_ = rslora ? alpha / std::sqrt(static_cast<double>(rank)) : alpha / static_cast<double>(rank);
  int64_t in = base.in_features(), out = base.out_features();
  // Frozen base weights keep the wrapped Linear's names, so checkpoints load unchanged.
  register_parameter("weight", base.weight(), false);
  if (auto b = base.bias()) {
    register_parameter("bias", *b, false);
    bias_ = 1;
  }
  // PEFT: A by kaiming_uniform(a=√5), i.e. U(−1/√in, 1/√in); B = 0 so the adapter starts as a
  // no-op. Adapter weights are f32 whatever the base dtype (f64 for an f64 base: reference checks).
  DType adt = base.weight().dtype() == DType::f64 ? DType::f64 : DType::f32;
  double bound = 1.0 / std::sqrt(static_cast<double>(in));
  register_module("lora_A", std::make_shared<Linear>(uniform({rank, in}, gen, -bound, bound, adt)));
  register_module("lora_B", std::make_shared<Linear>(zeros({out, rank}, adt)));
  register_module("lora_dropout", std::make_shared<Dropout>(dropout, gen.seed() ^ gen.advance(1)));
  a_ = child_index("lora_A");
  b_ = child_index("lora_B");
  dropout_ = child_index("lora_dropout");
}

Tensor LoRALinear::lora_a() const { return static_cast<Linear&>(child(a_)).weight(); }
Tensor LoRALinear::lora_b() const { return static_cast<Linear&>(child(b_)).weight(); }

Tensor LoRALinear::forward(const Tensor& x) {
  std::optional<Tensor> bias;
  if (bias_ != SIZE_MAX) bias = parameter(bias_);
  if (merged_) return linear(x, weight(), bias);
  auto& drop = static_cast<Dropout&>(child(dropout_));
  if (!drop.active()) return lora_linear(x, weight(), bias, lora_a(), lora_b(), scaling_);
  Tensor delta = linear(linear(drop.forward(x), lora_a()), lora_b());
  return add(linear(x, weight(), bias), multiply(delta, scaling_));
}

void LoRALinear::merge() {
  if (merged_) throw Error("LoRALinear::merge: already merged");
  Tensor w = weight();
  Tensor delta = multiply(matmul(lora_b(), lora_a()), scaling_);
  update({{"weight", astype(add(astype(w, DType::f32), delta), w.dtype())}});
  merged_ = true;
}

void LoRALinear::unmerge() {
  if (!merged_) throw Error("LoRALinear::unmerge: not merged");
  Tensor w = weight();
  Tensor delta = multiply(matmul(lora_b(), lora_a()), scaling_);
  update({{"weight", astype(subtract(astype(w, DType::f32), delta), w.dtype())}});
  merged_ = false;
}

namespace {

/// The i of the first "layers.{i}." component of a dotted name, or -1.
int64_t layer_index(const std::string& name) {
  size_t pos = 0;
  while ((pos = name.find("layers.", pos)) != std::string::npos) {
    bool at_component = pos == 0 || name[pos - 1] == '.';
    size_t d = pos + 7, e = d;
    while (e < name.size() && std::isdigit(static_cast<unsigned char>(name[e]))) ++e;
    if (at_component && e > d && e - d < 10 && (e == name.size() || name[e] == '.'))
      return std::stoll(name.substr(d, e - d));
    pos = d;
  }
  return -1;
}

bool ends_with_component(const std::string& name, const std::string& suffix) {
  if (suffix.empty() || suffix.size() > name.size()) return false;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  return name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.';
}

}  // namespace

bool lora_targets_module(const LoraOptions& options, const std::string& name) {
  bool all_linear = options.targets.size() == 1 && options.targets[0] == "all-linear";
  bool match = false;
  if (all_linear) {
    match = !ends_with_component(name, "lm_head");
  } else {
    for (const auto& t : options.targets) match = match || ends_with_component(name, t);
  }
  if (match && !options.layers.empty())
    match = std::find(options.layers.begin(), options.layers.end(), layer_index(name)) != options.layers.end();
  return match;
}

std::vector<std::string> apply_lora(Module& root, const LoraOptions& options) {
  if (options.targets.empty()) throw Error("apply_lora: no target modules given");

  std::vector<std::string> chosen;
  std::set<std::string> inside_lora;  // modules within an existing LoRALinear are never wrapped
  for (const auto& [name, m] : root.named_modules()) {
    bool nested = false;
    for (const auto& l : inside_lora)
      if (name.size() > l.size() && name.compare(0, l.size(), l) == 0 && name[l.size()] == '.') nested = true;
    if (nested) continue;
    if (dynamic_cast<LoRALinear*>(m.get())) {
      inside_lora.insert(name);
      continue;
    }
    if (!dynamic_cast<Linear*>(m.get())) continue;
    if (lora_targets_module(options, name)) chosen.push_back(name);
  }
  if (chosen.empty()) {
    std::string list;
    for (const auto& t : options.targets) list += (list.empty() ? "" : ",") + t;
    throw Error("apply_lora: no Linear module matches the targets \"" + list + "\"");
  }
  // PEFT semantics: only adapters train (earlier adapters included).
  root.freeze([](const std::string& n) {
    return n.find("lora_A.") == std::string::npos && n.find("lora_B.") == std::string::npos;
  });
  Generator gen(options.seed);
  for (const auto& name : chosen) {
    auto base = std::static_pointer_cast<Linear>(root.find_module(name));
    root.replace_module(name, std::make_shared<LoRALinear>(*base, options.rank, options.alpha,
                                                           options.dropout, options.rslora, gen));
  }
  return chosen;
}

}  // namespace wick
