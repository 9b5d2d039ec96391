// The decoder blocks and the per-forward context (positions, masks) they share.
#include "models/decoder.h"

#include <cmath>
#include <set>

#include "graph/ops_common.h"
#include "wick/ops.h"

namespace wick::detail {

// ---- context ----------------------------------------------------------------------------------

Tensor DecoderContext::rotate(const Tensor& x) const {
  if (position) return rope_at(x, *inv_freq, *position);
  if (!cos) return rope(x, *inv_freq, offset);
  // Rows with their own positions: rotate-half RoPE composed from differentiable ops.
  int64_t d = x.shape().back(), h = d / 2;
  Tensor rotated = concatenate({negative(slice(x, -1, h, d)), slice(x, -1, 0, h)}, -1);
  return add(multiply(x, *cos), multiply(rotated, *sin));
}

DecoderContext make_context(const ModelConfig& c, const std::vector<float>& inv_freq, int64_t batch,
                            int64_t tokens, KVCache* cache, const std::optional<Tensor>& attention_mask,
                            Device device) {
  DecoderContext ctx;
  ctx.batch = batch;
  ctx.tokens = tokens;
  ctx.inv_freq = &inv_freq;
  ctx.cache = cache;
  ctx.offset = cache ? cache->length() : 0;
  const int64_t S = ctx.offset + tokens;

  // Key validity from the mask; an all-ones mask is the same as none.
  std::vector<int64_t> valid;
  if (attention_mask) {
    const Tensor& m = *attention_mask;
    if (m.ndim() != 2 || m.shape()[0] != batch || m.shape()[1] != S)
      throw Error("CausalLM: attention_mask " + shape_str(m.shape()) + " must be [batch, cache length + tokens] = [" +
                  std::to_string(batch) + "," + std::to_string(S) + "]");
    if (is_floating(m.dtype())) throw Error("CausalLM: attention_mask must be an integer or bool tensor");
    valid = m.to_vector<int64_t>();
    bool all = true;
    for (int64_t v : valid) {
      if (v != 0 && v != 1) throw Error("CausalLM: attention_mask values must be 0 or 1, got " + std::to_string(v));
      all = all && v == 1;
    }
    if (all) valid.clear();
  }

  // Positions: as transformers derives position_ids from the mask (cumsum − 1; padding gets 1).
  if (!valid.empty()) {
    std::vector<float> pos(static_cast<size_t>(batch * tokens));
    bool shifted = false;
    for (int64_t b = 0; b < batch; ++b) {
      int64_t count = 0;
      for (int64_t s = 0; s < S; ++s) {
        bool v = valid[b * S + s] != 0;
        count += v;
        if (s < ctx.offset) continue;
        int64_t p = v ? count - 1 : 1;
        pos[b * tokens + (s - ctx.offset)] = static_cast<float>(p);
        // Padding positions are never seen (masked as keys, ignored as queries), so only the
        // tokens decide whether rows need their own positions (right padding does not).
        shifted = shifted || (v && p != s);
      }
    }
    if (shifted) {
      int64_t h = static_cast<int64_t>(inv_freq.size()), d = 2 * h;
      std::vector<float> cs(static_cast<size_t>(batch * tokens * d)), sn(cs.size());
      for (int64_t r = 0; r < batch * tokens; ++r)
        for (int64_t i = 0; i < h; ++i) {
          float angle = pos[r] * inv_freq[i];  // f32 as transformers
          float cv = std::cos(angle), sv = std::sin(angle);
          cs[r * d + i] = cs[r * d + i + h] = cv;
          sn[r * d + i] = sn[r * d + i + h] = sv;
        }
      ctx.cos = to(Tensor::from_vector(cs, {batch, 1, tokens, d}), device);
      ctx.sin = to(Tensor::from_vector(sn, {batch, 1, tokens, d}), device);
    }
  }

  // Masks per window size (causality itself is the attention op's flag).
  std::set<int64_t> windows(c.sliding_window.begin(), c.sliding_window.end());
  windows.insert(0);
  for (int64_t w : windows) {
    bool windowed = w > 0 && S > w;
    if (valid.empty() && !windowed) {
      ctx.masks[w] = std::nullopt;
    } else if (!windowed) {
      std::vector<bool> keep(valid.begin(), valid.end());
      ctx.masks[w] = to(Tensor::from_vector(keep, {batch, 1, 1, S}), device);
    } else {
      // Sliding window on cache positions, as transformers: key s is visible to query q while
      // q − s < window.
      int64_t rows = valid.empty() ? 1 : batch;
      std::vector<bool> keep(static_cast<size_t>(rows * tokens * S));
      for (int64_t b = 0; b < rows; ++b)
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t s = 0; s < S; ++s)
            keep[(b * tokens + t) * S + s] =
                (valid.empty() || valid[b * S + s] != 0) && (ctx.offset + t - s < w);
      ctx.masks[w] = to(Tensor::from_vector(keep, {rows, 1, tokens, S}), device);
    }
  }
  return ctx;
}

DecoderContext make_step_context(const ModelConfig& c, const std::vector<float>& inv_freq, int64_t batch,
                                 int64_t tokens, KVCache& cache, const Tensor& position) {
  DecoderContext ctx;
  ctx.batch = batch;
  ctx.tokens = tokens;
  ctx.inv_freq = &inv_freq;
  ctx.cache = &cache;
  ctx.position = position;
  // Key s is visible to query t while s <= position + t (and, in a window w, position + t - s < w):
  // one additive f32 mask per window, made here once for every layer, which compile folds into
  // the attention kernels (they hide keys by the position themselves).
  std::set<int64_t> windows(c.sliding_window.begin(), c.sliding_window.end());
  windows.insert(0);
  for (int64_t w : windows)
    ctx.masks[w] = position_mask(*ctx.position, tokens, cache.max_length(), w);
  return ctx;
}

