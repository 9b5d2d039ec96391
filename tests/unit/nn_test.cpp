// nn modules: the parameter tree (names, update, freezing, training mode, module surgery) and
// each layer against a naive host reference; LoRALinear init, forward, merge; apply_lora.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "wick/nn.h"
#include "wick/ops.h"
#include "wick/runtime.h"
#include "wick/safetensors.h"

#include <filesystem>
#include <unistd.h>

namespace {

using namespace wick;

std::vector<float> rand_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

Tensor rand_tensor(const Shape& s, uint32_t seed, float scale = 1.0f) {
  return Tensor::from_vector(rand_vec(static_cast<size_t>(numel(s)), seed, scale), s);
}

/// y[m, o] = sum_i x[m, i]·w[o, i] + b[o], in double.
std::vector<double> naive_linear(const std::vector<float>& x, const std::vector<float>& w,
                                 const std::vector<float>* b, int64_t M, int64_t in, int64_t out) {
  std::vector<double> y(static_cast<size_t>(M * out));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? (*b)[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += double(x[m * in + i]) * w[o * in + i];
      y[m * out + o] = s;
    }
  return y;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::abs(want[i]))) << "at " << i;
}

/// A little tree: root { enc: { proj: Linear(4->3, bias), norm: RMSNorm(3) }, head: Linear(3->2) }.
struct Tree : Module {
  Tree() {
    Generator g(7);
    auto enc = std::make_shared<Module>();
    enc->register_module("proj", std::make_shared<Linear>(4, 3, true, g));
    enc->register_module("norm", std::make_shared<RMSNorm>(3, 1e-6));
    register_module("enc", enc);
    register_module("head", std::make_shared<Linear>(3, 2, false, g));
    register_parameter("scale", ones({1}));
  }
};

TEST(Module, NamesAreDottedAndRecursive) {
  Tree t;
  auto p = t.parameters();
  std::vector<std::string> names;
  for (auto& [n, v] : p) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"enc.norm.weight", "enc.proj.bias", "enc.proj.weight",
                                             "head.weight", "scale"}));
  EXPECT_EQ(p.at("enc.proj.weight").shape(), (Shape{3, 4}));
  auto mods = t.named_modules();
  ASSERT_EQ(mods.size(), 4u);
  EXPECT_EQ(mods[0].first, "enc");
  EXPECT_EQ(mods[1].first, "enc.proj");
  EXPECT_EQ(mods[2].first, "enc.norm");
  EXPECT_EQ(mods[3].first, "head");
  EXPECT_EQ(t.find_module("enc.proj")->kind(), "Linear");
  EXPECT_EQ(t.find_module("enc.nope"), nullptr);
  EXPECT_EQ(t.find_module(""), nullptr);
  EXPECT_EQ(t.find_module("enc.proj.weight"), nullptr);
}

TEST(Module, RegistrationRejectsBadNames) {
  Module m;
  EXPECT_THROW(m.register_parameter("a.b", ones({1})), Error);
  EXPECT_THROW(m.register_parameter("", ones({1})), Error);
  EXPECT_THROW(m.register_parameter("w", Tensor()), Error);
  m.register_parameter("w", ones({1}));
  EXPECT_THROW(m.register_parameter("w", ones({1})), Error);
  EXPECT_THROW(m.register_module("w", std::make_shared<Module>()), Error);
  EXPECT_THROW(m.register_module("c", nullptr), Error);
  EXPECT_THROW(m.forward(ones({1})), Error);
}

