// Creation ops (full, zeros, ones, *_like, scalar, arange), seeded random tensors, host
// round trips and read-back (item, to_vector, data with strides, printing).
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Shape;
using wick::Tensor;

TEST(Creation, FullZerosOnesEveryDtypeAndShape) {
  const std::vector<Dims> shapes = {{}, {0}, {1}, {3}, {2, 3}, {2, 0, 4}};
  for (DType dt : kAllTypes)
    for (const Dims& s : shapes) {
      SCOPED_TRACE(describe("full/zeros/ones", dt, Layout::contiguous, s));
      double v = dt == DType::boolean ? 1.0 : is_float(dt) ? -1.5 : 3.0;
      Tensor f = wick::full(s, v, dt);
      EXPECT_EQ(f.dtype(), dt);
      EXPECT_EQ(f.shape(), s);
      EXPECT_TRUE(matches(f, HostArray(s, v), dt, Tol{0, 0}));
      EXPECT_TRUE(matches(wick::zeros(s, dt), HostArray(s, 0.0), dt, Tol{0, 0}));
      EXPECT_TRUE(matches(wick::ones(s, dt), HostArray(s, 1.0), dt, Tol{0, 0}));
    }
  EXPECT_EQ(wick::zeros({2}).dtype(), DType::f32) << "default dtype";
  EXPECT_TRUE(matches(wick::full({2}, 0.0, DType::boolean), HostArray({2}, 0.0), DType::boolean));
  EXPECT_TRUE(matches(wick::full({2}, 1e10, DType::i64), HostArray({2}, 1e10), DType::i64));
}

TEST(Creation, LikeFollowsShapeAndDtypeOfAnyTensor) {
  Tensor b = wick::zeros({2, 3}, DType::bf16);
  Tensor view = wick::transpose(to_tensor(HostArray({4, 5}, 2.0), DType::i32));
  Tensor lazy = wick::exp(wick::ones({3, 1}, DType::f64));
  for (const Tensor& x : {b, view, lazy}) {
    SCOPED_TRACE(std::string(wick::dtype_name(x.dtype())) + dims_str(x.shape()));
    EXPECT_TRUE(matches(wick::zeros_like(x), HostArray(x.shape(), 0.0), x.dtype()));
    EXPECT_TRUE(matches(wick::ones_like(x), HostArray(x.shape(), 1.0), x.dtype()));
    EXPECT_TRUE(matches(wick::full_like(x, 7.0), HostArray(x.shape(), 7.0), x.dtype()));
  }
  EXPECT_FALSE(lazy.is_evaluated()) << "*_like does not need the value";
}

TEST(Creation, Scalar) {
  Tensor s = wick::scalar(2.5);
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.dtype(), DType::f32);
  EXPECT_EQ(s.item<float>(), 2.5f);
  Tensor d = wick::scalar(0.1, DType::f64);
  EXPECT_EQ(d.item<double>(), 0.1);
  EXPECT_EQ(wick::scalar(-7, DType::i64).item<int64_t>(), -7);
  EXPECT_EQ(wick::scalar(1, DType::boolean).item<bool>(), true);
  EXPECT_EQ(wick::scalar(0.1, DType::bf16).to_vector<wick::bfloat16>()[0].bits,
            wick::bfloat16(0.1f).bits);
}

