// Reductions over any set of axes (negative, all, none given), with and without keepdims,
// on views and every float dtype; argmax/argmin with ties; empty and 0-d inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

using ReduceFn = Tensor (*)(const Tensor&, const std::vector<int>&, bool);

struct ReduceCase {
  const char* name;
  ReduceFn fn;
  double (*ref)(const std::vector<double>&);
};

const ReduceCase kCases[] = {
    {"sum", [](const Tensor& x, const std::vector<int>& a, bool k) { return wick::sum(x, a, k); },
     sum_of},
    {"mean", [](const Tensor& x, const std::vector<int>& a, bool k) { return wick::mean(x, a, k); },
     mean_of},
    {"max", [](const Tensor& x, const std::vector<int>& a, bool k) { return wick::max(x, a, k); },
     max_of},
    {"min", [](const Tensor& x, const std::vector<int>& a, bool k) { return wick::min(x, a, k); },
     min_of},
    {"logsumexp",
     [](const Tensor& x, const std::vector<int>& a, bool k) { return wick::logsumexp(x, a, k); },
     logsumexp_of},
    {"var0",
     [](const Tensor& x, const std::vector<int>& a, bool k) { return wick::var(x, a, k, 0); },
     [](const std::vector<double>& v) { return var_of(v, 0); }},
    {"var1",
     [](const Tensor& x, const std::vector<int>& a, bool k) { return wick::var(x, a, k, 1); },
     [](const std::vector<double>& v) { return var_of(v, 1); }},
};

const std::vector<std::vector<int>> kAxes = {{},     {0},     {1},    {2},       {-1},
                                             {0, 2}, {-3, 1}, {2, 0}, {0, 1, 2}, {-1, -2}};

// Sums of n values in [-2, 2] may cancel; the error scales with the count, not the result.
Tol reduce_tol(DType dt, int64_t n) {
  switch (dt) {
    case DType::f64: return {1e-12, 1e-12 * n};
    case DType::f32: return {1e-5, 2e-6 * n};
    case DType::f16: return {2e-3, 2e-3};
    case DType::bf16: return {1e-2, 1e-2};
    default: return {0, 0};
  }
}

TEST(Reduce, EveryOpAxesKeepdimsDtypesLayouts) {
  const Dims shape = {3, 4, 5};
  uint64_t seed = 1;
  for (const auto& c : kCases)
    for (DType dt : kFloatTypes)
      for (Layout l : kLayouts)
        for (const auto& axes : kAxes)
          for (bool keep : {false, true}) {
            std::string ax;
            for (int a : axes) ax += std::to_string(a) + " ";
            SCOPED_TRACE(describe(c.name, dt, l, shape) + " axes {" + ax + "} keepdims=" +
                         std::to_string(keep));
            Input in = random_input(shape, dt, l, seed++);
            Tensor y = c.fn(in.tensor, axes, keep);
            HostArray want = reduce_axes(in.host, axes, keep, c.ref);
            ASSERT_EQ(y.shape(), want.shape);
            EXPECT_TRUE(matches(y, want, dt, reduce_tol(dt, in.host.size())));
          }
}

TEST(Reduce, ZeroDimScalarAndSizeOneAxes) {
  for (const auto& c : kCases) {
    if (std::string(c.name) == "var1") continue;  // one value, ddof 1: 0/0
    SCOPED_TRACE(c.name);
    Tensor s = wick::scalar(1.25);
    Tensor y = c.fn(s, {}, false);
    EXPECT_EQ(y.shape(), wick::Shape{});
    EXPECT_TRUE(matches(y, reduce_axes(HostArray({}, {1.25}), {}, false, c.ref), DType::f32));
    Input in = random_input({1, 3, 1}, DType::f32, Layout::contiguous, 4);
    EXPECT_TRUE(matches(c.fn(in.tensor, {0, 2}, false), reduce_axes(in.host, {0, 2}, false, c.ref),
                        DType::f32));
    EXPECT_TRUE(matches(c.fn(in.tensor, {0}, true), reduce_axes(in.host, {0}, true, c.ref),
                        DType::f32));
  }
}

TEST(Reduce, EmptyInputs) {
  // Sums over a size-0 axis are 0; reductions over the other axes of an empty tensor are empty.
  Tensor x = wick::zeros({0, 3});
  EXPECT_TRUE(matches(wick::sum(x, {0}), HostArray({3}, 0.0), DType::f32));
  EXPECT_TRUE(matches(wick::sum(x), HostArray({}, 0.0), DType::f32));
  EXPECT_TRUE(matches(wick::sum(x, {1}), HostArray({0}), DType::f32));
  EXPECT_TRUE(matches(wick::max(x, {1}, true), HostArray({0, 1}), DType::f32));
  EXPECT_TRUE(matches(wick::sum(wick::ones({4, 0}), {-1}, true), HostArray({4, 1}, 0.0),
                      DType::f32));
}

TEST(Reduce, IntegerInputs) {
  HostArray h = random_host({4, 6}, DType::i32, 3, -100, 100);
  for (DType dt : {DType::i32, DType::i64}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    Tensor x = to_tensor(h, dt);
    for (const std::vector<int>& axes : {std::vector<int>{}, {0}, {1}}) {
      Tensor s = wick::sum(x, axes);
      EXPECT_TRUE(wick::is_integral(s.dtype())) << "sum of integers stays integral";
      EXPECT_TRUE(matches(wick::astype(s, DType::f64), reduce_axes(h, axes, false, sum_of), DType::f64));
      EXPECT_TRUE(matches(wick::max(x, axes), reduce_axes(h, axes, false, max_of), dt));
      EXPECT_TRUE(matches(wick::min(x, axes), reduce_axes(h, axes, false, min_of), dt));
      Tensor m = wick::mean(x, axes);
      EXPECT_TRUE(wick::is_floating(m.dtype())) << "mean of integers is floating";
      EXPECT_TRUE(matches(wick::astype(m, DType::f64), reduce_axes(h, axes, false, mean_of), DType::f64,
                          Tol{1e-6, 1e-6}));
    }
  }
}

