#pragma once
// A LoRA adapter whose B is not zero, so that its rank-r path changes the output (a fresh
// adapter's B = 0 would hide a kernel that drops it).
#include <string>
#include <vector>

#include "wick/nn.h"
#include "wick/random.h"

namespace wt {

/// Wraps the Linear modules of `root` that `targets` names with rank-4 LoRA adapters and draws
/// every B from N(0, 0.1²): the same adapter for the same seed and model.
inline void add_random_adapter(wick::Module& root, const std::vector<std::string>& targets,
                               uint64_t seed) {
  wick::LoraOptions o;
  o.targets = targets;
  o.rank = 4;
  o.seed = seed;
  wick::apply_lora(root, o);
  wick::Generator g(seed + 1);
  for (const auto& [name, m] : root.named_modules())
    if (auto* l = dynamic_cast<wick::LoRALinear*>(m.get()))
      l->update({{"lora_B.weight", wick::normal(l->lora_b().shape(), g, 0, 0.1)}});
}

}  // namespace wt