TEST(Module, UpdateReplacesHandlesAndValidates) {
  Tree t;
  Tensor w = rand_tensor({3, 4}, 1);
  t.update({{"enc.proj.weight", w}});
  EXPECT_TRUE(t.parameters().at("enc.proj.weight").same(w));
  auto expect_error = [&](const std::map<std::string, Tensor>& v, const std::string& needle) {
    try {
      t.update(v);
      FAIL() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({{"enc.proj.nope", w}}, "enc.proj.nope");
  expect_error({{"nope.weight", w}}, "nope.weight");
  expect_error({{"enc.proj.weight", rand_tensor({4, 3}, 2)}}, "enc.proj.weight");
  expect_error({{"enc.proj.weight", zeros({3, 4}, DType::f64)}}, "dtype");
  // All or nothing: a bad entry leaves the good one unapplied.
  Tensor w2 = rand_tensor({3, 4}, 3);
  EXPECT_THROW(t.update({{"enc.proj.weight", w2}, {"head.weight", zeros({9})}}), Error);
  EXPECT_TRUE(t.parameters().at("enc.proj.weight").same(w));
}

TEST(Module, FreezeAndTrainingMode) {
  Tree t;
  EXPECT_EQ(t.trainable_parameters().size(), 5u);
  t.freeze();
  EXPECT_TRUE(t.trainable_parameters().empty());
  t.unfreeze([](const std::string& n) { return n.starts_with("enc.proj"); });
  auto tp = t.trainable_parameters();
  ASSERT_EQ(tp.size(), 2u);
  EXPECT_TRUE(tp.count("enc.proj.weight") && tp.count("enc.proj.bias"));
  EXPECT_TRUE(t.is_trainable("enc.proj.bias"));
  EXPECT_FALSE(t.is_trainable("head.weight"));
  EXPECT_THROW(t.is_trainable("head.bias"), Error);
  t.find_module("enc")->freeze();
  EXPECT_TRUE(t.trainable_parameters().empty());
  t.unfreeze();
  t.freeze([](const std::string& n) { return n.ends_with("bias"); });
  EXPECT_EQ(t.trainable_parameters().size(), 4u);

  EXPECT_FALSE(t.is_training());
  t.train();
  EXPECT_TRUE(t.find_module("enc.norm")->is_training());
  t.train(false);
  EXPECT_FALSE(t.find_module("enc.proj")->is_training());
}

TEST(Module, ReplaceModuleKeepsPlaceAndMode) {
  Tree t;
  t.train(true);
  Generator g(1);
  auto fresh = std::make_shared<Linear>(4, 3, false, g);
  t.replace_module("enc.proj", fresh);
  EXPECT_EQ(t.find_module("enc.proj"), fresh);
  EXPECT_TRUE(fresh->is_training());
  EXPECT_EQ(t.named_modules()[1].first, "enc.proj");
  EXPECT_FALSE(t.parameters().count("enc.proj.bias"));
  EXPECT_THROW(t.replace_module("enc.missing", fresh), Error);
  EXPECT_THROW(t.replace_module("zzz.proj", fresh), Error);
  EXPECT_THROW(t.replace_module("enc.proj", nullptr), Error);
}

TEST(Layers, LinearMatchesNaive) {
  Generator g(3);
  Linear lin(5, 7, true, g);
  Tensor x = rand_tensor({2, 3, 5}, 4);
  Tensor y = lin(x);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 7}));
  auto b = lin.bias()->to_vector<float>();
  expect_close(y.to_vector<float>(),
               naive_linear(x.to_vector<float>(), lin.weight().to_vector<float>(), &b, 6, 5, 7), 1e-5);
  // PyTorch's init bound 1/sqrt(in).
  double bound = 1.0 / std::sqrt(5.0);
  for (float v : lin.weight().to_vector<float>()) EXPECT_LE(std::abs(v), bound);
  EXPECT_THROW(Linear(zeros({3})), Error);
  EXPECT_THROW(Linear(zeros({3, 2}), zeros({2})), Error);
}

TEST(Layers, EmbeddingGathersRowsAndAttends) {
  Tensor w = rand_tensor({6, 4}, 5);
  Embedding emb(w);
  Tensor ids = Tensor::from_vector<int64_t>({5, 0, 2}, {1, 3});
  auto got = emb(ids).to_vector<float>();
  auto wv = w.to_vector<float>();
  int64_t idv[3] = {5, 0, 2};
  for (int t = 0; t < 3; ++t)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(got[t * 4 + j], wv[idv[t] * 4 + j]);
  Tensor x = rand_tensor({2, 4}, 6);
  expect_close(emb.attend(x).to_vector<float>(), naive_linear(x.to_vector<float>(), wv, nullptr, 2, 4, 6), 1e-5);
  EXPECT_THROW(emb(Tensor::from_vector<int64_t>({6}, {1})).eval(), Error);
}

