// slice_update: a functional strided write, checked against a host loop, including the in-place
// path (the input's buffer reused when nothing else holds it) and the copying path.
#include <gtest/gtest.h>

#include "common/tensor_util.h"

namespace {

using wick::Tensor;

std::vector<float> iota_f(int64_t n, float base = 0) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = base + static_cast<float>(i);
  return v;
}

TEST(SliceUpdate, WritesTheStridedRegionOnly) {
  Tensor x = Tensor::from_vector(iota_f(4 * 6), {4, 6});
  Tensor u = Tensor::from_vector(iota_f(2 * 3, 100), {2, 3});
  Tensor y = wick::slice_update(x, u, {1, -5}, {2, 2});  // rows 1,3; cols 1,3,5
  std::vector<float> expect = iota_f(24);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) expect[(1 + 2 * r) * 6 + 1 + 2 * c] = 100 + r * 3 + c;
  EXPECT_EQ(y.to_vector<float>(), expect);
  EXPECT_EQ(x.to_vector<float>(), iota_f(24)) << "x must not change";
}

TEST(SliceUpdate, BroadcastsAndCastsTheUpdate) {
  Tensor x = wick::zeros({2, 3, 4}, wick::DType::bf16);
  Tensor u = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {4});  // broadcast over [2,1,4]
  Tensor y = wick::slice_update(x, wick::broadcast_to(u, {2, 1, 4}), 1, 2);
  std::vector<float> got = y.to_vector<float>();
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 3; ++t)
      for (int d = 0; d < 4; ++d) EXPECT_EQ(got[(b * 3 + t) * 4 + d], t == 2 ? d + 1 : 0);
  EXPECT_EQ(y.dtype(), wick::DType::bf16);
}

TEST(SliceUpdate, ReusesAnUnsharedBufferAsACacheDoes) {
  // A cache that is only referenced through the graph grows in place: each step's output has
  // the previous step's storage.
  Tensor cache = wick::zeros({1, 2, 8, 4});
  cache.eval();
  cache = cache * 1.0;  // an intermediate nobody else holds
  cache.eval();
  const void* storage = cache.data<float>();
  for (int64_t pos = 0; pos < 8; ++pos) {
    Tensor step = wick::full({1, 2, 1, 4}, static_cast<double>(pos + 1));
    cache = wick::slice_update(cache, step, 2, pos);
    cache.eval();
    EXPECT_EQ(static_cast<const void*>(cache.data<float>()), storage) << "step " << pos;
  }
  std::vector<float> got = cache.to_vector<float>();
  for (int h = 0; h < 2; ++h)
    for (int t = 0; t < 8; ++t)
      for (int d = 0; d < 4; ++d) EXPECT_EQ(got[(h * 8 + t) * 4 + d], t + 1);
}

TEST(SliceUpdate, CopiesWhenTheInputIsStillHeldOrAView) {
  Tensor x = Tensor::from_vector(iota_f(12), {3, 4});
  Tensor xt = wick::transpose(x);  // [4,3] view
  Tensor y = wick::slice_update(xt, wick::full({4, 1}, -1.0), {0, 1});
  std::vector<float> got = y.to_vector<float>();
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(got[r * 3 + c], c == 1 ? -1.f : r + 4 * c);
  EXPECT_EQ(x.to_vector<float>(), iota_f(12));
}

TEST(SliceUpdate, RejectsRegionsOutsideTheTensor) {
  Tensor x = wick::zeros({4, 4});
  EXPECT_THROW(wick::slice_update(x, wick::zeros({2, 2}), {3, 0}), wick::Error);
  EXPECT_THROW(wick::slice_update(x, wick::zeros({2, 2}), {0, 0}, {0, 1}), wick::Error);
  EXPECT_THROW(wick::slice_update(x, wick::zeros({1, 2, 2}), {0, 0}), wick::Error);
  EXPECT_THROW(wick::slice_update(x, wick::zeros({2}), {0}), wick::Error);
  try {
    wick::slice_update(x, wick::zeros({3, 1}), 0, 2);
    FAIL();
  } catch (const wick::Error& e) {
    EXPECT_NE(std::string(e.what()).find("slice_update"), std::string::npos);
  }
}

}  // namespace
