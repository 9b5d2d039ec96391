// The op suite on CUDA against the CPU kernels: every primitive, several dtypes, strided and
// broadcast operands, gradients, compiled (fused) plans, errors and memory. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "wick/compile.h"
#include "wick/losses.h"
#include "wick/memory.h"
#include "wick/ops.h"
#include "wick/optim.h"
#include "wick/random.h"
#include "wick/runtime.h"
#include "wick/transforms.h"

using namespace wick;

namespace {

const Device kGpu = Device::cuda(0);

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

/// Host-made normal samples (so both devices see the same bits), converted to `t`.
Tensor randn(const Shape& s, uint64_t seed, DType t = f32, float scale = 1.0f) {
  std::mt19937 g(static_cast<uint32_t>(seed));
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(numel(s)));
  for (float& x : v) x = d(g);
  Tensor r = Tensor::from_vector(v, s);
  return t == f32 ? r : astype(r, t).eval();
}

/// Tolerance on ‖gpu − cpu‖ / ‖cpu‖ per dtype: the GPU's libm and summation order differ from
/// the CPU's; half types round once per op on both.
double tol(DType t) {
  switch (t) {
    case DType::bf16: return 1e-2;
    case DType::f16: return 2e-3;
    default: return 2e-5;
  }
}

void expect_close(const Tensor& cpu, const Tensor& gpu, double rel, const std::string& what) {
  ASSERT_EQ(gpu.device(), kGpu) << what;
  ASSERT_EQ(cpu.shape(), gpu.shape()) << what;
  ASSERT_EQ(cpu.dtype(), gpu.dtype()) << what;
  auto a = cpu.to_vector<double>(), b = gpu.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      ASSERT_EQ(std::isnan(a[i]), std::isnan(b[i])) << what << " at " << i << ": " << a[i] << " vs " << b[i];
      continue;
    }
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      ASSERT_EQ(a[i], b[i]) << what << " at " << i;
      continue;
    }
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += a[i] * a[i];
  }
  double err = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  if (!is_floating(cpu.dtype())) EXPECT_EQ(num, 0.0) << what;
  else EXPECT_LE(err, rel) << what;
}

using Fn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

/// Runs fn on host inputs and on their device copies and compares every output.
void same(const Fn& fn, const std::vector<Tensor>& ins, double rel, const std::string& what) {
  std::vector<Tensor> gin;
  for (const Tensor& t : ins) gin.push_back(to(t, kGpu));
  std::vector<Tensor> c = fn(ins), g = fn(gin);
  ASSERT_EQ(c.size(), g.size());
  for (size_t i = 0; i < c.size(); ++i) expect_close(c[i], g[i], rel, what + " output " + std::to_string(i));
}

Fn one(std::function<Tensor(const std::vector<Tensor>&)> f) {
  return [f](const std::vector<Tensor>& x) { return std::vector<Tensor>{f(x)}; };
}

const DType kFloats[] = {f32, bf16, f16};

/// Values rounded to a grid of 1/4, so a long axis holds many equal maxima.
Tensor floor_to_ties(const Tensor& x) { return astype(astype(x * 4.0, i32), f32) * 0.25; }

}  // namespace

TEST_F(Cuda, RoundTripAndDevices) {
  Tensor x = randn({3, 5}, 1);
  Tensor g = to(x, kGpu);
  EXPECT_EQ(g.device(), kGpu);
  EXPECT_EQ(g.to_vector<float>(), x.to_vector<float>());
  EXPECT_THROW(g.data<float>(), Error);
  Tensor back = to(g, Device::cpu());
  EXPECT_EQ(back.device(), Device::cpu());
  EXPECT_EQ(back.to_vector<float>(), x.to_vector<float>());
  // Scalars and pending constants follow the device; real host data must be moved explicitly.
  Tensor y = g * 2.0 + ones({3, 5});
  EXPECT_EQ(y.device(), kGpu);
  expect_close(x * 2.0 + 1.0, y, 1e-7, "scalar operands");
  try {
    (void)(g + x);
    FAIL() << "mixing devices must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("to()"), std::string::npos) << e.what();
  }
}

TEST_F(Cuda, Creation) {
  Generator a(7), b(7);
  Tensor cn = normal({1001}, a, 0.5, 2.0), cu = uniform({333}, a, -1.0, 3.0, bf16);
  Tensor gn, gu, ga, gf;
  {
    DeviceScope scope(kGpu);
    gn = normal({1001}, b, 0.5, 2.0);
    gu = uniform({333}, b, -1.0, 3.0, bf16);
    ga = arange(2.0, 40.0, 3.0);
    gf = full({4, 7}, -2.5, f16);
  }
  expect_close(cn, gn, 1e-6, "normal");
  expect_close(cu, gu, 1e-6, "uniform bf16");
  expect_close(arange(2.0, 40.0, 3.0), ga, 0, "arange");
  expect_close(full({4, 7}, -2.5, f16), gf, 0, "full");
}

TEST_F(Cuda, Unary) {
  using UF = Tensor (*)(const Tensor&);
  std::vector<std::pair<const char*, UF>> ops = {
      {"neg", negative}, {"abs", abs}, {"exp", exp}, {"sin", sin}, {"cos", cos}, {"tanh", tanh},
      {"sigmoid", sigmoid}, {"silu", silu}, {"gelu", gelu}, {"gelu_tanh", gelu_tanh}, {"relu", relu},
      {"square", square}, {"erf", erf}};
  for (DType t : kFloats) {
    Tensor x = randn({7, 33}, 2, t);
    for (auto& [name, f] : ops) same(one([fn = f](auto& v) { return fn(v[0]); }), {x}, tol(t), std::string(name) + " " + dtype_name(t));
    Tensor p = astype(abs(randn({7, 33}, 3)) + 0.1, t).eval();
    for (auto& [name, f] : std::vector<std::pair<const char*, UF>>{{"log", log}, {"sqrt", sqrt}, {"rsqrt", rsqrt}})
      same(one([fn = f](auto& v) { return fn(v[0]); }), {p}, tol(t), std::string(name) + " " + dtype_name(t));
  }
  // A transposed (strided) input.
  Tensor x = randn({9, 5}, 4);
  same(one([](auto& v) { return exp(transpose(v[0])); }), {x}, tol(f32), "exp of a transpose");
}

TEST_F(Cuda, Binary) {
  using BF = Tensor (*)(const Tensor&, const Tensor&);
  std::vector<std::pair<const char*, BF>> ops = {
      {"add", add}, {"sub", subtract}, {"mul", multiply}, {"div", divide}, {"max", maximum}, {"min", minimum},
      {"eq", equal}, {"ne", not_equal}, {"lt", less}, {"le", less_equal}, {"gt", greater}, {"ge", greater_equal}};
  for (DType t : kFloats) {
    Tensor a = randn({4, 1, 6}, 5, t), b = randn({3, 1}, 6, t);
    for (auto& [name, f] : ops) same(one([fn = f](auto& v) { return fn(v[0], v[1]); }), {a, b}, tol(t), std::string(name) + " " + dtype_name(t));
    Tensor p = astype(abs(a) + 0.5, t).eval();
    same(one([](auto& v) { return power(v[0], v[1]); }), {p, b}, tol(t), std::string("pow ") + dtype_name(t));
  }
  Tensor i = astype(randn({5, 8}, 7, f32, 10.0f), i32).eval(), j = astype(randn({8}, 8, f32, 4.0f), i32).eval();
  for (auto& [name, f] : std::vector<std::pair<const char*, BF>>{{"add", add}, {"mul", multiply}, {"max", maximum}, {"lt", less}})
    same(one([fn = f](auto& v) { return fn(v[0], v[1]); }), {i, j}, 0, std::string(name) + " i32");
  Tensor c = greater(randn({5, 8}, 9), scalar(0.0));
  same(one([](auto& v) { return logical_or(logical_not(v[0]), v[0]); }), {c}, 0, "logical");
}

