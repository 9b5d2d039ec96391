// matmul (2-d, batched, broadcast batch dims, 1-d operands, views), linear and lora_linear
// against the naive reference and against their unfused expressions.
#include <gtest/gtest.h>

#include <cmath>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

// Products of K values in [-2, 2]: the absolute error grows with K.
Tol mm_tol(DType dt, int64_t K) {
  double k = static_cast<double>(std::max<int64_t>(K, 1));
  switch (dt) {
    case DType::f64: return {1e-12, 1e-12 * k};
    case DType::f32: return {1e-5, 4e-6 * k};
    case DType::f16: return {2e-3, 2e-3};
    case DType::bf16: return {1e-2, 1e-2};
    default: return {0, 0};
  }
}

enum class MMLayout { contiguous, reversed, gemm_t, strided, broadcast };
const MMLayout kMMLayouts[] = {MMLayout::contiguous, MMLayout::reversed, MMLayout::gemm_t,
                               MMLayout::strided, MMLayout::broadcast};
const char* mm_name(MMLayout l) {
  const char* n[] = {"contiguous", "reversed-axes view", "last-two-swapped view", "strided",
                     "broadcast"};
  return n[static_cast<int>(l)];
}

/// An operand with value `h`: `gemm_t` is the layout of a transposed weight (swapaxes(-1,-2) of
/// a dense tensor), the one GEMM should consume without a copy.
Tensor operand(const HostArray& h, DType dt, MMLayout l) {
  switch (l) {
    case MMLayout::contiguous: return to_tensor(h, dt);
    case MMLayout::reversed: return make_input(h, dt, Layout::transposed);
    case MMLayout::gemm_t: {
      if (h.ndim() < 2) return to_tensor(h, dt);
      std::vector<int> perm(h.ndim());
      for (int d = 0; d < h.ndim(); ++d) perm[d] = d;
      std::swap(perm[h.ndim() - 1], perm[h.ndim() - 2]);
      return wick::swapaxes(to_tensor(transpose(h, perm), dt), -1, -2);
    }
    case MMLayout::strided: return make_input(h, dt, Layout::strided);
    case MMLayout::broadcast: break;
  }
  return {};
}

/// Random operand of `shape`; `broadcast` draws axis 0 once and broadcasts it (a view).
Input mm_input(const Dims& shape, DType dt, MMLayout l, uint64_t seed) {
  if (l == MMLayout::broadcast) return random_input(shape, dt, Layout::broadcast, seed);
  HostArray h = random_host(shape, dt, seed);
  return {h, operand(h, dt, l)};
}

const std::vector<std::pair<Dims, Dims>> kShapes = {
    {{1, 1}, {1, 1}},          {{3, 5}, {5, 4}},       {{17, 33}, {33, 9}},
    {{64, 64}, {64, 64}},      {{0, 3}, {3, 4}},       {{3, 0}, {0, 4}},
    {{3, 4}, {4, 0}},          {{2, 3, 5, 4}, {2, 3, 4, 6}}, {{2, 1, 3, 4}, {5, 4, 2}},
    {{3, 4}, {2, 4, 5}},       {{2, 3, 4}, {4, 5}},    {{4}, {4, 5}},
    {{3, 4}, {4}},             {{4}, {4}},             {{2, 3, 4}, {4}},
    {{4}, {2, 4, 5}},          {{1, 4}, {4, 1}},       {{1, 7, 3}, {4, 3, 2}},
};

