// Binary elementwise ops against the reference: NumPy broadcasting (scalars, size-0 and size-1
// axes), views as operands, every dtype the op takes, the weakly typed scalar forms and the
// operators.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

enum class Kind { arith, compare, logical };
enum class Domain { any, divisor, power, small_ints };

struct BinaryCase {
  const char* name;
  Tensor (*fn)(const Tensor&, const Tensor&);
  Tensor (*ts)(const Tensor&, double);  // tensor (x) scalar; null when there is no scalar form
  Tensor (*st)(double, const Tensor&);  // scalar (x) tensor
  double (*ref)(double, double);
  Kind kind;
  Domain dom;
};

#define WT_BIN(op) [](const Tensor& a, const Tensor& b) { return wick::op(a, b); }
#define WT_TS(op) [](const Tensor& a, double b) { return wick::op(a, b); }
#define WT_ST(op) [](double a, const Tensor& b) { return wick::op(a, b); }
#define WT_ALL(op) WT_BIN(op), WT_TS(op), WT_ST(op)

const BinaryCase kCases[] = {
    {"add", WT_ALL(add), [](double a, double b) { return a + b; }, Kind::arith, Domain::any},
    {"subtract", WT_ALL(subtract), [](double a, double b) { return a - b; }, Kind::arith,
     Domain::any},
    {"multiply", WT_ALL(multiply), [](double a, double b) { return a * b; }, Kind::arith,
     Domain::any},
    {"divide", WT_ALL(divide), [](double a, double b) { return a / b; }, Kind::arith,
     Domain::divisor},
    {"power", WT_ALL(power), [](double a, double b) { return std::pow(a, b); }, Kind::arith,
     Domain::power},
    {"maximum", WT_ALL(maximum), [](double a, double b) { return std::max(a, b); }, Kind::arith,
     Domain::small_ints},
    {"minimum", WT_ALL(minimum), [](double a, double b) { return std::min(a, b); }, Kind::arith,
     Domain::small_ints},
    {"equal", WT_ALL(equal), [](double a, double b) { return double(a == b); }, Kind::compare,
     Domain::small_ints},
    {"not_equal", WT_ALL(not_equal), [](double a, double b) { return double(a != b); },
     Kind::compare, Domain::small_ints},
    {"less", WT_ALL(less), [](double a, double b) { return double(a < b); }, Kind::compare,
     Domain::small_ints},
    {"less_equal", WT_ALL(less_equal), [](double a, double b) { return double(a <= b); },
     Kind::compare, Domain::small_ints},
    {"greater", WT_ALL(greater), [](double a, double b) { return double(a > b); }, Kind::compare,
     Domain::small_ints},
    {"greater_equal", WT_ALL(greater_equal), [](double a, double b) { return double(a >= b); },
     Kind::compare, Domain::small_ints},
    {"logical_and", WT_BIN(logical_and), nullptr, nullptr,
     [](double a, double b) { return double(a != 0 && b != 0); }, Kind::logical, Domain::any},
    {"logical_or", WT_BIN(logical_or), nullptr, nullptr,
     [](double a, double b) { return double(a != 0 || b != 0); }, Kind::logical, Domain::any},
};

const std::vector<std::pair<Dims, Dims>> kShapePairs = {
    {{3, 4}, {3, 4}},    {{3, 4}, {4}},       {{2, 1, 4}, {3, 1}}, {{}, {2, 3}},
    {{2, 3}, {}},        {{}, {}},            {{0, 3}, {1, 3}},    {{1}, {}},
    {{5, 1}, {1, 6}},    {{2, 3, 0}, {3, 1}}, {{4, 1, 3}, {4, 2, 3}},
};

const std::vector<std::pair<Layout, Layout>> kLayoutPairs = {
    {Layout::contiguous, Layout::contiguous}, {Layout::transposed, Layout::contiguous},
    {Layout::contiguous, Layout::strided},    {Layout::strided, Layout::transposed},
    {Layout::broadcast, Layout::broadcast},   {Layout::broadcast, Layout::transposed},
};

