// Every differentiable primitive's vjp against central finite differences in f64: the loss is
// sum(f(inputs) · R) for a fixed random R, so every output element's cotangent is distinct.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "common/tensor_util.h"

namespace {

using wick::DType;
using wick::Tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Input {
  wick::Shape shape;
  double lo = -1.5, hi = 1.5;
};

std::vector<double> random_values(int64_t n, uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

double loss_value(const Fn& f, const std::vector<std::vector<double>>& vals, const std::vector<Input>& ins,
                  const Tensor& weights) {
  std::vector<Tensor> xs;
  for (size_t i = 0; i < ins.size(); ++i) xs.push_back(Tensor::from_vector(vals[i], ins[i].shape));
  return wick::sum(wick::astype(f(xs), DType::f64) * weights).item<double>();
}

/// Checks d loss / d input against central differences for every element of every input.
void check_grad(const std::string& what, const Fn& f, const std::vector<Input>& ins, double tol = 1e-6,
                double eps = 1e-6, std::vector<bool> diff = {}) {
  SCOPED_TRACE(what);
  if (diff.empty()) diff.assign(ins.size(), true);
  std::vector<std::vector<double>> vals;
  for (size_t i = 0; i < ins.size(); ++i)
    vals.push_back(random_values(wick::numel(ins[i].shape), 17 + i, ins[i].lo, ins[i].hi));
  std::vector<Tensor> xs;
  for (size_t i = 0; i < ins.size(); ++i) xs.push_back(Tensor::from_vector(vals[i], ins[i].shape));
  Tensor probe = f(xs);
  Tensor weights = Tensor::from_vector(random_values(probe.numel(), 99, -1, 1), probe.shape());

  std::vector<int> argnums;
  for (size_t i = 0; i < ins.size(); ++i)
    if (diff[i]) argnums.push_back(static_cast<int>(i));
  auto vg = wick::value_and_grad(
      [&](const std::vector<Tensor>& a) {
        return std::vector<Tensor>{wick::sum(wick::astype(f(a), DType::f64) * weights)};
      },
      argnums);
  auto [outs, grads] = vg(xs);
  EXPECT_NEAR(outs[0].item<double>(), loss_value(f, vals, ins, weights), 1e-9);
  for (size_t k = 0; k < argnums.size(); ++k) {
    size_t i = static_cast<size_t>(argnums[k]);
    ASSERT_EQ(grads[k].shape(), ins[i].shape);
    std::vector<double> analytic = grads[k].to_vector<double>();
    for (size_t j = 0; j < vals[i].size(); ++j) {
      auto v = vals;
      v[i][j] += eps;
      double up = loss_value(f, v, ins, weights);
      v[i][j] -= 2 * eps;
      double down = loss_value(f, v, ins, weights);
      double numeric = (up - down) / (2 * eps);
      ASSERT_NEAR(analytic[j], numeric, tol * (1 + std::abs(numeric)))
          << "input " << i << " element " << j;
    }
  }
}

Fn unary(Tensor (*op)(const Tensor&)) {
  return [op](const std::vector<Tensor>& x) { return op(x[0]); };
}

TEST(Grad, UnaryOps) {
  Input any{{3, 4}};
  Input pos{{3, 4}, 0.2, 2.0};
  check_grad("negative", unary(wick::negative), {any});
  check_grad("abs", unary(wick::abs), {any});
  check_grad("exp", unary(wick::exp), {any});
  check_grad("log", unary(wick::log), {pos});
  check_grad("sqrt", unary(wick::sqrt), {pos});
  check_grad("rsqrt", unary(wick::rsqrt), {pos});
  check_grad("sin", unary(wick::sin), {any});
  check_grad("cos", unary(wick::cos), {any});
  check_grad("tanh", unary(wick::tanh), {any});
  check_grad("sigmoid", unary(wick::sigmoid), {any});
  check_grad("silu", unary(wick::silu), {any});
  check_grad("gelu", unary(wick::gelu), {any});
  check_grad("gelu_tanh", unary(wick::gelu_tanh), {any});
  check_grad("relu", unary(wick::relu), {any});
  check_grad("square", unary(wick::square), {any});
  check_grad("erf", unary(wick::erf), {any});
}

TEST(Grad, BinaryOpsWithBroadcasting) {
  Input a{{2, 3, 4}}, b{{3, 1}}, pos{{3, 1}, 0.5, 2.0}, apos{{2, 3, 4}, 0.3, 2.0};
  auto bin = [](Tensor (*op)(const Tensor&, const Tensor&)) {
    return Fn([op](const std::vector<Tensor>& x) { return op(x[0], x[1]); });
  };
  check_grad("add", bin(wick::add), {a, b});
  check_grad("subtract", bin(wick::subtract), {a, b});
  check_grad("multiply", bin(wick::multiply), {a, b});
  check_grad("divide", bin(wick::divide), {a, pos});
  check_grad("power", bin(wick::power), {apos, b});
  check_grad("maximum", bin(wick::maximum), {a, b});
  check_grad("minimum", bin(wick::minimum), {a, b});
  check_grad("scalar forms", [](const std::vector<Tensor>& x) { return (2.0 - x[0]) * 3.0 / (x[0] * x[0] + 1.0); },
             {a});
  check_grad("where", [](const std::vector<Tensor>& x) { return wick::where(wick::greater(x[0], 0.0), x[0], x[1]); },
             {a, b});
  check_grad("astype", [](const std::vector<Tensor>& x) { return wick::astype(wick::astype(x[0], DType::f32), DType::f64) * x[0]; },
             {a}, 1e-4, 1e-3);  // f32 rounding inside: a coarser difference step
}

TEST(Grad, Reductions) {
  Input x{{2, 3, 4}};
  check_grad("sum", [](const std::vector<Tensor>& v) { return wick::sum(v[0], {0, 2}); }, {x});
  check_grad("mean keepdims", [](const std::vector<Tensor>& v) { return wick::mean(v[0], {1}, true); }, {x});
  check_grad("max", [](const std::vector<Tensor>& v) { return wick::max(v[0], {-1}); }, {x});
  check_grad("min", [](const std::vector<Tensor>& v) { return wick::min(v[0], {0, 1}); }, {x});
  check_grad("logsumexp", [](const std::vector<Tensor>& v) { return wick::logsumexp(v[0], {-1}); }, {x});
  check_grad("var", [](const std::vector<Tensor>& v) { return wick::var(v[0], {1}, false, 1); }, {x});
  check_grad("sum all", [](const std::vector<Tensor>& v) { return wick::sum(v[0]); }, {x});
}

TEST(Grad, MaxTiesShareTheGradient) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 3, 3, 2}, {4});
  auto g = wick::grad([](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::max(v[0])}; })({x});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{0, 0.5, 0.5, 0}));
}

