// compile: compiled and uncompiled results agree (bit-identical: fusion keeps each op's
// arithmetic), each fusion pattern fires (proved with the kernel counter), signatures retrace,
// the cache stays bounded, and a whole training step compiles.
#include <gtest/gtest.h>

#include "common/tensor_util.h"

namespace {

using wick::DType;
using wick::Tensor;

/// Kernels one evaluation of `outs` runs.
uint64_t kernels(const std::vector<Tensor>& outs) {
  uint64_t before = wick::kernel_count();
  wick::eval(outs);
  return wick::kernel_count() - before;
}

Tensor rnd(const wick::Shape& s, uint64_t seed, double scale = 1.0) {
  wick::Generator g(seed);
  return (wick::normal(s, g) * scale).eval();
}

void expect_identical(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.dtype(), b.dtype());
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], y[i]) << "element " << i;
}

struct Case {
  wick::Function fn;
  std::vector<Tensor> inputs;
};

/// Runs fn plain and compiled; checks identical outputs; returns (plain, compiled) kernels.
std::pair<uint64_t, uint64_t> compare(const Case& c) {
  auto plain = c.fn(c.inputs);
  uint64_t kp = kernels(plain);
  auto compiled = wick::compile(c.fn);
  auto out = compiled(c.inputs);
  uint64_t kc = kernels(out);
  for (size_t i = 0; i < out.size(); ++i) expect_identical(out[i], plain[i]);
  return {kp, kc};
}

TEST(Compile, SwigluChainIsOneKernel) {
  Case c{[](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::silu(v[0]) * v[1]}; },
         {rnd({64, 300}, 1), rnd({64, 300}, 2)}};
  auto [plain, fused] = compare(c);
  EXPECT_EQ(plain, 2u);
  EXPECT_EQ(fused, 1u);
}

TEST(Compile, SwigluGradientRecomputesSiluInsteadOfStoringIt) {
  // silu(g)·u and its gradient: silu(g) is read by the forward product and by u's gradient,
  // so it is computed in both fused chains rather than written once and read twice.
  for (DType dt : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    Case c{[](const std::vector<Tensor>& v) {
             auto [outs, g] = wick::value_and_grad(
                 [](const std::vector<Tensor>& p) {
                   return std::vector<Tensor>{wick::sum(wick::silu(p[0]) * p[1] * p[2])};
                 },
                 {0, 1})({v[0], v[1], v[2]});
             return std::vector<Tensor>{outs[0], g[0], g[1]};
           },
           {wick::astype(rnd({16, 40}, 5), dt), wick::astype(rnd({16, 40}, 6), dt),
            wick::astype(rnd({16, 40}, 7), dt)}};
    auto [plain, fused] = compare(c);
    auto compiled = wick::compile(c.fn);
    compiled(c.inputs);
    // Three chains (the product, u's gradient, g's gradient) and no silu kernel of its own.
    EXPECT_EQ(compiled.stats().fused_elementwise, 3u);
    EXPECT_LT(fused, plain);
  }
}

TEST(Compile, LongChainsWithBroadcastsAndHalfPrecisionFuse) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    Case c{[](const std::vector<Tensor>& v) {
             Tensor h = wick::tanh(v[0] * 2.0 + v[1]);            // [8, 33] with a row vector
             h = wick::where(wick::greater(h, 0.1), h, v[0] * 0.5);
             return std::vector<Tensor>{wick::exp(-wick::square(h)) - wick::sigmoid(v[0]) / (1.0 + wick::abs(v[0] * v[1]))};
           },
           {wick::astype(rnd({8, 33}, 3), dt), wick::astype(rnd({33}, 4), dt)}};
    auto [plain, fused] = compare(c);
    EXPECT_GE(plain, 10u);
    EXPECT_EQ(fused, 1u);
  }
}

