// Unary elementwise ops against the double-precision reference: every dtype, every input
// layout (dense, transposed view, strided slice, broadcast view), scalars, size-0/size-1 axes,
// and the special values where naive formulas overflow.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

struct UnaryCase {
  const char* name;
  Tensor (*fn)(const Tensor&);
  double (*ref)(double);
  double lo, hi;     // float input domain
  bool float_only;   // integer/bool inputs give f32
  bool int_ok;       // accepts integer inputs (keeping their dtype unless float_only)
};

const UnaryCase kCases[] = {
    {"negative", [](const Tensor& x) { return wick::negative(x); }, [](double x) { return -x; },
     -3, 3, false, true},
    {"abs", [](const Tensor& x) { return wick::abs(x); }, [](double x) { return std::abs(x); },
     -3, 3, false, true},
    {"exp", [](const Tensor& x) { return wick::exp(x); }, [](double x) { return std::exp(x); },
     -4, 4, true, true},
    {"log", [](const Tensor& x) { return wick::log(x); }, [](double x) { return std::log(x); },
     0.05, 6, true, true},
    {"sqrt", [](const Tensor& x) { return wick::sqrt(x); }, [](double x) { return std::sqrt(x); },
     0, 6, true, true},
    {"rsqrt", [](const Tensor& x) { return wick::rsqrt(x); },
     [](double x) { return 1.0 / std::sqrt(x); }, 0.05, 6, true, true},
    {"sin", [](const Tensor& x) { return wick::sin(x); }, [](double x) { return std::sin(x); },
     -6, 6, true, true},
    {"cos", [](const Tensor& x) { return wick::cos(x); }, [](double x) { return std::cos(x); },
     -6, 6, true, true},
    {"tanh", [](const Tensor& x) { return wick::tanh(x); }, [](double x) { return std::tanh(x); },
     -4, 4, true, true},
    {"sigmoid", [](const Tensor& x) { return wick::sigmoid(x); }, sigmoid_d, -8, 8, true, true},
    {"silu", [](const Tensor& x) { return wick::silu(x); },
     [](double x) { return x * sigmoid_d(x); }, -6, 6, true, true},
    {"gelu", [](const Tensor& x) { return wick::gelu(x); }, gelu_d, -5, 5, true, true},
    {"gelu_tanh", [](const Tensor& x) { return wick::gelu_tanh(x); }, gelu_tanh_d, -5, 5, true,
     true},
    {"relu", [](const Tensor& x) { return wick::relu(x); },
     [](double x) { return x > 0 ? x : 0.0; }, -3, 3, false, true},
    {"square", [](const Tensor& x) { return wick::square(x); }, [](double x) { return x * x; }, -3,
     3, false, true},
};

const std::vector<Dims> kShapes = {{}, {0}, {1}, {7}, {3, 5}, {2, 1, 4}, {2, 0, 3}, {3, 37}};

// Sin/cos of f32 arguments up to |6| lose a little more than one ulp in vectorised forms.
Tol float_tol(const char* name, DType dt) {
  Tol t = tol_for(dt);
  if (dt == DType::f32) t.atol = 2e-6;
  if (dt == DType::f64) t = {1e-12, 1e-13};
  (void)name;
  return t;
}

TEST(Unary, EveryOpEveryFloatDtypeAndLayout) {
  uint64_t seed = 1;
  for (const auto& c : kCases)
    for (DType dt : kFloatTypes)
      for (Layout l : kLayouts)
        for (const Dims& s : kShapes) {
          SCOPED_TRACE(describe(c.name, dt, l, s));
          Input in = random_input(s, dt, l, seed++, c.lo, c.hi);
          Tensor y = c.fn(in.tensor);
          ASSERT_EQ(y.dtype(), dt);
          ASSERT_EQ(y.shape(), s);
          EXPECT_FALSE(y.is_evaluated()) << "building must not compute (outside EagerScope)";
          EXPECT_TRUE(matches(y, map(in.host, c.ref), dt, float_tol(c.name, dt)));
        }
}

TEST(Unary, LargeInputsUseEveryThreadChunkCorrectly) {
  // Large enough for the kernels to split the work across threads and to run vector bodies.
  for (const auto& c : kCases)
    for (DType dt : {DType::f32, DType::bf16, DType::f16})
      for (Layout l : {Layout::contiguous, Layout::transposed}) {
        SCOPED_TRACE(describe(c.name, dt, l, {301, 257}));
        Input in = random_input({301, 257}, dt, l, 99, c.lo, c.hi);
        EXPECT_TRUE(matches(c.fn(in.tensor), map(in.host, c.ref), dt, float_tol(c.name, dt)));
      }
}