TEST_F(Cuda, WhereCastViews) {
  Tensor c = greater(randn({6, 1}, 10), scalar(0.0)).eval(), a = randn({6, 9}, 11), b = randn({9}, 12);
  same(one([](auto& v) { return where(v[0], v[1], v[2]); }), {c, a, b}, 0, "where");
  for (DType from : {f32, bf16, f16, i32, i64, boolean})
    for (DType dst : {f32, bf16, f16, i32, i64, boolean, f64}) {
      Tensor x = astype(randn({3, 17}, 13, f32, 5.0f), from).eval();
      same(one([dst](auto& v) { return astype(v[0], dst); }), {x}, 0, std::string("astype ") + dtype_name(from) + "->" + dtype_name(dst));
    }
  Tensor x = randn({4, 6, 5}, 14);
  same(one([](auto& v) { return contiguous(transpose(v[0], {2, 0, 1})); }), {x}, 0, "contiguous");
  same(one([](auto& v) { return reshape(transpose(v[0], {1, 0, 2}), {24, 5}); }), {x}, 0, "reshape copy");
  same(one([](auto& v) { return slice(v[0], {1, 0, 1}, {4, 6, 5}, {2, 3, 2}) * 1.0; }), {x}, 0, "slice");
  same(one([](auto& v) { return broadcast_to(slice(v[0], 0, 0, 1), {3, 6, 5}) + 0.0; }), {x}, 0, "broadcast");
  // Many dense pieces concatenated (an optimizer's flattened tensors): batched copies, 96 to a
  // launch, 16 bytes a thread where a piece is aligned and byte by byte where it is not.
  std::vector<Tensor> pieces;
  for (int i = 0; i < 200; ++i) pieces.push_back(randn({1, 1 + (i * 37) % 300}, 200 + i, bf16));
  same([](const std::vector<Tensor>& v) { return std::vector<Tensor>{concatenate(v, 1)}; }, pieces, 0, "concatenate 200 pieces");
}

TEST_F(Cuda, PackedElementwise) {
  // Innermost axes of a multiple of 16 bytes take the 16-byte kernels: dense and transposed
  // operands, splat (inner-broadcast) ones, boolean outputs; a misaligned view falls back.
  for (DType t : kFloats) {
    std::string n = dtype_name(t);
    Tensor x = randn({6, 64}, 97, t), r = randn({6, 1}, 98, t), c = randn({64}, 99, t);
    same(one([](auto& v) { return silu(v[0]); }), {x}, tol(t), "packed silu " + n);
    same(one([](auto& v) { return exp(v[0] * 0.5); }), {x}, tol(t), "packed exp " + n);
    same(one([](auto& v) { return v[0] * v[1]; }), {x, r}, tol(t), "packed times a splat column " + n);
    same(one([](auto& v) { return v[1] - v[0]; }), {x, c}, tol(t), "packed minus a broadcast row " + n);
    same(one([](auto& v) { return greater(v[0], v[1]); }), {x, c}, 0, "packed comparison " + n);
    Tensor h = randn({2, 8, 4, 16}, 100, t);
    same(one([](auto& v) { return reshape(transpose(v[0], {0, 2, 1, 3}), {2, 4, 128}); }), {h}, 0, "packed head transpose " + n);
    Tensor wide = randn({6, 40}, 101, t);
    same(one([](auto& v) { return silu(slice(v[0], 1, 1, 33)); }), {wide}, tol(t), "misaligned view " + n);
    for (DType dst : {f32, bf16, f16, i32, i64, boolean, f64})
      same(one([dst](auto& v) { return astype(v[0] * 4.0, dst); }), {x}, 0, "packed astype " + n + "->" + dtype_name(dst));
  }
}

TEST_F(Cuda, Reductions) {
  for (DType t : kFloats) {
    Tensor x = randn({5, 7, 9}, 15, t);
    for (std::vector<int> ax : {std::vector<int>{2}, {0, 2}, {1}, {}}) {
      std::string n = std::string(dtype_name(t)) + " axes " + std::to_string(ax.size());
      same(one([ax](auto& v) { return sum(v[0], ax); }), {x}, tol(t), "sum " + n);
      same(one([ax](auto& v) { return mean(v[0], ax, true); }), {x}, tol(t), "mean " + n);
      same(one([ax](auto& v) { return max(v[0], ax); }), {x}, 0, "max " + n);
      same(one([ax](auto& v) { return min(v[0], ax); }), {x}, 0, "min " + n);
    }
    same(one([](auto& v) { return argmax(v[0], 1); }), {x}, 0, "argmax");
    same(one([](auto& v) { return argmin(transpose(v[0]), -1); }), {x}, 0, "argmin of a view");
    // A long axis (the vocabulary of a decoding step), with ties and a NaN.
    Tensor logits = astype(floor_to_ties(randn({2, 70001}, 68)), t).eval();
    same(one([](auto& v) { return argmax(v[0], 1); }), {logits}, 0, "argmax over a vocabulary");
    Tensor nan = slice_update(logits, full({2, 1}, std::nan(""), t), {0, 5000}, {1, 1});
    same(one([](auto& v) { return argmax(v[0], 1); }), {nan.eval()}, 0, "argmax with a NaN");
  }
  // Large reductions take the two-stage paths (many chunks per output, or per column).
  for (DType t : {f32, bf16}) {
    Tensor big = randn({300, 500}, 57, t), tall = randn({4096, 96}, 58, t);
    same(one([](auto& v) { return sum(v[0]); }), {big}, tol(t), std::string("sum all ") + dtype_name(t));
    same(one([](auto& v) { return max(v[0]); }), {big}, 0, std::string("max all ") + dtype_name(t));
    same(one([](auto& v) { return mean(v[0], {0}); }), {tall}, tol(t), std::string("column mean ") + dtype_name(t));
    same(one([](auto& v) { return min(transpose(v[0]), {1}); }), {tall}, 0, std::string("min of a view ") + dtype_name(t));
  }
  Tensor i = astype(randn({6, 10}, 16, f32, 9.0f), i64).eval();
  same(one([](auto& v) { return sum(v[0], {1}); }), {i}, 0, "sum i64");
}

