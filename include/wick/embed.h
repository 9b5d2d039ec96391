#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wick/encoder.h"
#include "wick/tensor.h"
#include "wick/tokenizer.h"

// Sentence embeddings with BERT-family encoders, as sentence-transformers computes them:
// tokenize (with an optional prefix), truncate, run the encoder over padded batches with
// attention masks, pool (mean over real tokens, CLS or max), optionally L2-normalise. Plus cosine
// similarity and top-k search over a set of vectors.

namespace wick {

enum class Pooling { mean, cls, max };

/// "mean", "cls" or "max"; anything else is a wick::Error.
Pooling parse_pooling(std::string_view name);
const char* pooling_name(Pooling p);

struct EmbedOptions {
  Pooling pooling = Pooling::mean;
  /// Divide every vector by its L2 norm (then dot products are cosine similarities).
  bool normalize = false;
  /// Prepended to every text before tokenization (E5-style "query: " / "passage: ").
  std::string prefix;
  /// Texts per forward pass. Texts are sorted by length first, so that a batch holds texts of
  /// similar length and little padding; results come back in input order.
  int64_t batch_size = 32;
  /// Most tokens per text, special tokens included (0: the model's limit, or the
  /// sentence-transformers max_seq_length of the folder).
  int64_t max_length = 0;
  /// Longer texts are cut to max_length (keeping the special tokens), as sentence-transformers
  /// does; false makes them an error naming the text.
  bool truncate = true;
  /// Called after each batch with (texts done, total); for progress lines.
  std::function<void(size_t done, size_t total)> progress;
};

/// An encoder and its tokenizer. Immutable after loading; embed() may run on several threads.
class Embedder {
 public:
  /// Loads a model folder: config.json, safetensors weights, and tokenizer.json (or, without
  /// one, a WordPiece vocab.txt with tokenizer_config.json's do_lower_case). A
  /// sentence-transformers folder also supplies defaults (see default_options()).
  static Embedder load(const std::string& dir, DType dtype = DType::f32);
  Embedder(std::shared_ptr<BertModel> model, Tokenizer tokenizer);

  /// Pooling, normalisation and max_length as the folder's sentence-transformers files
  /// (1_Pooling/config.json, modules.json, sentence_bert_config.json) set them; else mean
  /// pooling, no normalisation, the model's limit.
  const EmbedOptions& default_options() const { return defaults_; }

  /// Token ids of one text as embed() feeds them to the model (prefix, special tokens,
  /// truncation per `options`).
  std::vector<int32_t> tokenize(std::string_view text, const EmbedOptions& options) const;
  /// Vectors [texts.size(), hidden] (f32, input order) of the texts. No texts: a [0, hidden] tensor.
  Tensor embed(const std::vector<std::string>& texts, const EmbedOptions& options) const;
  /// The same for texts already tokenized (special tokens included, no truncation applied).
  Tensor embed_tokens(const std::vector<std::vector<int32_t>>& ids, const EmbedOptions& options) const;

  /// Vector size (the model's hidden size).
  int64_t dimension() const;
  /// Most tokens per text under `options` (its max_length or the model's limit).
  int64_t max_length(const EmbedOptions& options) const;
  const std::shared_ptr<BertModel>& model() const { return model_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  std::shared_ptr<BertModel> model_;
  Tokenizer tokenizer_;
  EmbedOptions defaults_;
};

/// Sentence vectors [B, hidden] (f32) of hidden states [B, T, hidden] under `attention_mask`
/// [B, T] (1 = token): mean over real tokens, the first token (CLS), or the maximum over real
/// tokens. Lazy (runs on any device).
Tensor pool(const Tensor& hidden, const Tensor& attention_mask, Pooling pooling);
/// Rows of x [N, D] divided by their L2 norm (max(norm, 1e-12), as torch's F.normalize).
Tensor l2_normalize(const Tensor& x);
/// Cosine similarities [N, M] of a [N, D] and b [M, D]: one matrix product of the normalised rows.
Tensor cosine_similarity(const Tensor& a, const Tensor& b);

struct SearchHit {
  int64_t index = 0;  // row of the corpus
  float score = 0;
};
/// The k best corpus rows for each query row, best first (ties: lower index first). Scores are
/// cosine similarities (or raw dot products with `cosine` false), computed as one matrix product
/// per block of corpus rows. k is clamped to the corpus size.
std::vector<std::vector<SearchHit>> top_k(const Tensor& queries, const Tensor& corpus, int64_t k,
                                          bool cosine = true);

}  // namespace wick
