// Pooling, normalisation, cosine similarity and top-k search over sentence vectors.
#include <algorithm>
#include <limits>

#include "wick/embed.h"
#include "wick/ops.h"

namespace wick {

Tensor pool(const Tensor& hidden, const Tensor& attention_mask, Pooling pooling) {
  if (!hidden.defined() || hidden.ndim() != 3 || !attention_mask.defined() || attention_mask.ndim() != 2 ||
      attention_mask.shape()[0] != hidden.shape()[0] || attention_mask.shape()[1] != hidden.shape()[1])
    throw Error("pool: expected hidden [B, T, H] and attention_mask [B, T], got " +
                (hidden.defined() ? shape_str(hidden.shape()) : std::string("null")) + " and " +
                (attention_mask.defined() ? shape_str(attention_mask.shape()) : std::string("null")));
  const int64_t B = hidden.shape()[0], H = hidden.shape()[2];
  Tensor h = hidden.dtype() == DType::f32 ? hidden : astype(hidden, DType::f32);
  switch (pooling) {
    case Pooling::cls:
      return reshape(slice(h, 1, 0, 1), {B, H});
    case Pooling::mean: {
      // As sentence-transformers: sum of masked rows over max(count, 1e-9).
      Tensor m = expand_dims(astype(attention_mask, DType::f32), -1);
      return divide(sum(multiply(h, m), {1}), maximum(sum(m, {1}), 1e-9));
    }
    case Pooling::max: {
      // Padding rows count as -1e9, as sentence-transformers sets them.
      Tensor keep = expand_dims(astype(attention_mask, DType::boolean), -1);
      return max(where(keep, h, -1e9), {1});
    }
  }
  throw Error("pool: unknown pooling");
}

Tensor l2_normalize(const Tensor& x) {
  if (!x.defined() || x.ndim() < 1) throw Error("l2_normalize: expected a tensor of rows");
  return divide(x, maximum(sqrt(sum(square(x), {-1}, true)), 1e-12));
}

namespace {

void check_matrix(const char* op, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.ndim() != 2 || b.ndim() != 2 || a.shape()[1] != b.shape()[1])
    throw Error(std::string(op) + ": expected [N, D] and [M, D] matrices, got " +
                (a.defined() ? shape_str(a.shape()) : std::string("null")) + " and " +
                (b.defined() ? shape_str(b.shape()) : std::string("null")));
}

// Corpus rows per matrix product: bounds the score block at [queries, 8192] floats.
constexpr int64_t kSearchBlock = 8192;

}  // namespace

Tensor cosine_similarity(const Tensor& a, const Tensor& b) {
  check_matrix("cosine_similarity", a, b);
  Tensor an = l2_normalize(astype(a, DType::f32)), bn = l2_normalize(astype(b, DType::f32));
  return matmul(an, transpose(bn));
}

std::vector<std::vector<SearchHit>> top_k(const Tensor& queries, const Tensor& corpus, int64_t k, bool cosine) {
  check_matrix("top_k", queries, corpus);
  if (k < 0) throw Error("top_k: k must be >= 0, got " + std::to_string(k));
  const int64_t Q = queries.shape()[0], M = corpus.shape()[0];
  k = std::min(k, M);
  std::vector<std::vector<SearchHit>> best(static_cast<size_t>(Q));
  if (k == 0 || Q == 0) return best;
  auto better = [](const SearchHit& x, const SearchHit& y) {
    return x.score > y.score || (x.score == y.score && x.index < y.index);
  };
  Tensor q = astype(queries, DType::f32);
  if (cosine) q = l2_normalize(q);
  for (int64_t c0 = 0; c0 < M; c0 += kSearchBlock) {
    int64_t c1 = std::min(M, c0 + kSearchBlock);
    Tensor block = astype(slice(corpus, 0, c0, c1), DType::f32);
    if (cosine) block = l2_normalize(block);
    std::vector<float> scores = matmul(q, transpose(block)).to_vector<float>();
    const int64_t n = c1 - c0;
    for (int64_t i = 0; i < Q; ++i) {
      auto& hits = best[static_cast<size_t>(i)];
      for (int64_t j = 0; j < n; ++j) hits.push_back({c0 + j, scores[static_cast<size_t>(i * n + j)]});
      // Keep the k best so far (NaN scores sort last: they compare false both ways, so order them explicitly).
      for (auto& h : hits)
        if (h.score != h.score) h.score = -std::numeric_limits<float>::infinity();
      std::partial_sort(hits.begin(), hits.begin() + k, hits.end(), better);
      hits.resize(static_cast<size_t>(k));
    }
  }
  return best;
}

}  // namespace wick
