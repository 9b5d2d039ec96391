// softmax / log_softmax over any axis, rms_norm and layer_norm, against the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

Tol nn_tol(DType dt) {
  Tol t = tol_for(dt);
  if (dt == DType::f32) t = {1e-5, 2e-6};
  return t;
}

TEST(Softmax, EveryAxisDtypeAndLayout) {
  uint64_t seed = 1;
  const std::vector<Dims> shapes = {{7}, {3, 4, 5}, {2, 1, 6}, {1}, {0, 4}, {4, 0}, {2, 33, 3}};
  for (DType dt : kFloatTypes)
    for (const Dims& s : shapes)
      for (int axis = -static_cast<int>(s.size()); axis < static_cast<int>(s.size()); ++axis)
        for (Layout l : kLayouts)
          for (bool lg : {false, true}) {
            SCOPED_TRACE(describe(lg ? "log_softmax" : "softmax", dt, l, s) + " axis " +
                         std::to_string(axis));
            Input in = random_input(s, dt, l, seed++, -4, 4);
            Tensor y = lg ? wick::log_softmax(in.tensor, axis) : wick::softmax(in.tensor, axis);
            EXPECT_TRUE(matches(y, softmax(in.host, axis, lg), dt, nn_tol(dt)));
          }
}

TEST(Softmax, DefaultAxisIsLastAndRowsSumToOne) {
  Input in = random_input({5, 9}, DType::f32, Layout::contiguous, 3, -10, 10);
  Tensor p = wick::softmax(in.tensor);
  EXPECT_EQ(bytes_of(p), bytes_of(wick::softmax(in.tensor, 1)));
  EXPECT_TRUE(matches(wick::sum(p, {-1}), HostArray({5}, 1.0), DType::f32, Tol{0, 2e-6}));
  EXPECT_EQ(bytes_of(wick::log_softmax(in.tensor)), bytes_of(wick::log_softmax(in.tensor, -1)));
}

TEST(Softmax, LargeAndInfiniteInputsAreStable) {
  const double inf = std::numeric_limits<double>::infinity();
  HostArray h({4, 3}, {1000, 1001, 1002,   //
                       -1000, -1000, -999,  //
                       -inf, 0.0, -inf,     // masked entries
                       88.0, -inf, 89.0});
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    HostArray q = quantize(h, dt);
    EXPECT_TRUE(matches(wick::softmax(to_tensor(q, dt), -1), softmax(q, -1), dt, nn_tol(dt)));
    EXPECT_TRUE(matches(wick::log_softmax(to_tensor(q, dt), -1), softmax(q, -1, true), dt,
                        nn_tol(dt)));
  }
}

TEST(Softmax, LongRowsAndManyRows) {
  Input a = random_input({3, 5000}, DType::f32, Layout::contiguous, 8, -20, 20);
  EXPECT_TRUE(matches(wick::softmax(a.tensor), softmax(a.host, -1), DType::f32, Tol{1e-5, 1e-9}));
  EXPECT_TRUE(matches(wick::log_softmax(a.tensor), softmax(a.host, -1, true), DType::f32,
                      Tol{1e-5, 1e-4}));
  for (DType dt : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    Input c = random_input({300, 517}, dt, Layout::contiguous, 10, -6, 6);
    EXPECT_TRUE(matches(wick::softmax(c.tensor), softmax(c.host, -1), dt));
    EXPECT_TRUE(matches(wick::rms_norm(c.tensor, std::nullopt, 1e-6), rms_norm(c.host, std::nullopt, 1e-6), dt));
  }
  Input b = random_input({2000, 40}, DType::f32, Layout::transposed, 9);
  EXPECT_TRUE(matches(wick::softmax(b.tensor, 0), softmax(b.host, 0), DType::f32, nn_tol(DType::f32)));
}

TEST(RmsNorm, WithAndWithoutWeightDtypesLayouts) {
  uint64_t seed = 200;
  const std::vector<Dims> shapes = {{8}, {3, 8}, {2, 3, 16}, {0, 8}, {4, 1}, {5, 67}};
  for (DType dt : kFloatTypes)
    for (const Dims& s : shapes)
      for (Layout l : kLayouts)
        for (bool has_w : {false, true})
          for (double eps : {1e-6, 1e-2}) {
            SCOPED_TRACE(describe("rms_norm", dt, l, s) + " weight=" + std::to_string(has_w) +
                         " eps=" + std::to_string(eps));
            Input x = random_input(s, dt, l, seed++);
            Input w = random_input({s.back()}, dt, Layout::contiguous, seed++, 0.5, 1.5);
            std::optional<Tensor> wopt;
            std::optional<HostArray> wh;
            if (has_w) {
              wopt = w.tensor;
              wh = w.host;
            }
            Tensor y = wick::rms_norm(x.tensor, wopt, eps);
            EXPECT_TRUE(matches(y, rms_norm(x.host, wh, eps), dt, nn_tol(dt)));
          }
}

