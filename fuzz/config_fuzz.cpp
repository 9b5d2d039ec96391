// Fuzz target: ModelConfig::parse on arbitrary bytes. Anything but success or a wick::Error is a
// finding (a crash, a sanitizer report, another exception type), and so is a parsed config that
// breaks the guarantees the model builder relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "wick/error.h"
#include "wick/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    wick::ModelConfig c = wick::ModelConfig::parse(text, "fuzz/config.json");
    if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_hidden_layers <= 0 ||
        c.num_attention_heads <= 0 || c.num_key_value_heads <= 0 || c.head_dim <= 0 || c.head_dim % 2 != 0 ||
        c.num_attention_heads % c.num_key_value_heads != 0 ||
        static_cast<int64_t>(c.sliding_window.size()) != c.num_hidden_layers || !(c.rms_norm_eps > 0) ||
        !(c.rope_theta > 0))
      std::abort();
    auto f = c.rope_inv_freq();
    if (static_cast<int64_t>(f.size()) * 2 != c.head_dim) std::abort();
    if (c.parameter_count() <= 0) std::abort();
  } catch (const wick::Error&) {
  }
  return 0;
}