TEST(Compile, ScaledMaskedSoftmaxIsOneKernel) {
  Tensor mask = wick::where(wick::less(rnd({1, 16, 16}, 7), 0.5), wick::zeros({1, 16, 16}), -1e9).eval();
  Case c{[mask](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::softmax(v[0] * 0.125 + mask)}; },
         {rnd({4, 16, 16}, 5)}};
  auto [plain, fused] = compare(c);
  EXPECT_EQ(plain, 3u);
  EXPECT_EQ(fused, 1u);
}

TEST(Compile, RmsNormTimesWeightIsOneKernel) {
  Case c{[](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::rms_norm(v[0], std::nullopt, 1e-6) * v[1]}; },
         {rnd({4, 8, 64}, 8), rnd({64}, 9)}};
  auto plain = c.fn(c.inputs);
  EXPECT_EQ(kernels(plain), 2u);
  auto out = wick::compile(c.fn)(c.inputs);
  EXPECT_EQ(kernels(out), 1u);
  // One rounding fewer: equal to the unfused form within f32 rounding.
  auto a = out[0].to_vector<float>(), b = plain[0].to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6 * (1 + std::abs(b[i])));
}

/// A matmul and the add after it: two kernels plain, one compiled (one pattern), same values.
void expect_two_kernels_become_one(const Case& c) {
  auto plain = c.fn(c.inputs);
  EXPECT_EQ(kernels(plain), 2u);
  auto compiled = wick::compile(c.fn);
  auto out = compiled(c.inputs);
  EXPECT_EQ(kernels(out), 1u) << compiled.describe();
  EXPECT_EQ(compiled.stats().fused_patterns, 1u);
  expect_identical(out[0], plain[0]);
}

TEST(Compile, LinearWithBiasIsOneKernel) {
  // f32 and bf16 (the bias is added after the product's rounding, as unfused).
  for (DType t : {DType::f32, DType::bf16}) {
    Case c{[](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::linear(v[0], v[1], v[2])}; },
           {wick::astype(rnd({3, 5, 64}, 14), t).eval(), wick::astype(rnd({24, 64}, 15, 0.1), t).eval(),
            wick::astype(rnd({24}, 16), t).eval()}};
    expect_two_kernels_become_one(c);
  }
}

TEST(Compile, ReluAndTanhGeluJoinTheirLinear) {
  // act(linear(x, w, b)) and act(x·wᵀ) over more rows than a GEMV takes: the matmul applies the
  // activation as it writes (cuBLASLt's epilogue on a GPU); on the CPU after the same
  // roundings as the separate op.
  using Act = Tensor (*)(const Tensor&);
  for (Act act : {static_cast<Act>(wick::relu), static_cast<Act>(wick::gelu_tanh)})
    for (DType t : {DType::f32, DType::bf16}) {
      Case biased{
          [act](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{act(wick::linear(v[0], v[1], v[2]))};
          },
          {wick::astype(rnd({3, 5, 64}, 30), t).eval(),
           wick::astype(rnd({24, 64}, 31, 0.1), t).eval(), wick::astype(rnd({24}, 32), t).eval()}};
      auto [plain, fused] = compare(biased);
      EXPECT_EQ(plain, 3u);
      EXPECT_EQ(fused, 1u) << wick::compile(biased.fn).describe();
      Case bare{[act](const std::vector<Tensor>& v) {
                  return std::vector<Tensor>{act(wick::linear(v[0], v[1]))};
                },
                {biased.inputs[0], biased.inputs[1]}};
      std::tie(plain, fused) = compare(bare);
      EXPECT_EQ(plain, 2u);
      EXPECT_EQ(fused, 1u);
    }
  Tensor x = rnd({16, 32}, 33), w = rnd({8, 32}, 34), b = rnd({8}, 35);
  auto plan = [&](const wick::Function& f) {
    auto c = wick::compile(f);
    c({x, w, b});
    return c.describe();
  };
  EXPECT_NE(plan([](const std::vector<Tensor>& v) {
              return std::vector<Tensor>{wick::relu(wick::linear(v[0], v[1], v[2]))};
            }).find("matmul[relu]"),
            std::string::npos);
  // Not when the product is read elsewhere too, nor for the erf GELU (cuBLASLt has only tanh's).
  Case shared{[](const std::vector<Tensor>& v) {
                Tensor y = wick::linear(v[0], v[1], v[2]);
                return std::vector<Tensor>{wick::relu(y), y};
              },
              {x, w, b}};
  compare(shared);
  EXPECT_EQ(plan(shared.fn).find("matmul[relu]"), std::string::npos);
  Case erf{[](const std::vector<Tensor>& v) {
             return std::vector<Tensor>{wick::gelu(wick::linear(v[0], v[1], v[2]))};
           },
           {x, w, b}};
  compare(erf);
  EXPECT_EQ(plan(erf.fn).find("matmul[gelu"), std::string::npos);
}

