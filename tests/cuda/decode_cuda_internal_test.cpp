// The decoding step's own kernels against the CPU: the attention over the two cache writes it
// reads (rotated key, value) and its position mask, which compile fuses into one CachedAttention
// kernel, and greedy_pick's one-launch argmax and log-probability; and which attention gradient
// training's vjp builds on the GPU. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "graph/ops_common.h"
#include "wick/compile.h"
#include "wick/ops.h"
#include "wick/runtime.h"
#include "wick/transforms.h"

using namespace wick;

namespace {

const Device kGpu = Device::cuda(0);

Tensor randn(const Shape& s, uint32_t seed, DType t) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(numel(s)));
  for (float& x : v) x = d(g);
  return astype(Tensor::from_vector(v, s), t).eval();
}

/// ‖a − b‖ / ‖b‖ over f32 copies on the host.
double relative_error(const Tensor& a, const Tensor& b) {
  std::vector<float> x = astype(to(a, Device::cpu()), DType::f32).to_vector<float>();
  std::vector<float> y = astype(to(b, Device::cpu()), DType::f32).to_vector<float>();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(y[i]) * y[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Shape4 {
  int64_t D, Hq, Hkv, S;
};

}  // namespace

TEST(CachedAttention, OneKernelGivesTheCpuStepsAndCaches) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  // Head dims 64, 128 and 256 (8, 16 and 32 lanes a key row in bf16; more threads than a split
  // row's block of 4 warps at 256), grouped heads, and caches short
  // enough for one block a row in one round or several (bf16 D 64: 128 keys a round, D 128: 64)
  // and long enough to be split over blocks.
  for (DType t : {DType::bf16, DType::f16, DType::f32})
    for (Shape4 sh : {Shape4{64, 14, 2, 40}, Shape4{64, 14, 2, 300}, Shape4{128, 4, 2, 200}, Shape4{128, 4, 2, 600},
                      Shape4{64, 8, 8, 700}, Shape4{256, 4, 2, 40}, Shape4{256, 4, 2, 600}}) {
      const std::string what = std::string(dtype_name(t)) + " D " + std::to_string(sh.D) + " S " + std::to_string(sh.S);
      std::vector<float> freq(static_cast<size_t>(sh.D / 2));
      for (size_t i = 0; i < freq.size(); ++i) freq[i] = std::pow(10000.0f, -2.0f * float(i) / float(sh.D));
      Tensor kc = randn({1, sh.Hkv, sh.S, sh.D}, 1, t), vc = randn({1, sh.Hkv, sh.S, sh.D}, 2, t);
      Tensor gkc = to(kc, kGpu).eval(), gvc = to(vc, kGpu).eval();
      const double scale = 1.0 / std::sqrt(double(sh.D));
      auto step = [&](const Tensor& kcache, const Tensor& vcache, const std::vector<Tensor>& in) {
        Tensor k = detail::write_at(kcache, detail::rope_at(in[1], freq, in[3]), 2, in[3]);
        Tensor v = detail::write_at(vcache, in[2], 2, in[3]);
        return scaled_dot_product_attention(detail::rope_at(in[0], freq, in[3]), k, v, scale, false, in[4]);
      };
      auto fused = compile([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{step(gkc, gvc, in)}; });
      uint32_t seed = 10;
      for (int64_t p : {int64_t(0), int64_t(1), sh.S / 2, sh.S / 2 + 1, sh.S - 1}) {
        std::vector<float> bias(static_cast<size_t>(sh.S));
        for (int64_t s = 0; s < sh.S; ++s) bias[s] = s <= p ? 0.0f : -std::numeric_limits<float>::infinity();
        std::vector<Tensor> in = {randn({1, sh.Hq, 1, sh.D}, seed, t), randn({1, sh.Hkv, 1, sh.D}, seed + 1, t),
                                  randn({1, sh.Hkv, 1, sh.D}, seed + 2, t), Tensor::from_vector<int64_t>({p}, {1}),
                                  Tensor::from_vector(bias, {1, 1, 1, sh.S})};
        seed += 3;
        std::vector<Tensor> gin;
        for (const Tensor& x : in) gin.push_back(to(x, kGpu));
        Tensor want = step(kc, vc, in).eval();
        Tensor got = fused(gin)[0];
        EXPECT_LE(relative_error(got, want), t == DType::f32 ? 1e-5 : 1e-2) << what << " position " << p;
      }
      const std::string plan = fused.describe();
      EXPECT_NE(plan.find("cached_attention"), std::string::npos) << plan;
      EXPECT_EQ(plan.find("write_at"), std::string::npos) << plan;
      // The caches hold every step's rows (keys rotated: the GPU's sine may differ in its last
      // bit) where the CPU's writes put them.
      EXPECT_LE(relative_error(gkc, kc), t == DType::f32 ? 1e-6 : 1e-3) << what << " key cache";
      EXPECT_EQ(relative_error(gvc, vc), 0.0) << what << " value cache";
      // A position past the cache fails through the device's error flag, naming the write.
      std::vector<Tensor> bad = {to(randn({1, sh.Hq, 1, sh.D}, 3, t), kGpu), to(randn({1, sh.Hkv, 1, sh.D}, 4, t), kGpu),
                                 to(randn({1, sh.Hkv, 1, sh.D}, 5, t), kGpu),
                                 to(Tensor::from_vector<int64_t>({sh.S}, {1}), kGpu),
                                 to(Tensor::from_vector(std::vector<float>(static_cast<size_t>(sh.S), 0.0f), {1, 1, 1, sh.S}), kGpu)};
      try {
        fused(bad)[0].eval();
        ADD_FAILURE() << what << ": a write past the cache must fail";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("write_at"), std::string::npos) << e.what();
      }
    }
}