TEST_F(Cuda, Matmul) {
  for (DType t : kFloats) {
    std::string n = dtype_name(t);
    same(one([](auto& v) { return matmul(v[0], v[1]); }), {randn({64, 48}, 17, t), randn({48, 32}, 18, t)}, tol(t), "2d " + n);
    same(one([](auto& v) { return matmul(v[0], v[1]); }), {randn({3, 17, 40}, 19, t), randn({3, 40, 9}, 20, t)}, tol(t), "batched " + n);
    same(one([](auto& v) { return matmul(v[0], v[1]); }), {randn({2, 1, 5, 8}, 21, t), randn({3, 8, 6}, 22, t)}, tol(t), "broadcast " + n);
    same(one([](auto& v) { return matmul(v[0], transpose(v[1])); }), {randn({1, 70}, 23, t), randn({50, 70}, 24, t)}, tol(t), "gemv, transposed " + n);
    same(one([](auto& v) { return matmul(transpose(v[0], {0, 2, 1}), v[1]); }), {randn({4, 12, 7}, 25, t), randn({4, 12, 5}, 26, t)}, tol(t), "transposed A " + n);
    same(one([](auto& v) { return matmul(slice(v[0], 1, 0, 9, 2), v[1]); }), {randn({6, 17}, 27, t), randn({5, 4}, 28, t)}, tol(t), "strided copy " + n);
    // A few rows against a row-major weight take a GEMV kernel: 37 columns the register-held one
    // (a partial block), 1000 the streaming one (more columns than SMs; blocks of 7 and 8).
    for (int64_t cols : {37, 1000})
      for (int64_t m : {1, 3, 8})
        same(one([](auto& v) { return matmul(v[0], transpose(v[1])); }),
             {randn({m, 896}, 63 + m, t), randn({cols, 896}, 64, t)}, tol(t),
             "gemv kernel, " + std::to_string(m) + " rows, " + std::to_string(cols) + " columns " + n);
    Tensor w = randn({24, 16}, 29, t), bias = randn({24}, 30, t), a = randn({4, 16}, 31, t), b = randn({24, 4}, 32, t);
    same(one([](auto& v) { return lora_linear(v[0], v[1], v[2], v[3], v[4], 2.0); }), {randn({2, 5, 16}, 33, t), w, bias, a, b}, tol(t), "lora_linear " + n);
    same(one([](auto& v) { return linear(v[0], v[1], v[2]); }), {randn({5, 16}, 34, t), w, bias}, tol(t), "linear " + n);
    // f32 adapter weights on a half model run in the model's dtype.
    same(one([](auto& v) { return lora_linear(v[0], v[1], std::nullopt, v[2], v[3], 0.5); }),
         {randn({3, 16}, 59, t), w, randn({4, 16}, 60), randn({24, 4}, 61)}, tol(t), "lora_linear f32 adapter " + n);
    // A few rows take the GEMV kernel with the adapter's product in its epilogue: ranks whose
    // rows a block's warps cover in one round or in three (r 24, half types), and ranks past the
    // kernel's limits (its A over 80 KiB, rank over 128: cuBLASLt's three products), with and
    // without a bias, over 1000 columns (blocks walking columns).
    Tensor wd = randn({1000, 896}, 65, t, 0.05f), bd = randn({1000}, 66, t);
    for (int64_t r : {8, 24, 128, 136})
      for (int64_t m : {1, 5, 8}) {
        Tensor x = randn({m, 896}, 67 + m, t), ad = randn({r, 896}, 68, t, 0.05f),
               bb = randn({1000, r}, 69, t, 0.1f);
        const std::string c = std::to_string(m) + " rows, rank " + std::to_string(r) + " " + n;
        same(one([](auto& v) { return lora_linear(v[0], v[1], v[2], v[3], v[4], 2.0); }),
             {x, wd, bd, ad, bb}, tol(t), "lora_linear gemv, bias, " + c);
        same(one([](auto& v) { return lora_linear(v[0], v[1], std::nullopt, v[2], v[3], 0.5); }),
             {x, wd, ad, bb}, tol(t), "lora_linear gemv, " + c);
      }
  }
}

TEST_F(Cuda, WeightsWrittenInTheSameEvaluationAreNotReadEarly) {
  // The GEMV reads its weights before waiting for the kernels ahead of it only where none of
  // them wrote the weights. Here the last of a chain of kernels writes them right before the
  // GEMV, eagerly and inside a recorded graph; an early read would see the buffer's old bytes.
  Function fn = [](const std::vector<Tensor>& v) {
    Tensor w = v[1];
    for (int i = 0; i < 12; ++i) w = w * 1.01 + 0.002 * i;
    return std::vector<Tensor>{matmul(v[0], transpose(w)), linear(v[0], w * 0.5, v[2])};
  };
  auto compiled = compile(fn);
  for (int call = 0; call < 4; ++call)
    for (DType t : kFloats) {
      std::vector<Tensor> in = {randn({2, 896}, 300 + call, t), randn({1000, 896}, 310 + call, t, 0.05f),
                                randn({1000}, 320 + call, t)};
      std::vector<Tensor> gin;
      for (const Tensor& x : in) gin.push_back(to(x, kGpu));
      std::vector<Tensor> want = fn(in), eager = fn(gin), replayed = compiled(gin);
      for (size_t i = 0; i < want.size(); ++i) {
        const std::string what = "call " + std::to_string(call) + " " + dtype_name(t) + " output " + std::to_string(i);
        expect_close(want[i], eager[i], tol(t), "eager, " + what);
        expect_close(want[i], replayed[i], tol(t), "compiled, " + what);
      }
    }
  EXPECT_GT(compiled.stats().graph_replays, 0u);
}

