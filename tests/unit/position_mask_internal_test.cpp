// A decoding step's position mask (PositionMask) on the CPU, and compile folding it into the
// step's CachedAttention, which then hides keys by the position itself.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "graph/ops_common.h"
#include "wick/compile.h"
#include "wick/ops.h"

using namespace wick;

namespace {

Tensor randn(const Shape& s, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(numel(s)));
  for (float& x : v) x = d(g);
  return Tensor::from_vector(v, s);
}

Tensor position(int64_t p) {
  return Tensor::from_vector<int64_t>({p}, {1});
}

}  // namespace

TEST(PositionMask, HidesKeysPastThePositionAndOutsideTheWindow) {
  const float hidden = -std::numeric_limits<float>::infinity();
  // Two queries at positions 3 and 4 over 7 keys.
  std::vector<float> plain = detail::position_mask(position(3), 2, 7, 0).to_vector<float>();
  std::vector<float> windowed = detail::position_mask(position(3), 2, 7, 2).to_vector<float>();
  ASSERT_EQ(plain.size(), 14u);
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t s = 0; s < 7; ++s) {
      const int64_t at = 3 + t;
      EXPECT_EQ(plain[t * 7 + s], s <= at ? 0.0f : hidden) << t << " " << s;
      EXPECT_EQ(windowed[t * 7 + s], s <= at && at - s < 2 ? 0.0f : hidden) << t << " " << s;
    }
  EXPECT_EQ(detail::position_mask(position(3), 2, 7, 0).shape(), (Shape{1, 1, 2, 7}));
  EXPECT_THROW(detail::position_mask(position(0), 0, 7, 0), Error);
  EXPECT_THROW(detail::position_mask(position(0), 1, 7, -1), Error);
}

TEST(PositionMask, CompileFoldsItIntoTheCachedAttentionAtItsPosition) {
  const int64_t D = 8, Hq = 4, Hkv = 2, S = 12;
  std::vector<float> freq(D / 2);
  for (size_t i = 0; i < freq.size(); ++i)
    freq[i] = std::pow(10000.0f, -2.0f * float(i) / float(D));
  for (int64_t window : {int64_t(0), int64_t(3)})
    for (int64_t T : {int64_t(1), int64_t(2)}) {
      const std::string what = "window " + std::to_string(window) + " T " + std::to_string(T);
      Tensor lazy_k = randn({1, Hkv, S, D}, 1).eval(), lazy_v = randn({1, Hkv, S, D}, 2).eval();
      Tensor kc = (lazy_k + 0.0).eval(), vc = (lazy_v + 0.0).eval();
      // in: q, k, v, the position, and (for the unfolded case) the mask's own position.
      auto step = [&](const Tensor& kcache, const Tensor& vcache, const std::vector<Tensor>& in) {
        Tensor k = detail::write_at(kcache, detail::rope_at(in[1], freq, in[3]), 2, in[3]);
        Tensor v = detail::write_at(vcache, in[2], 2, in[3]);
        Tensor mask = detail::position_mask(in[4], T, S, window);
        return scaled_dot_product_attention(detail::rope_at(in[0], freq, in[3]), k, v, 0.35, false,
                                            mask);
      };
      auto fused = compile(
          [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{step(kc, vc, in)}; });
      uint32_t seed = 5;
      for (int64_t p : {int64_t(0), int64_t(4), S - T}) {
        std::vector<Tensor> in = {randn({1, Hq, T, D}, seed), randn({1, Hkv, T, D}, seed + 1),
                                  randn({1, Hkv, T, D}, seed + 2), position(p), position(p)};
        seed += 3;
        Tensor want = step(lazy_k, lazy_v, in).eval();
        Tensor got = fused(in)[0];
        std::vector<float> a = got.to_vector<float>(), b = want.to_vector<float>();
        for (size_t i = 0; i < a.size(); ++i)
          ASSERT_NEAR(a[i], b[i], 1e-6) << what << " position " << p;
      }
      // The mask's position is another input here (of the same value): compile cannot know they
      // agree, so the mask stays. Below both read one position, and the mask is folded.
      std::string plan = fused.describe();
      EXPECT_NE(plan.find("cached_attention"), std::string::npos) << plan;
      EXPECT_EQ(plan.find("[position mask]"), std::string::npos) << what << "\n" << plan;
      Tensor lazy_k2 = (lazy_k + 0.0).eval(), kc2 = (lazy_k + 0.0).eval();
      Tensor lazy_v2 = (lazy_v + 0.0).eval(), vc2 = (lazy_v + 0.0).eval();
      auto folded = compile([&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{step(kc2, vc2, {in[0], in[1], in[2], in[3], in[3]})};
      });
      for (int64_t p : {int64_t(0), int64_t(5), S - T}) {
        std::vector<Tensor> in = {randn({1, Hq, T, D}, seed), randn({1, Hkv, T, D}, seed + 1),
                                  randn({1, Hkv, T, D}, seed + 2), position(p)};
        seed += 3;
        Tensor want = step(lazy_k2, lazy_v2, {in[0], in[1], in[2], in[3], in[3]}).eval();
        Tensor got = folded(in)[0];
        std::vector<float> a = got.to_vector<float>(), b = want.to_vector<float>();
        for (size_t i = 0; i < a.size(); ++i)
          ASSERT_NEAR(a[i], b[i], 1e-6) << what << " folded, position " << p;
      }
      plan = folded.describe();
      EXPECT_NE(plan.find("cached_attention[position mask]"), std::string::npos) << what << "\n"
                                                                                 << plan;
      EXPECT_EQ(plan.find("position_mask"), std::string::npos) << what << "\n" << plan;
    }
}
