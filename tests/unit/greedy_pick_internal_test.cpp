// greedy_pick on the CPU against argmax and a log-softmax computed in double.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "graph/ops_common.h"
#include "wick/ops.h"

using namespace wick;

TEST(GreedyPick, IsArgmaxAndItsLogSoftmax) {
  std::mt19937 g(3);
  std::normal_distribution<float> d(0.0f, 3.0f);
  const int64_t rows = 4, n = 777;
  std::vector<float> v(static_cast<size_t>(rows * n));
  for (float& x : v) x = d(g);
  v[n + 10] = v[n + 500] = 30.0f;  // a tie: the first maximum
  v[2 * n + 5] = std::numeric_limits<float>::quiet_NaN();
  for (int64_t k = 0; k < n; ++k) v[3 * n + k] = -std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector(v, {rows, n});
  std::vector<float> r = detail::greedy_pick(x).to_vector<float>();
  std::vector<int64_t> ids = argmax(x, -1).to_vector<int64_t>();
  for (int64_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r[2 * i + 1], static_cast<float>(ids[i])) << i;
    double top = v[i * n + ids[i]], sum = 0;
    for (int64_t k = 0; k < n; ++k) sum += std::exp(double(v[i * n + k]) - top);
    EXPECT_NEAR(r[2 * i], -std::log(sum), 1e-5) << i;
  }
  EXPECT_EQ(r[3], 10.0f);
  EXPECT_EQ(r[5], 5.0f);
  EXPECT_TRUE(std::isnan(r[4]));
  EXPECT_EQ(r[7], 0.0f);
  EXPECT_TRUE(std::isnan(r[6]));
  // Bf16 rows are read through f32; a transposed view is read through its strides.
  Tensor h = astype(x, DType::bf16);
  EXPECT_EQ(detail::greedy_pick(transpose(contiguous(transpose(h)))).to_vector<float>()[1], r[1]);
  EXPECT_THROW(detail::greedy_pick(Tensor::from_vector<float>({1, 2}, {2})), Error);
  EXPECT_THROW(detail::greedy_pick(Tensor::from_vector<int32_t>({1, 2}, {1, 2})), Error);
}