/// Operands for `c` in the op's domain.
std::pair<Input, Input> operands(const BinaryCase& c, const Dims& sa, const Dims& sb, DType dt,
                                 Layout la, Layout lb, uint64_t seed) {
  auto small_ints = [&](const Dims& s, Layout l, uint64_t sd) {
    Input in = random_input(s, DType::i32, l, sd, -1, 1);
    if (dt == DType::i32) return in;
    HostArray h = quantize(in.host, dt);
    if (l == Layout::broadcast && !s.empty()) {  // keep it a broadcast view
      HostArray hs = slice(h, 0, 0, 1, 1);
      return Input{h, wick::broadcast_to(to_tensor(hs, dt), s)};
    }
    return Input{h, make_input(h, dt, l)};
  };
  switch (c.dom) {
    case Domain::any: return {random_input(sa, dt, la, seed), random_input(sb, dt, lb, seed + 1)};
    case Domain::divisor:
      return {random_input(sa, dt, la, seed), random_input(sb, dt, lb, seed + 1, 0.5, 2.5)};
    case Domain::power:
      return {random_input(sa, dt, la, seed, 0.5, 2), random_input(sb, dt, lb, seed + 1, -2, 2)};
    case Domain::small_ints: return {small_ints(sa, la, seed), small_ints(sb, lb, seed + 1)};
  }
  return {};
}

TEST(Binary, EveryOpFloatDtypesBroadcastingAndLayouts) {
  uint64_t seed = 1;
  for (const auto& c : kCases) {
    if (c.kind == Kind::logical) continue;
    for (DType dt : kFloatTypes)
      for (const auto& [sa, sb] : kShapePairs)
        for (const auto& [la, lb] : kLayoutPairs) {
          SCOPED_TRACE(describe(c.name, dt, la, sa) + " (x) " + layout_name(lb) + " " +
                       dims_str(sb));
          auto [a, b] = operands(c, sa, sb, dt, la, lb, seed += 2);
          Tensor y = c.fn(a.tensor, b.tensor);
          DType want = c.kind == Kind::compare ? DType::boolean : dt;
          ASSERT_EQ(y.shape(), broadcast_dims(sa, sb));
          EXPECT_FALSE(y.is_evaluated());
          EXPECT_TRUE(matches(y, zip(a.host, b.host, c.ref), want));
        }
  }
}

TEST(Binary, IntegerDtypesAreExact) {
  uint64_t seed = 7000;
  for (const auto& c : kCases) {
    if (c.kind == Kind::logical || c.dom == Domain::power) continue;
    for (DType dt : {DType::i32, DType::i64})
      for (const auto& [sa, sb] : kShapePairs)
        for (const auto& [la, lb] : kLayoutPairs) {
          SCOPED_TRACE(describe(c.name, dt, la, sa) + " (x) " + layout_name(lb) + " " +
                       dims_str(sb));
          Input a = random_input(sa, dt, la, seed++, -50, 50);
          Input b = random_input(sb, dt, lb, seed++, 1, 9);  // nonzero divisors
          DType want = c.kind == Kind::compare                ? DType::boolean
                       : std::string(c.name) == "divide" ? DType::f32
                                                             : dt;
          EXPECT_TRUE(matches(c.fn(a.tensor, b.tensor), zip(a.host, b.host, c.ref), want));
        }
  }
  // Large i64 values keep all their bits (no detour through double or float).
  int64_t big = (int64_t{1} << 53) + 1;
  Tensor x = Tensor::from_vector(std::vector<int64_t>{big, -big}, {2});
  Tensor y = wick::add(x, Tensor::from_vector(std::vector<int64_t>{2, -2}, {2}));
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{big + 2, -big - 2}));
}