TEST(Layers, NormsMatchNaive) {
  RMSNorm rms(8, 1e-5);
  Tensor w = rand_tensor({8}, 7);
  rms.update({{"weight", w}});
  Tensor x = rand_tensor({3, 8}, 8, 2.0f);
  auto xv = x.to_vector<float>();
  auto wv = w.to_vector<float>();
  std::vector<double> want(24);
  for (int r = 0; r < 3; ++r) {
    double ms = 0;
    for (int j = 0; j < 8; ++j) ms += double(xv[r * 8 + j]) * xv[r * 8 + j];
    double inv = 1.0 / std::sqrt(ms / 8 + 1e-5);
    for (int j = 0; j < 8; ++j) want[r * 8 + j] = xv[r * 8 + j] * inv * wv[j];
  }
  expect_close(rms(x).to_vector<float>(), want, 1e-5);

  LayerNorm ln(8, 1e-5);
  Tensor b = rand_tensor({8}, 9);
  ln.update({{"weight", w}, {"bias", b}});
  auto bv = b.to_vector<float>();
  for (int r = 0; r < 3; ++r) {
    double mu = 0, var = 0;
    for (int j = 0; j < 8; ++j) mu += xv[r * 8 + j];
    mu /= 8;
    for (int j = 0; j < 8; ++j) var += (xv[r * 8 + j] - mu) * (xv[r * 8 + j] - mu);
    var /= 8;
    for (int j = 0; j < 8; ++j) want[r * 8 + j] = (xv[r * 8 + j] - mu) / std::sqrt(var + 1e-5) * wv[j] + bv[j];
  }
  expect_close(ln(x).to_vector<float>(), want, 1e-5);
  LayerNorm plain(8, 1e-5, false);
  EXPECT_TRUE(plain.parameters().empty());
}

