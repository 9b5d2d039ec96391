// The basic layers: Linear, Embedding, RMSNorm, LayerNorm, Dropout.
#include <cmath>

#include "wick/nn.h"
#include "wick/ops.h"

namespace wick {

namespace {

void require_positive(int64_t v, const char* layer, const char* what) {
  if (v <= 0) throw Error(std::string(layer) + ": " + what + " must be positive, got " + std::to_string(v));
}

}  // namespace

// ---- Linear -----------------------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen, DType dtype) {
  require_positive(in_features, "Linear", "in_features");
  require_positive(out_features, "Linear", "out_features");
  double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  register_parameter("weight", uniform({out_features, in_features}, gen, -bound, bound, dtype));
  if (bias) register_parameter("bias", uniform({out_features}, gen, -bound, bound, dtype));
}

Linear::Linear(Tensor weight, std::optional<Tensor> bias) {
  if (!weight.defined() || weight.ndim() != 2)
    throw Error("Linear: weight must be a 2-d [out, in] tensor");
  if (bias && (!bias->defined() || bias->ndim() != 1 || bias->shape()[0] != weight.shape()[0]))
    throw Error("Linear: bias must be [" + std::to_string(weight.shape()[0]) + "] for weight " +
                shape_str(weight.shape()));
  register_parameter("weight", std::move(weight));
  if (bias) register_parameter("bias", std::move(*bias));
}

std::optional<Tensor> Linear::bias() const {
  if (!has_parameter("bias")) return std::nullopt;
  return parameter(1);
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight(), bias()); }

// ---- Embedding --------------------------------------------------------------------------------

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen, DType dtype) {
  require_positive(num, "Embedding", "num");
  require_positive(dim, "Embedding", "dim");
  register_parameter("weight", normal({num, dim}, gen, 0.0, 1.0, dtype));
}

Embedding::Embedding(Tensor weight) {
  if (!weight.defined() || weight.ndim() != 2) throw Error("Embedding: weight must be a 2-d [num, dim] tensor");
  register_parameter("weight", std::move(weight));
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(weight(), ids); }

Tensor Embedding::attend(const Tensor& x) const { return linear(x, weight()); }

// ---- norms ------------------------------------------------------------------------------------

RMSNorm::RMSNorm(int64_t dim, double eps, DType dtype) : eps_(eps) {
  require_positive(dim, "RMSNorm", "dim");
  register_parameter("weight", ones({dim}, dtype));
}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, parameter(0), eps_); }

LayerNorm::LayerNorm(int64_t dim, double eps, bool affine, bool bias, DType dtype)
    : eps_(eps), affine_(affine), bias_(affine && bias) {
  require_positive(dim, "LayerNorm", "dim");
  if (affine_) register_parameter("weight", ones({dim}, dtype));
  if (bias_) register_parameter("bias", zeros({dim}, dtype));
}

Tensor LayerNorm::forward(const Tensor& x) {
  std::optional<Tensor> w, b;
  if (affine_) w = parameter(0);
  if (bias_) b = parameter(1);
  return layer_norm(x, w, b, eps_);
}

// ---- Dropout ----------------------------------------------------------------------------------

Dropout::Dropout(double p, uint64_t seed) : p_(p), gen_(seed) {
  if (!(p >= 0.0 && p <= 1.0)) throw Error("Dropout: p must be in [0, 1], got " + std::to_string(p));
}

Tensor Dropout::forward(const Tensor& x) {
  if (!active()) return x;
  if (p_ >= 1.0) return zeros_like(x);
  // keep with probability 1 − p; uniform draws are in [0, 1).
  Tensor keep = greater_equal(uniform(x.shape(), gen_, 0.0, 1.0, DType::f32), p_);
  return where(keep, multiply(x, 1.0 / (1.0 - p_)), 0.0);
}

}  // namespace wick