TEST(Compile, ResidualAddJoinsItsMatmul) {
  // h + linear(x, w) (a residual connection through linear()'s reshapes): the sum is the
  // matmul's third input, with the same roundings as the separate add.
  for (DType t : {DType::f32, DType::bf16}) {
    Case c{[](const std::vector<Tensor>& v) { return std::vector<Tensor>{v[2] + wick::linear(v[0], v[1])}; },
           {wick::astype(rnd({2, 5, 64}, 17), t).eval(), wick::astype(rnd({48, 64}, 18, 0.1), t).eval(),
            wick::astype(rnd({2, 5, 48}, 19), t).eval()}};
    expect_two_kernels_become_one(c);
  }
  // A strided addend (a transposed view) and an addend the product is broadcast against stay
  // correct: the first fuses, the second (not the sum's shape) does not.
  Tensor x = rnd({6, 32}, 20), w = rnd({6, 32}, 21), h = rnd({6, 6}, 22);
  Case strided{[](const std::vector<Tensor>& v) {
                 return std::vector<Tensor>{wick::transpose(v[2]) + wick::matmul(v[0], wick::transpose(v[1]))};
               },
               {x, w, h}};
  expect_identical(wick::compile(strided.fn)(strided.inputs)[0], strided.fn(strided.inputs)[0]);
  Case broadcast{[](const std::vector<Tensor>& v) {
                   return std::vector<Tensor>{wick::matmul(v[0], wick::transpose(v[1])) + wick::reshape(v[2], {3, 6, 6})};
                 },
                 {x, w, rnd({3, 36}, 23)}};
  expect_identical(wick::compile(broadcast.fn)(broadcast.inputs)[0], broadcast.fn(broadcast.inputs)[0]);
}

/// A decoder block's linears: rms_norm·g then q, k and v with biases, and the gated MLP with its
/// residual over its own normalised input.
std::vector<Tensor> decoder_linears(const std::vector<Tensor>& v) {
  Tensor h = wick::rms_norm(v[0], std::nullopt, 1e-6) * v[1];
  Tensor q = wick::linear(h, v[2], v[3]), k = wick::linear(h, v[4], v[5]), val = wick::linear(h, v[6], v[7]);
  Tensor n = wick::rms_norm(v[12], std::nullopt, 1e-6) * v[8];
  Tensor y = v[12] + wick::linear(wick::silu(wick::linear(n, v[9])) * wick::linear(n, v[10]), v[11]);
  return {q, k, val, y};
}

std::vector<Tensor> decoder_inputs(int64_t rows) {
  return {rnd({1, rows, 64}, 30), rnd({64}, 31), rnd({64, 64}, 32, 0.1), rnd({64}, 33), rnd({32, 64}, 34, 0.1),
          rnd({32}, 35),          rnd({32, 64}, 36, 0.1), rnd({32}, 37), rnd({64}, 38), rnd({128, 64}, 39, 0.1),
          rnd({128, 64}, 40, 0.1), rnd({64, 128}, 41, 0.1), rnd({1, rows, 64}, 42)};
}

