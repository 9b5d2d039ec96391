// The autodiff transforms' contract beyond per-op rules: vjp with explicit cotangents, named
// parameter maps, stop_gradient, higher-order gradients, checkpoint (same gradients, less
// memory), laziness (one evaluation for forward + backward + update) and clear errors.
#include <gtest/gtest.h>

#include "common/tensor_util.h"

namespace {

using wick::DType;
using wick::Tensor;

Tensor vec(std::vector<double> v) {
  int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector(v, {n});
}

TEST(Transforms, VjpWithExplicitCotangents) {
  Tensor x = vec({1, 2, 3});
  auto [outs, cots] = wick::vjp([](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0] * v[0], wick::sum(v[0])}; },
                                {x}, {vec({1, 0, 2}), wick::scalar(10.0, DType::f64)});
  EXPECT_EQ(outs[0].to_vector<double>(), (std::vector<double>{1, 4, 9}));
  // d/dx [ c0 · x² + c1 · sum(x) ] = 2·x·c0 + c1
  EXPECT_EQ(cots[0].to_vector<double>(), (std::vector<double>{12, 10, 22}));
}

TEST(Transforms, ValueAndGradOverANamedParameterMap) {
  wick::TensorMap params = {{"layer.weight", Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2})},
                            {"layer.bias", vec({0.5, -0.5})},
                            {"unused", vec({7})}};
  Tensor x = Tensor::from_vector(std::vector<double>{1, -1}, {1, 2});
  auto [loss, grads] = wick::value_and_grad(
      [&](const wick::TensorMap& p) { return wick::sum(wick::square(wick::linear(x, p.at("layer.weight"), p.at("layer.bias")))); },
      params);
  // y = x·Wᵀ + b = [1-2+0.5, 3-4-0.5] = [-0.5, -1.5]; loss = 0.25 + 2.25
  EXPECT_DOUBLE_EQ(loss.item<double>(), 2.5);
  EXPECT_EQ(grads.at("layer.bias").to_vector<double>(), (std::vector<double>{-1, -3}));
  EXPECT_EQ(grads.at("layer.weight").to_vector<double>(), (std::vector<double>{-1, 1, -3, 3}));
  EXPECT_EQ(grads.at("unused").to_vector<double>(), (std::vector<double>{0})) << "unused inputs get zeros";
}

TEST(Transforms, StopGradientCutsThePath) {
  Tensor x = vec({2});
  auto g = wick::grad([](const std::vector<Tensor>& v) {
    return std::vector<Tensor>{wick::sum(v[0] * wick::stop_gradient(v[0] * 3.0))};
  })({x});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{6}));  // not 12
}

TEST(Transforms, SecondDerivative) {
  Tensor x = vec({0.3, -1.2});
  wick::Function f = [](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::sum(wick::sin(v[0]) * v[0])}; };
  wick::Function df = [f](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::sum(wick::grad(f)(v)[0])}; };
  auto d2 = wick::grad(df)({x})[0].to_vector<double>();
  std::vector<double> xs = {0.3, -1.2};
  for (size_t i = 0; i < 2; ++i) EXPECT_NEAR(d2[i], 2 * std::cos(xs[i]) - xs[i] * std::sin(xs[i]), 1e-12);
}

TEST(Transforms, ArgumentsPassedTwiceGetTheirOwnGradients) {
  Tensor x = vec({3});
  auto g = wick::grad([](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::sum(v[0] * 2.0 + v[1] * 5.0)}; },
                      {0, 1})({x, x});
  EXPECT_EQ(g[0].item<double>(), 2);
  EXPECT_EQ(g[1].item<double>(), 5);
}

