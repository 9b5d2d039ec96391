// Reverse-mode rules of the linear-algebra and neural-network primitives. Norms, softmax and
// attention differentiate in f32 (as their forward kernels compute), whatever the storage dtype.
#include <limits>
#include <optional>

#include "core/cuda_api.h"

#include "graph/vjp_common.h"

namespace wick::detail {
namespace {

/// x in the dtype its kernel computes in: f32 for f16/bf16, itself for f32/f64.
Tensor widened(const Tensor& x) {
  return x.dtype() == DType::f16 || x.dtype() == DType::bf16 ? astype(x, DType::f32) : x;
}

Tensor last_axis_mean(const Tensor& x) { return mean(x, {-1}, true); }

/// Gradient of an optional per-feature weight: sum of g·n over every leading axis.
Tensor feature_grad(const Tensor& gn, const Tensor& w) { return astype(unbroadcast(gn, w.shape()), w.dtype()); }

}  // namespace

std::vector<Tensor> Matmul::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                const std::vector<bool>& need) {
  // compile fuses after differentiating: an activated product never reaches autodiff.
  if (act) throw Error("matmul: the gradient of a product with a fused activation is not defined");
  // The builder broadcast both operands to the output's batch dims, so the products below have
  // exactly the operands' shapes; the broadcast views' own rules sum the batch back.
  Tensor da, db;
  if (need[0]) da = matmul(g, swapaxes(p[1], -1, -2));
  if (need[1]) db = matmul(swapaxes(p[0], -1, -2), g);
  return {da, db};
}

std::vector<Tensor> LoraLinear::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                    const std::vector<bool>& need) {
  const Tensor &x = p[0], &w = p[1], &a = p[2], &b = p[3];
  int64_t in = w.shape()[1], out_f = w.shape()[0];
  Tensor g2 = reshape(g, {-1, out_f});
  Tensor x2 = reshape(x, {-1, in});
  std::vector<Tensor> d(p.size());
  // dx = g·W + s·(g·B)·A is itself a LoRA linear: weight Wᵀ [in,out], A' = Bᵀ, B' = Aᵀ.
  if (need[0]) d[0] = lora_linear(g, transpose(w), std::nullopt, transpose(b), transpose(a), scale);
  if (need[1]) d[1] = matmul(transpose(g2), x2);
  if (need[2]) d[2] = matmul(transpose(matmul(g2, b)), x2) * scale;
  if (need[3]) d[3] = matmul(transpose(g2), matmul(x2, transpose(a))) * scale;
  if (has_bias && need[4]) d[4] = sum(g2, {0});
  return d;
}

std::vector<Tensor> Softmax::vjp(const std::vector<Tensor>&, const Tensor& y, const Tensor& g,
                                 const std::vector<bool>&) {
  if (log) return {g - exp(y) * sum(g, {-1}, true)};
  return {y * (g - sum(g * y, {-1}, true))};
}

std::vector<Tensor> RmsNorm::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                 const std::vector<bool>& need) {
  Tensor x = widened(p[0]), gf = widened(g);
  Tensor r = rsqrt(last_axis_mean(square(x)) + eps);
  Tensor n = x * r;
  std::vector<Tensor> d(p.size());
  Tensor gn = has_weight ? gf * widened(p[1]) : gf;
  if (has_weight && need[1]) d[1] = feature_grad(gf * n, p[1]);
  if (!need[0]) return d;
  // On a GPU the input's gradient is one row kernel; composed, it was half a dozen passes over
  // [rows, D] in f32 for each norm of a training step.
  if (p[0].device().type == Device::Type::cuda && p[0].dtype() != DType::f64 && g.dtype() != DType::f64) {
    std::vector<Tensor> in = {p[0], g};
    if (has_weight) in.push_back(p[1]);
    d[0] = make_node(p[0].shape(), p[0].dtype(), std::make_shared<RmsNormGrad>(eps, has_weight), in);
  } else {
    d[0] = astype(r * (gn - n * last_axis_mean(gn * n)), p[0].dtype());
  }
  return d;
}

std::vector<Tensor> LayerNorm::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                   const std::vector<bool>& need) {
  Tensor x = widened(p[0]), gf = widened(g);
  Tensor centered = x - last_axis_mean(x);
  Tensor r = rsqrt(last_axis_mean(square(centered)) + eps);
  Tensor n = centered * r;
  std::vector<Tensor> d(p.size());
  size_t wi = 1, bi = has_weight ? 2 : 1;
  Tensor gn = has_weight ? gf * widened(p[wi]) : gf;
  if (has_weight && need[wi]) d[wi] = feature_grad(gf * n, p[wi]);
  if (has_bias && need[bi]) d[bi] = feature_grad(gf, p[bi]);
  if (need[0])
    d[0] = astype(r * (gn - last_axis_mean(gn) - n * last_axis_mean(gn * n)), p[0].dtype());
  return d;
}

std::vector<Tensor> Rope::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                              const std::vector<bool>&) {
  // A rotation's transpose is the rotation by the opposite angle (at the same positions; the
  // position input has no gradient).
  std::vector<float> back(inv_freq.size());
  for (size_t i = 0; i < back.size(); ++i) back[i] = -inv_freq[i];
  if (p.size() > 1) return {rope_at(g, back, p[1]), Tensor()};
  return {rope(g, back, offset)};
}