TEST(Layers, DropoutScalesSurvivorsAndIsIdentityInEval) {
  Tensor x = ones({200, 100});
  Dropout d(0.25, 42);
  EXPECT_TRUE(d(x).same(x));  // eval mode
  d.train();
  auto y = d(x).to_vector<float>();
  size_t zeros_n = 0;
  for (float v : y) {
    if (v == 0.0f) ++zeros_n;
    else EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
  }
  double frac = double(zeros_n) / y.size();
  EXPECT_NEAR(frac, 0.25, 0.02);
  // Seeded: the same seed gives the same mask; the next draw differs.
  Dropout d2(0.25, 42);
  d2.train();
  EXPECT_EQ(d2(x).to_vector<float>(), y);
  EXPECT_NE(d2(x).to_vector<float>(), y);
  Dropout none(0.0);
  none.train();
  EXPECT_TRUE(none(x).same(x));
  Dropout all(1.0);
  all.train();
  for (float v : all(x).to_vector<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_THROW(Dropout(1.5), Error);
  EXPECT_THROW(Dropout(-0.1), Error);
}

TEST(LoRA, InitFollowsPeft) {
  Generator g(11);
  Linear base(256, 32, true, g);
  Generator lg(5);
  LoRALinear l(base, 16, 32.0, 0.0, false, lg);
  EXPECT_DOUBLE_EQ(l.scaling(), 2.0);
  auto a = l.lora_a().to_vector<float>();
  ASSERT_EQ(l.lora_a().shape(), (Shape{16, 256}));
  ASSERT_EQ(l.lora_b().shape(), (Shape{32, 16}));
  double bound = 1.0 / 16.0, mean = 0, var = 0;
  for (float v : a) {
    EXPECT_LE(std::abs(v), bound);
    mean += v;
  }
  mean /= a.size();
  for (float v : a) var += (v - mean) * (v - mean);
  var /= a.size();
  EXPECT_NEAR(mean, 0.0, 0.1 * bound);
  EXPECT_NEAR(var, bound * bound / 3.0, 0.1 * bound * bound / 3.0);  // uniform's variance
  for (float v : l.lora_b().to_vector<float>()) EXPECT_EQ(v, 0.0f);
  // Names: the wrapped weights keep theirs (frozen); the adapter's are trainable.
  auto tp = l.trainable_parameters();
  EXPECT_EQ(tp.size(), 2u);
  EXPECT_TRUE(tp.count("lora_A.weight") && tp.count("lora_B.weight"));
  EXPECT_TRUE(l.parameters().count("weight") && l.parameters().count("bias"));
  EXPECT_FALSE(l.is_trainable("weight"));
  Generator rg(5);
  EXPECT_DOUBLE_EQ(LoRALinear(base, 16, 32.0, 0.0, true, rg).scaling(), 8.0);
  EXPECT_THROW(LoRALinear(base, 0, 1.0, 0.0, false, rg), Error);
}

TEST(LoRA, ForwardIsBaseplusScaledLowRank) {
  Generator g(12);
  Linear base(24, 10, true, g);
  Generator lg(6);
  LoRALinear l(base, 4, 8.0, 0.0, false, lg);
  Tensor B = rand_tensor({10, 4}, 13);
  l.update({{"lora_B.weight", B}});
  Tensor x = rand_tensor({2, 5, 24}, 14);
  auto xv = x.to_vector<float>();
  auto bias = base.bias()->to_vector<float>();
  auto want = naive_linear(xv, base.weight().to_vector<float>(), &bias, 10, 24, 10);
  auto ax = naive_linear(xv, l.lora_a().to_vector<float>(), nullptr, 10, 24, 4);
  auto bv = B.to_vector<float>();
  for (int m = 0; m < 10; ++m)
    for (int o = 0; o < 10; ++o) {
      double d = 0;
      for (int k = 0; k < 4; ++k) d += ax[m * 4 + k] * bv[o * 4 + k];
      want[m * 10 + o] += 2.0 * d;
    }
  auto y = l(x).to_vector<float>();
  expect_close(y, want, 1e-5);

  // merge: forward unchanged, weight = W + s·B·A; unmerge restores W.
  auto w0 = l.weight().to_vector<float>();
  l.merge();
  EXPECT_TRUE(l.merged());
  EXPECT_THROW(l.merge(), Error);
  expect_close(l(x).to_vector<float>(), want, 1e-5);
  l.unmerge();
  auto w1 = l.weight().to_vector<float>();
  for (size_t i = 0; i < w0.size(); ++i) EXPECT_NEAR(w1[i], w0[i], 1e-6);
  EXPECT_THROW(l.unmerge(), Error);
  expect_close(l(x).to_vector<float>(), want, 1e-5);

  // Training with dropout: the adapter sees dropped inputs, the base does not; with p>0 the
  // result is the unfused composition, which in eval mode again equals the fused one.
  Generator lg2(6);
  LoRALinear ld(base, 4, 8.0, 0.5, false, lg2);
  ld.update({{"lora_B.weight", B}});
  expect_close(ld(x).to_vector<float>(), want, 1e-5);  // eval: no dropout
  ld.train();
  auto yd = ld(x).to_vector<float>();
  double diff = 0;
  for (size_t i = 0; i < yd.size(); ++i) diff = std::max(diff, std::abs(yd[i] - want[i]));
  EXPECT_GT(diff, 1e-4);
}

struct TinyStack : Module {
  TinyStack() {
    Generator g(1);
    auto layers = std::make_shared<Module>();
    for (int i = 0; i < 3; ++i) {
      auto layer = std::make_shared<Module>();
      auto attn = std::make_shared<Module>();
      for (const char* n : {"q_proj", "k_proj", "v_proj", "o_proj"})
        attn->register_module(n, std::make_shared<Linear>(8, 8, false, g));
      layer->register_module("self_attn", attn);
      auto mlp = std::make_shared<Module>();
      mlp->register_module("up_proj", std::make_shared<Linear>(8, 16, false, g));
      layer->register_module("mlp", mlp);
      layer->register_module("norm", std::make_shared<RMSNorm>(8, 1e-6));
      layers->register_module(std::to_string(i), layer);
    }
    auto model = std::make_shared<Module>();
    model->register_module("layers", layers);
    register_module("model", model);
    register_module("lm_head", std::make_shared<Linear>(8, 32, false, g));
  }
};

LoraOptions lora_opts(std::vector<std::string> targets, std::vector<int64_t> layers = {}, uint64_t seed = 0) {
  LoraOptions o;
  o.targets = std::move(targets);
  o.rank = 2;
  o.alpha = 4;
  o.layers = std::move(layers);
  o.seed = seed;
  return o;
}

TEST(LoRA, ApplyLoraTargetsAndFreezes) {
  TinyStack m;
  auto names = apply_lora(m, lora_opts({"q_proj", "v_proj"}));
  EXPECT_EQ(names, (std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                             "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj",
                                             "model.layers.2.self_attn.q_proj", "model.layers.2.self_attn.v_proj"}));
  auto tp = m.trainable_parameters();
  EXPECT_EQ(tp.size(), 12u);
  EXPECT_EQ(tp.at("model.layers.0.self_attn.q_proj.lora_A.weight").shape(), (Shape{2, 8}));
  for (auto& [n, t] : tp) EXPECT_TRUE(n.find(".lora_A.") != std::string::npos || n.find(".lora_B.") != std::string::npos) << n;
  EXPECT_TRUE(m.parameters().count("model.layers.1.self_attn.q_proj.weight"));
  EXPECT_EQ(m.find_module("model.layers.1.self_attn.q_proj")->kind(), "LoRALinear");
  // Wrapping again never nests adapters in adapters.
  auto again = apply_lora(m, lora_opts({"all-linear"}));
  for (auto& n : again) EXPECT_EQ(n.find("lora_"), std::string::npos) << n;
  EXPECT_EQ(again.size(), 3u * 3u);  // k, o, up per layer; lm_head excluded
  EXPECT_EQ(m.trainable_parameters().size(), 12u + 18u);  // earlier adapters stay trainable

  TinyStack m2;
  auto some = apply_lora(m2, lora_opts({"all-linear"}, {1}));
  EXPECT_EQ(some.size(), 5u);
  for (auto& n : some) EXPECT_TRUE(n.starts_with("model.layers.1.")) << n;
  EXPECT_THROW(apply_lora(m2, lora_opts({"nothing"})), Error);
  EXPECT_THROW(apply_lora(m2, lora_opts({})), Error);

  // Seeded: the same seed gives the same A matrices.
  TinyStack a, b;
  apply_lora(a, lora_opts({"q_proj"}, {}, 9));
  apply_lora(b, lora_opts({"q_proj"}, {}, 9));
  EXPECT_EQ(a.parameters().at("model.layers.2.self_attn.q_proj.lora_A.weight").to_vector<float>(),
            b.parameters().at("model.layers.2.self_attn.q_proj.lora_A.weight").to_vector<float>());
}

