#pragma once
// Checking an in-memory LoRA adapter against the Linear modules of a model, shared by the adapter
// registry and `merge_adapter` so that both accept exactly what load_peft_adapter accepts.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "wick/adapter.h"

namespace wick::io {

/// A Linear module's weight shape.
struct LinearShape {
  int64_t out = 0;
  int64_t in = 0;
};

/// The modules of `linears` that adapter.config selects; they must be exactly the adapter's
/// modules, with A [r, in] and B [out, r] fitting each. Errors name `source`.
std::vector<std::string> match_adapter(const LoraAdapter& adapter, const std::map<std::string, LinearShape>& linears,
                                       const std::string& source);

/// The Linear modules of `root` (not those inside a LoRALinear) with their shapes.
std::map<std::string, LinearShape> linear_shapes(const Module& root);

}  // namespace wick::io
