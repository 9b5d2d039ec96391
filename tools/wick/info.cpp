// `wick info`: what a model folder holds: architecture and sizes from config.json, parameters
// and dtypes from the safetensors headers (mapped, not read), and the memory the weights and a
// KV cache need.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "command.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

struct InfoOptions {
  std::string model;
  int64_t max_length = 0;  // 0: max_position_embeddings
  bool json = false;
};

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

int run_info(const InfoOptions& o) {
  ModelConfig c = ModelConfig::load(o.model);
  // Unconverted loading maps the files: headers are parsed and validated, no data is read.
  std::map<std::string, Tensor> weights = load_model_weights(o.model);
  std::map<std::string, int64_t> per_dtype;
  int64_t params = 0;
  double stored = 0;
  for (const auto& [name, t] : weights) {
    if (name.ends_with(".rotary_emb.inv_freq")) continue;
    if (name == "lm_head.weight" && c.tie_word_embeddings) continue;
    per_dtype[dtype_name(t.dtype())] += t.numel();
    params += t.numel();
    stored += static_cast<double>(t.nbytes());
  }
  const int64_t max_len = o.max_length > 0 ? o.max_length : c.max_position_embeddings;
  // Keys and values of every layer for one sequence, f32 as the CPU cache holds them.
  const double kv_per_token = 2.0 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4.0;
  const double f32_weights = 4.0 * static_cast<double>(params);
  int64_t windowed = 0;
  for (int64_t w : c.sliding_window) windowed += w > 0;

  if (o.json) {
    nlohmann::json j = {
        {"model", o.model},
        {"model_type", c.model_type},
        {"layers", c.num_hidden_layers},
        {"hidden_size", c.hidden_size},
        {"intermediate_size", c.intermediate_size},
        {"attention_heads", c.num_attention_heads},
        {"kv_heads", c.num_key_value_heads},
        {"head_dim", c.head_dim},
        {"vocab_size", c.vocab_size},
        {"max_position_embeddings", c.max_position_embeddings},
        {"rope_theta", c.rope_theta},
        {"rope_scaling", c.rope_scaling.type},
        {"tie_word_embeddings", c.tie_word_embeddings},
        {"sliding_window_layers", windowed},
        {"torch_dtype", c.torch_dtype},
        {"eos_token_ids", c.eos_token_ids},
        {"parameters", params},
        {"parameters_from_config", c.parameter_count()},
        {"parameters_by_dtype", per_dtype},
        {"weights_bytes_stored", stored},
        {"weights_bytes_f32", f32_weights},
        {"kv_cache_length", max_len},
        {"kv_cache_bytes_per_token_f32", kv_per_token},
        {"kv_cache_bytes_f32", kv_per_token * static_cast<double>(max_len)},
    };
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model        %s\n", o.model.c_str());
  std::printf("architecture %s%s, %lld layers, hidden %lld, intermediate %lld\n", c.model_type.c_str(),
              c.tie_word_embeddings ? " (tied embeddings)" : "", static_cast<long long>(c.num_hidden_layers),
              static_cast<long long>(c.hidden_size), static_cast<long long>(c.intermediate_size));
  std::printf("attention    %lld heads, %lld kv heads, head dim %lld; RoPE theta %g (%s)%s\n",
              static_cast<long long>(c.num_attention_heads), static_cast<long long>(c.num_key_value_heads),
              static_cast<long long>(c.head_dim), c.rope_theta, c.rope_scaling.type.c_str(),
              windowed ? (", sliding window on " + std::to_string(windowed) + " layers").c_str() : "");
  std::printf("vocabulary   %lld; max positions %lld\n", static_cast<long long>(c.vocab_size),
              static_cast<long long>(c.max_position_embeddings));
  std::printf("parameters   %lld (%.1fM)", static_cast<long long>(params), params / 1e6);
  for (const auto& [d, n] : per_dtype) std::printf(", %s: %lld", d.c_str(), static_cast<long long>(n));
  std::printf("\n");
  if (params != c.parameter_count())
    std::printf("             note: config.json implies %lld parameters\n", static_cast<long long>(c.parameter_count()));
  std::printf("weights      %s stored, %s as f32 (CPU)\n", human_bytes(stored).c_str(), human_bytes(f32_weights).c_str());
  std::printf("KV cache     %s per token, %s for %lld positions (f32, batch 1)\n", human_bytes(kv_per_token).c_str(),
              human_bytes(kv_per_token * static_cast<double>(max_len)).c_str(), static_cast<long long>(max_len));
  return 0;
}

[[maybe_unused]] const Command info_command{
    "info", "Describe a model folder: architecture, parameters, dtypes, memory",
    [](CLI::App& app) -> Action {
      auto o = std::make_shared<InfoOptions>();
      app.add_option("--model", o->model, "Hugging Face model folder (config.json + safetensors)")
          ->required()->check(CLI::ExistingDirectory);
      app.add_option("--max-length", o->max_length, "KV-cache length to size (default: max_position_embeddings)")
          ->check(CLI::PositiveNumber);
      app.add_flag("--json", o->json, "Print JSON instead of text");
      return [o] { return run_info(*o); };
    }};

}  // namespace
}  // namespace wick::cli