TEST_F(Cuda, RowsAndAttention) {
  for (DType t : kFloats) {
    std::string n = dtype_name(t);
    Tensor x = randn({6, 5, 40}, 35, t, 3.0f);
    same(one([](auto& v) { return softmax(v[0]); }), {x}, tol(t), "softmax " + n);
    same(one([](auto& v) { return log_softmax(v[0]); }), {x}, tol(t), "log_softmax " + n);
    same(one([](auto& v) { return softmax(transpose(v[0], {0, 2, 1})); }), {x}, tol(t), "softmax of a view " + n);
    Tensor w = randn({40}, 36, bf16), b = randn({40}, 37, t);
    same(one([](auto& v) { return rms_norm(v[0], v[1], 1e-6); }), {x, w}, tol(t), "rms_norm " + n);
    same(one([](auto& v) { return rms_norm(v[0], v[1], 1e-6); }),
         {randn({7, 904}, 97, t, 3.0f), randn({904}, 98, bf16)}, tol(t),
         "rms_norm of wide rows " + n);
    same(one([](auto& v) { return layer_norm(v[0], v[1], v[2], 1e-5); }), {x, w, b}, tol(t), "layer_norm " + n);
    Tensor q = randn({2, 4, 9, 16}, 38, t), k = randn({2, 2, 13, 16}, 39, t), vv = randn({2, 2, 13, 16}, 40, t);
    same(one([](auto& v) { return rope(v[0], 10000.0, 3); }), {q}, tol(t), "rope " + n);
    // Heads split from a projection ([B, T, H, D] read as [B, H, T, D] in place, 16-byte words),
    // and a head dim whose halves are not whole words (a dense copy first).
    same(one([](auto& v) {
           return rope(transpose(v[0], {0, 2, 1, 3}), 10000.0, 5);
         }),
         {randn({2, 9, 3, 64}, 95, t)}, tol(t), "rope of split heads " + n);
    same(one([](auto& v) {
           return rope(transpose(v[0], {0, 2, 1, 3}), 500.0);
         }),
         {randn({2, 9, 3, 12}, 96, t)}, tol(t), "rope, D 12 " + n);
    same(one([](auto& v) { return scaled_dot_product_attention(v[0], v[1], v[2], 0.25, true); }), {q, k, vv}, tol(t), "causal gqa " + n);
    Tensor mask = randn({2, 1, 9, 13}, 41, f32);
    same(one([](auto& v) { return scaled_dot_product_attention(v[0], v[1], v[2], 0.25, false, v[3]); }), {q, k, vv, mask}, tol(t), "masked " + n);
    // One query row (decoding) and a strided q take the online-softmax kernel.
    same(one([](auto& v) { return scaled_dot_product_attention(slice(v[0], 2, 8, 9), v[1], v[2], 0.25, true); }), {q, k, vv}, tol(t), "decode row " + n);
    same(one([](auto& v) { return scaled_dot_product_attention(transpose(v[0], {0, 2, 1, 3}), v[1], v[2], 0.25, true); }),
         {randn({2, 9, 4, 16}, 62, t), k, vv}, tol(t), "strided q " + n);
    // A decoding row over a cache whose tail the mask hides (skipped keys, split over warps);
    // over a long one its keys are split over blocks whose partial softmaxes are merged
    // (flash-decoding), with a block that sees no visible key.
    auto masked_decode = [&](int64_t S, int64_t visible, int64_t period, uint64_t seed, const std::string& what) {
      std::vector<bool> keep(static_cast<size_t>(S));
      for (int64_t i = 0; i < S; ++i) keep[i] = i < visible && i % period != period / 2;
      same(one([](auto& v) { return scaled_dot_product_attention(v[0], v[1], v[2], 0.125, false, v[3]); }),
           {randn({1, 4, 1, 64}, seed, t), randn({1, 2, S, 64}, seed + 1, t), randn({1, 2, S, 64}, seed + 2, t),
            Tensor::from_vector(keep, {1, 1, 1, S})},
           tol(t), what + " " + n);
    };
    masked_decode(300, 211, 7, 65, "decode over a masked cache");
    masked_decode(2000, 1300, 11, 83, "decode over a long cache");
    same(one([](auto& v) { return scaled_dot_product_attention(v[0], v[1], v[2], 0.125, true); }),
         {randn({1, 2, 1, 128}, 86, t), randn({1, 1, 1024, 128}, 87, t), randn({1, 1, 1024, 128}, 88, t)}, tol(t),
         "causal decode over a long cache " + n);
    // Prefill shapes: the score rows of a multiple of 4 keys up to 1024 are a warp's each; past
    // that a block walks them.
    for (int64_t S : {200, 1100}) {
      Tensor qp = randn({1, 2, S, 16}, 90, t), kp = randn({1, 1, S, 16}, 91, t), vp = randn({1, 1, S, 16}, 92, t);
      same(one([](auto& v) { return scaled_dot_product_attention(v[0], v[1], v[2], 0.25, true); }), {qp, kp, vp}, tol(t),
           "causal prefill of " + std::to_string(S) + " " + n);
    }
    same(one([](auto& v) { return scaled_dot_product_attention(v[0], v[1], v[2], 0.25, false, v[3]); }),
         {randn({2, 2, 5, 16}, 93, t), randn({2, 1, 12, 16}, 94, t), randn({2, 1, 12, 16}, 95, t), randn({2, 1, 5, 12}, 96, f32)},
         tol(t), "masked rows of 12 keys " + n);
    // The tensor-core (flash) kernel: head dims 64 and 128, grouped heads, partial tiles, as
    // many, fewer and more query rows than keys (causal rows that see no key are 0), q as a
    // transposed view, and masks.
    if (t != f32)
      for (int64_t D : {64, 128})
        for (auto [T, S] : {std::pair<int64_t, int64_t>{100, 100}, {37, 150}, {130, 70}}) {
          std::string shape = " D " + std::to_string(D) + " T " + std::to_string(T) + " S " + std::to_string(S) + " " + n;
          Tensor qf = randn({2, 4, T, D}, 105, t), kf = randn({2, 2, S, D}, 106, t), vf = randn({2, 2, S, D}, 107, t);
          for (bool causal : {true, false})
            same(one([causal](auto& v) { return scaled_dot_product_attention(v[0], v[1], v[2], 0.125, causal); }),
                 {qf, kf, vf}, tol(t), std::string("flash") + (causal ? " causal" : "") + shape);
          same(one([](auto& v) { return scaled_dot_product_attention(transpose(v[0], {0, 2, 1, 3}), v[1], v[2], 0.125, true); }),
               {randn({2, T, 4, D}, 108, t), kf, vf}, tol(t), "flash, strided q" + shape);
          // Masks: keys padded per batch (a bool row broadcast over heads and query rows: the
          // flash kernel); and additive per query row (the GEMM path), with a hidden key in
          // every fifth column and a row of batch 1 hidden wholly, which gives 0.
          std::vector<float> mv = randn({2, 1, T, S}, 109, f32).to_vector<float>();
          for (int64_t i = 0; i < static_cast<int64_t>(mv.size()); ++i)
            if (i % 5 == 2 || (i / S == T + 3 && T > 3)) mv[static_cast<size_t>(i)] = -INFINITY;
          Tensor rows = Tensor::from_vector(mv, {2, 1, T, S});
          for (bool causal : {true, false})
            same(one([causal](auto& v) {
                   return scaled_dot_product_attention(v[0], v[1], v[2], 0.125, causal, v[3]);
                 }),
                 {qf, kf, vf, rows}, tol(t),
                 std::string("flash, masked") + (causal ? " causal" : "") + shape);
          std::vector<bool> keep(static_cast<size_t>(2 * S));
          for (int64_t i = 0; i < 2 * S; ++i) keep[static_cast<size_t>(i)] = i < S - 7 || i >= S;
          same(one([](auto& v) {
                 return scaled_dot_product_attention(v[0], v[1], v[2], 0.125, false, v[3]);
               }),
               {qf, kf, vf, Tensor::from_vector(keep, {2, 1, 1, S})}, tol(t),
               "flash, padded keys" + shape);
        }
    Tensor big = randn({1, 2, 3, 128}, 42, t), kb = randn({1, 1, 70, 128}, 43, t), vb = randn({1, 1, 70, 128}, 44, t);
    same(one([](auto& v) { return scaled_dot_product_attention(v[0], v[1], v[2], 0.1, true); }), {big, kb, vb}, tol(t), "d128 " + n);
  }
}

TEST_F(Cuda, Indexing) {
  Tensor x = randn({7, 5, 3}, 45, bf16);
  Tensor idx = Tensor::from_vector<int64_t>({6, 0, -1, 2, 2}, {5});
  same(one([](auto& v) { return take(v[0], v[1], 0); }), {x, idx}, 0, "take axis 0");
  same(one([](auto& v) { return take(v[0], v[1], 1); }), {x, Tensor::from_vector<int32_t>({4, 1, 1}, {3})}, 0, "take axis 1");
  Tensor ta = Tensor::from_vector<int64_t>({0, 2, 1, 1, 0, 2, 2, 2, 0, 1, 1, 0, 0, 0, 2}, {1, 5, 3});
  same(one([](auto& v) { return take_along_axis(v[0], v[1], 2); }), {x, ta}, 0, "take_along_axis");
  Tensor u = randn({2, 5, 1}, 46, bf16);
  same(one([](auto& v) { return slice_update(v[0], v[1], {3, 0, 1}, {1, 1, 1}); }), {x, u}, 0, "slice_update");
  same(one([](auto& v) { return concatenate({v[0], transpose(v[1], {2, 1, 0})}, 0); }), {x, randn({3, 5, 2}, 47, bf16)}, 0, "concatenate");
  Tensor logits = randn({11, 37}, 48, f32, 2.0f);
  Tensor labels = Tensor::from_vector<int64_t>({3, 0, 36, -100, 5, 5, 9, 1, -100, 20, 2}, {11});
  CrossEntropyOptions o;
  o.reduction = Reduction::none;
  same(one([o](auto& v) { return cross_entropy(v[0], v[1], o); }), {logits, labels}, 1e-5, "cross_entropy");
  o.label_smoothing = 0.1;
  same(one([o](auto& v) { return cross_entropy(astype(v[0], bf16), v[1], o); }), {logits, labels}, 1e-2, "cross_entropy smoothed bf16");
  // Rows long enough for 16-byte loads (the vocabulary-sized path), with their gradients; the
  // 37-wide rows above take the element-wise path.
  std::vector<int64_t> wide_labels = {3999, 0, -100, 1234, 7, 7, 2048, 1, 3000, -100, 15, 512, 77};
  Tensor wide_y = Tensor::from_vector(wide_labels, {13});
  for (DType t : {f32, bf16})
    for (double smoothing : {0.0, 0.1}) {
      CrossEntropyOptions wo;
      wo.label_smoothing = smoothing;
      std::string n = std::string(dtype_name(t)) + (smoothing > 0 ? " smoothed" : "");
      Fn f = [wo](const std::vector<Tensor>& v) { return std::vector<Tensor>{cross_entropy(v[0], v[1], wo)}; };
      Tensor x = randn({13, 4000}, 89, t, 3.0f);
      auto vg = value_and_grad(f, {0});
      auto [cv, cg] = vg({x, wide_y});
      auto [gv, gg] = vg({to(x, kGpu), to(wide_y, kGpu)});
      expect_close(cv[0], gv[0], 1e-5, "wide cross_entropy " + n);
      expect_close(cg[0], gg[0], tol(t), "wide cross_entropy grad " + n);
    }
}