// ---- blocks -----------------------------------------------------------------------------------

namespace {

std::shared_ptr<Linear> placeholder_linear(int64_t in, int64_t out, bool bias, DType dtype) {
  std::optional<Tensor> b;
  if (bias) b = zeros({out}, dtype);
  return std::make_shared<Linear>(zeros({out, in}, dtype), b);
}

}  // namespace

DecoderAttention::DecoderAttention(const ModelConfig& c, int64_t layer, DType dtype)
    : layer_(layer),
      heads_(c.num_attention_heads),
      kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim),
      window_(c.sliding_window.at(static_cast<size_t>(layer))) {
  int64_t h = c.hidden_size, q = heads_ * head_dim_, kv = kv_heads_ * head_dim_;
  register_module("q_proj", placeholder_linear(h, q, c.qkv_bias, dtype));
  register_module("k_proj", placeholder_linear(h, kv, c.qkv_bias, dtype));
  register_module("v_proj", placeholder_linear(h, kv, c.qkv_bias, dtype));
  register_module("o_proj", placeholder_linear(q, h, c.o_bias, dtype));
  q_ = child_index("q_proj");
  k_ = child_index("k_proj");
  v_ = child_index("v_proj");
  o_ = child_index("o_proj");
}

Tensor DecoderAttention::forward(const Tensor& x, const DecoderContext& ctx) {
  const int64_t B = ctx.batch, T = ctx.tokens;
  auto split_heads = [&](const Tensor& y, int64_t n) {
    return transpose(reshape(y, {B, T, n, head_dim_}), {0, 2, 1, 3});
  };
  Tensor q = ctx.rotate(split_heads(child(q_).forward(x), heads_));
  Tensor k = ctx.rotate(split_heads(child(k_).forward(x), kv_heads_));
  Tensor v = split_heads(child(v_).forward(x), kv_heads_);
  if (ctx.position) std::tie(k, v) = ctx.cache->write(layer_, k, v, *ctx.position);
  else if (ctx.cache) std::tie(k, v) = ctx.cache->append(layer_, k, v);
  // A step over the whole cache masks keys by position; otherwise causality is the op's flag.
  Tensor o = scaled_dot_product_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(head_dim_)),
                                          /*causal=*/!ctx.position, ctx.mask(window_));
  o = reshape(transpose(o, {0, 2, 1, 3}), {B, T, heads_ * head_dim_});
  return child(o_).forward(o);
}

DecoderMLP::DecoderMLP(const ModelConfig& c, DType dtype) {
  int64_t h = c.hidden_size, i = c.intermediate_size;
  register_module("gate_proj", placeholder_linear(h, i, c.mlp_bias, dtype));
  register_module("up_proj", placeholder_linear(h, i, c.mlp_bias, dtype));
  register_module("down_proj", placeholder_linear(i, h, c.mlp_bias, dtype));
  gate_ = child_index("gate_proj");
  up_ = child_index("up_proj");
  down_ = child_index("down_proj");
}

Tensor DecoderMLP::forward(const Tensor& x) {
  return child(down_).forward(multiply(silu(child(gate_).forward(x)), child(up_).forward(x)));
}

DecoderLayer::DecoderLayer(const ModelConfig& c, int64_t layer, DType dtype) {
  register_module("self_attn", std::make_shared<DecoderAttention>(c, layer, dtype));
  register_module("mlp", std::make_shared<DecoderMLP>(c, dtype));
  register_module("input_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype));
  register_module("post_attention_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype));
  attn_ = child_index("self_attn");
  mlp_ = child_index("mlp");
  norm1_ = child_index("input_layernorm");
  norm2_ = child_index("post_attention_layernorm");
}

Tensor DecoderLayer::forward(const Tensor& x, const DecoderContext& ctx) {
  auto* attn = dynamic_cast<DecoderAttention*>(&child(attn_));
  if (!attn) throw Error("DecoderLayer: self_attn was replaced by a module of another kind");
  Tensor h = add(x, attn->forward(child(norm1_).forward(x), ctx));
  return add(h, child(mlp_).forward(child(norm2_).forward(h)));
}

DecoderModel::DecoderModel(const ModelConfig& c, DType dtype) {
  register_module("embed_tokens", std::make_shared<Embedding>(zeros({c.vocab_size, c.hidden_size}, dtype)));
  auto layers = std::make_shared<ModuleList>();
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers->register_module(std::to_string(i), std::make_shared<DecoderLayer>(c, i, dtype));
  register_module("layers", layers);
  register_module("norm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype));
  embed_ = child_index("embed_tokens");
  layers_ = child_index("layers");
  norm_ = child_index("norm");
}

Tensor DecoderModel::forward(const Tensor& ids, const DecoderContext& ctx) {
  Tensor x = child(embed_).forward(ids);
  for (const auto& [name, m] : child(layers_).children()) {
    auto* layer = dynamic_cast<DecoderLayer*>(m.get());
    if (!layer) throw Error("DecoderModel: layers." + name + " was replaced by a module of another kind");
    x = layer->forward(x, ctx);
  }
  return child(norm_).forward(x);
}

}  // namespace wick::detail