TEST(Binary, LogicalOpsOnBools) {
  uint64_t seed = 300;
  for (const auto& c : kCases) {
    if (c.kind != Kind::logical) continue;
    for (const auto& [sa, sb] : kShapePairs)
      for (const auto& [la, lb] : kLayoutPairs) {
        SCOPED_TRACE(describe(c.name, DType::boolean, la, sa) + " (x) " + layout_name(lb) + " " +
                     dims_str(sb));
        Input a = random_input(sa, DType::boolean, la, seed++);
        Input b = random_input(sb, DType::boolean, lb, seed++);
        EXPECT_TRUE(matches(c.fn(a.tensor, b.tensor), zip(a.host, b.host, c.ref), DType::boolean));
      }
  }
}

TEST(Binary, ScalarFormsAreWeaklyTyped) {
  const double scalars[] = {1.5, -0.75, 2.0, 0.5};
  uint64_t seed = 4000;
  for (const auto& c : kCases) {
    if (!c.ts) continue;
    for (DType dt : kFloatTypes)
      for (double s : scalars)
        for (Layout l : {Layout::contiguous, Layout::transposed}) {
          SCOPED_TRACE(describe(c.name, dt, l, {3, 4}) + " scalar " + std::to_string(s));
          double lo = -2, hi = 2;
          if (c.dom == Domain::divisor || c.dom == Domain::power) lo = 0.5;
          Input a = random_input({3, 4}, dt, l, seed++, lo, hi);
          if (c.dom == Domain::small_ints) {
            HostArray h = quantize(map(a.host, [](double v) { return std::round(v * 2) / 4; }), dt);
            a = {h, make_input(h, dt, l)};
          }
          DType want = c.kind == Kind::compare ? DType::boolean : dt;
          HostArray hs({}, {s});
          EXPECT_TRUE(matches(c.ts(a.tensor, s), zip(a.host, hs, c.ref), want)) << "tensor (x) s";
          if (c.dom == Domain::power && s < 0) continue;  // negative base, fractional exponent
          EXPECT_TRUE(matches(c.st(s, a.tensor), zip(hs, a.host, c.ref), want)) << "s (x) tensor";
        }
  }
}

TEST(Binary, FloatScalarWithIntegerTensorGivesF32) {
  HostArray h({5}, {-3, -1, 0, 1, 4});
  for (DType dt : {DType::i32, DType::i64}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    Tensor x = to_tensor(h, dt);
    HostArray s({}, {2.5});
    EXPECT_TRUE(matches(wick::add(x, 2.5), zip(h, s, std::plus<double>()), DType::f32));
    EXPECT_TRUE(matches(wick::multiply(x, 2.5), zip(h, s, std::multiplies<double>()), DType::f32));
    EXPECT_TRUE(matches(wick::subtract(2.5, x), zip(s, h, std::minus<double>()), DType::f32));
    EXPECT_TRUE(matches(x / 2.5, zip(h, s, std::divides<double>()), DType::f32));
    EXPECT_TRUE(matches(wick::maximum(x, 0.5), zip(h, HostArray({}, {0.5}),
                                                    [](double a, double b) { return std::max(a, b); }),
                        DType::f32));
    // A comparison with 1.5 happens in floating point: nothing equals it, 1 < 1.5 < 4.
    EXPECT_TRUE(matches(wick::equal(x, 1.5), HostArray({5}, {0, 0, 0, 0, 0}), DType::boolean));
    EXPECT_TRUE(matches(wick::less(x, 1.5), HostArray({5}, {1, 1, 1, 1, 0}), DType::boolean));
    EXPECT_TRUE(matches(wick::greater_equal(1.5, x), HostArray({5}, {1, 1, 1, 1, 0}),
                        DType::boolean));
  }
  Tensor b = to_tensor(HostArray({3}, {0, 1, 1}), DType::boolean);
  EXPECT_TRUE(matches(wick::add(b, 1.5), HostArray({3}, {1.5, 2.5, 2.5}), DType::f32));
  // Integer division by an integer tensor is true division in f32.
  Tensor i = to_tensor(HostArray({3}, {7, -7, 1}), DType::i32);
  Tensor j = to_tensor(HostArray({3}, {2, 2, 3}), DType::i32);
  EXPECT_TRUE(matches(wick::divide(i, j), HostArray({3}, {3.5, -3.5, 1.0 / 3}), DType::f32));
}