TEST(Matmul, ShapesDtypesAndLayoutsAgainstReference) {
  uint64_t seed = 1;
  for (DType dt : kFloatTypes)
    for (const auto& [sa, sb] : kShapes)
      for (MMLayout la : kMMLayouts)
        for (MMLayout lb : {MMLayout::contiguous, MMLayout::gemm_t, MMLayout::strided,
                            MMLayout::broadcast}) {
          if (dt != DType::f32 && la != MMLayout::contiguous && lb != MMLayout::contiguous &&
              la != lb)
            continue;  // the full layout cross product runs in f32 only
          SCOPED_TRACE(std::string("matmul ") + wick::dtype_name(dt) + " " + dims_str(sa) + " " +
                       mm_name(la) + " x " + dims_str(sb) + " " + mm_name(lb));
          Input a = mm_input(sa, dt, la, seed++);
          Input b = mm_input(sb, dt, lb, seed++);
          Tensor y = wick::matmul(a.tensor, b.tensor);
          HostArray want = matmul(a.host, b.host);
          ASSERT_EQ(y.shape(), want.shape);
          EXPECT_FALSE(y.is_evaluated());
          EXPECT_TRUE(matches(y, want, dt, mm_tol(dt, sa.back())));
        }
}

TEST(Matmul, LargerGemmsAcrossThreadsAndBatches) {
  for (DType dt : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    Input a = mm_input({4, 37, 96}, dt, MMLayout::contiguous, 11);
    Input b = mm_input({96, 130}, dt, MMLayout::gemm_t, 12);
    EXPECT_TRUE(matches(wick::matmul(a.tensor, b.tensor), matmul(a.host, b.host), dt,
                        mm_tol(dt, 96)));
    Input c = mm_input({200, 256}, dt, MMLayout::contiguous, 13);
    Input d = mm_input({256, 3}, dt, MMLayout::contiguous, 14);
    EXPECT_TRUE(matches(wick::matmul(c.tensor, d.tensor), matmul(c.host, d.host), dt,
                        mm_tol(dt, 256)));
  }
}

// bf16 x bf16 products (linear layers of a bf16 model) may run on native bf16 GEMM kernels where
// the CPU has them: the same values as widening to f32 and rounding once, up to one bf16 step
// from the different summation order. Weight layout [out, in] (transposed view) and plain.
TEST(Matmul, Bf16ProductsMatchTheWidenedComputation) {
  HostArray xh = random_host({100, 384}, DType::bf16, 21), wh = random_host({192, 384}, DType::bf16, 22);
  Tensor x = to_tensor(xh, DType::bf16), w = to_tensor(wh, DType::bf16);
  for (bool transposed : {true, false}) {
    SCOPED_TRACE(transposed ? "x · wᵀ" : "x · (wᵀ copied)");
    Tensor rhs = transposed ? wick::transpose(w) : wick::contiguous(wick::transpose(w));
    Tensor y = wick::matmul(x, rhs);
    ASSERT_EQ(y.dtype(), DType::bf16);
    Tensor ref = wick::astype(wick::matmul(wick::astype(x, DType::f32), wick::astype(rhs, DType::f32)), DType::bf16);
    auto yv = y.to_vector<float>(), rv = ref.to_vector<float>();
    double worst = 0;
    for (size_t i = 0; i < yv.size(); ++i)
      worst = std::max(worst, std::abs(double(yv[i]) - rv[i]) / (std::abs(double(rv[i])) + 1e-3));
    EXPECT_LE(worst, 1.0 / 128);  // one bf16 step (8 significant bits)
  }
}

TEST(Matmul, IdentityAndExactIntegerValuedProducts) {
  // Small integers make every partial sum exact in f32, so results must be exact.
  HostArray a = random_host({5, 7}, DType::i32, 3, -3, 3);
  HostArray b = random_host({7, 6}, DType::i32, 4, -3, 3);
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    EXPECT_TRUE(matches(wick::matmul(to_tensor(a, dt), to_tensor(b, dt)), matmul(a, b), dt,
                        Tol{0, 0}));
  }
  HostArray eye({7, 7});
  for (int i = 0; i < 7; ++i) eye.at({i, i}) = 1;
  EXPECT_TRUE(matches(wick::matmul(to_tensor(a, DType::f32), to_tensor(eye, DType::f32)), a,
                      DType::f32, Tol{0, 0}));
}

