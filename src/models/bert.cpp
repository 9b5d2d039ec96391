// BertModel: embeddings, post-norm encoder layers with GELU and padded keys masked out of
// attention, named as transformers' BertModel.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "wick/encoder.h"
#include "wick/ops.h"
#include "wick/random.h"

namespace wick {

namespace {

/// A named node of the tree that only holds children ("attention", "encoder", ...).
class Group : public Module {
 public:
  explicit Group(std::string kind) : kind_(std::move(kind)) {}
  std::string kind() const override { return kind_; }

 private:
  std::string kind_;
};

std::shared_ptr<Linear> placeholder_linear(int64_t in, int64_t out, DType dtype) {
  return std::make_shared<Linear>(zeros({out, in}, dtype), zeros({out}, dtype));
}

std::shared_ptr<Module> group(std::string kind,
                              std::vector<std::pair<std::string, std::shared_ptr<Module>>> children) {
  auto g = std::make_shared<Group>(std::move(kind));
  for (auto& [name, m] : children) g->register_module(name, std::move(m));
  return g;
}

/// The module at `path` under `root`; a replaced or missing one is an error, not a crash.
Module& at(const Module& root, const std::string& path) {
  auto m = root.find_module(path);
  if (!m) throw Error("BertModel: no module \"" + path + "\"");
  return *m;
}

Embedding& embedding_at(const Module& root, const std::string& path) {
  auto* e = dynamic_cast<Embedding*>(&at(root, path));
  if (!e) throw Error("BertModel: " + path + " was replaced by a module of another kind");
  return *e;
}

Tensor activation(const Tensor& x, const std::string& act) {
  if (act == "gelu") return gelu(x);
  if (act == "relu") return relu(x);
  return gelu_tanh(x);  // gelu_new, gelu_pytorch_tanh (checked by BertConfig::parse)
}

/// One post-norm encoder layer.
class BertLayer : public Module {
 public:
  using Module::forward;
  BertLayer(const BertConfig& c, DType dtype) : heads_(c.num_attention_heads), head_dim_(c.head_dim), act_(c.hidden_act) {
    int64_t h = c.hidden_size, i = c.intermediate_size;
    auto ln = [&] { return std::make_shared<LayerNorm>(h, c.layer_norm_eps, true, true, dtype); };
    register_module("attention",
                    group("BertAttention", {{"self", group("BertSelfAttention", {{"query", placeholder_linear(h, h, dtype)},
                                                                                 {"key", placeholder_linear(h, h, dtype)},
                                                                                 {"value", placeholder_linear(h, h, dtype)}})},
                                            {"output", group("BertSelfOutput", {{"dense", placeholder_linear(h, h, dtype)},
                                                                                {"LayerNorm", ln()}})}}));
    register_module("intermediate", group("BertIntermediate", {{"dense", placeholder_linear(h, i, dtype)}}));
    register_module("output", group("BertOutput", {{"dense", placeholder_linear(i, h, dtype)}, {"LayerNorm", ln()}}));
  }
  std::string kind() const override { return "BertLayer"; }

  /// x [B, T, hidden] (padded rows), or x [N, hidden] (the real tokens of B rows, packed) with
  /// `packing` saying where they go in the [B, T] grid.
  Tensor forward(const Tensor& x, const std::optional<Tensor>& mask, const detail::BertPacking* packing) {
    const int64_t B = packing ? packing->batch : x.shape()[0], T = packing ? packing->tokens : x.shape()[1];
    const int64_t H = heads_ * head_dim_;
    // [B·T, hidden] when packed (padding slots repeat a real row), then [B, heads, T, head_dim].
    auto to_grid = [&](const Tensor& y) { return packing ? take(y, packing->to_grid, 0) : y; };
    auto split_heads = [&](const Tensor& y) { return transpose(reshape(y, {B, T, heads_, head_dim_}), {0, 2, 1, 3}); };
    Tensor q, k, v;
    if (auto fused = fused_qkv()) {
      // One GEMM for the three projections (and one gather); q, k, v are strided views of it.
      Tensor qkv = to_grid(linear(x, fused->first, fused->second));
      q = split_heads(slice(qkv, -1, 0, H));
      k = split_heads(slice(qkv, -1, H, 2 * H));
      v = split_heads(slice(qkv, -1, 2 * H, 3 * H));
    } else {
      q = split_heads(to_grid(at(*this, "attention.self.query").forward(x)));
      k = split_heads(to_grid(at(*this, "attention.self.key").forward(x)));
      v = split_heads(to_grid(at(*this, "attention.self.value").forward(x)));
    }
    Tensor o = scaled_dot_product_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(head_dim_)),
                                            /*causal=*/false, mask);
    o = transpose(o, {0, 2, 1, 3});
    o = packing ? take(reshape(o, {B * T, H}), packing->from_grid, 0) : reshape(o, {B, T, H});
    Tensor h = at(*this, "attention.output.LayerNorm").forward(add(at(*this, "attention.output.dense").forward(o), x));
    Tensor mid = activation(at(*this, "intermediate.dense").forward(h), act_);
    return at(*this, "output.LayerNorm").forward(add(at(*this, "output.dense").forward(mid), h));
  }

