#pragma once
// Losses with PyTorch's semantics.
#include <cstdint>
#include <optional>

#include "wick/tensor.h"

namespace wick {

enum class Reduction { mean, sum, none };

struct CrossEntropyOptions {
  /// Targets equal to this are skipped: no loss, no gradient, not counted by the mean.
  int64_t ignore_index = -100;
  /// ε: the target distribution is (1-ε)·onehot + ε/V (torch's label_smoothing).
  double label_smoothing = 0.0;
  /// mean over non-ignored targets (NaN when there are none, as PyTorch), sum, or per target.
  Reduction reduction = Reduction::mean;
};

/// Cross-entropy of logits [..., V] (any float dtype, computed in f32 or f64) against integer
/// labels [...]. The loss is f32 (f64 for f64 logits). The gradient is computed row by row
/// in the logits' dtype, never as an f32 copy of the logits. Labels outside [0, V) other than
/// ignore_index fail the evaluation.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyOptions& opts = {});

/// cross_entropy(h · Wᵀ, labels) for hidden states h [..., D] and an output projection
/// W [V, D] (an LM head), computed over chunks of `chunk_tokens` tokens (0: chosen so a chunk's
/// logits take about 32 MiB) with each chunk's logits recomputed in the backward pass: the
/// [tokens, V] logits tensor never exists, neither forward nor backward.
Tensor linear_cross_entropy(const Tensor& h, const Tensor& w, const Tensor& labels,
                            const CrossEntropyOptions& opts = {}, int64_t chunk_tokens = 0);

/// The causal-LM loss of transformers: logits [B, T, V] at position t predict labels [B, T] at
/// t+1 (the last position has no target); -100 labels are ignored; mean over the rest.
Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels);

}  // namespace wick