TEST(Matmul, ShapeErrorsNameTheOpAndShapes) {
  std::string msg =
      error_of([] { (void)wick::matmul(wick::zeros({4, 16, 512}), wick::zeros({256, 8})); });
  EXPECT_NE(msg.find("matmul"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4,16,512]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[256,8]"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { (void)wick::matmul(wick::zeros({2, 3, 4}), wick::zeros({3, 4, 5})); }),
            "<no error>")
      << "batch dims 2 and 3 do not broadcast";
  EXPECT_NE(error_of([] { (void)wick::matmul(wick::scalar(1.0), wick::zeros({3, 4})); }),
            "<no error>")
      << "0-d operand";
  EXPECT_NE(error_of([] { (void)wick::matmul(wick::zeros({3}), wick::zeros({4})); }), "<no error>");
}

TEST(Linear, WithAndWithoutBiasViewsAndDtypes) {
  uint64_t seed = 100;
  const std::vector<Dims> xs = {{2, 3, 8}, {8}, {5, 8}, {0, 8}, {1, 1, 1, 8}};
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (const Dims& xsh : xs)
      for (bool has_bias : {false, true})
        for (MMLayout wl : {MMLayout::contiguous, MMLayout::gemm_t}) {
          SCOPED_TRACE(std::string("linear ") + wick::dtype_name(dt) + " x=" + dims_str(xsh) +
                       " bias=" + std::to_string(has_bias) + " w " + mm_name(wl));
          Input x = mm_input(xsh, dt, MMLayout::contiguous, seed++);
          Input w = mm_input({5, 8}, dt, wl, seed++);
          Input b = mm_input({5}, dt, MMLayout::contiguous, seed++);
          std::optional<Tensor> bias;
          std::optional<HostArray> hbias;
          if (has_bias) {
            bias = b.tensor;
            hbias = b.host;
          }
          Tensor y = wick::linear(x.tensor, w.tensor, bias);
          EXPECT_TRUE(matches(y, linear(x.host, w.host, hbias), dt, mm_tol(dt, 8)));
        }
  // Shape errors.
  EXPECT_NE(error_of([] { (void)wick::linear(wick::zeros({2, 8}), wick::zeros({5, 7})); }),
            "<no error>");
  std::string msg = error_of(
      [] { (void)wick::linear(wick::zeros({2, 8}), wick::zeros({5, 8}), wick::zeros({4})); });
  EXPECT_NE(msg.find("linear"), std::string::npos) << msg;
}

struct LoraInputs {
  Input x, w, a, b, bias;
};

LoraInputs lora_inputs(const Dims& xs, int64_t in, int64_t out, int64_t r, DType dt,
                       uint64_t seed, bool x_view) {
  LoraInputs li;
  li.x = x_view ? random_input(xs, dt, Layout::transposed, seed) : random_input(xs, dt,
                                                                               Layout::contiguous, seed);
  li.w = random_input({out, in}, dt, Layout::contiguous, seed + 1);
  li.a = random_input({r, in}, dt, Layout::contiguous, seed + 2);
  li.b = random_input({out, r}, dt, Layout::contiguous, seed + 3);
  li.bias = random_input({out}, dt, Layout::contiguous, seed + 4);
  return li;
}