  /// Makes the query/key/value weights and biases views of one [3·hidden, hidden] matrix (and
  /// one bias), so that the fused projection costs no second copy of them.
  void fuse_qkv_storage() {
    auto parts = qkv_parts();
    if (!parts) return;
    const auto& p = *parts;
    const int64_t H = p[0].shape()[0];
    Tensor w = concatenate({p[0], p[2], p[4]}, 0).eval(), b = concatenate({p[1], p[3], p[5]}, 0).eval();
    std::map<std::string, Tensor> views;
    const char* names[] = {"query", "key", "value"};
    for (int64_t i = 0; i < 3; ++i) {
      std::string base = std::string("attention.self.") + names[i];
      views[base + ".weight"] = slice(w, 0, i * H, (i + 1) * H).eval();
      views[base + ".bias"] = slice(b, 0, i * H, (i + 1) * H).eval();
    }
    update(views);
    std::lock_guard<std::mutex> lock(mu_);
    fused_ = Fused{*qkv_parts(), w, b};
  }

 private:
  /// Weight and bias of query, key and value when all three are plain Linear layers with biases
  /// (a LoRA-wrapped or otherwise replaced projection takes the three-GEMM path).
  std::optional<std::vector<Tensor>> qkv_parts() const {
    std::vector<Tensor> parts;
    for (const char* n : {"query", "key", "value"}) {
      auto* l = dynamic_cast<Linear*>(&at(*this, std::string("attention.self.") + n));
      if (!l || !l->bias()) return std::nullopt;
      parts.push_back(l->weight());
      parts.push_back(*l->bias());
    }
    return parts;
  }

  /// The fused [3·hidden, hidden] weight and [3·hidden] bias of the current parameters, built
  /// lazily and kept while the parameter handles stay the same.
  std::optional<std::pair<Tensor, Tensor>> fused_qkv() {
    auto parts = qkv_parts();
    if (!parts) return std::nullopt;
    std::lock_guard<std::mutex> lock(mu_);
    bool fresh = fused_ && std::equal(parts->begin(), parts->end(), fused_->parts.begin(),
                                      [](const Tensor& a, const Tensor& b) { return a.same(b); });
    if (!fresh) {
      const auto& p = *parts;
      fused_ = Fused{p, concatenate({p[0], p[2], p[4]}, 0), concatenate({p[1], p[3], p[5]}, 0)};
    }
    return std::make_pair(fused_->w, fused_->b);
  }

  struct Fused {
    std::vector<Tensor> parts;  // the parameter handles it was made from
    Tensor w, b;
  };
  int64_t heads_, head_dim_;
  std::string act_;
  std::mutex mu_;
  std::optional<Fused> fused_;
};

}  // namespace

BertModel::BertModel(const BertConfig& config, DType dtype) : config_(config), dtype_(dtype) {
  if (!is_floating(dtype)) throw Error(std::string("BertModel: floating dtype expected, got ") + dtype_name(dtype));
  const BertConfig& c = config_;
  int64_t h = c.hidden_size;
  register_module(
      "embeddings",
      group("BertEmbeddings",
            {{"word_embeddings", std::make_shared<Embedding>(zeros({c.vocab_size, h}, dtype))},
             {"position_embeddings", std::make_shared<Embedding>(zeros({c.max_position_embeddings, h}, dtype))},
             {"token_type_embeddings", std::make_shared<Embedding>(zeros({c.type_vocab_size, h}, dtype))},
             {"LayerNorm", std::make_shared<LayerNorm>(h, c.layer_norm_eps, true, true, dtype)}}));
  auto layers = std::make_shared<Group>("ModuleList");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->register_module(std::to_string(i), std::make_shared<BertLayer>(c, dtype));
  register_module("encoder", group("BertEncoder", {{"layer", layers}}));
}

void BertModel::fuse_qkv() {
  for (const auto& [name, m] : at(*this, "encoder.layer").children())
    if (auto* layer = dynamic_cast<BertLayer*>(m.get())) layer->fuse_qkv_storage();
}

void BertModel::init_random(uint64_t seed, double std) {
  Generator gen(seed);
  std::map<std::string, Tensor> values;
  for (const auto& [name, p] : parameters()) {
    bool norm = name.ends_with("LayerNorm.weight");
    bool bias = name.ends_with(".bias");
    Tensor v = norm ? ones(p.shape(), p.dtype()) : bias ? zeros(p.shape(), p.dtype())
                                                        : normal(p.shape(), gen, 0.0, std, p.dtype());
    values.emplace(name, v.eval());
  }
  update(values);
  fuse_qkv();
}