TEST_F(Cuda, Gradients) {
  // Embedding -> norm -> projection -> attention -> loss: every backward kernel on the way.
  Tensor emb = randn({20, 16}, 49), w = randn({16, 16}, 50, f32, 0.25f), nw = randn({16}, 51);
  Tensor ids = Tensor::from_vector<int64_t>({1, 5, 19, 5, 0, 3, 7, 7}, {2, 4});
  Tensor labels = Tensor::from_vector<int64_t>({4, 2, 2, 8, 1, 0, -100, 3}, {8});
  Fn f = [](const std::vector<Tensor>& v) {
    Tensor h = take(v[0], v[3], 0);  // [2, 4, 16]
    h = rms_norm(h, v[2], 1e-6);
    Tensor q = reshape(linear(h, v[1]), {2, 4, 2, 8});
    q = transpose(q, {0, 2, 1, 3});
    Tensor a = scaled_dot_product_attention(rope(q, 10000.0), q, q, 0.35, true);
    Tensor logits = reshape(transpose(a, {0, 2, 1, 3}), {8, 16});
    Tensor ta = take_along_axis(logits, reshape(astype(v[4], i64) * 0 + 1, {8, 1}), 1);
    return std::vector<Tensor>{cross_entropy(softmax(logits) * 3.0, v[4]) + mean(ta)};
  };
  auto vg = value_and_grad(f, {0, 1, 2});
  auto [cv, cg] = vg({emb, w, nw, ids, labels});
  auto [gv, gg] = vg({to(emb, kGpu), to(w, kGpu), to(nw, kGpu), to(ids, kGpu), to(labels, kGpu)});
  expect_close(cv[0], gv[0], 1e-5, "loss");
  for (size_t i = 0; i < cg.size(); ++i) expect_close(cg[i], gg[i], 1e-4, "grad " + std::to_string(i));
}

TEST_F(Cuda, AdamWStepMatchesTheCpu) {
  // 110 tensors (three launches of the multi-tensor kernel; some of them several blocks long):
  // f32 and bf16 parameters with f32 gradients, one gradient a strided view, a no-decay rule,
  // over three steps. Parameters and moments against the CPU's.
  AdamWOptions o{.lr = 1e-2, .weight_decay = 0.1};
  o.no_decay = [](const std::string& n) { return n.back() == '7'; };
  TensorMap p, g;
  for (int i = 0; i < 110; ++i) {
    const std::string n = "t" + std::to_string(100 + i);
    const Shape s = i % 9 == 0 ? Shape{77, 61} : Shape{8, 1 + i % 13};
    p[n] = randn(s, 200 + i, i % 3 == 0 ? bf16 : f32);
    g[n] = i == 5 ? transpose(randn({s[1], s[0]}, 400 + i)) : randn(s, 400 + i);
  }
  TensorMap gp, gg;
  for (const auto& [n, t] : p) gp[n] = to(t, kGpu);
  for (const auto& [n, t] : g) gg[n] = to(t, kGpu);
  AdamW cpu(o), gpu(o);
  for (int step = 0; step < 3; ++step) {
    p = cpu.step(p, g, 1e-2 * (step + 1));
    gp = gpu.step(gp, gg, 1e-2 * (step + 1));
  }
  TensorMap cs = cpu.state_dict(), gs = gpu.state_dict();
  for (const auto& [n, t] : p) {
    expect_close(t, gp[n], t.dtype() == bf16 ? tol(bf16) : 1e-6, "adamw parameter " + n);
    expect_close(cs.at("m." + n), gs.at("m." + n), 1e-6, "adamw first moment " + n);
    expect_close(cs.at("v." + n), gs.at("v." + n), 1e-6, "adamw second moment " + n);
  }
}

TEST_F(Cuda, AttentionGradients) {
  // The GPU recomputes the probabilities with one GEMM and row kernel (AttentionProbs,
  // SoftmaxGrad); the CPU composes ops. Grouped heads, a mask, causal and not, f32 and bf16.
  // 9 keys take the element-wise row kernels; 520 the warp-per-row ones (16-byte packs).
  for (DType t : {f32, bf16})
    for (auto [T, S] : {std::pair<int64_t, int64_t>{7, 9}, {24, 520}}) {
      for (bool causal : {true, false}) {
        Tensor q = randn({2, 4, T, 16}, 63, t), k = randn({2, 2, S, 16}, 64, t), v = randn({2, 2, S, 16}, 65, t);
        Tensor mask = randn({2, 1, T, S}, 66), w = randn({2, 4, T, 16}, 67);
        Fn f = [causal](const std::vector<Tensor>& x) {
          Tensor o = scaled_dot_product_attention(x[0], x[1], x[2], 0.3, causal, x[3]);
          return std::vector<Tensor>{sum(astype(o, f32) * x[4])};
        };
        auto vg = value_and_grad(f, {0, 1, 2});
        auto [cv, cg] = vg({q, k, v, mask, w});
        auto [gv, gg] = vg({to(q, kGpu), to(k, kGpu), to(v, kGpu), to(mask, kGpu), to(w, kGpu)});
        std::string n = std::string(dtype_name(t)) + " S " + std::to_string(S) + (causal ? " causal" : "");
        expect_close(cv[0], gv[0], tol(t), "attention loss " + n);
        for (size_t i = 0; i < 3; ++i) expect_close(cg[i], gg[i], t == f32 ? 1e-4 : 3e-2, "attention grad " + std::to_string(i) + " " + n);
      }
    }
}

TEST_F(Cuda, NormGradients) {
  // rms_norm's input gradient is one row kernel on the GPU (RmsNormGrad); the CPU composes ops.
  // With and without a weight (in another dtype), and a cotangent that is a transposed view.
  // Rows of 96 take one 16-byte pack a lane, rows of 904 several with the last partly used.
  for (DType t : kFloats)
    for (auto [width, weighted] : {std::pair<int64_t, bool>{96, true}, {96, false}, {904, true}}) {
      SCOPED_TRACE(width);
      Tensor x = randn({6, 5, width}, 113, t, 2.0f), w = randn({width}, 114, bf16),
             c = randn({5, 6, width}, 115);
      Fn f = [weighted](const std::vector<Tensor>& v) {
        Tensor y = weighted ? rms_norm(v[0], v[1], 1e-6) : rms_norm(v[0], std::nullopt, 1e-6);
        return std::vector<Tensor>{sum(astype(transpose(y, {1, 0, 2}), f32) * v[2])};
      };
      auto vg = value_and_grad(f, weighted ? std::vector<int>{0, 1} : std::vector<int>{0});
      auto [cv, cg] = vg({x, w, c});
      auto [gv, gg] = vg({to(x, kGpu), to(w, kGpu), to(c, kGpu)});
      std::string n = std::string(dtype_name(t)) + (weighted ? " weighted" : "");
      expect_close(cg[0], gg[0], tol(t), "rms_norm grad x " + n);
      if (weighted) expect_close(cg[1], gg[1], 1e-2, "rms_norm grad w " + n);
    }
}

TEST_F(Cuda, FlashAttentionGradients) {
  // Half types at head dims 64 and 128 (query tiles of 64 and 32 rows, dQ split by columns at
  // 128) without a mask: the gradient is one AttentionGrad op (the tensor-core kernels: dK/dV
  // per key tile, dQ summed over tiles). Its rows' log-sum-exp come from the flash forward, or
  // from its own stats pass where the forward was another kernel (one query row). Grouped
  // heads, causal or not, partial tiles, fewer and more query rows than keys, q as a transposed
  // view.
  for (int64_t D : {64, 128})
    for (DType t : {bf16, f16})
      for (auto [T, S] : {std::pair<int64_t, int64_t>{100, 100}, {37, 150}, {130, 70}, {1, 70}})
        for (bool causal : {true, false}) {
          Tensor q = randn({2, T, 4, D}, 109, t), k = randn({2, 2, S, D}, 110, t),
                 v = randn({2, 2, S, D}, 111, t);
          Tensor w = randn({2, 4, T, D}, 112);
          Fn f = [causal](const std::vector<Tensor>& x) {
            Tensor o = scaled_dot_product_attention(transpose(x[0], {0, 2, 1, 3}), x[1], x[2],
                                                    0.125, causal);
            return std::vector<Tensor>{sum(astype(o, f32) * x[3])};
          };
          auto vg = value_and_grad(f, {0, 1, 2});
          auto [cv, cg] = vg({q, k, v, w});
          auto [gv, gg] = vg({to(q, kGpu), to(k, kGpu), to(v, kGpu), to(w, kGpu)});
          std::string n = std::string(dtype_name(t)) + " D " + std::to_string(D) + " T " +
                          std::to_string(T) + " S " + std::to_string(S) + (causal ? " causal" : "");
          // (The loss, a sum with cancellations, is no test of the forward: RowsAndAttention is.)
          for (size_t i = 0; i < 3; ++i)
            expect_close(cg[i], gg[i], t == bf16 ? 3e-2 : 5e-3,
                         "flash grad " + std::to_string(i) + " " + n);
        }
}

