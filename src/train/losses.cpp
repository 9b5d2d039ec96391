#include "wick/losses.h"

#include <algorithm>
#include <limits>

#include "graph/ops_common.h"
#include "wick/transforms.h"

namespace wick {
namespace {

void check_labels(const char* op, const Shape& lead, const Tensor& labels) {
  if (labels.dtype() != DType::i32 && labels.dtype() != DType::i64)
    throw Error(std::string(op) + ": labels must be i32 or i64, got " + dtype_name(labels.dtype()));
  if (labels.shape() != lead)
    throw Error(std::string(op) + ": labels " + shape_str(labels.shape()) + " do not match the leading axes " +
                shape_str(lead));
}

/// Per-target losses [N] (f32, or f64 for f64 logits) of logits [N, V].
Tensor per_target(const Tensor& logits2, const Tensor& labels1, const CrossEntropyOptions& o) {
  DType t = logits2.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor loss = detail::make_node({logits2.shape()[0]}, t,
                                  std::make_shared<detail::CrossEntropy>(o.ignore_index, o.label_smoothing),
                                  {logits2, labels1});
  return loss;
}

Tensor reduce(const Tensor& losses, const Tensor& labels1, const CrossEntropyOptions& o, const Shape& lead) {
  switch (o.reduction) {
    case Reduction::none: return reshape(losses, lead);
    case Reduction::sum: return sum(losses);
    case Reduction::mean: {
      Tensor count = sum(astype(not_equal(labels1, static_cast<double>(o.ignore_index)), losses.dtype()));
      return sum(losses) / count;
    }
  }
  return losses;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyOptions& o) {
  detail::require_defined("cross_entropy", {&logits, &labels});
  if (logits.ndim() < 1 || !is_floating(logits.dtype()))
    throw Error("cross_entropy: logits must be a float tensor [..., V], got " + shape_str(logits.shape()) + " " +
                dtype_name(logits.dtype()));
  if (o.label_smoothing < 0 || o.label_smoothing > 1)
    throw Error("cross_entropy: label_smoothing must be in [0, 1]");
  Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  check_labels("cross_entropy", lead, labels);
  int64_t V = logits.shape().back();
  Tensor l2 = reshape(logits, {-1, V});
  Tensor y1 = reshape(labels, {-1});
  Tensor losses = per_target(l2, y1, o);
  return reduce(losses, y1, o, lead);
}

Tensor linear_cross_entropy(const Tensor& h, const Tensor& w, const Tensor& labels,
                            const CrossEntropyOptions& o, int64_t chunk_tokens) {
  detail::require_defined("linear_cross_entropy", {&h, &w, &labels});
  if (w.ndim() != 2 || h.ndim() < 1 || h.shape().back() != w.shape()[1])
    throw Error("linear_cross_entropy: h " + shape_str(h.shape()) + " and W " + shape_str(w.shape()) +
                " do not match (W is [V, D])");
  Shape lead(h.shape().begin(), h.shape().end() - 1);
  check_labels("linear_cross_entropy", lead, labels);
  int64_t D = w.shape()[1], V = w.shape()[0];
  Tensor h2 = reshape(h, {-1, D});
  Tensor y1 = reshape(labels, {-1});
  int64_t n = h2.shape()[0];
  // 32 MB of f32 logits per chunk stays in a CPU's caches; a GPU needs larger GEMMs to be busy,
  // and 256 MB (about 440 rows of a 152k vocabulary) keeps them so without dominating the peak.
  int64_t budget = h.device().type == Device::Type::cuda ? int64_t(256) << 20 : int64_t(32) << 20;
  if (chunk_tokens <= 0) chunk_tokens = std::max<int64_t>(16, budget / (4 * std::max<int64_t>(V, 1)));
  CrossEntropyOptions per = o;
  per.reduction = Reduction::none;
  // Each chunk is checkpointed: its logits exist only while the chunk's loss (forward) or its
  // gradient (backward, after recomputation) is being computed.
  Function chunk_loss = checkpoint([per](const std::vector<Tensor>& v) {
    return std::vector<Tensor>{cross_entropy(matmul(v[0], transpose(v[1])), v[2], per)};
  });
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < n; s += chunk_tokens) {
    int64_t e = std::min(n, s + chunk_tokens);
    parts.push_back(chunk_loss({slice(h2, 0, s, e), w, slice(y1, 0, s, e)})[0]);
  }
  Tensor losses = parts.size() == 1 ? parts[0] : concatenate(parts, 0);
  if (parts.empty()) losses = zeros({0}, DType::f32);
  return reduce(losses, y1, o, lead);
}

Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels) {
  detail::require_defined("causal_lm_loss", {&logits, &labels});
  if (logits.ndim() != 3 || labels.ndim() != 2 || logits.shape()[0] != labels.shape()[0] ||
      logits.shape()[1] != labels.shape()[1])
    throw Error("causal_lm_loss: logits " + shape_str(logits.shape()) + " and labels " + shape_str(labels.shape()) +
                " must be [B, T, V] and [B, T]");
  int64_t T = logits.shape()[1];
  return cross_entropy(slice(logits, 1, 0, T - 1), slice(labels, 1, 1, T));
}

}  // namespace wick