TEST(RmsNorm, ZeroRowsUseEpsAndHalfInputsDoNotOverflow) {
  HostArray h({2, 4}, {0, 0, 0, 0, 1, -1, 1, -1});
  EXPECT_TRUE(matches(wick::rms_norm(to_tensor(h, DType::f32), std::nullopt, 1e-5),
                      rms_norm(h, std::nullopt, 1e-5), DType::f32));
  // x² of f16 values above 256 overflows f16; the statistic is computed in f32.
  HostArray big({1, 4}, {300, -400, 500, 600});
  EXPECT_TRUE(matches(wick::rms_norm(to_tensor(big, DType::f16), std::nullopt, 1e-6),
                      rms_norm(big, std::nullopt, 1e-6), DType::f16));
  HostArray tiny({1, 4}, {1e-3, -2e-3, 3e-3, 4e-3});
  HostArray qt = quantize(tiny, DType::bf16);
  EXPECT_TRUE(matches(wick::rms_norm(to_tensor(qt, DType::bf16), std::nullopt, 1e-12),
                      rms_norm(qt, std::nullopt, 1e-12), DType::bf16));
}

TEST(LayerNorm, AllCombinationsOfWeightAndBias) {
  uint64_t seed = 400;
  const std::vector<Dims> shapes = {{8}, {3, 8}, {2, 3, 16}, {0, 8}, {5, 67}};
  for (DType dt : kFloatTypes)
    for (const Dims& s : shapes)
      for (Layout l : kLayouts)
        for (int mask = 0; mask < 4; ++mask) {
          bool has_w = mask & 1, has_b = mask & 2;
          // A 1-d broadcast input is one constant row: var = 0 amplifies the mean's last-ulp
          // error by 1/sqrt(eps), which is the math, not the kernel.
          if (l == Layout::broadcast && s.size() == 1) continue;
          SCOPED_TRACE(describe("layer_norm", dt, l, s) + " weight=" + std::to_string(has_w) +
                       " bias=" + std::to_string(has_b));
          Input x = random_input(s, dt, l, seed++, -3, 5);
          Input w = random_input({s.back()}, dt, Layout::contiguous, seed++, 0.5, 1.5);
          Input b = random_input({s.back()}, dt, Layout::strided, seed++);
          std::optional<Tensor> wopt, bopt;
          std::optional<HostArray> wh, bh;
          if (has_w) wopt = w.tensor, wh = w.host;
          if (has_b) bopt = b.tensor, bh = b.host;
          Tensor y = wick::layer_norm(x.tensor, wopt, bopt, 1e-5);
          EXPECT_TRUE(matches(y, layer_norm(x.host, wh, bh, 1e-5), dt, scaled(nn_tol(dt), 2)));
        }
}

TEST(LayerNorm, ConstantRowsAndLargeMeans) {
  HostArray c({2, 5}, {3, 3, 3, 3, 3, -1, -1, -1, -1, -1});
  HostArray b({5}, {0.5, -0.5, 1, 2, 3});
  EXPECT_TRUE(matches(wick::layer_norm(to_tensor(c, DType::f32), std::nullopt,
                                       to_tensor(b, DType::f32), 1e-5),
                      layer_norm(c, std::nullopt, b, 1e-5), DType::f32));
  // A large common offset must not destroy the variance (one-pass E[x²]-E[x]² would give O(1)
  // errors; an f32 two-pass mean is ~1 ulp of 1e4 off, ~1e-3 after normalisation).
  HostArray h = quantize(map(random_host({4, 64}, DType::f32, 5), [](double v) { return 1e4 + v; }),
                         DType::f32);
  EXPECT_TRUE(matches(wick::layer_norm(to_tensor(h, DType::f32), std::nullopt, std::nullopt, 1e-5),
                      layer_norm(h, std::nullopt, std::nullopt, 1e-5), DType::f32, Tol{1e-2, 1e-2}));
}

TEST(Norms, ShapeErrors) {
  Tensor x = wick::zeros({3, 8});
  std::string msg = error_of([&] { (void)wick::rms_norm(x, wick::zeros({7}), 1e-6); });
  EXPECT_NE(msg.find("rms_norm"), std::string::npos) << msg;
  msg = error_of([&] { (void)wick::layer_norm(x, wick::zeros({8}), wick::zeros({9}), 1e-6); });
  EXPECT_NE(msg.find("layer_norm"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { (void)wick::softmax(x, 2); }), "<no error>");
  EXPECT_NE(error_of([&] { (void)wick::log_softmax(x, -3); }), "<no error>");
}

}  // namespace