TEST(Binary, OperatorsMatchTheFunctions) {
  Input a = random_input({4, 5}, DType::f32, Layout::transposed, 11);
  Input b = random_input({5}, DType::f32, Layout::contiguous, 12, 0.5, 2);
  const Tensor& x = a.tensor;
  const Tensor& y = b.tensor;
  EXPECT_EQ(bytes_of(x + y), bytes_of(wick::add(x, y)));
  EXPECT_EQ(bytes_of(x - y), bytes_of(wick::subtract(x, y)));
  EXPECT_EQ(bytes_of(x * y), bytes_of(wick::multiply(x, y)));
  EXPECT_EQ(bytes_of(x / y), bytes_of(wick::divide(x, y)));
  EXPECT_EQ(bytes_of(-x), bytes_of(wick::negative(x)));
  EXPECT_EQ(bytes_of(x + 2.0), bytes_of(wick::add(x, 2.0)));
  EXPECT_EQ(bytes_of(x - 2.0), bytes_of(wick::subtract(x, 2.0)));
  EXPECT_EQ(bytes_of(x * 2.0), bytes_of(wick::multiply(x, 2.0)));
  EXPECT_EQ(bytes_of(x / 2.0), bytes_of(wick::divide(x, 2.0)));
  EXPECT_EQ(bytes_of(2.0 + x), bytes_of(wick::add(2.0, x)));
  EXPECT_EQ(bytes_of(2.0 - x), bytes_of(wick::subtract(2.0, x)));
  EXPECT_EQ(bytes_of(2.0 * x), bytes_of(wick::multiply(2.0, x)));
  EXPECT_EQ(bytes_of(2.0 / y), bytes_of(wick::divide(2.0, y)));
  // And the reference, for a compound expression.
  Tensor z = (x * 3.0 - y) / (y + 1.0) + 0.5 * x;
  HostArray want = zip(zip(zip(map(a.host, [](double v) { return 3 * v; }), b.host,
                               std::minus<double>()),
                           map(b.host, [](double v) { return v + 1; }), std::divides<double>()),
                       map(a.host, [](double v) { return 0.5 * v; }), std::plus<double>());
  EXPECT_TRUE(matches(z, want, DType::f32));
  // 2.0 - x is not x - 2.0.
  EXPECT_TRUE(matches(2.0 - x, map(a.host, [](double v) { return 2 - v; }), DType::f32));
  EXPECT_TRUE(matches(2.0 / y, map(b.host, [](double v) { return 2 / v; }), DType::f32));
}

TEST(Binary, SameOperandTwiceAndIntermediatesUsedTwice) {
  Input a = random_input({8, 9}, DType::f32, Layout::contiguous, 21);
  Tensor e = wick::exp(a.tensor);
  Tensor y = e + e;  // one unevaluated input used twice
  Tensor z = e * wick::sin(e) - e;
  HostArray he = map(a.host, [](double v) { return std::exp(v); });
  wick::eval({y, z});
  EXPECT_TRUE(matches(y, map(he, [](double v) { return 2 * v; }), DType::f32));
  EXPECT_TRUE(matches(z, map(he, [](double v) { return v * std::sin(v) - v; }), DType::f32,
                      Tol{1e-5, 1e-5}));
  EXPECT_TRUE(matches(e, he, DType::f32));  // the user's handle still reads exp(x)
}

