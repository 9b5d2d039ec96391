#pragma once
// Model shapes and random adapters shared by the `wick bench` subcommands.
#include <cstdint>
#include <string>
#include <vector>

#include "wick/adapter.h"
#include "wick/model.h"

namespace wick::bench {

/// A random adapter of rank `rank` (A and B both non-zero, alpha 2·rank) for the Linear modules of
/// `model` that `targets` names (module-name suffixes, or "all-linear").
LoraAdapter random_adapter(const CausalLM& model, const std::vector<std::string>& targets,
                           int64_t rank, uint64_t seed);

/// ~100M parameters in Qwen2's layout (tied embeddings, q/k/v bias, 4:1 GQA); the same shape as
/// bench/peers/decoder_torch.py --shape qwen2-100m.
inline constexpr const char* kQwen2_100M = R"({"model_type": "qwen2", "vocab_size": 32000, "hidden_size": 768,
  "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12,
  "num_key_value_heads": 3, "max_position_embeddings": 4096, "rope_theta": 1000000.0,
  "rms_norm_eps": 1e-06, "tie_word_embeddings": true, "hidden_act": "silu"})";

/// BERT-base (110M) and all-MiniLM-L6 (22M) encoder shapes; the same as
/// bench/peers/embed_torch.py --shape bert-base / minilm-l6.
inline constexpr const char* kBertBase = R"({"model_type": "bert", "vocab_size": 30522, "hidden_size": 768,
  "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
  "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"})";
inline constexpr const char* kMiniLM_L6 = R"({"model_type": "bert", "vocab_size": 30522, "hidden_size": 384,
  "intermediate_size": 1536, "num_hidden_layers": 6, "num_attention_heads": 12,
  "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"})";

}  // namespace wick::bench