TEST(Creation, Arange) {
  EXPECT_TRUE(matches(wick::arange(0.0, 5.0), HostArray({5}, {0, 1, 2, 3, 4}), DType::f32));
  EXPECT_TRUE(matches(wick::arange(1.0, 2.0, 0.3), HostArray({4}, {1, 1.3, 1.6, 1.9}), DType::f32));
  EXPECT_TRUE(matches(wick::arange(5.0, 0.0, -1.0), HostArray({5}, {5, 4, 3, 2, 1}), DType::f32));
  EXPECT_TRUE(matches(wick::arange(0.0, 10.0, 3.0, DType::i32), HostArray({4}, {0, 3, 6, 9}),
                      DType::i32));
  EXPECT_TRUE(matches(wick::arange(-1.5, 1.5, 0.5, DType::f64),
                      HostArray({6}, {-1.5, -1, -0.5, 0, 0.5, 1}), DType::f64));
  EXPECT_EQ(wick::arange(2.0, 2.0).shape(), (Shape{0}));
  EXPECT_EQ(wick::arange(3.0, 2.0).shape(), (Shape{0}));
  Tensor n = wick::arange(5);
  EXPECT_EQ(n.dtype(), DType::i64);
  EXPECT_EQ(n.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(wick::arange(4, DType::i32).to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(wick::arange(0).shape(), (Shape{0}));
  // Long ranges are exact (no accumulated step error).
  Tensor big = wick::arange(0.0, 100000.0, 1.0, DType::f64);
  HostArray want({100000});
  for (int64_t k = 0; k < want.size(); ++k) want[k] = static_cast<double>(k);
  EXPECT_TRUE(matches(big, want, DType::f64, Tol{0, 0}));
  HostArray want3({1000});
  for (int64_t k = 0; k < want3.size(); ++k) want3[k] = 0.5 + 0.25 * static_cast<double>(k);
  EXPECT_TRUE(matches(wick::arange(0.5, 250.5, 0.25, DType::f64), want3, DType::f64,
                      Tol{0, 0}));
  EXPECT_NE(error_of([] { (void)wick::arange(0.0, 1.0, 0.0); }), "<no error>") << "step 0";
}

// ---- random ----

bool same_bits(const Tensor& a, const Tensor& b) { return bytes_of(a) == bytes_of(b); }

TEST(Random, SameSeedSameBitsDifferentSeedOrDrawDiffers) {
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(wick::dtype_name(dt));
    wick::Generator g1(42), g2(42), g3(43);
    Tensor a1 = wick::normal({1000}, g1, 0.0, 1.0, dt);
    Tensor a2 = wick::normal({1000}, g2, 0.0, 1.0, dt);
    Tensor a3 = wick::normal({1000}, g3, 0.0, 1.0, dt);
    EXPECT_EQ(a1.dtype(), dt);
    EXPECT_TRUE(same_bits(a1, a2));
    EXPECT_FALSE(same_bits(a1, a3));
    EXPECT_GT(g1.counter(), 0u) << "a draw reserves counters";
    Tensor b1 = wick::normal({1000}, g1, 0.0, 1.0, dt);
    EXPECT_FALSE(same_bits(a1, b1)) << "the next draw from the same generator differs";
    // Elements of one draw are not all equal.
    HostArray h = to_host(a1);
    int64_t distinct = 0;
    for (int64_t i = 1; i < h.size(); ++i) distinct += h[i] != h[0];
    EXPECT_GT(distinct, 900);
  }
}

TEST(Random, ResultsDependOnlyOnSeedAndDrawOrder) {
  wick::Generator g1(7), g2(7);
  Tensor a1 = wick::normal({64, 33}, g1), b1 = wick::uniform({5000}, g1, -2, 2);
  Tensor a2 = wick::normal({64, 33}, g2), b2 = wick::uniform({5000}, g2, -2, 2);
  b1.eval();  // evaluate in the opposite order, and one asynchronously
  a1.eval();
  wick::eval_async({a2}).get();
  b2.eval();
  EXPECT_TRUE(same_bits(a1, a2));
  EXPECT_TRUE(same_bits(b1, b2));
  // Explicit counters replay a draw.
  wick::Generator g3(7);
  g3.set_counter(0);
  EXPECT_TRUE(same_bits(wick::normal({64, 33}, g3), a1));
  // Drawing inside a bigger graph does not change the values.
  wick::Generator g4(7);
  Tensor a4 = wick::normal({64, 33}, g4);
  Tensor y = a4 * 2.0 + 1.0;
  EXPECT_TRUE(matches(y, map(to_host(a1), [](double v) { return 2 * v + 1; }), DType::f32));
}

TEST(Random, MomentsAndRange) {
  const int64_t n = 200000;
  wick::Generator g(123);
  HostArray z = to_host(wick::normal({n}, g, 1.5, 2.0));
  double mean = mean_of(z.v), sd = std::sqrt(var_of(z.v, 0));
  EXPECT_NEAR(mean, 1.5, 0.03);
  EXPECT_NEAR(sd, 2.0, 0.03);
  int64_t within = 0, finite = 0;
  for (double v : z.v) within += std::abs(v - 1.5) < 2.0, finite += std::isfinite(v);
  EXPECT_EQ(finite, n);
  EXPECT_NEAR(double(within) / n, 0.6827, 0.01) << "shape of the distribution";
  double skew = 0;
  for (double v : z.v) skew += std::pow((v - mean) / sd, 3);
  EXPECT_NEAR(skew / n, 0.0, 0.05);

  HostArray u = to_host(wick::uniform({n}, g, -1.0, 3.0));
  EXPECT_GE(min_of(u.v), -1.0);
  EXPECT_LT(max_of(u.v), 3.0);
  EXPECT_NEAR(mean_of(u.v), 1.0, 0.02);
  EXPECT_NEAR(var_of(u.v, 0), 16.0 / 12.0, 0.02);
  // Each quarter of the range gets a quarter of the samples.
  int64_t q[4] = {0, 0, 0, 0};
  for (double v : u.v) q[std::min(3, std::max(0, static_cast<int>(v + 1.0)))]++;
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(double(q[i]) / n, 0.25, 0.01) << "quarter " << i;

  for (DType dt : {DType::f64, DType::bf16, DType::f16}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    HostArray h = to_host(wick::normal({20000}, g, 0.0, 1.0, dt));
    EXPECT_NEAR(mean_of(h.v), 0.0, 0.04);
    EXPECT_NEAR(std::sqrt(var_of(h.v, 0)), 1.0, 0.04);
    HostArray r = to_host(wick::uniform({20000}, g, 0.0, 1.0, dt));
    EXPECT_GE(min_of(r.v), 0.0);
    EXPECT_LE(max_of(r.v), 1.0);  // rounding to 16 bits may reach the bound
    EXPECT_NEAR(mean_of(r.v), 0.5, 0.02);
  }
  EXPECT_EQ(wick::normal({}, g).shape(), Shape{});
  EXPECT_EQ(wick::uniform({0, 3}, g).numel(), 0);
  EXPECT_NE(error_of([&] { (void)wick::normal({3}, g, 0.0, 1.0, DType::i32); }), "<no error>");
  EXPECT_NE(error_of([&] { (void)wick::uniform({3}, g, 0.0, 1.0, DType::boolean); }), "<no error>");
}

// ---- host data and read-back ----

TEST(ReadBack, FromDataAndMetadata) {
  std::vector<float> v = {1, 2, 3, 4, 5, 6};
  Tensor x = Tensor::from_data(v.data(), {2, 3});
  EXPECT_TRUE(x.defined());
  EXPECT_TRUE(x.is_evaluated());
  EXPECT_EQ(x.shape(), (Shape{2, 3}));
  EXPECT_EQ(x.shape(1), 3);
  EXPECT_EQ(x.shape(-1), 3);
  EXPECT_EQ(x.ndim(), 2);
  EXPECT_EQ(x.numel(), 6);
  EXPECT_EQ(x.nbytes(), 24u);
  EXPECT_EQ(x.device(), wick::Device::cpu());
  v[0] = 100;  // the tensor holds its own copy
  EXPECT_EQ(x.to_vector<float>()[0], 1.0f);
  EXPECT_FALSE(Tensor().defined());
  Tensor s0 = Tensor::from_vector(std::vector<double>{5.0}, {});
  EXPECT_EQ(s0.shape(), Shape{});
  EXPECT_EQ(s0.item<double>(), 5.0);
  Tensor e = Tensor::from_vector(std::vector<int64_t>{}, {0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.to_vector<int64_t>().empty());
  std::string neg = error_of([] { (void)wick::zeros({2, -3}); });
  EXPECT_NE(neg, "<no error>") << "negative sizes";
  EXPECT_NE(error_of([] { (void)Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}); }),
            "<no error>");
  EXPECT_NE(error_of([] { (void)Tensor::from_vector(std::vector<bool>{true}, {2}); }),
            "<no error>");
}