TEST_F(Cuda, CompiledFusion) {
  Function fn = [](const std::vector<Tensor>& v) {
    Tensor s = softmax(v[0] * 0.125 + v[1]);
    Tensor chain = silu(v[0]) * sigmoid(v[0] * 2.0) + square(v[0]) - 1.0;
    return std::vector<Tensor>{s, chain, rms_norm(v[0], std::nullopt, 1e-6) * v[2]};
  };
  Tensor x = randn({3, 8, 24}, 52), m = randn({1, 8, 24}, 53), w = randn({24}, 54);
  auto cf = compile(fn), gf = compile(fn);
  auto c = cf({x, m, w});
  auto g = gf({to(x, kGpu), to(m, kGpu), to(w, kGpu)});
  for (size_t i = 0; i < c.size(); ++i) expect_close(c[i], g[i], 1e-5, "compiled output " + std::to_string(i));
  EXPECT_GT(gf.stats().fused_elementwise, 0u);
  EXPECT_GT(gf.stats().fused_patterns, 0u);
  // Generated chains in 16-byte packs (8 half or 4 f32 elements a thread), with a splat column
  // and a broadcast row, and over a misaligned view, which takes one element a thread.
  Function packed = [](const std::vector<Tensor>& v) {
    return std::vector<Tensor>{silu(v[0]) * v[1] + v[2] * 0.5, exp(slice(v[0], 2, 1, 17)) * 2.0 + 1.0};
  };
  for (DType t : kFloats) {
    std::vector<Tensor> in = {randn({3, 8, 32}, 102, t), randn({3, 8, 1}, 103, t), randn({32}, 104, t)};
    auto cp = compile(packed), gp = compile(packed);
    auto cpo = cp(in);
    auto gpo = gp({to(in[0], kGpu), to(in[1], kGpu), to(in[2], kGpu)});
    for (size_t i = 0; i < cpo.size(); ++i)
      expect_close(cpo[i], gpo[i], tol(t), "packed chain " + std::to_string(i) + " " + dtype_name(t));
    EXPECT_EQ(gp.stats().fused_elementwise, 2u) << dtype_name(t);
  }
  // x·Wᵀ + b fused into one matmul: the GEMV epilogue (5 rows) and cuBLASLt's bias epilogue.
  for (int64_t rows : {5, 40})
    for (DType t : kFloats) {
      Function lin = [](const std::vector<Tensor>& v) { return std::vector<Tensor>{linear(v[0], v[1], v[2])}; };
      Tensor xi = randn({rows, 64}, 57, t), wi = randn({48, 64}, 58, t), bi = randn({48}, 59, t);
      auto cl = compile(lin), gl = compile(lin);
      expect_close(cl({xi, wi, bi})[0], gl({to(xi, kGpu), to(wi, kGpu), to(bi, kGpu)})[0], tol(t),
                   "linear + bias, " + std::to_string(rows) + " rows " + dtype_name(t));
      EXPECT_EQ(gl.stats().fused_patterns, 1u);
      // A residual sum joins the matmul too (cuBLASLt reads it as C; the GEMV adds it).
      Function res = [](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[2] + linear(v[0], v[1])}; };
      Tensor hi = randn({rows, 48}, 60, t);
      auto cr = compile(res), gr = compile(res);
      expect_close(cr({xi, wi, hi})[0], gr({to(xi, kGpu), to(wi, kGpu), to(hi, kGpu)})[0], tol(t),
                   "linear + residual, " + std::to_string(rows) + " rows " + dtype_name(t));
      EXPECT_EQ(gr.stats().fused_patterns, 1u);
    }
  // relu and tanh-GELU over a linear join its matmul: cuBLASLt's epilogue with and without the
  // bias at 40 rows. At 5 rows FusedLinear's GEMV takes the product and the activation stays.
  for (int64_t rows : {5, 40})
    for (DType t : kFloats)
      for (bool gelu : {false, true})
        for (bool bias : {true, false}) {
          Function f = [gelu](const std::vector<Tensor>& v) {
            Tensor y = v.size() > 2 ? linear(v[0], v[1], v[2]) : linear(v[0], v[1]);
            return std::vector<Tensor>{gelu ? gelu_tanh(y) : relu(y)};
          };
          std::vector<Tensor> in = {randn({rows, 64}, 61, t), randn({48, 64}, 62, t)};
          if (bias) in.push_back(randn({48}, 63, t));
          std::vector<Tensor> gin;
          for (const Tensor& x : in) gin.push_back(to(x, kGpu));
          auto cf = compile(f), gf = compile(f);
          const std::string what = std::string(gelu ? "gelu_tanh" : "relu") + "(linear" +
                                   (bias ? " + bias" : "") + "), " + std::to_string(rows) +
                                   " rows " + dtype_name(t);
          expect_close(cf(in)[0], gf(gin)[0], tol(t), what);
          if (rows == 40) {
            EXPECT_NE(gf.describe().find(gelu ? "matmul[gelu_tanh]" : "matmul[relu]"),
                      std::string::npos)
                << what;
          }
        }
  // A decoder block's linears at decoding rows: FusedLinear's GEMV with the norm and the gated
  // product (K split over warps), and its fallback when the normalised rows exceed shared memory
  // (8 rows of f32 at K 1600).
  Function block = [](const std::vector<Tensor>& v) {
    Tensor h = rms_norm(v[0], std::nullopt, 1e-6) * v[1];
    Tensor n = rms_norm(v[12], std::nullopt, 1e-6) * v[8];
    Tensor y = v[12] + linear(silu(linear(n, v[9])) * linear(n, v[10]), v[11]);
    return std::vector<Tensor>{linear(h, v[2], v[3]), linear(h, v[4], v[5]), linear(h, v[6], v[7]), y};
  };
  for (int64_t rows : {1, 3, 8})
    for (DType t : kFloats) {
      const int64_t H = 1600, I = 2304, KV = 128;
      std::vector<Tensor> in = {randn({1, rows, H}, 70, t), randn({H}, 71, t), randn({H, H}, 72, t, 0.03f),
                                randn({H}, 73, t),          randn({KV, H}, 74, t, 0.03f), randn({KV}, 75, t),
                                randn({KV, H}, 76, t, 0.03f), randn({KV}, 77, t), randn({H}, 78, t),
                                randn({I, H}, 79, t, 0.03f), randn({I, H}, 80, t, 0.03f), randn({H, I}, 81, t, 0.03f),
                                randn({1, rows, H}, 82, t)};
      std::vector<Tensor> gin;
      for (const Tensor& x : in) gin.push_back(to(x, kGpu));
      auto cb = compile(block), gb = compile(block);
      auto c = cb(in), g = gb(gin);
      for (size_t i = 0; i < c.size(); ++i)
        expect_close(c[i], g[i], tol(t), "fused linears, " + std::to_string(rows) + " rows " + dtype_name(t) + " output " + std::to_string(i));
      EXPECT_NE(gb.describe().find("silu(gate)*up"), std::string::npos) << gb.describe();
    }
  // A chain longer than the fused kernel's parameter block runs op by op, with the same values.
  Function longer = [](const std::vector<Tensor>& v) {
    Tensor y = v[0];
    for (int i = 0; i < 60; ++i) y = y * (1.0 + 0.001 * i) + v[1 + i % 2] * 0.01;
    return std::vector<Tensor>{astype(y, bf16)};
  };
  auto cl = compile(longer), gl = compile(longer);
  expect_close(cl({x, w, m})[0], gl({to(x, kGpu), to(w, kGpu), to(m, kGpu)})[0], 1e-2, "long chain");
  // Replays give the same values.
  auto g2 = gf({to(x, kGpu), to(m, kGpu), to(w, kGpu)});
  expect_close(g[1], g2[1], 0, "replay");
}