TEST(CachedAttention, FoldedPositionMaskGivesTheCpuSteps) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  // The decoding kernel over one block (one round, two), split blocks, and the general kernel
  // (D 48: not whole 16-byte chunks of a power of two), each without a window and with one.
  for (DType t : {DType::bf16, DType::f32})
    for (Shape4 sh : {Shape4{64, 14, 2, 40}, Shape4{64, 14, 2, 300}, Shape4{128, 4, 2, 600},
                      Shape4{48, 4, 2, 100}})
      for (int64_t window : {int64_t(0), int64_t(7)}) {
        const std::string what = std::string(dtype_name(t)) + " D " + std::to_string(sh.D) + " S " +
                                 std::to_string(sh.S) + " window " + std::to_string(window);
        std::vector<float> freq(static_cast<size_t>(sh.D / 2));
        for (size_t i = 0; i < freq.size(); ++i)
          freq[i] = std::pow(10000.0f, -2.0f * float(i) / float(sh.D));
        Tensor kc = randn({1, sh.Hkv, sh.S, sh.D}, 1, t), vc = randn({1, sh.Hkv, sh.S, sh.D}, 2, t);
        Tensor gkc = to(kc, kGpu).eval(), gvc = to(vc, kGpu).eval();
        auto step = [&](const Tensor& kcache, const Tensor& vcache, const std::vector<Tensor>& in) {
          Tensor k = detail::write_at(kcache, detail::rope_at(in[1], freq, in[3]), 2, in[3]);
          Tensor v = detail::write_at(vcache, in[2], 2, in[3]);
          return scaled_dot_product_attention(detail::rope_at(in[0], freq, in[3]), k, v, 0.125,
                                              false, detail::position_mask(in[3], 1, sh.S, window));
        };
        auto fused = compile(
            [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{step(gkc, gvc, in)}; });
        uint32_t seed = 20;
        for (int64_t p : {int64_t(0), int64_t(3), sh.S / 2, sh.S - 1}) {
          std::vector<Tensor> in = {
              randn({1, sh.Hq, 1, sh.D}, seed, t), randn({1, sh.Hkv, 1, sh.D}, seed + 1, t),
              randn({1, sh.Hkv, 1, sh.D}, seed + 2, t), Tensor::from_vector<int64_t>({p}, {1})};
          seed += 3;
          std::vector<Tensor> gin;
          for (const Tensor& x : in) gin.push_back(to(x, kGpu));
          Tensor want = step(kc, vc, in).eval();
          EXPECT_LE(relative_error(fused(gin)[0], want), t == DType::f32 ? 1e-5 : 1e-2)
              << what << " position " << p;
        }
        const std::string plan = fused.describe();
        EXPECT_NE(plan.find("cached_attention[position mask]"), std::string::npos) << what << "\n"
                                                                                   << plan;
        EXPECT_EQ(plan.find("position_mask"), std::string::npos) << what << "\n" << plan;
      }
  // The mask itself on the GPU, where it is not folded.
  for (int64_t window : {int64_t(0), int64_t(3)}) {
    Tensor p = Tensor::from_vector<int64_t>({5}, {1});
    EXPECT_EQ(
        to(detail::position_mask(to(p, kGpu), 3, 11, window), Device::cpu()).to_vector<float>(),
        detail::position_mask(p, 3, 11, window).to_vector<float>())
        << "window " << window;
  }
}