TEST(ReadBack, ItemAndToVectorConvert) {
  EXPECT_EQ(wick::scalar(3.0).item<double>(), 3.0);
  EXPECT_EQ(wick::scalar(3.0).item<int32_t>(), 3);
  EXPECT_EQ(wick::ones({1, 1, 1}).item<float>(), 1.0f) << "any one-element shape";
  EXPECT_EQ(wick::scalar(0.0).item<bool>(), false);
  EXPECT_EQ(wick::scalar(-2.0, DType::i32).item<double>(), -2.0);
  std::string msg = error_of([] { (void)wick::ones({2}).item<float>(); });
  EXPECT_NE(msg, "<no error>");
  EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { (void)wick::ones({0}).item<float>(); }), "<no error>");

  Tensor f = Tensor::from_vector(std::vector<float>{1.0f, -2.0f, 3.5f, 0.0f}, {4});
  EXPECT_EQ(f.to_vector<double>(), (std::vector<double>{1.0, -2.0, 3.5, 0.0}));
  EXPECT_EQ(f.to_vector<bool>(), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(wick::astype(f, DType::bf16).to_vector<float>(), (std::vector<float>{1, -2, 3.5, 0}));
  Tensor i = Tensor::from_vector(std::vector<int32_t>{7, -8}, {2});
  EXPECT_EQ(i.to_vector<double>(), (std::vector<double>{7, -8}));
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{7, -8}));
  Tensor b = Tensor::from_vector(std::vector<bool>{true, false}, {2});
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1, 0}));
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{true, false}));
  // Views read back in logical row-major order.
  HostArray h({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor t = wick::transpose(to_tensor(h, DType::f32));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  Tensor s = wick::slice(to_tensor(h, DType::f32), 1, 0, 3, 2);
  EXPECT_EQ(s.to_vector<double>(), (std::vector<double>{0, 2, 3, 5}));
  // Reading evaluates an unevaluated tensor.
  Tensor lazy = f * 2.0;
  EXPECT_EQ(lazy.to_vector<float>(), (std::vector<float>{2, -4, 7, 0}));
  EXPECT_TRUE(lazy.is_evaluated());
}

TEST(ReadBack, DataPointerWithStrides) {
  HostArray h({3, 4});
  for (int64_t k = 0; k < 12; ++k) h[k] = double(k);
  Tensor x = to_tensor(h, DType::f32);
  const float* p = x.data<float>();
  for (int k = 0; k < 12; ++k) EXPECT_EQ(p[k], float(k));
  Tensor t = wick::transpose(x);
  const float* q = t.data<float>();  // evaluates
  const wick::Strides& st = t.strides();
  ASSERT_EQ(st.size(), 2u);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(q[r * st[0] + c * st[1]], float(c * 4 + r));
  Tensor sl = wick::slice(x, 1, 1, 4, 2);  // columns 1 and 3
  const float* d = sl.data<float>();
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t c = 0; c < 2; ++c)
      EXPECT_EQ(d[r * sl.strides()[0] + c * sl.strides()[1]], float(r * 4 + 1 + 2 * c));
  const int64_t* id = wick::arange(3).data<int64_t>();
  EXPECT_EQ(id[2], 2);
  EXPECT_EQ(wick::ones({2}, DType::bf16).data<wick::bfloat16>()[1].bits, wick::bfloat16(1.0f).bits);
  std::string msg = error_of([&] { (void)x.data<double>(); });
  EXPECT_NE(msg, "<no error>") << "data<T> with the wrong T";
  EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
}