/// The gradient as one AttentionGrad op where the GPU's tensor-core kernel takes it (half types,
/// head dim 64 or 128, no mask): dQ, dK and dV are views of its output.
std::optional<std::vector<Tensor>> Attention::flash_vjp(const std::vector<Tensor>& p, const Tensor& out,
                                                        const Tensor& g) const {
  const Device dev = p[0].device();
  const DType t = p[0].dtype();
  if (dev.type != Device::Type::cuda || has_mask || !(t == DType::bf16 || t == DType::f16) ||
      !(p[0].shape()[3] == 64 || p[0].shape()[3] == 128) || p[1].dtype() != t ||
      p[2].dtype() != t || p[0].shape()[0] * p[0].shape()[1] > 65535 ||
      !cuda_api::flash_attention_available(dev.index))
    return std::nullopt;
  const Shape& qs = p[0].shape();
  const Shape& ks = p[1].shape();
  const int64_t nq = numel(qs) / qs[3], nk = numel(ks) / ks[3], D = qs[3];
  Tensor all = make_node({nq + 2 * nk, D}, t, std::make_shared<AttentionGrad>(scale, causal),
                         {p[0], p[1], p[2], astype(out, t), astype(g, t)});
  return std::vector<Tensor>{reshape(slice(all, 0, 0, nq), qs), reshape(slice(all, 0, nq, nq + nk), ks),
                             reshape(slice(all, 0, nq + nk, nq + 2 * nk), ks)};
}

std::vector<Tensor> Attention::vjp(const std::vector<Tensor>& p, const Tensor& out, const Tensor& g,
                                   const std::vector<bool>& need) {
  if (!rope_q.empty()) throw Error("scaled_dot_product_attention: a compiled plan's fused form has no gradient");
  if (auto d = flash_vjp(p, out, g)) return *d;
  // Recomputes the probabilities (the forward kernel keeps none) with grouped heads
  // [B, Hkv, G, T, *] so GQA needs no copies of k and v, then applies the softmax rule.
  const Shape& qs = p[0].shape();
  int64_t B = qs[0], Hq = qs[1], T = qs[2], D = qs[3];
  int64_t Hkv = p[1].shape()[1], S = p[1].shape()[2], G = Hq / Hkv;
  // On a GPU one GEMM and one row kernel recompute the probabilities (and one more applies the
  // softmax rule below); the CPU composes the same from ops, which its GEMM serves better. The
  // GPU keeps a half type for the gradient GEMMs (f32 accumulation inside, the probabilities
  // and their gradient rounded once each, as flash attention's backward does): in f32 those
  // GEMMs were a tenth of a LoRA step. The CPU computes in f32.
  const bool fused = p[0].device().type == Device::Type::cuda;
  auto operand = [&](const Tensor& x) { return fused ? x : widened(x); };
  Tensor q5 = reshape(operand(p[0]), {B, Hkv, G, T, D});
  Tensor k5 = expand_dims(operand(p[1]), 2);
  Tensor v5 = expand_dims(operand(p[2]), 2);
  Tensor g5 = reshape(operand(g), {B, Hkv, G, T, D});
  Tensor prob;
  if (fused) {
    std::vector<Tensor> in = {p[0], p[1]};
    if (has_mask) in.push_back(p[3]);
    prob = reshape(make_node({B, Hq, T, S}, p[0].dtype(), std::make_shared<AttentionProbs>(scale, causal, has_mask), in),
                   {B, Hkv, G, T, S});
  } else {
    Tensor scores = matmul(q5, swapaxes(k5, -1, -2)) * scale;
    if (has_mask) scores = scores + reshape(p[3], {B, Hkv, G, T, S});
    const double inf = std::numeric_limits<double>::infinity();
    if (causal) {
      Tensor t = reshape(arange(static_cast<double>(S - T), static_cast<double>(S), 1.0, DType::i64), {T, 1});
      Tensor allowed = less_equal(reshape(arange(S), {1, S}), t);
      scores = where(allowed, scores, -inf);
    }
    // Rows with every key masked have probability 0 (as the forward kernel outputs 0 there).
    Tensor m = max(scores, {-1}, true);
    Tensor e = exp(scores - where(equal(m, -inf), 0.0, m));
    Tensor den = sum(e, {-1}, true);
    prob = e / where(equal(den, 0.0), 1.0, den);
  }

  // A key or value head serves its group's G query heads: its gradient contracts over the group
  // and the query rows at once ([B, Hkv, G·T, *] views), one GEMM instead of G and a sum.
  auto group_rows = [&](const Tensor& x) { return reshape(x, {B, Hkv, G * T, x.shape().back()}); };
  std::vector<Tensor> d(p.size());
  if (need[2]) d[2] = astype(matmul(swapaxes(group_rows(prob), -1, -2), group_rows(g5)), p[2].dtype());
  if (need[0] || need[1] || (has_mask && need[3])) {
    Tensor dp = matmul(g5, swapaxes(v5, -1, -2));
    // The GPU's row kernel also applies the score scale that q's and k's gradients carry (unless
    // the mask, which has none, needs the same values).
    const bool fold = fused && !(has_mask && need[3]);
    Tensor ds = fused ? make_node(prob.shape(), prob.dtype(), std::make_shared<SoftmaxGrad>(fold ? scale : 1.0), {prob, dp})
                      : prob * (dp - sum(dp * prob, {-1}, true));
    auto scaled = [&](const Tensor& x) { return fold ? x : x * scale; };
    if (need[0]) d[0] = astype(reshape(scaled(matmul(ds, k5)), qs), p[0].dtype());
    if (need[1]) d[1] = astype(scaled(matmul(swapaxes(group_rows(ds), -1, -2), group_rows(q5))), p[1].dtype());
    if (has_mask && need[3]) d[3] = astype(reshape(ds, {B, Hq, T, S}), p[3].dtype());
  }
  return d;
}

}  // namespace wick::detail
