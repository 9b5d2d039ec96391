// Buffer donation must be invisible. Every op here gets operands that are unevaluated
// intermediates nobody else holds and whose byte size equals the output's, so the engine may
// lend an input's storage to the output. Ops that read an input element after writing an
// output element (gathers, GEMMs, rotations, reductions over other axes) must then not donate,
// or must read everything first; a wrong choice shows up as wrong values here.
#include <gtest/gtest.h>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

/// A fresh unevaluated node with exactly the values of `h` (x * 1 is exact).
Tensor fresh(const HostArray& h, DType dt = DType::f32) { return to_tensor(h, dt) * 1.0; }

HostArray reversed_indices(int64_t n) {
  HostArray idx({n});
  for (int64_t i = 0; i < n; ++i) idx[i] = static_cast<double>(n - 1 - i);
  return idx;
}

TEST(Donation, SoftmaxAlongAnyAxis) {
  HostArray h = random_host({16, 16}, DType::f32, 1, -3, 3);
  for (int axis : {0, 1, -1}) {
    SCOPED_TRACE(axis);
    EXPECT_TRUE(matches(wick::softmax(fresh(h), axis), softmax(h, axis), DType::f32));
    EXPECT_TRUE(matches(wick::log_softmax(fresh(h), axis), softmax(h, axis, true), DType::f32));
  }
  HostArray h3 = random_host({4, 8, 8}, DType::f32, 2, -3, 3);
  EXPECT_TRUE(matches(wick::softmax(fresh(h3), 1), softmax(h3, 1), DType::f32));
}

TEST(Donation, MatmulLinearAndLoraWithSquareOperands) {
  const int64_t n = 32;
  HostArray a = random_host({n, n}, DType::f32, 3), b = random_host({n, n}, DType::f32, 4);
  Tol tol{1e-5, 4e-6 * n};
  EXPECT_TRUE(matches(wick::matmul(fresh(a), fresh(b)), matmul(a, b), DType::f32, tol));
  EXPECT_TRUE(matches(wick::matmul(fresh(a), fresh(a)), matmul(a, a), DType::f32, tol));
  HostArray ab = random_host({3, n, n}, DType::f32, 5);
  EXPECT_TRUE(matches(wick::matmul(fresh(ab), fresh(b)), matmul(ab, b), DType::f32, tol));
  HostArray bias = random_host({n}, DType::f32, 6);
  EXPECT_TRUE(matches(wick::linear(fresh(a), fresh(b), fresh(bias)), linear(a, b, bias), DType::f32,
                      tol));
  // x [n, n] and the output [n, n]: the base GEMM must not overwrite x before the LoRA path
  // reads it.
  HostArray la = random_host({4, n}, DType::f32, 7), lb = random_host({n, 4}, DType::f32, 8);
  for (bool has_bias : {false, true}) {
    SCOPED_TRACE(has_bias);
    std::optional<Tensor> bt;
    std::optional<HostArray> bh;
    if (has_bias) bt = fresh(bias), bh = bias;
    EXPECT_TRUE(matches(wick::lora_linear(fresh(a), fresh(b), bt, fresh(la), fresh(lb), 0.5),
                        lora_linear(a, b, bh, la, lb, 0.5), DType::f32, Tol{1e-5, 1e-4}));
  }
}

TEST(Donation, GathersWithPermutingIndices) {
  const int64_t n = 24;
  HostArray h = random_host({n, 5}, DType::f32, 9);
  HostArray rev = reversed_indices(n);
  EXPECT_TRUE(matches(wick::take(fresh(h), to_tensor(rev, DType::i64), 0), take(h, rev, 0),
                      DType::f32, Tol{0, 0}));
  EXPECT_TRUE(matches(wick::embedding(fresh(h), to_tensor(rev, DType::i32)), take(h, rev, 0),
                      DType::f32, Tol{0, 0}));
  HostArray rows = random_host({n, 5}, DType::i32, 10, 0, 4);
  EXPECT_TRUE(matches(wick::take_along_axis(fresh(h), to_tensor(rows, DType::i64), 1),
                      take_along_axis(h, rows, 1), DType::f32, Tol{0, 0}));
  // Same-size integer data gathered from itself.
  HostArray ih = random_host({n}, DType::i32, 11, -100, 100);
  Tensor it = to_tensor(ih, DType::i32) + to_tensor(HostArray({}, {0}), DType::i32);
  EXPECT_TRUE(matches(wick::take(it, to_tensor(rev, DType::i32), 0), take(ih, rev, 0), DType::i32));
}

