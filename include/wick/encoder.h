#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wick/nn.h"
#include "wick/tensor.h"

// BERT-family encoders (BERT, RoBERTa, XLM-RoBERTa), driven by config.json and named exactly as
// transformers' BertModel, so checkpoints load by name.

namespace wick {

namespace detail {
/// Where the packed tokens of a batch go in its [batch, tokens] grid (private to BertModel).
struct BertPacking {
  int64_t batch = 0, tokens = 0;
  Tensor to_grid;    // [batch·tokens]: packed row of each grid slot (padding: its row's first token)
  Tensor from_grid;  // [packed]: grid slot of each packed token
};
}  // namespace detail

/// The fields of an encoder's config.json that the forward pass depends on.
struct BertConfig {
  std::string model_type;  // "bert", "roberta" or "xlm-roberta"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  /// "gelu" (erf form), "gelu_new" or "gelu_pytorch_tanh" (tanh form), or "relu".
  std::string hidden_act = "gelu";
  int64_t pad_token_id = 0;
  /// First position id: 0 for BERT; pad_token_id + 1 for RoBERTa-style models, which number
  /// positions after the padding index.
  int64_t position_offset = 0;
  std::string torch_dtype;  // "float32", ... ("" when absent)

  /// Parses config.json text; `source` names it in errors. Unsupported model types or
  /// activations, missing or malformed fields are errors naming `source` and the field.
  static BertConfig parse(std::string_view json_text, const std::string& source = "config.json");
  /// Reads `dir`/config.json.
  static BertConfig load(const std::string& dir);
  /// Most tokens one sequence may have (positions available after the offset).
  int64_t max_tokens() const { return max_position_embeddings - position_offset; }
  /// Parameters of the encoder (the pooler is not part of it).
  int64_t parameter_count() const;
};

/// A BERT-family encoder with transformers' BertModel names: embeddings.{word_embeddings,
/// position_embeddings, token_type_embeddings, LayerNorm}, encoder.layer.{i}.attention.self.
/// {query,key,value}, encoder.layer.{i}.attention.output.{dense,LayerNorm},
/// encoder.layer.{i}.intermediate.dense, encoder.layer.{i}.output.{dense,LayerNorm}. Its forward
/// pass only builds lazy ops, so it runs wherever the ops run.
class BertModel : public Module {
 public:
  /// A model with lazily zero-filled weights of `dtype` (no memory until evaluated): load real
  /// weights with update(), or use load().
  explicit BertModel(const BertConfig& config, DType dtype = DType::f32);
  /// Reads `dir`/config.json and the safetensors weights (single file or sharded), with or
  /// without a "bert." / "roberta." / "model." prefix, converted to `dtype` (computation then
  /// runs in that dtype). The pooler, MLM heads and position_ids buffers are ignored; missing,
  /// unexpected or mis-shaped weights are errors naming the tensor and the file.
  static std::shared_ptr<BertModel> load(const std::string& dir, DType dtype = DType::f32);
  /// Fills every weight with seeded random values (N(0, std) for matrices and embeddings, ones
  /// and zeros for LayerNorm, zero biases), as transformers' initialiser does; for benchmarks.
  void init_random(uint64_t seed, double std = 0.02);

  std::string kind() const override { return "BertModel"; }
  const BertConfig& config() const { return config_; }
  DType dtype() const { return dtype_; }

  /// last_hidden_state [B, T, hidden] for token ids [B, T] (i32/i64). `attention_mask` [B, T]
  /// (integer or bool; 1 = token, 0 = padding) masks padded keys out of attention; padding must
  /// be on the right (positions count from the start of each row). `token_type_ids` [B, T]
  /// defaults to zeros. T must not exceed config().max_tokens().
  Tensor forward(const Tensor& ids, const std::optional<Tensor>& attention_mask,
                 const std::optional<Tensor>& token_type_ids = std::nullopt);
  Tensor forward(const Tensor& ids) override { return forward(ids, std::nullopt); }

  /// last_hidden_state [B, T, hidden] of a batch of token sequences of different lengths (T the
  /// longest), the same values as forward() with right padding and its mask, computed without
  /// padding where it costs: the dense layers run on the real tokens only (packed), and only
  /// attention sees the padded grid. Padding rows of the result repeat their row's first token.
  Tensor forward_packed(const std::vector<std::vector<int32_t>>& sequences);

  /// Stores each layer's query/key/value weights as views of one [3·hidden, hidden] matrix, which
  /// the forward pass then uses as a single projection (load() and init_random() do this; after
  /// update() replaces them, the fused matrix is rebuilt from the new ones on the next forward).
  void fuse_qkv();

 private:
  Tensor encode(const Tensor& ids, const Tensor& types, const Tensor& positions, const std::optional<Tensor>& mask,
                const detail::BertPacking* packing);

  BertConfig config_;
  DType dtype_;
};

}  // namespace wick