TEST(Grad, ShapeViewsAndJoins) {
  Input x{{2, 3, 4}}, y{{2, 2, 4}};
  check_grad("reshape", [](const std::vector<Tensor>& v) { return wick::reshape(v[0], {6, 4}) * 1.0; }, {x});
  check_grad("transpose", [](const std::vector<Tensor>& v) { return wick::transpose(v[0], {2, 0, 1}) * 1.0; }, {x});
  check_grad("slice with step", [](const std::vector<Tensor>& v) { return wick::slice(v[0], {0, 1, 0}, {2, 3, 4}, {1, 1, 2}) * 1.0; }, {x});
  check_grad("broadcast_to", [](const std::vector<Tensor>& v) { return wick::broadcast_to(v[0], {5, 2, 3, 4}) * 1.0; }, {x});
  check_grad("concatenate", [](const std::vector<Tensor>& v) { return wick::concatenate({v[0], v[1]}, 1) * 1.0; }, {x, y});
  check_grad("stack+split", [](const std::vector<Tensor>& v) { return wick::stack(wick::split(v[0], 2, -1), 0) * 1.0; }, {x});
  check_grad("contiguous", [](const std::vector<Tensor>& v) { return wick::contiguous(wick::transpose(v[0])); }, {x});
  check_grad("slice_update", [](const std::vector<Tensor>& v) { return wick::slice_update(v[0], v[1], {0, 1, 0}); }, {x, y});
}

TEST(Grad, IndexingAccumulatesRepeatedIndices) {
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{2, 0, 2, -1}, {2, 2});
  Tensor along = Tensor::from_vector(std::vector<int32_t>{0, 2, 2, 1, 3, 3}, {2, 3});
  check_grad("take axis 0", [&](const std::vector<Tensor>& v) { return wick::take(v[0], ids, 0); }, {{{4, 3}}});
  check_grad("take axis 1", [&](const std::vector<Tensor>& v) { return wick::take(v[0], ids, 1); }, {{{2, 4, 3}}});
  check_grad("embedding", [&](const std::vector<Tensor>& v) { return wick::embedding(v[0], ids); }, {{{5, 3}}});
  check_grad("take_along_axis", [&](const std::vector<Tensor>& v) { return wick::take_along_axis(v[0], along, 1); },
             {{{2, 4}}});
}