TEST(Binary, LargeBroadcastsAcrossThreads) {
  Input a = random_input({513, 300}, DType::f32, Layout::contiguous, 31);
  Input b = random_input({300}, DType::f32, Layout::contiguous, 32);
  Input c = random_input({513, 1}, DType::f32, Layout::contiguous, 33);
  EXPECT_TRUE(matches(a.tensor + b.tensor, zip(a.host, b.host, std::plus<double>()), DType::f32));
  EXPECT_TRUE(matches(c.tensor * b.tensor, zip(c.host, b.host, std::multiplies<double>()),
                      DType::f32));
  Input t = random_input({300, 513}, DType::f32, Layout::transposed, 34);
  Input r = random_input({513}, DType::f32, Layout::strided, 35);
  EXPECT_TRUE(matches(wick::maximum(t.tensor, r.tensor),
                      zip(t.host, r.host, [](double x, double y) { return std::max(x, y); }),
                      DType::f32));
}

TEST(Binary, IeeeSpecialsAndNegativeBases) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(wick::dtype_name(dt));
    // Integer exponents of negative bases are real numbers (x ** 2 is everywhere in models).
    HostArray a({6}, {-2, -2, -3, 0, 0, -0.5});
    HostArray b({6}, {2, 3, 0, 0, 2, -2});
    EXPECT_TRUE(matches(wick::power(to_tensor(a, dt), to_tensor(b, dt)),
                        HostArray({6}, {4, -8, 1, 1, 0, 4}), dt));
    EXPECT_TRUE(matches(wick::power(to_tensor(a, dt), 2.0), HostArray({6}, {4, 4, 9, 0, 0, 0.25}), dt));
    EXPECT_TRUE(matches(wick::power(to_tensor(a, dt), 3.0),
                        HostArray({6}, {-8, -8, -27, 0, 0, -0.125}), dt));
    HostArray p({3}, {4, 9, 0.25});
    EXPECT_TRUE(matches(wick::power(to_tensor(p, dt), 0.5), HostArray({3}, {2, 3, 0.5}), dt));
    EXPECT_TRUE(matches(wick::power(2.0, to_tensor(HostArray({3}, {-1, 0, 10}), dt)),
                        HostArray({3}, {0.5, 1, 1024}), dt));
    // Division by zero and NaN comparisons follow IEEE.
    HostArray n({4}, {1, -1, 0, nan});
    HostArray z({4}, {0, 0, 0, 1});
    EXPECT_TRUE(matches(wick::divide(to_tensor(n, dt), to_tensor(z, dt)),
                        HostArray({4}, {inf, -inf, nan, nan}), dt));
    Tensor tn = to_tensor(n, dt);
    EXPECT_TRUE(matches(wick::equal(tn, tn), HostArray({4}, {1, 1, 1, 0}), DType::boolean));
    EXPECT_TRUE(matches(wick::not_equal(tn, tn), HostArray({4}, {0, 0, 0, 1}), DType::boolean));
    EXPECT_TRUE(matches(wick::less(tn, 5.0), HostArray({4}, {1, 1, 1, 0}), DType::boolean));
    EXPECT_TRUE(matches(wick::greater_equal(tn, -5.0), HostArray({4}, {1, 1, 1, 0}), DType::boolean));
  }
  // Integer true division by zero.
  Tensor i = to_tensor(HostArray({3}, {1, -1, 0}), DType::i32);
  EXPECT_TRUE(matches(wick::divide(i, wick::zeros({3}, DType::i32)), HostArray({3}, {inf, -inf, nan}),
                      DType::f32));
}

TEST(Binary, IncompatibleShapesFailAtBuildTime) {
  Tensor a = wick::zeros({3, 4}), b = wick::zeros({5});
  std::string msg = error_of([&] { (void)wick::add(a, b); });
  EXPECT_NE(msg.find("add"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3,4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[5]"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { (void)(a * wick::zeros({2, 4})); }), "<no error>");
  EXPECT_NE(error_of([&] { (void)wick::less(a, wick::zeros({4, 3})); }), "<no error>");
}

}  // namespace