TEST(Compile, DecodingLinearsShareOneKernelEach) {
  // At a few rows: q, k, v and their norm are one kernel; gate and up, their norm and the gated
  // product another; the down projection and its residual a third.
  auto compiled = wick::compile(decoder_linears);
  std::vector<Tensor> in = decoder_inputs(3), plain = decoder_linears(in), out = compiled(in);
  EXPECT_EQ(kernels(out), 3u) << compiled.describe();
  std::string plan = compiled.describe();
  EXPECT_NE(plan.find("fused_linear[rms_norm, 64+a | 32+a | 32+a]"), std::string::npos) << plan;
  EXPECT_NE(plan.find("fused_linear[rms_norm, silu(gate)*up, 128 | 128]"), std::string::npos) << plan;
  // The norm's weight is applied before its rounding, as rms_norm(x, w) does: f32 rounding apart.
  ASSERT_EQ(out.size(), plain.size());
  for (size_t o = 0; o < out.size(); ++o) {
    ASSERT_EQ(out[o].shape(), plain[o].shape());
    auto a = out[o].to_vector<float>(), b = plain[o].to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5 * (1 + std::abs(b[i]))) << "output " << o;
  }
  // More rows than a GEMV takes: separate GEMMs as before.
  auto wide = wick::compile(decoder_linears);
  wide(decoder_inputs(12));
  EXPECT_EQ(wide.describe().find("fused_linear"), std::string::npos) << wide.describe();
}

TEST(Compile, LoraLinearWrittenOutIsOneKernel) {
  Case c{[](const std::vector<Tensor>& v) {
           return std::vector<Tensor>{wick::linear(v[0], v[1]) + 2.0 * wick::linear(wick::linear(v[0], v[2]), v[3])};
         },
         {rnd({4, 16, 64}, 10), rnd({48, 64}, 11, 0.1), rnd({8, 64}, 12, 0.1), rnd({48, 8}, 13, 0.1)}};
  auto plain = c.fn(c.inputs);
  EXPECT_EQ(kernels(plain), 5u);  // 3 GEMMs, scale, add
  auto compiled = wick::compile(c.fn);
  auto out = compiled(c.inputs);
  EXPECT_EQ(kernels(out), 1u) << compiled.describe();
  EXPECT_EQ(compiled.stats().fused_patterns, 1u);
  auto a = out[0].to_vector<float>(), b = plain[0].to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5 * (1 + std::abs(b[i])));
}

TEST(Compile, MergesCommonSubexpressionsAndFoldsConstants) {
  Tensor c1 = wick::full({64}, 3.0) * 2.0;  // lazy constant captured by the function
  Case c{[c1](const std::vector<Tensor>& v) {
           Tensor a = wick::matmul(v[0], v[1]);
           Tensor b = wick::matmul(v[0], v[1]);
           return std::vector<Tensor>{(a + b) * 1.0 + c1 * 0.5};
         },
         {rnd({16, 32}, 14), rnd({32, 64}, 15)}};
  auto compiled = wick::compile(c.fn);
  auto plain = c.fn(c.inputs);
  auto out = compiled(c.inputs);
  expect_identical(out[0], plain[0]);
  auto st = compiled.stats();
  EXPECT_GE(st.merged, 1u);
  EXPECT_GE(st.folded, 2u);  // c1·0.5 and ·1.0
  EXPECT_EQ(kernels(compiled(c.inputs)), 2u) << compiled.describe();  // one GEMM, one fused add
}

TEST(Compile, RetracesPerSignatureAndKeepsTheCacheBounded) {
  auto compiled = wick::compile([](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::exp(v[0]) + 1.0}; },
                                {.max_cache_entries = 2});
  auto run = [&](const wick::Shape& s, DType dt = DType::f32) { return compiled({wick::astype(wick::ones(s), dt)})[0]; };
  run({2, 3});
  run({2, 3});
  EXPECT_EQ(compiled.stats().traces, 1u);
  EXPECT_EQ(compiled.stats().cache_hits, 1u);
  Tensor y = run({4});
  EXPECT_EQ(compiled.stats().traces, 2u);
  EXPECT_EQ(y.shape(), (wick::Shape{4}));
  run({2, 3}, DType::f64);
  EXPECT_EQ(compiled.stats().traces, 3u);
  EXPECT_EQ(compiled.stats().cache_entries, 2u);
  run({2, 3});  // evicted (least recently used) -> traced again
  EXPECT_EQ(compiled.stats().traces, 4u);
  EXPECT_NEAR(run({4}, DType::f64).to_vector<double>()[0], std::exp(1.0) + 1, 1e-12);
}