Tensor BertModel::forward(const Tensor& ids, const std::optional<Tensor>& attention_mask,
                          const std::optional<Tensor>& token_type_ids) {
  auto int_2d = [](const Tensor& t) {
    return t.defined() && t.ndim() == 2 && (t.dtype() == DType::i32 || t.dtype() == DType::i64);
  };
  if (!int_2d(ids))
    throw Error("BertModel: ids must be an i32/i64 tensor [batch, tokens], got " +
                (ids.defined() ? shape_str(ids.shape()) + " " + dtype_name(ids.dtype()) : std::string("null")));
  const int64_t B = ids.shape()[0], T = ids.shape()[1];
  if (B == 0 || T == 0) throw Error("BertModel: empty batch " + shape_str(ids.shape()));
  if (T > config_.max_tokens())
    throw Error("BertModel: " + std::to_string(T) + " tokens exceed the model's " +
                std::to_string(config_.max_tokens()) + " positions (max_position_embeddings)");
  std::optional<Tensor> mask;
  if (attention_mask) {
    const Tensor& m = *attention_mask;
    if (!m.defined() || m.shape() != ids.shape() || is_floating(m.dtype()))
      throw Error("BertModel: attention_mask must be an integer or bool tensor shaped like ids " +
                  shape_str(ids.shape()));
    // Keys of padding get -inf before the softmax (bool masks: true = keep).
    mask = reshape(astype(m, DType::boolean), {B, 1, 1, T});
  }
  if (token_type_ids && (!int_2d(*token_type_ids) || token_type_ids->shape() != ids.shape()))
    throw Error("BertModel: token_type_ids must be an i32/i64 tensor shaped like ids " + shape_str(ids.shape()));

  Embedding& type = embedding_at(*this, "embeddings.token_type_embeddings");
  Embedding& pos = embedding_at(*this, "embeddings.position_embeddings");
  // As transformers: (word + token type) + position. Right padding means every row's real tokens
  // sit at positions offset, offset + 1, ... so the position rows are one slice of the table
  // (padding rows get other positions than transformers gives them, but nothing reads them).
  Tensor types = token_type_ids ? type.forward(*token_type_ids) : slice(type.weight(), 0, 0, 1);
  return encode(ids, types, slice(pos.weight(), 0, config_.position_offset, config_.position_offset + T), mask,
                nullptr);
}

Tensor BertModel::encode(const Tensor& ids, const Tensor& types, const Tensor& positions, const std::optional<Tensor>& mask,
                         const detail::BertPacking* packing) {
  Tensor x = add(add(embedding_at(*this, "embeddings.word_embeddings").forward(ids), types), positions);
  x = at(*this, "embeddings.LayerNorm").forward(x);
  for (const auto& [name, m] : at(*this, "encoder.layer").children()) {
    auto* layer = dynamic_cast<BertLayer*>(m.get());
    if (!layer) throw Error("BertModel: encoder.layer." + name + " was replaced by a module of another kind");
    x = layer->forward(x, mask, packing);
  }
  return x;
}

Tensor BertModel::forward_packed(const std::vector<std::vector<int32_t>>& sequences) {
  const int64_t B = static_cast<int64_t>(sequences.size());
  if (B == 0) throw Error("BertModel: empty batch");
  int64_t T = 0, N = 0;
  for (const auto& s : sequences) {
    if (s.empty()) throw Error("BertModel: empty sequence in a batch");
    T = std::max<int64_t>(T, static_cast<int64_t>(s.size()));
    N += static_cast<int64_t>(s.size());
  }
  if (T > config_.max_tokens())
    throw Error("BertModel: " + std::to_string(T) + " tokens exceed the model's " +
                std::to_string(config_.max_tokens()) + " positions (max_position_embeddings)");
  std::vector<int32_t> ids, pos, to_grid(static_cast<size_t>(B * T)), from_grid;
  std::vector<bool> keep(static_cast<size_t>(B * T), false);
  ids.reserve(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = sequences[static_cast<size_t>(b)];
    const int64_t start = static_cast<int64_t>(ids.size()), len = static_cast<int64_t>(s.size());
    for (int64_t t = 0; t < T; ++t) {
      // Padding slots borrow the row's first token: masked as keys, dropped as queries.
      to_grid[b * T + t] = static_cast<int32_t>(start + (t < len ? t : 0));
      if (t >= len) continue;
      keep[b * T + t] = true;
      from_grid.push_back(static_cast<int32_t>(b * T + t));
      ids.push_back(s[static_cast<size_t>(t)]);
      pos.push_back(static_cast<int32_t>(config_.position_offset + t));
    }
  }
  // Nothing to pad: the plain layout, no gathers.
  if (N == B * T) return forward(Tensor::from_vector(ids, {B, T}), std::nullopt);
  Tensor ids_t = Tensor::from_vector(ids, {N});
  Tensor type_row = slice(embedding_at(*this, "embeddings.token_type_embeddings").weight(), 0, 0, 1);
  Tensor positions = take(embedding_at(*this, "embeddings.position_embeddings").weight(), Tensor::from_vector(pos, {N}), 0);
  detail::BertPacking packing{B, T, Tensor::from_vector(to_grid, {B * T}), Tensor::from_vector(from_grid, {N})};
  Tensor mask = Tensor::from_vector(keep, {B, 1, 1, T});
  Tensor h = encode(ids_t, type_row, positions, mask, &packing);
  return reshape(take(h, packing.to_grid, 0), {B, T, config_.hidden_size});
}

}  // namespace wick
