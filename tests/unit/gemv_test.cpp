// The GEMV path of matmul / linear / lora_linear (x with at most 4 rows against a weight matrix
// with more than 16 outputs, the decode shape) against the naive reference, across K tails,
// row counts, bias and strided x rows; a decode-sized product split over the threads.
#include <gtest/gtest.h>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

Tol gemv_tol(int64_t K) { return {1e-5, 4e-6 * static_cast<double>(std::max<int64_t>(K, 1))}; }

TEST(Gemv, LinearAgainstReference) {
  uint64_t seed = 900;
  for (int64_t M : {1, 2, 3, 4})
    for (int64_t N : {17, 18, 19, 20, 33, 258})
      for (int64_t K : {1, 15, 16, 17, 100, 777})
        for (bool bias : {false, true}) {
          SCOPED_TRACE(cat("M=", M, " N=", N, " K=", K, " bias=", bias));
          Input x = random_input({M, K}, DType::f32, Layout::contiguous, seed++);
          Input w = random_input({N, K}, DType::f32, Layout::contiguous, seed++);
          Input b = random_input({N}, DType::f32, Layout::contiguous, seed++);
          std::optional<Tensor> bt;
          std::optional<HostArray> bh;
          if (bias) {
            bt = b.tensor;
            bh = b.host;
          }
          EXPECT_TRUE(matches(wick::linear(x.tensor, w.tensor, bt), linear(x.host, w.host, bh), DType::f32,
                              gemv_tol(K)));
        }
}

TEST(Gemv, StridedRowsLoraAndBatches) {
  // x rows taken from a wider matrix (row stride > K), and [B, 1, K] decode activations.
  HostArray wide = random_host({3, 80}, DType::f32, 1);
  Tensor xw = wick::slice(to_tensor(wide, DType::f32), 1, 0, 64);
  HostArray xh = slice(wide, 1, 0, 64, 1);
  Input w = random_input({40, 64}, DType::f32, Layout::contiguous, 2);
  EXPECT_TRUE(matches(wick::linear(xw, w.tensor), linear(xh, w.host, std::nullopt), DType::f32, gemv_tol(64)));
  Input x3 = random_input({4, 1, 64}, DType::f32, Layout::contiguous, 3);
  EXPECT_TRUE(matches(wick::linear(x3.tensor, w.tensor), linear(x3.host, w.host, std::nullopt), DType::f32,
                      gemv_tol(64)));
  Input a = random_input({8, 64}, DType::f32, Layout::contiguous, 4);
  Input b = random_input({40, 8}, DType::f32, Layout::contiguous, 5);
  Input bias = random_input({40}, DType::f32, Layout::contiguous, 6);
  EXPECT_TRUE(matches(wick::lora_linear(x3.tensor, w.tensor, bias.tensor, a.tensor, b.tensor, 0.5),
                      lora_linear(x3.host, w.host, bias.host, a.host, b.host, 0.5), DType::f32, gemv_tol(64)));
  // bf16 weights are widened first, then take the same path.
  EXPECT_TRUE(matches(wick::linear(x3.tensor, wick::astype(w.tensor, DType::bf16)),
                      linear(x3.host, quantize(w.host, DType::bf16), std::nullopt), DType::f32, gemv_tol(64)));
}

TEST(Gemv, DecodeSizedProductIsExactAndRepeatable) {
  Input x = random_input({2, 768}, DType::f32, Layout::contiguous, 7);
  Input w = random_input({2050, 768}, DType::f32, Layout::contiguous, 8);
  std::vector<float> first = wick::linear(x.tensor, w.tensor).to_vector<float>();
  EXPECT_EQ(wick::linear(x.tensor, w.tensor).to_vector<float>(), first);
  EXPECT_TRUE(matches(wick::linear(x.tensor, w.tensor), linear(x.host, w.host, std::nullopt), DType::f32,
                      gemv_tol(768)));
}

}  // namespace