TEST(Reduce, LogsumexpIsStable) {
  const double inf = std::numeric_limits<double>::infinity();
  HostArray h({3, 3}, {1000, 1000, 999, -1000, -1001, -1000, -inf, 0.0, -inf});
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    HostArray q = quantize(h, dt);
    EXPECT_TRUE(matches(wick::logsumexp(to_tensor(q, dt), {1}), reduce_axes(q, {1}, false, logsumexp_of),
                        dt));
  }
  // A row of -inf gives -inf, not NaN.
  HostArray m({1, 2}, {-inf, -inf});
  EXPECT_TRUE(matches(wick::logsumexp(to_tensor(m, DType::f32), {-1}), HostArray({1}, {-inf}),
                      DType::f32));
  // Softmax-style use: max is exact for huge values.
  EXPECT_EQ(wick::max(to_tensor(h, DType::f32)).item<float>(), 1000.0f);
}

TEST(Reduce, LongSumsAreAccurate) {
  // 200k values in [0, 1): the f32 result must be close to the exact sum.
  HostArray h = random_host({200000}, DType::f32, 42, 0.0, 1.0);
  Tensor x = to_tensor(h, DType::f32);
  EXPECT_TRUE(matches(wick::sum(x), reduce_axes(h, {}, false, sum_of), DType::f32, Tol{2e-5, 0}));
  EXPECT_TRUE(matches(wick::mean(x), reduce_axes(h, {}, false, mean_of), DType::f32, Tol{2e-5, 0}));
  EXPECT_TRUE(matches(wick::var(x), reduce_axes(h, {}, false,
                                          [](const std::vector<double>& v) { return var_of(v, 0); }),
                      DType::f32, Tol{1e-4, 0}));
  // Variance of values with a large mean (catastrophic cancellation in E[x²] - E[x]²).
  HostArray shifted = quantize(map(h, [](double v) { return 1000.0 + v; }), DType::f32);
  EXPECT_TRUE(matches(wick::var(to_tensor(shifted, DType::f32)),
                      reduce_axes(shifted, {}, false, [](const std::vector<double>& v) { return var_of(v, 0); }),
                      DType::f32, Tol{1e-3, 0}));
  // Many rows in parallel.
  HostArray r = random_host({1000, 300}, DType::f32, 43);
  EXPECT_TRUE(matches(wick::sum(to_tensor(r, DType::f32), {1}), reduce_axes(r, {1}, false, sum_of),
                      DType::f32, Tol{1e-5, 1e-4}));
  EXPECT_TRUE(matches(wick::max(to_tensor(r, DType::f32), {0}), reduce_axes(r, {0}, false, max_of),
                      DType::f32));
}

TEST(ArgReduce, EveryAxisDtypeLayoutAndTies) {
  const Dims shape = {3, 4, 5};
  uint64_t seed = 77;
  for (DType dt : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64})
    for (Layout l : kLayouts)
      for (int axis : {0, 1, 2, -1, -2})
        for (bool keep : {false, true}) {
          SCOPED_TRACE(describe("argmax/argmin", dt, l, shape) + " axis " + std::to_string(axis) +
                       " keepdims " + std::to_string(keep));
          // Few distinct values, so ties are everywhere.
          Input in = random_input(shape, DType::i32, l, seed++, -2, 2);
          HostArray h = quantize(in.host, dt);
          Tensor x = dt == DType::i32 ? in.tensor : make_input(h, dt, l == Layout::broadcast ? Layout::strided : l);
          Tensor amax = wick::argmax(x, axis, keep), amin = wick::argmin(x, axis, keep);
          EXPECT_TRUE(matches(amax, argreduce(h, axis, true, keep), DType::i64));
          EXPECT_TRUE(matches(amin, argreduce(h, axis, false, keep), DType::i64));
        }
  // Explicit ties: the first index wins.
  Tensor t = Tensor::from_vector(std::vector<float>{1, 3, 3, 0, 0, 3}, {6});
  EXPECT_EQ(wick::argmax(t, 0).item<int64_t>(), 1);
  EXPECT_EQ(wick::argmin(t, 0).item<int64_t>(), 3);
  EXPECT_EQ(wick::argmax(t, 0).shape(), wick::Shape{});
  EXPECT_EQ(wick::argmax(t, -1, true).shape(), wick::Shape{1});
  // Large rows (vectorised/parallel paths) with the maximum planted at known places.
  HostArray big = random_host({64, 1000}, DType::f32, 5, -1, 1);
  for (int64_t r = 0; r < 64; ++r) {
    big.at({r, (r * 37) % 1000}) = 5.0;
    big.at({r, (r * 37 + 500) % 1000}) = 5.0;  // a later tie
  }
  EXPECT_TRUE(matches(wick::argmax(to_tensor(big, DType::f32), 1), argreduce(big, 1, true, false),
                      DType::i64));
}

TEST(Reduce, BadAxesFailAtBuildTime) {
  Tensor x = wick::zeros({2, 3});
  std::string msg = error_of([&] { (void)wick::sum(x, {2}); });
  EXPECT_NE(msg.find("sum"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { (void)wick::mean(x, {-3}); }), "<no error>");
  EXPECT_NE(error_of([&] { (void)wick::argmax(x, 5); }), "<no error>");
  EXPECT_NE(error_of([&] { (void)wick::sum(wick::scalar(1.0), {0}); }), "<no error>");
}

}  // namespace
