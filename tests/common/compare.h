#pragma once
// Comparing evaluated tensors in tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "wick/tensor.h"

namespace wt {

/// Largest |a - b| over the elements (read as f32); a shape mismatch is a test failure.
inline double max_abs_diff(const wick::Tensor& a, const wick::Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  auto x = a.to_vector<float>(), y = b.to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}

}  // namespace wt
