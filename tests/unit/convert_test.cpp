// Dtype promotion of mixed operands, where(), and astype() between every pair of dtypes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

struct Promo {
  DType a, b, want;
};
const Promo kPromotions[] = {
    {DType::boolean, DType::i32, DType::i32}, {DType::boolean, DType::i64, DType::i64},
    {DType::i32, DType::i64, DType::i64},     {DType::i32, DType::f16, DType::f16},
    {DType::i64, DType::bf16, DType::bf16},   {DType::i32, DType::f32, DType::f32},
    {DType::i64, DType::f64, DType::f64},     {DType::f16, DType::bf16, DType::f32},
    {DType::f16, DType::f32, DType::f32},     {DType::bf16, DType::f32, DType::f32},
    {DType::f32, DType::f64, DType::f64},     {DType::boolean, DType::f32, DType::f32},
    {DType::boolean, DType::bf16, DType::bf16}, {DType::f16, DType::f64, DType::f64},
    {DType::bf16, DType::bf16, DType::bf16},  {DType::i32, DType::i32, DType::i32},
};

std::string pair_name(DType a, DType b) {
  return std::string(wick::dtype_name(a)) + " (x) " + wick::dtype_name(b);
}

TEST(Promotion, PromoteTypesTable) {
  for (const auto& p : kPromotions) {
    SCOPED_TRACE(pair_name(p.a, p.b));
    EXPECT_EQ(wick::promote_types(p.a, p.b), p.want);
    EXPECT_EQ(wick::promote_types(p.b, p.a), p.want);
  }
}

TEST(Promotion, MixedTensorOperands) {
  uint64_t seed = 10;
  for (const auto& p : kPromotions)
    for (bool swap : {false, true}) {
      DType da = swap ? p.b : p.a, db = swap ? p.a : p.b;
      SCOPED_TRACE(pair_name(da, db));
      // Small integers are exact in every dtype, so the values are checked exactly too.
      HostArray ha = quantize(random_host({3, 4}, DType::i32, seed++, -3, 3), da);
      HostArray hb = quantize(random_host({4}, DType::i32, seed++, -3, 3), db);
      Tensor a = to_tensor(ha, da), b = to_tensor(hb, db);
      if (!(da == DType::boolean && db == DType::boolean)) {
        EXPECT_TRUE(matches(wick::add(a, b), zip(ha, hb, std::plus<double>()), p.want));
        EXPECT_TRUE(matches(wick::multiply(a, b), zip(ha, hb, std::multiplies<double>()), p.want));
        EXPECT_TRUE(matches(wick::maximum(a, b),
                            zip(ha, hb, [](double x, double y) { return std::max(x, y); }),
                            p.want));
      }
      EXPECT_TRUE(matches(wick::less(a, b), zip(ha, hb, [](double x, double y) {
                            return double(x < y);
                          }),
                          DType::boolean));
      EXPECT_TRUE(matches(wick::equal(a, b), zip(ha, hb, [](double x, double y) {
                            return double(x == y);
                          }),
                          DType::boolean));
    }
  // Comparison of an integer with a non-integral float happens in the promoted type.
  Tensor i = to_tensor(HostArray({3}, {1, 2, 3}), DType::i32);
  Tensor f = to_tensor(HostArray({3}, {1.5, 2.0, 2.5}), DType::f32);
  EXPECT_TRUE(matches(wick::equal(i, f), HostArray({3}, {0, 1, 0}), DType::boolean));
  EXPECT_TRUE(matches(wick::greater(i, f), HostArray({3}, {0, 0, 1}), DType::boolean));
  // f16 + bf16 -> f32 keeps both operands' values.
  Tensor h = to_tensor(HostArray({1}, {1.0009765625}), DType::f16);   // 1 + 2^-10
  Tensor bb = to_tensor(HostArray({1}, {256.0}), DType::bf16);
  EXPECT_TRUE(matches(wick::add(h, bb), HostArray({1}, {257.0009765625}), DType::f32, Tol{0, 0}));
}