TEST_F(Cuda, CompiledFunctionsReplayAsCudaGraphs) {
  // The second call of a signature records a graph; later calls replay it on new inputs, with
  // the values of a plain evaluation. Outputs are fresh tensors: a replay does not change an
  // earlier call's results.
  Function fn = [](const std::vector<Tensor>& v) {
    Tensor h = matmul(v[0], v[1]);
    Tensor s = softmax(h * 0.125 + v[2]);
    return std::vector<Tensor>{s, silu(h) * sigmoid(h) - 1.0, astype(argmax(h, -1), i32), v[2]};
  };
  auto gf = compile(fn);
  std::vector<std::vector<Tensor>> outs, want;
  for (int call = 0; call < 4; ++call) {
    std::vector<Tensor> in = {randn({4, 16, 32}, 60 + call), randn({32, 24}, 70 + call), randn({1, 16, 24}, 80 + call)};
    std::vector<Tensor> gin;
    for (const Tensor& t : in) gin.push_back(to(t, kGpu));
    want.push_back(fn(in));
    outs.push_back(gf(gin));
  }
  eval(outs.back());
  for (size_t c = 0; c < outs.size(); ++c)
    for (size_t i = 0; i < outs[c].size(); ++i)
      expect_close(want[c][i], outs[c][i], 1e-5, "call " + std::to_string(c) + " output " + std::to_string(i));
  CompileStats st = gf.stats();
  EXPECT_EQ(st.graph_captures, 1u) << st.graph_failure;
  EXPECT_EQ(st.graph_replays, 3u);
  EXPECT_EQ(st.graph_failures, 0u);
  EXPECT_GT(st.graph_bytes, 0u);
  // Outputs of one launch evaluated one by one, after a later call: each keeps its own values.
  std::vector<Tensor> in = {randn({4, 16, 32}, 90), randn({32, 24}, 91), randn({1, 16, 24}, 92)};
  std::vector<Tensor> a = gf({to(in[0], kGpu), to(in[1], kGpu), to(in[2], kGpu)});
  std::vector<Tensor> b = gf({to(in[0] * 2.0, kGpu), to(in[1], kGpu), to(in[2], kGpu)});
  expect_close(fn(in)[1], a[1], 1e-5, "first launch after a second one");
  expect_close(fn({in[0] * 2.0, in[1], in[2]})[0], b[0], 1e-5, "second launch");
  expect_close(fn(in)[0], a[0], 1e-5, "first launch, other output");
  // Switched off: plain replays, same values, no new recordings.
  set_cuda_graphs(false);
  std::vector<Tensor> off = gf({to(in[0], kGpu), to(in[1], kGpu), to(in[2], kGpu)});
  set_cuda_graphs(true);
  expect_close(fn(in)[1], off[1], 1e-5, "graphs off");
  EXPECT_EQ(gf.stats().graph_replays, st.graph_replays + 2);
  // An op that cannot be recorded (a copy to the host) makes the plan fall back to plain
  // launches for good, with the same values and the reason in the stats.
  Function host_trip = [](const std::vector<Tensor>& v) {
    return std::vector<Tensor>{to(to(v[0] * 2.0, Device::cpu()) + 1.0, kGpu)};
  };
  auto hf = compile(host_trip);
  Tensor x = randn({8, 8}, 93);
  for (int call = 0; call < 3; ++call) expect_close(x * 2.0 + 1.0, hf({to(x, kGpu)})[0], 1e-6, "fallback");
  EXPECT_EQ(hf.stats().graph_failures, 1u);
  EXPECT_EQ(hf.stats().graph_captures, 0u);
  EXPECT_FALSE(hf.stats().graph_failure.empty());
}

TEST_F(Cuda, GraphsOfOneFunctionShareTheirMemory) {
  // Batches of two widths, alternating as a training run's do: each width gets its graph, the
  // replays interleave with the right values, and the second graph reuses the first one's
  // intermediates (the pool grows by far less than a second working set).
  Function fn = [](const std::vector<Tensor>& v) {
    Tensor h = matmul(v[0], v[1]);
    Tensor s = softmax(h * 0.125);
    return std::vector<Tensor>{matmul(s, transpose(v[1])) + v[0]};
  };
  auto gf = compile(fn);
  Tensor w = randn({64, 4096}, 40);
  Tensor gw = to(w, kGpu);
  size_t one = 0;
  for (int call = 0; call < 8; ++call) {
    const int64_t rows = call < 3 || call % 2 ? 512 : 384;
    Tensor x = randn({rows, 64}, 41 + call);
    expect_close(fn({x, w})[0], gf({to(x, kGpu), gw})[0], 1e-4, "call " + std::to_string(call));
    if (call == 2) one = gf.stats().graph_bytes;
  }
  CompileStats st = gf.stats();
  EXPECT_EQ(st.graph_captures, 2u) << st.graph_failure;
  EXPECT_GT(one, size_t(512) * 4096 * 4);
  EXPECT_LT(st.graph_bytes, one + one / 4) << "one graph: " << one;
}

TEST_F(Cuda, AsyncAndErrors) {
  Tensor x = to(randn({256, 256}, 55), kGpu);
  Tensor y = matmul(x, x);
  Future f = y.eval_async();
  f.get();
  expect_close(matmul(to(x, Device::cpu()), to(x, Device::cpu())), y, 1e-5, "async");
  // A bad index is reported by the evaluation that ran it; the device stays usable.
  Tensor bad = take(x, to(Tensor::from_vector<int64_t>({0, 999}, {2}), kGpu), 0);
  try {
    bad.eval();
    FAIL() << "an out-of-range index must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
  expect_close(to(x, Device::cpu()) + 1.0, x + 1.0, 0, "after an error");
}

TEST_F(Cuda, QueuedEvaluationsAndReadsOfFinishedValues) {
  // An evaluation is queued on the device behind the one before it, without waiting for it. A
  // finished evaluation's value is read beside the work queued since: the read returns while a
  // long evaluation submitted before it still runs (a decoding step's token is read so).
  Tensor seed = randn({8}, 57);
  Tensor a = (to(seed, kGpu) * 2.0).eval();
  Tensor w = to(randn({4096, 4096}, 58), kGpu), h = w;
  for (int i = 0; i < 200; ++i) h = matmul(h, w) * (1.0 / 64);  // tens of milliseconds
  Future slow = h.eval_async();
  std::vector<float> got = a.to_vector<float>();
  EXPECT_FALSE(slow.ready()) << "reading a finished value waited for later work";
  std::vector<float> want = seed.to_vector<float>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i] * 2.0f) << i;
  Tensor b = a + 1.0;
  Future after = b.eval_async();  // queued behind the slow one
  after.get();
  EXPECT_TRUE(slow.ready()) << "evaluations complete in the order they were queued";
  expect_close(to(seed, kGpu) * 2.0 + 1.0, b, 0, "queued behind");
  // An error is reported by the evaluation whose kernel found it, not by one queued before it.
  Tensor x = to(randn({64, 64}, 59), kGpu);
  Future fine = (x * 3.0).eval_async();
  Future bad = take(x, to(Tensor::from_vector<int64_t>({1, 64}, {2}), kGpu), 0).eval_async();
  EXPECT_NO_THROW(fine.get());
  EXPECT_THROW(bad.get(), Error);
  expect_close(to(x, Device::cpu()) * 3.0, x * 3.0, 0, "after a queued error");
}

