// The CPU kernels of the primitives the CUDA attention gradient uses (AttentionProbs,
// SoftmaxGrad) against the same functions composed from public ops.
#include <gtest/gtest.h>

#include "common/compare.h"
#include "common/tensor_util.h"
#include "graph/node.h"
#include "graph/primitives.h"
#include "wick/ops.h"

using namespace wick;

namespace {
Tensor rnd(const Shape& s, uint64_t seed) { return wt::to_tensor(wt::random_host(s, f32, seed), f32); }
}  // namespace

TEST(AttentionProbs, EqualsComposedSoftmax) {
  Tensor q = rnd({2, 4, 5, 8}, 1), k = rnd({2, 2, 6, 8}, 2);
  Tensor mask = rnd({2, 4, 5, 6}, 3);
  for (bool causal : {false, true}) {
    Tensor got = detail::make_node({2, 4, 5, 6}, f32, std::make_shared<detail::AttentionProbs>(0.5, causal, true),
                                   {q, k, mask});
    Tensor kk = reshape(broadcast_to(expand_dims(k, 2), {2, 2, 2, 6, 8}), {2, 4, 6, 8});
    Tensor s = matmul(q, transpose(kk, {0, 1, 3, 2})) * 0.5 + mask;
    if (causal) s = where(less_equal(reshape(arange(6), {1, 6}), reshape(arange(1.0, 6.0, 1.0, i64), {5, 1})), s, -1e30);
    EXPECT_LE(wt::max_abs_diff(got, softmax(s)), 1e-6) << causal;
    // In a half type (the GPU gradient's): the f32 result rounded once.
    Tensor half = detail::make_node({2, 4, 5, 6}, bf16, std::make_shared<detail::AttentionProbs>(0.5, causal, true),
                                    {astype(q, bf16), astype(k, bf16), mask});
    Tensor from_half = detail::make_node({2, 4, 5, 6}, f32, std::make_shared<detail::AttentionProbs>(0.5, causal, true),
                                         {astype(q, bf16), astype(k, bf16), mask});
    EXPECT_EQ(wt::max_abs_diff(astype(half, f32), astype(astype(from_half, bf16), f32)), 0.0) << causal;
  }
}

TEST(SoftmaxGrad, EqualsComposedRule) {
  Tensor p = softmax(rnd({3, 7, 10}, 4)).eval(), dp = rnd({3, 7, 10}, 5);
  Tensor got = detail::make_node({3, 7, 10}, f32, std::make_shared<detail::SoftmaxGrad>(), {p, dp});
  EXPECT_LE(wt::max_abs_diff(got, p * (dp - sum(dp * p, {-1}, true))), 1e-6);
  Tensor scaled = detail::make_node({3, 7, 10}, f32, std::make_shared<detail::SoftmaxGrad>(0.125), {p, dp});
  EXPECT_LE(wt::max_abs_diff(scaled, p * (dp - sum(dp * p, {-1}, true)) * 0.125), 1e-7);
  // bf16 storage, f32 arithmetic: the f32 rule on the rounded inputs, rounded once.
  Tensor ph = astype(p, bf16), dph = astype(dp, bf16);
  Tensor half = detail::make_node({3, 7, 10}, bf16, std::make_shared<detail::SoftmaxGrad>(), {ph, dph});
  Tensor pf = astype(ph, f32), df = astype(dph, f32);
  EXPECT_LE(wt::max_abs_diff(astype(half, f32), astype(astype(pf * (df - sum(df * pf, {-1}, true)), bf16), f32)), 1e-2);
}