TEST(LoraLinear, MatchesReferenceAndUnfusedExpression) {
  uint64_t seed = 1000;
  for (DType dt : {DType::f32, DType::f64, DType::bf16})
    for (const Dims& xs : std::vector<Dims>{{2, 3, 16}, {16}, {7, 16}, {0, 16}})
      for (bool has_bias : {false, true})
        for (double scale : {0.0, 0.5, 2.0})
          for (bool x_view : {false, true}) {
            SCOPED_TRACE(std::string("lora_linear ") + wick::dtype_name(dt) + " x=" +
                         dims_str(xs) + " bias=" + std::to_string(has_bias) + " scale=" +
                         std::to_string(scale) + " x_view=" + std::to_string(x_view));
            LoraInputs li = lora_inputs(xs, 16, 12, 4, dt, seed += 5, x_view);
            std::optional<Tensor> bias;
            std::optional<HostArray> hbias;
            if (has_bias) {
              bias = li.bias.tensor;
              hbias = li.bias.host;
            }
            Tensor y = wick::lora_linear(li.x.tensor, li.w.tensor, bias, li.a.tensor, li.b.tensor,
                                         scale);
            HostArray want = lora_linear(li.x.host, li.w.host, hbias, li.a.host, li.b.host, scale);
            Tol tol = mm_tol(dt, 16);
            if (dt == DType::bf16) tol = {2e-2, 2e-2};
            EXPECT_TRUE(matches(y, want, dt, tol)) << "vs reference";
            // The unfused expression, computed in f32 for bf16 inputs (evaluated op by op in
            // bf16 it would round every intermediate, which the fused op rightly does not).
            auto up = [&](const Tensor& t) { return dt == DType::bf16 ? wick::astype(t, DType::f32) : t; };
            std::optional<Tensor> ubias;
            if (bias) ubias = up(*bias);
            Tensor unfused =
                wick::linear(up(li.x.tensor), up(li.w.tensor), ubias) +
                scale * wick::matmul(wick::matmul(up(li.x.tensor), wick::transpose(up(li.a.tensor))),
                                     wick::transpose(up(li.b.tensor)));
            if (dt == DType::bf16) unfused = wick::astype(unfused, DType::bf16);
            EXPECT_EQ(unfused.dtype(), y.dtype());
            EXPECT_TRUE(all_close(to_host(y), to_host(unfused), tol)) << "vs unfused expression";
            if (scale == 0.0 && dt == DType::f32) {
              EXPECT_TRUE(all_close(to_host(y), to_host(wick::linear(li.x.tensor, li.w.tensor, bias)),
                                    Tol{1e-6, 1e-6}))
                  << "scale 0 is plain linear";
            }
          }
}

TEST(LoraLinear, ChainOfLayersAndShapeErrors) {
  // Two stacked LoRA layers with a nonlinearity, as in an MLP.
  LoraInputs l1 = lora_inputs({4, 16}, 16, 32, 8, DType::f32, 7, false);
  LoraInputs l2 = lora_inputs({4, 32}, 32, 16, 8, DType::f32, 17, false);
  Tensor h = wick::silu(wick::lora_linear(l1.x.tensor, l1.w.tensor, l1.bias.tensor, l1.a.tensor,
                                          l1.b.tensor, 0.25));
  Tensor y = wick::lora_linear(h, l2.w.tensor, std::nullopt, l2.a.tensor, l2.b.tensor, 0.25);
  HostArray hh = map(lora_linear(l1.x.host, l1.w.host, l1.bias.host, l1.a.host, l1.b.host, 0.25),
                     [](double v) { return v * sigmoid_d(v); });
  EXPECT_TRUE(matches(y, lora_linear(hh, l2.w.host, std::nullopt, l2.a.host, l2.b.host, 0.25),
                      DType::f32, Tol{1e-4, 1e-4}));

  auto z = [](Dims s) { return wick::zeros(s); };
  std::string msg = error_of(
      [&] { (void)wick::lora_linear(z({2, 16}), z({12, 16}), std::nullopt, z({4, 15}), z({12, 4}), 1.0); });
  EXPECT_NE(msg.find("lora_linear"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] {
              (void)wick::lora_linear(z({2, 16}), z({12, 16}), std::nullopt, z({4, 16}), z({12, 3}), 1.0);
            }),
            "<no error>")
      << "rank of A and B differ";
  EXPECT_NE(error_of([&] {
              (void)wick::lora_linear(z({2, 16}), z({12, 16}), std::nullopt, z({4, 16}), z({11, 4}), 1.0);
            }),
            "<no error>")
      << "B rows != W rows";
  EXPECT_NE(error_of([&] {
              (void)wick::lora_linear(z({2, 16}), z({12, 16}), z({13}), z({4, 16}), z({12, 4}), 1.0);
            }),
            "<no error>")
      << "bias size";
}

}  // namespace