TEST(Donation, RotationsNormsAndAttention) {
  HostArray x = random_host({2, 3, 6, 16}, DType::f32, 12);
  EXPECT_TRUE(matches(wick::rope(fresh(x), 10000.0, 3), rope(x, rope_inv_freq(10000.0, 16), 3),
                      DType::f32, Tol{1e-5, 1e-5}));
  HostArray w = random_host({16}, DType::f32, 13, 0.5, 1.5);
  EXPECT_TRUE(matches(wick::rms_norm(fresh(x), fresh(w), 1e-6), rms_norm(x, w, 1e-6), DType::f32));
  EXPECT_TRUE(matches(wick::layer_norm(fresh(x), fresh(w), fresh(w), 1e-5),
                      layer_norm(x, w, w, 1e-5), DType::f32, Tol{2e-5, 4e-6}));
  // q has the output's shape.
  HostArray q = random_host({1, 2, 6, 8}, DType::f32, 14), k = random_host({1, 2, 6, 8}, DType::f32, 15),
            v = random_host({1, 2, 6, 8}, DType::f32, 16);
  EXPECT_TRUE(matches(wick::scaled_dot_product_attention(fresh(q), fresh(k), fresh(v), 0.35, true),
                      attention(q, k, v, 0.35, true), DType::f32, Tol{2e-5, 2e-5}));
  EXPECT_TRUE(matches(wick::scaled_dot_product_attention(fresh(q), fresh(q), fresh(q), 0.35, false),
                      attention(q, q, q, 0.35, false), DType::f32, Tol{2e-5, 2e-5}));
}

TEST(Donation, LayoutChangesAndReductions) {
  HostArray h = random_host({16, 16}, DType::f32, 17);
  EXPECT_TRUE(matches(wick::contiguous(wick::transpose(fresh(h))), transpose(h), DType::f32,
                      Tol{0, 0}));
  EXPECT_TRUE(matches(wick::exp(wick::transpose(fresh(h))), map(transpose(h), [](double v) {
                        return std::exp(v);
                      }),
                      DType::f32));
  EXPECT_TRUE(matches(wick::reshape(wick::transpose(fresh(h)), {256}), reshape(transpose(h), {256}),
                      DType::f32, Tol{0, 0}));
  // Elementwise with an operand that is a transposed view of the other's storage.
  Tensor t = fresh(h);
  EXPECT_TRUE(matches(t - wick::transpose(t), zip(h, transpose(h), std::minus<double>()), DType::f32,
                      Tol{0, 0}));
  Tensor t2 = fresh(h);
  EXPECT_TRUE(matches(wick::matmul(t2, wick::transpose(t2)), matmul(h, transpose(h)), DType::f32,
                      Tol{1e-5, 1e-4}));
  // Reductions that keep the size (over size-1 axes) and over other axes.
  HostArray c = random_host({16, 1}, DType::f32, 18);
  EXPECT_TRUE(matches(wick::sum(fresh(c), {1}, true), c, DType::f32));
  EXPECT_TRUE(matches(wick::softmax(fresh(c), 0), softmax(c, 0), DType::f32));
  EXPECT_TRUE(matches(wick::astype(fresh(h), DType::i32), map(h, [](double v) { return std::trunc(v); }),
                      DType::i32));
  // A value the caller holds, consumed through a dense view: never overwritten.
  Tensor e = fresh(h);
  Tensor y = wick::reshape(e, {256}) * 2.0;
  y.eval();
  EXPECT_TRUE(matches(e, h, DType::f32, Tol{0, 0}));
  EXPECT_TRUE(matches(y, reshape(map(h, [](double v) { return 2 * v; }), {256}), DType::f32));
}

}  // namespace