TEST(Compile, ReadingDataWhileTracedIsAClearError) {
  auto compiled = wick::compile([](const std::vector<Tensor>& v) {
    if (wick::sum(v[0]).item<float>() > 0) return std::vector<Tensor>{v[0]};
    return std::vector<Tensor>{-v[0]};
  });
  try {
    compiled({wick::ones({3})});
    FAIL();
  } catch (const wick::Error& e) {
    EXPECT_NE(std::string(e.what()).find("compiled"), std::string::npos) << e.what();
  }
}

TEST(Compile, TrainingStepMatchesTheUncompiledStep) {
  // loss(W, b) of a small MLP, gradients, AdamW: compiled and plain steps over several steps.
  Tensor x = rnd({32, 16}, 20), y = wick::astype(wick::uniform({32}, *std::make_unique<wick::Generator>(3), 0, 4), DType::i64).eval();
  wick::AdamW opt_plain, opt_comp;
  auto step_fn = [&](wick::AdamW& opt) {
    return [&opt, x, y](const std::vector<Tensor>& v) {
      // v: w1, w2, m1, m2, s1, s2, decay, step_size, bc2
      auto [outs, g] = wick::value_and_grad([&](const std::vector<Tensor>& p) {
        Tensor h = wick::silu(wick::linear(x, p[0]));
        return std::vector<Tensor>{wick::cross_entropy(wick::linear(wick::rms_norm(h, std::nullopt, 1e-6), p[1]), y)};
      }, {0, 1})({v[0], v[1]});
      auto r = opt.update({{"w1", v[0]}, {"w2", v[1]}}, {{"w1", g[0]}, {"w2", g[1]}}, {{"w1", v[2]}, {"w2", v[3]}},
                          {{"w1", v[4]}, {"w2", v[5]}}, {v[6], v[7], v[8]});
      return std::vector<Tensor>{outs[0], r.params["w1"], r.params["w2"], r.m["w1"], r.m["w2"], r.v["w1"], r.v["w2"]};
    };
  };
  wick::Function plain_step = step_fn(opt_plain);
  auto compiled = wick::compile(step_fn(opt_comp));
  std::vector<Tensor> state = {rnd({24, 16}, 21, 0.2), rnd({4, 24}, 22, 0.2), wick::zeros({24, 16}), wick::zeros({4, 24}),
                               wick::zeros({24, 16}), wick::zeros({4, 24})};
  std::vector<Tensor> sp = state, sc = state;
  for (int step = 0; step < 5; ++step) {
    auto scalars = opt_plain.step_scalars(1e-2);
    std::vector<Tensor> ap = sp, ac = sc;
    ap.insert(ap.end(), scalars.begin(), scalars.end());
    ac.insert(ac.end(), scalars.begin(), scalars.end());
    auto op = plain_step(ap);
    auto oc = compiled(ac);
    wick::eval(op);
    wick::eval(oc);
    EXPECT_NEAR(oc[0].item<double>(), op[0].item<double>(), 1e-6);
    sp.assign(op.begin() + 1, op.end());
    sc.assign(oc.begin() + 1, oc.end());
    opt_plain.set_state({}, {}, step + 1);
  }
  for (size_t i = 0; i < sp.size(); ++i) {
    auto a = sp[i].to_vector<float>(), b = sc[i].to_vector<float>();
    for (size_t j = 0; j < a.size(); ++j) ASSERT_NEAR(a[j], b[j], 1e-5 * (1 + std::abs(a[j]))) << i;
  }
  auto st = compiled.stats();
  EXPECT_EQ(st.traces, 1u);
  EXPECT_LT(st.nodes_planned, st.nodes_traced);
  EXPECT_GT(st.fused_elementwise, 0u);
  EXPECT_GT(st.plan_peak_bytes, 0u);
}

}  // namespace