TEST(Where, BroadcastingLayoutsAndValues) {
  uint64_t seed = 100;
  const std::vector<std::tuple<Dims, Dims, Dims>> shapes = {
      {{3, 4}, {3, 4}, {3, 4}}, {{3, 1}, {1, 4}, {3, 4}}, {{}, {2, 3}, {3}},
      {{2, 3}, {}, {}},         {{0, 2}, {2}, {1, 2}},    {{4}, {2, 1, 4}, {1}},
  };
  for (DType dt : kAllTypes)
    for (const auto& [sc, sa, sb] : shapes)
      for (Layout l : kLayouts) {
        SCOPED_TRACE(describe("where", dt, l, sc) + " a=" + dims_str(sa) + " b=" + dims_str(sb));
        Input c = random_input(sc, DType::boolean, l, seed++);
        Input a = random_input(sa, dt, l, seed++);
        Input b = random_input(sb, dt, Layout::contiguous, seed++);
        Tensor y = wick::where(c.tensor, a.tensor, b.tensor);
        EXPECT_TRUE(matches(y, zip3(c.host, a.host, b.host,
                                    [](double k, double x, double z) { return k != 0 ? x : z; }),
                            dt, Tol{0, 0}));
      }
}

TEST(Where, PromotionScalarsAndNonBoolConditions) {
  HostArray hc({4}, {1, 0, 0, 1});
  Tensor c = to_tensor(hc, DType::boolean);
  HostArray ha({4}, {1.5, -2.25, 3, 4}), hb({4}, {-1, -2, -3, -4});
  auto pick = [](double k, double x, double z) { return k != 0 ? x : z; };
  // Tensor operands promote.
  EXPECT_TRUE(matches(wick::where(c, to_tensor(ha, DType::f32), to_tensor(hb, DType::i32)),
                      zip3(hc, ha, hb, pick), DType::f32));
  EXPECT_TRUE(matches(wick::where(c, to_tensor(ha, DType::bf16), to_tensor(hb, DType::f16)),
                      zip3(hc, ha, hb, pick), DType::f32));
  EXPECT_TRUE(matches(wick::where(c, to_tensor(hb, DType::i32), to_tensor(hb, DType::i64)),
                      zip3(hc, hb, hb, pick), DType::i64));
  // Weak scalars take the tensor's dtype...
  HostArray s({}, {0.5});
  EXPECT_TRUE(matches(wick::where(c, to_tensor(ha, DType::bf16), 0.5), zip3(hc, ha, s, pick),
                      DType::bf16));
  EXPECT_TRUE(matches(wick::where(c, -0.5, to_tensor(ha, DType::f64)),
                      zip3(hc, HostArray({}, {-0.5}), ha, pick), DType::f64));
  // ...except a floating scalar with an integer tensor gives f32.
  EXPECT_TRUE(matches(wick::where(c, 0.5, to_tensor(hb, DType::i32)), zip3(hc, s, hb, pick),
                      DType::f32));
  // -inf as the scalar (masking).
  const double ninf = -std::numeric_limits<double>::infinity();
  EXPECT_TRUE(matches(wick::where(c, to_tensor(ha, DType::f32), ninf),
                      zip3(hc, ha, HostArray({}, {ninf}), pick), DType::f32));
  // Conditions of other dtypes are converted to bool (!= 0).
  HostArray hf({4}, {0.0, 2.5, -1.0, -0.0});
  EXPECT_TRUE(matches(wick::where(to_tensor(hf, DType::f32), to_tensor(ha, DType::f32),
                                  to_tensor(hb, DType::f32)),
                      zip3(hf, ha, hb, pick), DType::f32));
  HostArray hi({4}, {0, 7, 0, -1});
  EXPECT_TRUE(matches(wick::where(to_tensor(hi, DType::i32), to_tensor(ha, DType::f32),
                                  to_tensor(hb, DType::f32)),
                      zip3(hi, ha, hb, pick), DType::f32));
}

/// Source values per dtype: fractional values of both signs, signed zeros, an exact integer.
HostArray astype_source(DType src) {
  if (src == DType::boolean) return HostArray({2}, {0, 1});
  if (src == DType::i32 || src == DType::i64) return HostArray({7}, {-3, -1, 0, 1, 2, 100, 7});
  return quantize(HostArray({11}, {-2.75, -1.5, -0.5, -0.0, 0.0, 0.25, 1.0, 2.5, 3.75, 100.0,
                                   -100.0}),
                  src);
}

double convert(double v, DType dst) {
  if (dst == DType::boolean) return v != 0 ? 1 : 0;
  if (dst == DType::i32 || dst == DType::i64) return std::trunc(v);
  return quantize(v, dst);
}

