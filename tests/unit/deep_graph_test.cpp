// Very deep and very wide graphs: evaluation and destruction must not recurse per node.
#include <gtest/gtest.h>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

constexpr int kDepth = 100000;

Tensor chain(Tensor x, int n) {
  for (int i = 0; i < n; ++i) x = x + 1.0;
  return x;
}

TEST(DeepGraph, HundredThousandNodeChainEvaluates) {
  Tensor x = chain(wick::scalar(0.0), kDepth);
  EXPECT_FALSE(x.is_evaluated());
  x.eval();
  EXPECT_EQ(x.item<float>(), static_cast<float>(kDepth));
  // And on a vector, asynchronously.
  Tensor v = chain(wick::zeros({4}, DType::i32), kDepth);
  wick::Future f = wick::eval_async({v});
  wait_or_die(f, 120);
  EXPECT_EQ(f.get()[0].to_vector<int32_t>(), (std::vector<int32_t>(4, kDepth)));
}

TEST(DeepGraph, DestroyingAnUnevaluatedChainDoesNotOverflowTheStack) {
  {
    Tensor x = chain(wick::scalar(0.0), kDepth);
    EXPECT_EQ(x.shape(), wick::Shape{});
  }  // the whole chain is released here
  // Partly evaluated: the middle is evaluated, the tail and the head's graph are dropped.
  Tensor mid = chain(wick::scalar(1.0), kDepth / 2);
  Tensor tail = chain(mid, kDepth / 2);
  mid.eval();
  EXPECT_EQ(mid.item<float>(), 1.0f + kDepth / 2);
  tail = Tensor();
  // Chains of other ops (unary, views) too.
  {
    Tensor y = wick::ones({2, 3});
    for (int i = 0; i < kDepth / 2; ++i) y = wick::transpose(wick::negative(y));
  }
  // Destroyed on another thread (default thread stacks can be smaller).
  Tensor z = chain(wick::scalar(0.0), kDepth);
  std::thread t([zz = std::move(z)]() mutable { zz = Tensor(); });
  t.join();
  SUCCEED();
}

TEST(DeepGraph, DeepChainOfViewsAndUnaryOps) {
  Input in = random_input({3, 4}, DType::f32, Layout::contiguous, 1);
  Tensor y = in.tensor;
  for (int i = 0; i < 20000; ++i) y = wick::transpose(wick::negative(y));  // even count: identity
  EXPECT_TRUE(matches(y, in.host, DType::f32, Tol{0, 0}));
}

TEST(DeepGraph, WideGraphManyRoots) {
  Input in = random_input({16}, DType::f32, Layout::contiguous, 2);
  std::vector<Tensor> roots;
  Tensor shared = wick::exp(in.tensor);
  for (int i = 0; i < 10000; ++i) roots.push_back(shared + double(i % 100));
  wick::eval(roots);
  HostArray he = map(in.host, [](double v) { return std::exp(v); });
  for (int i : {0, 1, 57, 9999}) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(matches(roots[i], map(he, [&](double v) { return v + i % 100; }), DType::f32));
  }
  // A sum of many tensors built as a balanced and as a linear reduction.
  Tensor acc = wick::zeros({16});
  for (int i = 0; i < 5000; ++i) acc = acc + roots[i];
  HostArray want(he.shape);
  for (int i = 0; i < 5000; ++i)
    for (int64_t k = 0; k < 16; ++k) want[k] += he[k] + i % 100;
  EXPECT_TRUE(matches(acc, want, DType::f32, Tol{1e-4, 1e-3}));
}

TEST(DeepGraph, MemoryReturnsAfterTheDeepChain) {
  Tensor w = chain(wick::zeros({1024}), 100);
  w.eval();
  w = Tensor();
  size_t base = quiesce();
  {
    Tensor x = chain(wick::zeros({1024}), kDepth);
    x.eval();
    EXPECT_EQ(x.to_vector<float>()[1023], static_cast<float>(kDepth));
  }
  EXPECT_TRUE(settles_at(base));
}

}  // namespace