TEST(GreedyPick, OneLaunchGivesTheCpuIndexAndLogprob) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // A vocabulary of Qwen's size (16-byte packs over 38 blocks) and an odd one (element loads),
  // with rows holding a tie (the first maximum wins), a NaN (the first NaN wins, log-probability
  // NaN), +inf, and nothing but −inf.
  for (int64_t n : {int64_t(151936), int64_t(1001)})
    for (DType t : {DType::bf16, DType::f16, DType::f32}) {
      const std::string what = std::string(dtype_name(t)) + " vocab " + std::to_string(n);
      std::vector<float> v = astype(randn({6, n}, 7, DType::f32) * 4.0, DType::f32).to_vector<float>();
      auto at = [&](int64_t r, int64_t k) -> float& { return v[static_cast<size_t>(r * n + k)]; };
      at(1, n / 3) = at(1, n - 2) = 40.0f;
      at(2, n / 2) = nan;
      at(2, n - 1) = nan;
      at(3, n / 4) = inf;
      for (int64_t k = 0; k < n; ++k) at(4, k) = -inf;
      Tensor x = astype(Tensor::from_vector(v, {6, n}), t).eval();
      std::vector<float> want = detail::greedy_pick(x).to_vector<float>();
      std::vector<float> got = to(detail::greedy_pick(to(x, kGpu)), Device::cpu()).to_vector<float>();
      // A transposed view takes a dense copy first.
      std::vector<float> strided =
          to(detail::greedy_pick(transpose(to(transpose(x).eval(), kGpu))), Device::cpu()).to_vector<float>();
      for (int64_t r = 0; r < 6; ++r) {
        EXPECT_EQ(got[2 * r + 1], want[2 * r + 1]) << what << " row " << r;
        EXPECT_EQ(strided[2 * r + 1], want[2 * r + 1]) << what << " strided row " << r;
        if (std::isnan(want[2 * r])) {
          EXPECT_TRUE(std::isnan(got[2 * r])) << what << " row " << r << ": " << got[2 * r];
        } else {
          EXPECT_NEAR(got[2 * r], want[2 * r], 1e-5 * (1.0 + std::fabs(want[2 * r]))) << what << " row " << r;
          EXPECT_NEAR(strided[2 * r], want[2 * r], 1e-5 * (1.0 + std::fabs(want[2 * r]))) << what << " row " << r;
        }
      }
      EXPECT_EQ(want[3], float(n / 3)) << what;
      EXPECT_EQ(want[5], float(n / 2)) << what;
      EXPECT_TRUE(std::isnan(want[4]) && std::isnan(want[6]) && std::isnan(want[8])) << what;
    }
}

TEST(FlashAttentionGrad, HeadDims64And128BuildTheTensorCoreGradient) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  // Cuda.FlashAttentionGradients checks the values; this checks which path gave them, since the
  // GEMM-based gradient would pass that test too. Head dim 96 still takes the GEMM path.
  for (int64_t D : {64, 96, 128}) {
    Tensor q = to(randn({1, 2, 70, D}, 3, DType::bf16), kGpu),
           k = to(randn({1, 1, 70, D}, 4, DType::bf16), kGpu),
           v = to(randn({1, 1, 70, D}, 5, DType::bf16), kGpu);
    Function f = [](const std::vector<Tensor>& x) {
      return std::vector<Tensor>{scaled_dot_product_attention(x[0], x[1], x[2], 0.125, true)};
    };
    auto [out, grads] = vjp(f, {q, k, v}, {ones_like(q)});
    // Walk the lazy graph behind dQ for the fused gradient op.
    bool fused = false;
    std::vector<detail::Node*> todo = {grads[0].node()};
    for (size_t i = 0; i < todo.size() && i < 1000; ++i) {
      const detail::Node* n = todo[i];
      if (n->primitive && std::string(n->primitive->name()) == "attention_grad") fused = true;
      for (const Tensor& in : n->inputs) todo.push_back(in.node());
    }
    EXPECT_EQ(fused, D != 96) << "head dim " << D;
    EXPECT_TRUE(std::isfinite(sum(astype(grads[0], DType::f32)).item<float>())) << "head dim " << D;
  }
}