TEST(AsType, EveryPairOfDtypes) {
  for (DType src : kAllTypes)
    for (DType dst : kAllTypes)
      for (Layout l : {Layout::contiguous, Layout::strided}) {
        SCOPED_TRACE(pair_name(src, dst) + " " + layout_name(l));
        HostArray h = astype_source(src);
        Tensor y = wick::astype(make_input(h, src, l), dst);
        EXPECT_EQ(y.dtype(), dst);
        EXPECT_TRUE(matches(y, map(h, [dst](double v) { return convert(v, dst); }), dst, Tol{0, 0}));
      }
}

TEST(AsType, TruncationTowardZeroAndBoolOfNaN) {
  Tensor x = Tensor::from_vector(std::vector<float>{-2.7f, -0.9f, 0.9f, 2.7f, -7.5f}, {5});
  EXPECT_EQ(wick::astype(x, DType::i32).to_vector<int32_t>(),
            (std::vector<int32_t>{-2, 0, 0, 2, -7}));
  EXPECT_EQ(wick::astype(x, DType::i64).to_vector<int64_t>(),
            (std::vector<int64_t>{-2, 0, 0, 2, -7}));
  Tensor n = Tensor::from_vector(
      std::vector<float>{std::numeric_limits<float>::quiet_NaN(), -0.0f, 1e-30f}, {3});
  EXPECT_EQ(wick::astype(n, DType::boolean).to_vector<bool>(), (std::vector<bool>{true, false, true}));
}

TEST(AsType, FloatRoundingIsNearestEvenBitForBit) {
  HostArray h = random_host({4096}, DType::f64, 5, -1000, 1000);
  // Add values right at the rounding midpoints of bf16 and f16.
  h.v[0] = 1.0 + 1.0 / 256;      // bf16 tie -> even (1.0)
  h.v[1] = 1.0 + 3.0 / 256;      // bf16 tie -> even (1 + 4/256)
  h.v[2] = 1.0 + 1.0 / 2048;     // f16 tie -> even (1.0)
  h.v[3] = 70000.0;              // f16 overflow -> inf
  h.v[4] = 1e-6;                 // f16 subnormal
  HostArray hf = quantize(h, DType::f32);
  Tensor f = to_tensor(hf, DType::f32);
  std::vector<wick::bfloat16> b = wick::astype(f, DType::bf16).to_vector<wick::bfloat16>();
  std::vector<wick::float16> s = wick::astype(f, DType::f16).to_vector<wick::float16>();
  int bad_b = 0, bad_s = 0;
  for (size_t i = 0; i < hf.v.size(); ++i) {
    float v = static_cast<float>(hf.v[i]);
    bad_b += b[i].bits != wick::bfloat16(v).bits;
    bad_s += s[i].bits != wick::float16(v).bits;
  }
  EXPECT_EQ(bad_b, 0) << "f32 -> bf16 is not round-to-nearest-even";
  EXPECT_EQ(bad_s, 0) << "f32 -> f16 is not round-to-nearest-even";
  EXPECT_EQ(b[0].bits, wick::bfloat16(1.0f).bits);
  // f64 -> f32 rounds once, like a C++ cast.
  std::vector<float> g = wick::astype(to_tensor(h, DType::f64), DType::f32).to_vector<float>();
  int bad_g = 0;
  for (size_t i = 0; i < h.v.size(); ++i) bad_g += g[i] != static_cast<float>(h.v[i]);
  EXPECT_EQ(bad_g, 0);
  // Widening is exact.
  std::vector<double> w = wick::astype(wick::astype(f, DType::bf16), DType::f64).to_vector<double>();
  for (size_t i = 0; i < 8; ++i)
    EXPECT_EQ(w[i], static_cast<double>(static_cast<float>(wick::bfloat16(static_cast<float>(hf.v[i])))));
}

TEST(AsType, ViewsAndSameDtype) {
  Input in = random_input({5, 6}, DType::f32, Layout::transposed, 8, -5, 5);
  EXPECT_TRUE(matches(wick::astype(in.tensor, DType::f64), in.host, DType::f64, Tol{0, 0}));
  EXPECT_TRUE(matches(wick::astype(in.tensor, DType::f32), in.host, DType::f32, Tol{0, 0}));
  EXPECT_TRUE(matches(wick::astype(in.tensor, DType::i32),
                      map(in.host, [](double v) { return std::trunc(v); }), DType::i32));
  Tensor s = wick::astype(wick::scalar(3.75), DType::i64);
  EXPECT_EQ(s.shape(), wick::Shape{});
  EXPECT_EQ(s.item<int64_t>(), 3);
}

}  // namespace