TEST(Unary, IntegerAndBoolInputs) {
  uint64_t seed = 500;
  for (const auto& c : kCases)
    for (DType dt : {DType::i32, DType::i64})
      for (Layout l : {Layout::contiguous, Layout::transposed, Layout::strided}) {
        Dims s = {3, 4};
        SCOPED_TRACE(describe(c.name, dt, l, s));
        double lo = c.lo >= 0 ? 1 : -3, hi = 5;
        if (std::string(c.name) == "exp") hi = 3;
        Input in = random_input(s, dt, l, seed++, lo, hi);
        DType want = c.float_only ? DType::f32 : dt;
        Tensor y = c.fn(in.tensor);
        EXPECT_EQ(y.dtype(), want) << c.name << " of " << wick::dtype_name(dt);
        EXPECT_TRUE(matches(y, map(in.host, c.ref), want, float_tol(c.name, want)));
      }
  // Float-only ops on bool give f32 of 0/1.
  HostArray b({4}, {0, 1, 1, 0});
  Tensor tb = to_tensor(b, DType::boolean);
  for (const auto& c : kCases) {
    if (!c.float_only) continue;
    SCOPED_TRACE(c.name);
    if (std::string(c.name) == "log" || std::string(c.name) == "rsqrt") continue;  // log(0)
    EXPECT_TRUE(matches(c.fn(tb), map(b, c.ref), DType::f32, float_tol(c.name, DType::f32)));
  }
}

TEST(Unary, LogicalNotEveryDtype) {
  uint64_t seed = 900;
  for (DType dt : kAllTypes)
    for (Layout l : kLayouts)
      for (const Dims& s : kShapes) {
        SCOPED_TRACE(describe("logical_not", dt, l, s));
        Input in = random_input(s, dt, l, seed++, -1, 1);
        // Make zeros common for floats too.
        if (is_float(dt)) {
          HostArray h = map(in.host, [](double x) { return std::round(x); });
          in = {h, make_input(h, dt, l == Layout::broadcast ? Layout::strided : l)};
        }
        Tensor y = wick::logical_not(in.tensor);
        EXPECT_EQ(y.dtype(), DType::boolean);
        EXPECT_TRUE(
            matches(y, map(in.host, [](double x) { return x == 0 ? 1.0 : 0.0; }), DType::boolean));
      }
}

TEST(Unary, SpecialValuesStayFiniteWhereTheMathIs) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  HostArray x({8}, {-100.0, -30.0, -0.0, 0.0, 30.0, 100.0, 1e-30, 88.0});
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(wick::dtype_name(dt));
    HostArray q = quantize(x, dt);
    Tensor t = to_tensor(q, dt);
    // Saturating functions must not produce NaN from exp overflow (inf/inf, 0*inf).
    EXPECT_TRUE(matches(wick::sigmoid(t), map(q, sigmoid_d), dt, Tol{tol_for(dt).rtol, 1e-7}));
    EXPECT_TRUE(matches(wick::tanh(t), map(q, [](double v) { return std::tanh(v); }), dt,
                        Tol{tol_for(dt).rtol, 1e-7}));
    EXPECT_TRUE(matches(wick::silu(t), map(q, [](double v) { return v * sigmoid_d(v); }), dt,
                        Tol{tol_for(dt).rtol, 1e-7}));
    EXPECT_TRUE(matches(wick::gelu(t), map(q, gelu_d), dt, Tol{tol_for(dt).rtol, 1e-7}));
    EXPECT_TRUE(matches(wick::gelu_tanh(t), map(q, gelu_tanh_d), dt, Tol{tol_for(dt).rtol, 1e-7}));
    EXPECT_TRUE(matches(wick::relu(t), map(q, [](double v) { return v > 0 ? v : 0.0; }), dt));
  }
  // IEEE edge cases of exp/log/sqrt in f32.
  HostArray e({5}, {0.0, -1.0, inf, -inf, nan});
  Tensor te = to_tensor(e, DType::f32);
  EXPECT_TRUE(matches(wick::log(te), HostArray({5}, {-inf, nan, inf, nan, nan}), DType::f32));
  EXPECT_TRUE(matches(wick::exp(te), HostArray({5}, {1.0, std::exp(-1.0), inf, 0.0, nan}),
                      DType::f32));
  EXPECT_TRUE(matches(wick::sqrt(te), HostArray({5}, {0.0, nan, inf, nan, nan}), DType::f32));
  EXPECT_TRUE(matches(wick::abs(te), HostArray({5}, {0.0, 1.0, inf, inf, nan}), DType::f32));
  EXPECT_TRUE(matches(wick::exp(to_tensor(HostArray({1}, {100.0}), DType::f32)),
                      HostArray({1}, {inf}), DType::f32));
  // f32 exp(88) is finite (3.3e38); an f16 result overflows to inf.
  EXPECT_TRUE(std::isfinite(wick::exp(wick::scalar(88.0)).item<float>()));
  EXPECT_TRUE(std::isinf(wick::exp(wick::scalar(12.0, DType::f16)).item<float>()));
}

