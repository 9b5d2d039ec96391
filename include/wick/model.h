#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wick/nn.h"
#include "wick/tensor.h"

// The Hugging Face decoder family (Qwen2/Qwen2.5, Llama incl. Llama 3.x RoPE scaling, Mistral),
// driven by config.json and named exactly as in transformers, so checkpoints and PEFT adapters
// load by name.

namespace wick {

/// RoPE frequency scaling from config.json's rope_scaling / rope_parameters.
struct RopeScaling {
  std::string type = "default";  // "default" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

/// The fields of a decoder's config.json that the forward pass depends on.
struct ModelConfig {
  std::string model_type;  // "qwen2", "llama" or "mistral"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // absent in the file: = num_attention_heads
  int64_t head_dim = 0;             // absent in the file: = hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // qwen2: always; llama/mistral: attention_bias
  bool o_bias = false;    // llama: attention_bias; qwen2/mistral: never
  bool mlp_bias = false;  // llama: mlp_bias
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // eos_token_id as a list (empty when absent)
  std::string torch_dtype;            // "bfloat16", ... ("" when absent)
  /// Attention window per layer (0 = full causal attention): Mistral's sliding_window, or
  /// Qwen2's use_sliding_window / max_window_layers / layer_types.
  std::vector<int64_t> sliding_window;

  /// Parses config.json text; `source` names it in errors. Unsupported model types, activations
  /// or RoPE scaling types, missing or malformed fields are errors naming `source` and the field.
  static ModelConfig parse(std::string_view json_text, const std::string& source = "config.json");
  /// Reads `dir`/config.json.
  static ModelConfig load(const std::string& dir);

  /// RoPE inverse frequencies [head_dim / 2] (f32, with the scaling applied as transformers does).
  std::vector<float> rope_inv_freq() const;
  /// Parameters of the model (embeddings and head counted once when tied).
  int64_t parameter_count() const;
  /// The dtype to compute this checkpoint in on `device`: f32 on the CPU (its kernels widen half
  /// types anyway); on a GPU the checkpoint's own bf16/f16 (torch_dtype), else f32.
  DType compute_dtype(Device device) const;
};

/// A preallocated key/value cache for one model: per layer k and v of shape
/// [batch, kv_heads, max_length, head_dim] plus the number of positions filled so far.
class KVCache {
 public:
  KVCache(const ModelConfig& config, int64_t batch, int64_t max_length, DType dtype = DType::f32);
  int64_t batch() const { return batch_; }
  int64_t max_length() const { return max_length_; }
  /// Positions filled (the offset of the next tokens).
  int64_t length() const { return length_; }
  int64_t num_layers() const { return static_cast<int64_t>(k_.size()); }
  /// Bytes of the preallocated keys and values.
  size_t nbytes() const;
  /// Empties the cache (keeps the storage).
  void reset();

  /// Writes k, v [batch, kv_heads, T, head_dim] of `layer` at positions [length, length + T) and
  /// returns the valid prefix [batch, kv_heads, length + T, head_dim] of the layer's keys and
  /// values. length() moves on only with advance().
  std::pair<Tensor, Tensor> append(int64_t layer, const Tensor& k, const Tensor& v);
  /// Writes k, v [batch, kv_heads, T, head_dim] of `layer` in place at [position, position + T),
  /// with `position` an integer tensor [1] read when the write runs, and returns the layer's
  /// whole buffers [batch, kv_heads, max_length, head_dim]. No shape depends on the position, so
  /// one compiled graph serves every step (CausalLM::decode_step). length() does not move. A
  /// position past max_length is an error of the evaluation.
  std::pair<Tensor, Tensor> write(int64_t layer, const Tensor& k, const Tensor& v, const Tensor& position);
  /// Marks T more positions as filled (after every layer has appended them).
  void advance(int64_t t);

 private:
  void check_step(int64_t layer, const Tensor& k, const Tensor& v) const;

  int64_t batch_, max_length_, kv_heads_, head_dim_;
  int64_t length_ = 0;
  DType dtype_;
  std::vector<Tensor> k_, v_;
};

/// A decoder-only causal language model with transformers' module and parameter names:
/// model.embed_tokens, model.layers.{i}.self_attn.{q,k,v,o}_proj,
/// model.layers.{i}.mlp.{gate,up,down}_proj, model.layers.{i}.{input,post_attention}_layernorm,
/// model.norm, and lm_head (absent when the embeddings are tied).
class CausalLM : public Module {
 public:
  /// A model with lazily zero-filled weights of `dtype` (no memory until evaluated): load real
  /// weights with update() or Module::load, or use load().
  explicit CausalLM(const ModelConfig& config, DType dtype = DType::f32);
  /// Reads `dir`/config.json and the safetensors weights (single file or sharded) converted to
  /// `dtype`. Missing, unexpected or mis-shaped weights are errors naming the tensor and file.
  static std::shared_ptr<CausalLM> load(const std::string& dir, DType dtype = DType::f32);
  /// Fills every weight with seeded random values (N(0, std) for matrices, ones for norms), as
  /// transformers' initialiser does; for benchmarks and tests.
  void init_random(uint64_t seed, double std = 0.02);

  std::string kind() const override { return "CausalLM"; }
  const ModelConfig& config() const { return config_; }

  /// Final hidden states [B, T, hidden] (after model.norm) for token ids [B, T] (i32/i64).
  /// With a cache, the tokens follow the cache's length() positions, their keys and values are
  /// appended, and the cache advances by T. `attention_mask` [B, S] (S = cache length + T; 1 =
  /// token, 0 = padding; integer or bool) supports left-padded batches: each row's positions
  /// count only its tokens, as transformers does with position_ids from the mask. The mask is
  /// read on the host (positions and masks are input preprocessing), so it cannot be a traced
  /// input of compile(); right-padded (training) batches need no mask at all: causal attention
  /// never lets a token see the padding after it, and labels of -100 keep it out of the loss.
  Tensor hidden_states(const Tensor& ids, KVCache* cache = nullptr,
                       const std::optional<Tensor>& attention_mask = std::nullopt);
  /// Logits [..., vocab] of hidden states (lm_head, or the tied embedding).
  Tensor logits(const Tensor& hidden);
  /// Logits [batch, T, vocab] of decoding step(s) whose shapes do not depend on the position:
  /// ids [batch, T] go at positions position[0] + t, with `position` an integer tensor [1] read on
  /// the device; keys and values are written into `cache` in place (KVCache::write) and
  /// attention reads the whole cache under a mask of the positions written so far. Compiled
  /// (wick::compile), every step on a GPU replays one CUDA graph. cache.length() does not move:
  /// call cache.advance(T) after each step. Every row must be unpadded.
  Tensor decode_step(const Tensor& ids, KVCache& cache, const Tensor& position);
  /// logits(hidden_states(ids, cache, attention_mask)).
  Tensor forward(const Tensor& ids, KVCache* cache, const std::optional<Tensor>& attention_mask = std::nullopt);
  Tensor forward(const Tensor& ids) override { return forward(ids, nullptr); }

  /// A cache sized for this model, in the model's dtype unless `dtype` says otherwise.
  KVCache make_cache(int64_t batch, int64_t max_length, std::optional<DType> dtype = std::nullopt) const {
    return KVCache(config_, batch, max_length, dtype.value_or(dtype_));
  }
  /// The dtype the model was built or loaded in.
  DType dtype() const { return dtype_; }

 private:
  ModelConfig config_;
  DType dtype_;
  std::vector<float> inv_freq_;
  size_t model_ = 0, lm_head_ = SIZE_MAX;
};

}  // namespace wick
