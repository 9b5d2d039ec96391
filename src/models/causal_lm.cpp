// CausalLM: the decoder stack plus the output head, with transformers' names.
#include "graph/ops_common.h"
#include "models/decoder.h"
#include "wick/ops.h"

namespace wick {

using detail::DecoderModel;

CausalLM::CausalLM(const ModelConfig& config, DType dtype)
    : config_(config), dtype_(dtype), inv_freq_(config.rope_inv_freq()) {
  if (static_cast<int64_t>(config_.sliding_window.size()) != config_.num_hidden_layers)
    config_.sliding_window.assign(static_cast<size_t>(config_.num_hidden_layers), 0);
  register_module("model", std::make_shared<DecoderModel>(config_, dtype));
  model_ = child_index("model");
  if (!config_.tie_word_embeddings) {
    register_module("lm_head", std::make_shared<Linear>(zeros({config_.vocab_size, config_.hidden_size}, dtype)));
    lm_head_ = child_index("lm_head");
  }
}

void CausalLM::init_random(uint64_t seed, double std) {
  Generator gen(seed);
  std::map<std::string, Tensor> values;
  for (const auto& [name, p] : parameters()) {
    bool norm = name.ends_with("norm.weight");
    bool bias = name.ends_with(".bias");
    Tensor v = norm ? ones(p.shape(), p.dtype()) : bias ? zeros(p.shape(), p.dtype())
                                                        : normal(p.shape(), gen, 0.0, std, p.dtype());
    values.emplace(name, v.eval());
  }
  update(values);
}

Tensor CausalLM::hidden_states(const Tensor& ids, KVCache* cache, const std::optional<Tensor>& attention_mask) {
  if (!ids.defined() || ids.ndim() != 2 || (ids.dtype() != DType::i32 && ids.dtype() != DType::i64))
    throw Error("CausalLM: ids must be an i32/i64 tensor [batch, tokens], got " +
                (ids.defined() ? shape_str(ids.shape()) + " " + dtype_name(ids.dtype()) : std::string("null")));
  int64_t B = ids.shape()[0], T = ids.shape()[1];
  if (B == 0 || T == 0) throw Error("CausalLM: empty batch " + shape_str(ids.shape()));
  if (cache) {
    if (cache->batch() != B)
      throw Error("CausalLM: cache batch " + std::to_string(cache->batch()) + " != ids batch " + std::to_string(B));
    if (cache->num_layers() != config_.num_hidden_layers)
      throw Error("CausalLM: cache has " + std::to_string(cache->num_layers()) + " layers, model " +
                  std::to_string(config_.num_hidden_layers));
    if (cache->length() + T > cache->max_length())
      throw Error("CausalLM: " + std::to_string(cache->length()) + " cached + " + std::to_string(T) +
                  " new positions exceed the cache's max_length " + std::to_string(cache->max_length()));
  }
  // Everything the forward pass builds goes to the weights' device.
  Device dev = device();
  DeviceScope on_device(dev);
  detail::DecoderContext ctx = detail::make_context(config_, inv_freq_, B, T, cache, attention_mask, dev);
  auto* model = dynamic_cast<DecoderModel*>(&child(model_));
  if (!model) throw Error("CausalLM: \"model\" was replaced by a module of another kind");
  Tensor h = model->forward(wick::to(ids, dev), ctx);
  if (cache) cache->advance(T);
  return h;
}

Tensor CausalLM::decode_step(const Tensor& ids, KVCache& cache, const Tensor& position) {
  if (!ids.defined() || ids.ndim() != 2 || (ids.dtype() != DType::i32 && ids.dtype() != DType::i64))
    throw Error("CausalLM::decode_step: ids must be an i32/i64 tensor [batch, tokens], got " +
                (ids.defined() ? shape_str(ids.shape()) + " " + dtype_name(ids.dtype()) : std::string("null")));
  int64_t B = ids.shape()[0], T = ids.shape()[1];
  if (B != cache.batch() || T == 0 || T > cache.max_length())
    throw Error("CausalLM::decode_step: ids " + shape_str(ids.shape()) + " do not fit the cache (batch " +
                std::to_string(cache.batch()) + ", max_length " + std::to_string(cache.max_length()) + ")");
  if (cache.num_layers() != config_.num_hidden_layers)
    throw Error("CausalLM::decode_step: cache has " + std::to_string(cache.num_layers()) + " layers, model " +
                std::to_string(config_.num_hidden_layers));
  Device dev = device();
  DeviceScope on_device(dev);
  Tensor pos = wick::to(detail::position_operand(position, "CausalLM::decode_step"), dev);
  detail::DecoderContext ctx = detail::make_step_context(config_, inv_freq_, B, T, cache, pos);
  auto* model = dynamic_cast<DecoderModel*>(&child(model_));
  if (!model) throw Error("CausalLM: \"model\" was replaced by a module of another kind");
  return logits(model->forward(wick::to(ids, dev), ctx));
}

Tensor CausalLM::logits(const Tensor& hidden) {
  if (lm_head_ != SIZE_MAX) return child(lm_head_).forward(hidden);
  auto* model = dynamic_cast<DecoderModel*>(&child(model_));
  auto* emb = model ? dynamic_cast<Embedding*>(&model->embed_tokens()) : nullptr;
  if (!emb) throw Error("CausalLM: model.embed_tokens is not an Embedding (tied head)");
  return emb->attend(hidden);
}

Tensor CausalLM::forward(const Tensor& ids, KVCache* cache, const std::optional<Tensor>& attention_mask) {
  return logits(hidden_states(ids, cache, attention_mask));
}

}  // namespace wick