/// tanh(h·w) applied `n` times: a chain of GEMMs that takes the device milliseconds, with values
/// that stay bounded.
Tensor slow_chain(Tensor h, const Tensor& w, int n) {
  for (int i = 0; i < n; ++i) h = tanh(matmul(h, w));
  return h;
}

TEST_F(Cuda, StreamsRunOnTheirOwnLanesAndWaitForEachOther) {
  // Each stream's work goes to a CUDA stream of its own. A value one stream is still computing,
  // used by another stream, is waited for on the device: without the event, the quick stream's
  // kernel would read the slow one's buffer before the GEMMs had written it.
  Stream s1 = new_stream(kGpu), s2 = new_stream(kGpu);
  Tensor w = to(randn({2048, 2048}, 61, f32, 0.03f), kGpu).eval();
  Tensor x = to(randn({2048, 2048}, 62), kGpu).eval();
  Tensor h = slow_chain(x, w, 100);
  Future slow = eval_async({h}, s1);
  Tensor y = h * 2.0 + 1.0;
  Future quick = eval_async({y}, s2);
  // A host read on a third lane (the default stream's) of a value s2 has not finished.
  Tensor z = y * 3.0;
  Future z_done = eval_async({z}, s2);
  std::vector<float> zv = z.to_vector<float>();
  quick.get();
  std::vector<float> hv = h.to_vector<float>(), yv = y.to_vector<float>();
  ASSERT_EQ(yv.size(), hv.size());
  size_t bad = 0;
  for (size_t i = 0; i < hv.size(); ++i) {
    bad += yv[i] != hv[i] * 2.0f + 1.0f;
    bad += zv[i] != yv[i] * 3.0f;
  }
  EXPECT_EQ(bad, 0u) << "a stream read another's value before it was computed";
  z_done.get();
  slow.get();
  // The same chain on the default stream gives the same values (each lane has its own cuBLASLt
  // workspace).
  expect_close(to(slow_chain(x, w, 100), Device::cpu()), h, 1e-6, "chain on a stream");
}

TEST_F(Cuda, StreamsReuseMemoryOnlyWhenOtherLanesAreDone) {
  // Two streams allocate and drop buffers of the same sizes while each other's kernels are
  // queued: a block one lane's queued kernels still use is never handed to the other lane, and a
  // block both lanes used waits for both. Reference: the same work one evaluation at a time on
  // the default stream.
  Stream s1 = new_stream(kGpu), s2 = new_stream(kGpu);
  Tensor w = to(randn({1024, 1024}, 63, f32, 0.04f), kGpu).eval();
  std::vector<Tensor> xs;
  for (int i = 0; i < 6; ++i) xs.push_back(to(randn({1024, 1024}, 64 + i), kGpu).eval());
  auto work = [&](int i, const Tensor& shared) {
    return tanh(slow_chain(xs[static_cast<size_t>(i)], w, 12) + shared);
  };
  std::vector<Tensor> want;
  Tensor shared = slow_chain(xs[0], w, 4);
  for (int i = 0; i < 6; ++i) want.push_back(work(i, shared).eval());
  std::vector<Future> futures;
  std::vector<Tensor> got;
  Tensor shared2 = slow_chain(xs[0], w, 4);
  eval_async({shared2}, s1);  // read by both lanes below, then dropped
  for (int i = 0; i < 6; ++i) {
    got.push_back(work(i, shared2));
    futures.push_back(eval_async({got.back()}, i % 2 ? s2 : s1));
  }
  shared2 = Tensor();
  for (Future& f : futures) f.get();
  for (int i = 0; i < 6; ++i)
    expect_close(to(want[static_cast<size_t>(i)], Device::cpu()), got[static_cast<size_t>(i)], 0,
                 "work " + std::to_string(i));
}

TEST_F(Cuda, CompiledFunctionsReplayOnEachStreamsLane) {
  // A compiled function called from two streams records a graph on each lane (its buffers,
  // workspace and error flag are the lane's), and both replay at the same time with the values
  // of a plain evaluation.
  Function fn = [](const std::vector<Tensor>& v) {
    Tensor h = tanh(matmul(v[0], v[1]));
    return std::vector<Tensor>{softmax(h * 0.5), astype(argmax(h, -1), i32)};
  };
  auto gf = compile(fn);
  Stream s1 = new_stream(kGpu), s2 = new_stream(kGpu);
  Tensor w = randn({256, 512}, 71, f32, 0.1f);
  Tensor gw = to(w, kGpu).eval();
  std::vector<std::vector<Tensor>> outs, want;
  std::vector<Future> futures;
  for (int call = 0; call < 8; ++call) {
    Tensor x = randn({8, 256}, 72 + call);
    want.push_back(fn({x, w}));
    outs.push_back(gf({to(x, kGpu), gw}));
    futures.push_back(eval_async(outs.back(), call % 2 ? s2 : s1));
  }
  for (Future& f : futures) f.get();
  for (size_t c = 0; c < outs.size(); ++c)
    for (size_t i = 0; i < outs[c].size(); ++i)
      expect_close(want[c][i], outs[c][i], 1e-5,
                   "call " + std::to_string(c) + " output " + std::to_string(i));
  CompileStats st = gf.stats();
  EXPECT_EQ(st.graph_captures, 2u) << st.graph_failure;
  EXPECT_EQ(st.graph_replays, 7u);  // every call after the first (a recording also replays)
  // An error found on one lane is reported by that stream's evaluation alone.
  Tensor gx = to(randn({64, 64}, 79), kGpu).eval();
  Future fine = eval_async({slow_chain(gx, gx * 0.1, 20)}, s1);
  Future bad = eval_async({take(gx, to(Tensor::from_vector<int64_t>({1, 64}, {2}), kGpu), 0)}, s2);
  EXPECT_THROW(bad.get(), Error);
  EXPECT_NO_THROW(fine.get());
  Tensor after = gx * 3.0;
  eval_async({after}, s2).get();
  expect_close(to(gx, Device::cpu()) * 3.0, after, 0, "the stream after its error");
}

TEST_F(Cuda, Memory) {
  clear_memory_cache(kGpu);
  MemoryStats before = memory_stats(kGpu);
  {
    Tensor x = to(randn({1024, 1024}, 56), kGpu).eval();
    EXPECT_GE(memory_stats(kGpu).active, before.active + (4u << 20));
  }
  EXPECT_GE(memory_stats(kGpu).cached, 4u << 20);
  set_memory_limit(64u << 20, kGpu);
  try {
    DeviceScope scope(kGpu);
    zeros({1024, 1024, 32}).eval();
    FAIL() << "the limit must be enforced";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory on cuda:0"), std::string::npos) << e.what();
  }
  set_memory_limit(0, kGpu);
}

TEST_F(Cuda, PinnedHostCopies) {
  // A 64 MiB copy from pinned memory is queued, its host tensor dropped at once, and pinned
  // blocks of the same size are then taken and overwritten while it may still run: none may be
  // the block the copy reads, so the device gets the values it was given.
  const int64_t n = int64_t{1} << 24;
  Tensor host = arange(n, f32).eval();  // exact in f32 below 2^24
  Tensor pinned = pin_memory(host);
  ASSERT_TRUE(is_pinned(pinned));
  Tensor on_gpu = to(pinned, kGpu);
  Future copied = eval_async({on_gpu});
  pinned = Tensor();
  std::vector<Tensor> others;
  for (int i = 0; i < 3; ++i) others.push_back(pin_memory(full({n}, -1.0 - i, f32)));
  copied.get();
  expect_close(host, on_gpu, 0, "pinned copy");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(is_pinned(others[i]));
  // Pinned memory of a smaller tensor, a strided source (made dense first) and the way back.
  Tensor x = randn({5, 7}, 70);
  expect_close(transpose(x), to(pin_memory(transpose(x)), kGpu), 0, "strided source");
  EXPECT_EQ(to(to(pin_memory(x), kGpu), Device::cpu()).to_vector<float>(), x.to_vector<float>());
  EXPECT_THROW(pin_memory(to(x, kGpu)), Error);
}