TEST(Transforms, EvaluatingInsideTheFunctionKeepsTheGraph) {
  Tensor x = vec({1, 2});
  auto g = wick::grad([](const std::vector<Tensor>& v) {
    Tensor h = wick::exp(v[0]);
    h.eval();  // e.g. logging an intermediate
    return std::vector<Tensor>{wick::sum(h * v[0])};
  })({x});
  auto got = g[0].to_vector<double>();
  EXPECT_NEAR(got[0], std::exp(1.0) * 2, 1e-12);
  EXPECT_NEAR(got[1], std::exp(2.0) * 3, 1e-12);
}

TEST(Transforms, ForwardBackwardAndUpdateAreOneLazyGraph) {
  Tensor w = Tensor::from_vector(std::vector<float>(64 * 64, 0.01f), {64, 64});
  Tensor x = wick::ones({8, 64});
  uint64_t before = wick::kernel_count();
  auto [outs, grads] = wick::value_and_grad([&](const std::vector<Tensor>& v) {
    return std::vector<Tensor>{wick::mean(wick::square(wick::matmul(x, v[0])))};
  })({w});
  Tensor updated = w - 0.1 * grads[0];
  EXPECT_FALSE(outs[0].is_evaluated());
  EXPECT_FALSE(updated.is_evaluated());
  EXPECT_EQ(wick::kernel_count(), before) << "building must not compute";
  wick::eval({outs[0], updated});
  EXPECT_GT(wick::kernel_count(), before);
  EXPECT_TRUE(outs[0].is_evaluated());
}

TEST(Transforms, CheckpointGivesTheSameGradientsWithLessMemory) {
  // Four blocks of wide elementwise work on a [256, 1024] activation (1 MiB each).
  auto block = [](const std::vector<Tensor>& v) {
    Tensor h = v[0];
    for (int i = 0; i < 6; ++i) h = wick::tanh(h * v[1] + 0.1);
    return std::vector<Tensor>{h};
  };
  wick::Function ck = wick::checkpoint(block);
  wick::Generator gen(5);
  Tensor x = wick::normal({256, 1024}, gen).eval();
  Tensor s = wick::full({1024}, 0.9).eval();
  auto run = [&](bool use_checkpoint) {
    wick::clear_memory_cache();
    wick::reset_peak_memory();
    size_t base = wick::memory_stats().active;
    auto [outs, grads] = wick::value_and_grad(
        [&](const std::vector<Tensor>& v) {
          Tensor h = v[0];
          for (int b = 0; b < 4; ++b) h = (use_checkpoint ? ck : wick::Function(block))({h, v[1]})[0];
          return std::vector<Tensor>{wick::sum(h)};
        },
        {0, 1})({x, s});
    wick::eval({outs[0], grads[0], grads[1]});
    size_t peak = wick::memory_stats().peak - base;
    return std::make_tuple(grads[0].to_vector<float>(), grads[1].to_vector<float>(), peak);
  };
  auto [gx, gs, peak_plain] = run(false);
  auto [cx, cs, peak_ck] = run(true);
  ASSERT_EQ(gx.size(), cx.size());
  for (size_t i = 0; i < gx.size(); i += 97) ASSERT_FLOAT_EQ(gx[i], cx[i]);
  for (size_t i = 0; i < gs.size(); ++i) ASSERT_NEAR(gs[i], cs[i], 1e-3 * (1 + std::abs(gs[i])));
  std::printf("peak: plain %zu B, checkpointed %zu B\n", peak_plain, peak_ck);
  EXPECT_LT(peak_ck, peak_plain * 2 / 3);
}

TEST(Transforms, ErrorsAreClear) {
  Tensor x = vec({1, 2});
  auto expect_error = [](auto&& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error";
    } catch (const wick::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { wick::grad([](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[0] * 2.0}; })({x}); },
               "one element");
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{1}, {1});
  expect_error([&] { wick::grad([](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::sum(v[0])}; })({ids}); },
               "only floating");
  expect_error([&] { wick::grad([](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::sum(v[0])}; }, {3})({x}); },
               "argnum 3");
}

}  // namespace