TEST(Unary, ChainOfUnaryOpsOnAView) {
  // exp(log(abs(x) + 1)) - 1 == abs(x), through a transposed view, in one lazy graph.
  Input in = random_input({6, 5}, DType::f32, Layout::transposed, 3, -3, 3);
  Tensor y = wick::exp(wick::log(wick::abs(in.tensor) + 1.0)) - 1.0;
  EXPECT_TRUE(matches(y, map(in.host, [](double v) { return std::abs(v); }), DType::f32,
                      Tol{1e-5, 2e-6}));
  // negative of negative is the identity, bit for bit.
  Tensor z = wick::negative(wick::negative(in.tensor));
  EXPECT_EQ(bytes_of(z), bytes_of(wick::contiguous(in.tensor)));
  EXPECT_EQ(bytes_of(-in.tensor), bytes_of(wick::negative(in.tensor)));
}

// erf and GELU run on a polynomial/exp approximation in f32 (vectorised): dense sweeps against
// double precision, including GELU's left tail where 1 + erf(x/√2) must not cancel to 0.
TEST(Unary, ErfAndGeluAccuracyOverDenseSweeps) {
  const int64_t n = 200001;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(-14.0 + 24.0 * double(i) / double(n - 1));
  Tensor t = Tensor::from_vector(x, {n});
  auto erf_v = wick::erf(t).to_vector<float>();
  auto gelu_v = wick::gelu(t).to_vector<float>();
  auto tanh_v = wick::gelu_tanh(t).to_vector<float>();
  double erf_err = 0, gelu_rel = 0, gelu_abs = 0, tanh_err = 0;
  for (int64_t i = 0; i < n; ++i) {
    double v = x[i];
    erf_err = std::max(erf_err, std::abs(erf_v[i] - std::erf(v)) / std::max(1e-30, std::abs(std::erf(v))));
    // The reference takes the f32-rounded x/√2, as any f32 GELU does.
    double z = static_cast<float>(x[i] * 0.70710678118654752440f);
    double g = 0.5 * v * std::erfc(-z);
    gelu_abs = std::max(gelu_abs, std::abs(gelu_v[i] - g) / std::max(1.0, std::abs(v)));
    if (std::abs(g) > 1e-30) gelu_rel = std::max(gelu_rel, std::abs(gelu_v[i] - g) / std::abs(g));
    tanh_err = std::max(tanh_err, std::abs(tanh_v[i] - gelu_tanh_d(v)) / std::max(1.0, std::abs(v)));
  }
  EXPECT_LT(erf_err, 4e-7);
  EXPECT_LT(gelu_abs, 2e-7);
  EXPECT_LT(gelu_rel, 2e-6);  // left tail: relative, down to 1e-30
  EXPECT_LT(tanh_err, 4e-7);
  // Infinities and NaN.
  const float inf = std::numeric_limits<float>::infinity();
  auto sp = wick::erf(Tensor::from_vector<float>({inf, -inf, NAN}, {3})).to_vector<float>();
  EXPECT_EQ(sp[0], 1.0f);
  EXPECT_EQ(sp[1], -1.0f);
  EXPECT_TRUE(std::isnan(sp[2]));
  auto gp = wick::gelu(Tensor::from_vector<float>({inf, NAN}, {2})).to_vector<float>();
  EXPECT_EQ(gp[0], inf);
  EXPECT_TRUE(std::isnan(gp[1]));
}

}  // namespace
