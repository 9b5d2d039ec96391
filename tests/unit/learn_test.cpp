// End-to-end learning on CPU with the toolkit: autodiff + AdamW drive a small MLP and a 2-layer
// transformer (RMSNorm, RoPE, causal GQA attention, SwiGLU) to a low loss on toy tasks.
#include <gtest/gtest.h>

#include <cmath>

#include "common/tensor_util.h"

namespace {

using wick::DType;
using wick::Tensor;
using wick::TensorMap;

Tensor init(wick::Generator& gen, const wick::Shape& s, double scale) { return (wick::normal(s, gen) * scale).eval(); }

TEST(Learn, MlpSeparatesTwoInterleavedSpirals) {
  // Two spirals of 64 points each: not linearly separable.
  std::vector<float> xs;
  std::vector<int64_t> ys;
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 64; ++i) {
      double r = 0.2 + i / 64.0, a = i / 64.0 * 3.5 + c * M_PI;
      xs.push_back(static_cast<float>(r * std::cos(a)));
      xs.push_back(static_cast<float>(r * std::sin(a)));
      ys.push_back(c);
    }
  Tensor x = Tensor::from_vector(xs, {128, 2}), y = Tensor::from_vector(ys, {128});
  wick::Generator gen(1);
  TensorMap p = {{"l1.weight", init(gen, {64, 2}, 1.0)}, {"l1.bias", wick::zeros({64})},
                 {"l2.weight", init(gen, {64, 64}, 0.15)}, {"l2.bias", wick::zeros({64})},
                 {"l3.weight", init(gen, {2, 64}, 0.15)}, {"l3.bias", wick::zeros({2})}};
  wick::AdamW opt({.lr = 1e-2, .weight_decay = 0.0});
  double loss = 0;
  for (int step = 0; step < 400; ++step) {
    auto [l, g] = wick::value_and_grad([&](const TensorMap& q) {
      Tensor h = wick::tanh(wick::linear(x, q.at("l1.weight"), q.at("l1.bias")));
      h = wick::tanh(wick::linear(h, q.at("l2.weight"), q.at("l2.bias")));
      return wick::cross_entropy(wick::linear(h, q.at("l3.weight"), q.at("l3.bias")), y);
    }, p);
    p = opt.step(p, g);
    std::vector<Tensor> all = {l};
    for (auto& [k, v] : p) all.push_back(v);
    wick::eval(all);
    loss = l.item<double>();
  }
  EXPECT_LT(loss, 0.05);
}

/// One pre-norm decoder block: h = x + attn(norm(x)); out = h + mlp(norm(h)).
Tensor block(const TensorMap& p, const std::string& pre, const Tensor& x, int heads, int kv_heads) {
  int64_t B = x.shape(0), T = x.shape(1), D = x.shape(2), hd = D / heads;
  auto w = [&](const std::string& n) { return p.at(pre + n); };
  Tensor n1 = wick::rms_norm(x, w("norm1"), 1e-6);
  auto split_heads = [&](const Tensor& t, int h) { return wick::transpose(wick::reshape(t, {B, T, h, hd}), {0, 2, 1, 3}); };
  Tensor q = wick::rope(split_heads(wick::linear(n1, w("q")), heads), 10000.0);
  Tensor k = wick::rope(split_heads(wick::linear(n1, w("k")), kv_heads), 10000.0);
  Tensor v = split_heads(wick::linear(n1, w("v")), kv_heads);
  Tensor a = wick::scaled_dot_product_attention(q, k, v, 1.0 / std::sqrt(double(hd)), true);
  a = wick::reshape(wick::transpose(a, {0, 2, 1, 3}), {B, T, D});
  Tensor h = x + wick::linear(a, w("o"));
  Tensor n2 = wick::rms_norm(h, w("norm2"), 1e-6);
  return h + wick::linear(wick::silu(wick::linear(n2, w("gate"))) * wick::linear(n2, w("up")), w("down"));
}

TEST(Learn, TwoLayerTransformerLearnsToRecallTheFirstToken) {
  // Every position must predict the sequence's first token: only attention can carry it.
  const int64_t V = 12, D = 32, T = 8, B = 16, F = 64;
  const int heads = 4, kv_heads = 2;
  wick::Generator gen(7);
  TensorMap p = {{"embed", init(gen, {V, D}, 0.5)}, {"norm", wick::ones({D})}, {"head", init(gen, {V, D}, 0.1)}};
  for (std::string l : {"0.", "1."}) {
    p[l + "norm1"] = wick::ones({D});
    p[l + "norm2"] = wick::ones({D});
    p[l + "q"] = init(gen, {D, D}, 0.15);
    p[l + "k"] = init(gen, {D / heads * kv_heads, D}, 0.15);
    p[l + "v"] = init(gen, {D / heads * kv_heads, D}, 0.15);
    p[l + "o"] = init(gen, {D, D}, 0.15);
    p[l + "gate"] = init(gen, {F, D}, 0.15);
    p[l + "up"] = init(gen, {F, D}, 0.15);
    p[l + "down"] = init(gen, {D, F}, 0.1);
  }
  wick::AdamW opt({.lr = 3e-3, .weight_decay = 0.0});
  wick::Generator data(11);
  double loss = 0;
  for (int step = 0; step < 250; ++step) {
    Tensor ids = wick::astype(wick::uniform({B, T}, data, 0, V), DType::i64).eval();
    Tensor labels = wick::broadcast_to(wick::slice(ids, 1, 0, 1), {B, T});
    auto [l, g] = wick::value_and_grad([&](const TensorMap& q) {
      Tensor h = wick::embedding(q.at("embed"), ids);
      h = block(q, "0.", h, heads, kv_heads);
      h = block(q, "1.", h, heads, kv_heads);
      return wick::linear_cross_entropy(wick::rms_norm(h, q.at("norm"), 1e-6), q.at("head"), labels);
    }, p);
    p = opt.step(p, g);
    std::vector<Tensor> all = {l};
    for (auto& [k, v] : p) all.push_back(v);
    wick::eval(all);
    loss = l.item<double>();
  }
  EXPECT_LT(loss, 0.1) << "chance level is log(12) = 2.48";
}

}  // namespace