bool has_shape(const std::string& s, const char* a, const char* b, const char* c) {
  return s.find(a) != std::string::npos || s.find(b) != std::string::npos ||
         s.find(c) != std::string::npos;
}

TEST(ReadBack, Printing) {
  Tensor x = Tensor::from_vector(std::vector<float>{1.5f, -2.0f, 3.0f, 4.0f, 5.0f, 6.25f}, {2, 3});
  std::string s = x.to_string();
  EXPECT_NE(s.find("f32"), std::string::npos) << s;
  EXPECT_TRUE(has_shape(s, "[2,3]", "[2, 3]", "(2, 3)")) << s;
  EXPECT_NE(s.find("1.5"), std::string::npos) << s;
  EXPECT_NE(s.find("-2"), std::string::npos) << s;
  EXPECT_NE(s.find("6.25"), std::string::npos) << s;
  std::ostringstream os;
  os << x;
  EXPECT_EQ(os.str(), s);
  // Unevaluated tensors print their values too.
  std::string lazy = (x * 2.0).to_string();
  EXPECT_NE(lazy.find("12.5"), std::string::npos) << lazy;
  // Other dtypes and views.
  std::string b = wick::transpose(wick::astype(x, DType::bf16)).to_string();
  EXPECT_NE(b.find("bf16"), std::string::npos) << b;
  EXPECT_TRUE(has_shape(b, "[3,2]", "[3, 2]", "(3, 2)")) << b;
  std::string i = wick::arange(3).to_string();
  EXPECT_NE(i.find("i64"), std::string::npos) << i;
  EXPECT_NE(i.find("2"), std::string::npos) << i;
  std::string bo = wick::less(x, 2.0).to_string();
  EXPECT_NE(bo.find("bool"), std::string::npos) << bo;
  EXPECT_TRUE(bo.find("true") != std::string::npos || bo.find("True") != std::string::npos ||
              bo.find("1") != std::string::npos)
      << bo;
  // Long tensors are shortened.
  std::string big = wick::arange(0.0, 100000.0).to_string();
  EXPECT_NE(big.find("..."), std::string::npos);
  EXPECT_LT(big.size(), 3000u);
  EXPECT_NE(big.find("99999"), std::string::npos) << "the tail is shown";
  // Non-finite values.
  std::string nf = Tensor::from_vector(std::vector<float>{INFINITY, -INFINITY, NAN}, {3}).to_string();
  EXPECT_NE(nf.find("inf"), std::string::npos) << nf;
  EXPECT_NE(nf.find("nan"), std::string::npos) << nf;
  // 0-d and empty.
  EXPECT_NE(wick::scalar(4.5).to_string().find("4.5"), std::string::npos);
  EXPECT_NE(wick::zeros({0, 3}).to_string().find("f32"), std::string::npos);
}

}  // namespace