TEST(Module, SaveLoadRoundTrip) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("wick_nn_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string path = (dir / "tree.safetensors").string();
  Tree a;
  a.update({{"enc.proj.weight", rand_tensor({3, 4}, 21)}, {"scale", rand_tensor({1}, 22)}});
  a.save(path, {{"note", "test"}});
  auto raw = load_safetensors(path);
  EXPECT_EQ(raw.size(), 5u);
  Tree b;  // same init as a: change a value so that the load must restore it
  b.update({{"head.weight", rand_tensor({2, 3}, 23)}});
  b.load(path);
  for (auto& [n, t] : a.parameters()) EXPECT_EQ(b.parameters().at(n).to_vector<float>(), t.to_vector<float>()) << n;

  // Strict loading names the missing / unknown tensor and the file; non-strict skips them.
  Module small;
  small.register_module("head", std::make_shared<Linear>(zeros({2, 3})));
  try {
    small.load(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("enc."), std::string::npos) << e.what();
  }
  small.load(path, false);
  EXPECT_EQ(small.parameters().at("head.weight").to_vector<float>(), a.parameters().at("head.weight").to_vector<float>());
  Module more;  // non-strict: a parameter the file lacks keeps its value
  more.register_module("head", std::make_shared<Linear>(zeros({2, 3})));
  more.register_parameter("extra", full({2}, 5.0));
  more.load(path, false);
  EXPECT_EQ(more.parameters().at("extra").to_vector<float>(), (std::vector<float>{5, 5}));
  Module wrong;
  wrong.register_module("head", std::make_shared<Linear>(zeros({3, 2})));
  EXPECT_THROW(wrong.load(path, false), Error);

  // Converted to the parameter's dtype.
  Module half;
  half.register_module("head", std::make_shared<Linear>(zeros({2, 3}, DType::bf16)));
  half.load(path, false);
  EXPECT_EQ(half.parameters().at("head.weight").dtype(), DType::bf16);
  fs::remove_all(dir);
}

}  // namespace