TEST(Grad, LinearAlgebra) {
  check_grad("matmul batched broadcast",
             [](const std::vector<Tensor>& v) { return wick::matmul(v[0], v[1]); }, {{{2, 3, 4}}, {{4, 5}}});
  check_grad("matmul vector", [](const std::vector<Tensor>& v) { return wick::matmul(v[0], v[1]); }, {{{4}}, {{2, 4, 3}}});
  check_grad("linear with bias",
             [](const std::vector<Tensor>& v) { return wick::linear(v[0], v[1], v[2]); }, {{{2, 3, 4}}, {{5, 4}}, {{5}}});
  check_grad("lora_linear",
             [](const std::vector<Tensor>& v) { return wick::lora_linear(v[0], v[1], v[2], v[3], v[4], 0.7); },
             {{{2, 3, 6}}, {{5, 6}}, {{5}}, {{2, 6}}, {{5, 2}}});
}

TEST(Grad, NeuralNetworkOps) {
  Input x{{2, 3, 6}}, w{{6}}, b{{6}};
  check_grad("softmax", [](const std::vector<Tensor>& v) { return wick::softmax(v[0], -1); }, {x});
  check_grad("softmax axis 1", [](const std::vector<Tensor>& v) { return wick::softmax(v[0], 1); }, {x});
  check_grad("log_softmax", [](const std::vector<Tensor>& v) { return wick::log_softmax(v[0], -1); }, {x});
  check_grad("rms_norm", [](const std::vector<Tensor>& v) { return wick::rms_norm(v[0], v[1], 1e-5); }, {x, w});
  check_grad("rms_norm no weight", [](const std::vector<Tensor>& v) { return wick::rms_norm(v[0], std::nullopt, 1e-5); }, {x});
  check_grad("layer_norm", [](const std::vector<Tensor>& v) { return wick::layer_norm(v[0], v[1], v[2], 1e-5); }, {x, w, b});
  check_grad("rope", [](const std::vector<Tensor>& v) { return wick::rope(v[0], 10000.0, 3); }, {{{2, 2, 3, 8}}});
}

TEST(Grad, Attention) {
  Input q{{2, 4, 3, 4}}, kv{{2, 2, 5, 4}};
  auto attn = [](bool causal) {
    return Fn([causal](const std::vector<Tensor>& v) {
      return wick::scaled_dot_product_attention(v[0], v[1], v[2], 0.5, causal);
    });
  };
  check_grad("gqa", attn(false), {q, kv, kv});
  check_grad("gqa causal", attn(true), {q, kv, kv});
  Tensor keep = Tensor::from_vector(std::vector<bool>{true, true, false, true, false}, {1, 1, 1, 5});
  check_grad("bool mask", [&](const std::vector<Tensor>& v) {
    return wick::scaled_dot_product_attention(v[0], v[1], v[2], 0.5, true, keep);
  }, {q, kv, kv});
  // Additive masks are stored in f32 whatever q's dtype: a coarser difference step.
  check_grad("additive mask", [](const std::vector<Tensor>& v) {
    return wick::scaled_dot_product_attention(v[0], v[1], v[2], 0.5, false, v[3]);
  }, {q, kv, kv, {{2, 1, 3, 5}}}, 1e-4, 1e-3);
}

TEST(Grad, FloatThirtyTwoAndHalfPrecisionFollowTheF64Gradient) {
  // Same function in f32: the analytic gradient agrees with f64's to f32 precision.
  Tensor x64 = Tensor::from_vector(random_values(24, 3, -1, 1), {4, 6});
  Tensor w64 = Tensor::from_vector(random_values(6, 4, 0.5, 1.5), {6});
  auto f = [](const std::vector<Tensor>& v) {
    return std::vector<Tensor>{wick::sum(wick::silu(wick::rms_norm(v[0], v[1], 1e-6)))};
  };
  auto g64 = wick::grad(f, {0, 1})({x64, w64});
  auto g32 = wick::grad(f, {0, 1})({wick::astype(x64, DType::f32), wick::astype(w64, DType::f32)});
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(g32[i].dtype(), DType::f32);
    auto a = g64[i].to_vector<double>();
    auto b = g32[i].to_vector<double>();
    for (size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], 1e-5);
  }
  auto gb = wick::grad(f, {0})({wick::astype(x64, DType::bf16), wick::astype(w64, DType::bf16)});
  EXPECT_EQ(gb[0].dtype(), DType::bf16);
}

}  // namespace
