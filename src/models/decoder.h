#pragma once
// The blocks of the decoder family (private): attention with RoPE, GQA and a KV cache, the
// gated MLP, the pre-norm layer and the layer stack, named as in transformers.
#include <map>

#include "wick/model.h"

namespace wick::detail {

/// What every layer of one forward pass shares: positions (as a RoPE offset, or per-row cos/sin
/// tables for padded batches), attention masks per window size, and the cache.
struct DecoderContext {
  int64_t batch = 0, tokens = 0, offset = 0;
  const std::vector<float>* inv_freq = nullptr;
  std::optional<Tensor> cos, sin;             // [B, 1, T, D] when rows have their own positions
  std::map<int64_t, std::optional<Tensor>> masks;  // window (0 = none) -> sdpa mask
  KVCache* cache = nullptr;
  // Set for CausalLM::decode_step: the first position as a device tensor [1]; the cache is
  // written in place there and attention reads all of it under `masks`.
  std::optional<Tensor> position;

  /// RoPE on q or k [B, H, T, D].
  Tensor rotate(const Tensor& x) const;
  const std::optional<Tensor>& mask(int64_t window) const { return masks.at(window); }
};

/// Builds the context: positions and masks from the optional attention mask [B, S], on `device`.
DecoderContext make_context(const ModelConfig& c, const std::vector<float>& inv_freq, int64_t batch,
                            int64_t tokens, KVCache* cache, const std::optional<Tensor>& attention_mask,
                            Device device);

/// The context of CausalLM::decode_step: positions position[0] + t (position an i64 tensor [1] on
/// the model's device), masks over the whole cache.
DecoderContext make_step_context(const ModelConfig& c, const std::vector<float>& inv_freq, int64_t batch,
                                 int64_t tokens, KVCache& cache, const Tensor& position);

class DecoderAttention : public Module {
 public:
  using Module::forward;  // keeps the one-input form visible (it throws: these need a context)
  DecoderAttention(const ModelConfig& c, int64_t layer, DType dtype);
  std::string kind() const override { return "Attention"; }
  Tensor forward(const Tensor& x, const DecoderContext& ctx);

 private:
  int64_t layer_, heads_, kv_heads_, head_dim_, window_;
  size_t q_, k_, v_, o_;
};

class DecoderMLP : public Module {
 public:
  DecoderMLP(const ModelConfig& c, DType dtype);
  std::string kind() const override { return "MLP"; }
  Tensor forward(const Tensor& x) override;

 private:
  size_t gate_, up_, down_;
};

class DecoderLayer : public Module {
 public:
  using Module::forward;  // keeps the one-input form visible (it throws: these need a context)
  DecoderLayer(const ModelConfig& c, int64_t layer, DType dtype);
  std::string kind() const override { return "DecoderLayer"; }
  Tensor forward(const Tensor& x, const DecoderContext& ctx);

 private:
  size_t attn_, mlp_, norm1_, norm2_;
};

/// Children named "0", "1", ... (transformers' ModuleList).
class ModuleList : public Module {
 public:
  std::string kind() const override { return "ModuleList"; }
};

/// "model": embed_tokens, layers, norm.
class DecoderModel : public Module {
 public:
  using Module::forward;  // keeps the one-input form visible (it throws: these need a context)
  DecoderModel(const ModelConfig& c, DType dtype);
  std::string kind() const override { return "DecoderModel"; }
  Tensor forward(const Tensor& ids, const DecoderContext& ctx);
  Module& embed_tokens() const { return child(embed_); }

 private:
  size_t embed_, layers_, norm_;
};

}  // namespace wick::detail
