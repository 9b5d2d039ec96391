// The training toolkit against PyTorch (tests/fixtures/train/torch_reference.json, written by
// tests/tools/make_train_fixtures.py): AdamW over several steps with changing learning rates,
// SGD with Nesterov momentum, global-norm clipping, cross-entropy (ignore index, label
// smoothing, reductions) with its gradient, and the learning-rate schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/tensor_util.h"

namespace {

using wick::DType;
using wick::Tensor;
using Json = nlohmann::json;

const Json& fixture() {
  static Json j = [] {
    std::ifstream f(std::string(WICK_FIXTURES_DIR) + "/train/torch_reference.json");
    if (!f) throw std::runtime_error("missing tests/fixtures/train/torch_reference.json");
    return Json::parse(f);
  }();
  return j;
}

// Built with append: g++ 12 warns falsely (-Wrestrict) on "literal" + std::to_string(...).
std::string key(char prefix, size_t i) {
  std::string s(1, prefix);
  s += std::to_string(i);
  return s;
}

wick::Shape shape_of(const Json& s) { return s.get<wick::Shape>(); }
Tensor f32(const Json& values, const wick::Shape& shape) {
  return wick::astype(Tensor::from_vector(values.get<std::vector<double>>(), shape), DType::f32);
}

void expect_close(const Tensor& t, const Json& expected, double rtol, double atol, const std::string& what) {
  std::vector<double> got = t.to_vector<double>();
  std::vector<double> want = expected.get<std::vector<double>>();
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], atol + rtol * std::abs(want[i])) << what << " element " << i;
}

TEST(Train, AdamWMatchesTorchOverSteps) {
  const Json& c = fixture()["adamw"];
  wick::AdamW opt({.lr = 1e-2, .beta1 = c["betas"][0], .beta2 = c["betas"][1], .eps = c["eps"],
                   .weight_decay = c["weight_decay"]});
  wick::TensorMap params;
  for (size_t i = 0; i < c["shapes"].size(); ++i)
    params[key('p', i)] = f32(c["init"][i], shape_of(c["shapes"][i]));
  int step = 0;
  for (const Json& s : c["steps"]) {
    wick::TensorMap grads;
    for (size_t i = 0; i < c["shapes"].size(); ++i)
      grads[key('p', i)] = f32(s["grads"][i], shape_of(c["shapes"][i]));
    params = opt.step(params, grads, s["lr"].get<double>());
    for (size_t i = 0; i < c["shapes"].size(); ++i)
      expect_close(params[key('p', i)], s["params"][i], 2e-6, 1e-7, key('#', step));
    ++step;
  }
  EXPECT_EQ(opt.steps(), step) << "one step counter per optimizer step";
}

TEST(Train, AdamWStateRoundTripsAndResumesIdentically) {
  wick::TensorMap p = {{"w", wick::full({3}, 1.0)}};
  wick::TensorMap g = {{"w", Tensor::from_vector(std::vector<float>{0.1f, -0.2f, 0.3f}, {3})}};
  wick::AdamW a;
  p = a.step(p, g);
  wick::AdamW b;
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(b.steps(), 1);
  auto pa = a.step(p, g), pb = b.step(p, g);
  EXPECT_EQ(pa["w"].to_vector<float>(), pb["w"].to_vector<float>());
  wick::TensorMap bad = a.state_dict();
  bad.erase("step");
  EXPECT_THROW(b.load_state_dict(bad), wick::Error);
}

TEST(Train, AdamWGivesTheSameUpdateWhateverItGroups) {
  // Parameters of one dtype update in one adamw_step op; each must get exactly what it gets
  // updated by itself. Mixed dtypes, a no-decay rule and one parameter of over 2^20 elements.
  wick::AdamWOptions o{.lr = 1e-2, .weight_decay = 0.1};
  o.no_decay = [](const std::string& n) { return n == "bias"; };
  wick::Generator gen(1);
  wick::TensorMap p = {{"big", wick::normal({1025, 1024}, gen)}, {"a", wick::normal({7, 3}, gen)},
                       {"b", wick::astype(wick::normal({5}, gen), DType::bf16)}, {"bias", wick::normal({4}, gen)},
                       {"c", wick::normal({2, 2}, gen)}};
  wick::TensorMap g;
  for (const auto& [name, t] : p) g[name] = wick::astype(t * 0.5 - 0.1, t.dtype());
  wick::AdamW together(o);
  wick::TensorMap all = together.step(p, g);
  for (const auto& [name, t] : p) {
    wick::AdamW alone(o);
    wick::TensorMap one = alone.step({{name, t}}, {{name, g[name]}});
    EXPECT_EQ(all[name].to_vector<double>(), one[name].to_vector<double>()) << name;
    EXPECT_EQ(together.state_dict()["m." + name].to_vector<double>(), alone.state_dict()["m." + name].to_vector<double>()) << name;
  }
  // The global norm of the same gradients, against a double-precision sum.
  double want = 0;
  for (const auto& [name, t] : g)
    for (double x : t.to_vector<double>()) want += x * x;
  EXPECT_NEAR(wick::clip_grad_norm(g, 1.0).second.item<double>(), std::sqrt(want), 1e-5 * std::sqrt(want));
}

TEST(Train, AdamWReadsEachTensorWhereItLies) {
  // One adamw_step per dtype pair, no gathering copy: a compiled update of many tensors holds
  // one op and no concatenation. Strided views (a transposed parameter, a sliced gradient) and
  // an f64 parameter (updated in f32, as before) give what dense f32 copies give.
  wick::AdamWOptions o{.lr = 1e-2, .weight_decay = 0.1};
  wick::Generator gen(2);
  wick::TensorMap p, g;
  for (int i = 0; i < 60; ++i) {
    p["w" + std::to_string(i)] = wick::normal({3, 5}, gen);
    g["w" + std::to_string(i)] = wick::normal({3, 5}, gen);
  }
  const std::vector<std::string> names = [&] {
    std::vector<std::string> n;
    for (const auto& [k, t] : p) n.push_back(k);
    return n;
  }();
  wick::AdamW opt(o);
  auto fn = [&](const std::vector<Tensor>& in) {
    wick::TensorMap pp, gg, m, v;
    for (size_t i = 0; i < names.size(); ++i) {
      pp[names[i]] = in[i];
      gg[names[i]] = in[names.size() + i];
      m[names[i]] = wick::zeros({3, 5}, DType::f32);
      v[names[i]] = wick::zeros({3, 5}, DType::f32);
    }
    wick::AdamW::Result r = opt.update(pp, gg, m, v, opt.step_scalars(1e-2));
    std::vector<Tensor> out;
    for (const auto& n : names) out.push_back(r.params.at(n));
    return out;
  };
  std::vector<Tensor> in;
  for (const auto& n : names) in.push_back(p[n]);
  for (const auto& n : names) in.push_back(g[n]);
  wick::CompiledFunction c = wick::compile(fn);
  std::vector<Tensor> compiled = c(in), plain = fn(in);
  const std::string plan = c.describe();
  size_t ops = 0;
  for (size_t at = plan.find("adamw_step"); at != std::string::npos;
       at = plan.find("adamw_step", at + 1))
    ++ops;
  EXPECT_EQ(ops, 1u) << plan;
  EXPECT_EQ(plan.find("concatenate"), std::string::npos) << plan;
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_EQ(compiled[i].to_vector<float>(), plain[i].to_vector<float>()) << names[i];

  Tensor base = wick::normal({5, 3}, gen), grad = wick::normal({3, 10}, gen);
  wick::TensorMap views = {{"t", wick::transpose(base)},
                           {"d", wick::astype(wick::transpose(base), DType::f64)}};
  wick::TensorMap view_grads = {{"t", wick::slice(grad, 1, 0, 10, 2)},
                                {"d", wick::slice(grad, 1, 1, 10, 2)}};
  wick::TensorMap dense = {{"t", wick::contiguous(views["t"])},
                           {"d", wick::astype(views["d"], DType::f32)}};
  wick::TensorMap dense_grads = {{"t", wick::contiguous(view_grads["t"])},
                                 {"d", wick::contiguous(view_grads["d"])}};
  wick::AdamW a(o), b(o);
  for (int step = 0; step < 3; ++step) {
    views = a.step(views, view_grads);
    dense = b.step(dense, dense_grads);
  }
  EXPECT_EQ(views["d"].dtype(), DType::f64);
  for (const char* n : {"t", "d"}) {
    std::vector<double> x = views[n].to_vector<double>(), y = dense[n].to_vector<double>();
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], y[i]) << n << " element " << i;
  }
}

TEST(Train, SgdNesterovMatchesTorch) {
  const Json& c = fixture()["sgd"];
  wick::Sgd opt({.lr = c["lr"], .momentum = c["momentum"], .weight_decay = c["weight_decay"], .nesterov = true});
  wick::TensorMap p = {{"w", f32(c["init"], shape_of(c["shape"]))}};
  for (const Json& s : c["steps"]) {
    p = opt.step(p, {{"w", f32(s["grad"], shape_of(c["shape"]))}});
    expect_close(p["w"], s["param"], 1e-6, 1e-7, "sgd");
  }
}

TEST(Train, ClipGradNormMatchesTorch) {
  for (const Json& c : fixture()["clip"]) {
    wick::TensorMap g;
    for (size_t i = 0; i < c["shapes"].size(); ++i) g[key('g', i)] = f32(c["grads"][i], shape_of(c["shapes"][i]));
    auto [clipped, norm] = wick::clip_grad_norm(g, c["max_norm"].get<double>());
    EXPECT_NEAR(norm.item<double>(), c["norm"].get<double>(), 1e-5 * c["norm"].get<double>());
    for (size_t i = 0; i < c["shapes"].size(); ++i)
      expect_close(clipped[key('g', i)], c["clipped"][i], 1e-6, 1e-7, "clip");
  }
}

TEST(Train, CrossEntropyAndItsGradientMatchTorch) {
  for (const Json& c : fixture()["cross_entropy"]) {
    std::string red = c["reduction"];
    SCOPED_TRACE(red + " smoothing " + std::to_string(c["smoothing"].get<double>()));
    wick::CrossEntropyOptions o;
    o.label_smoothing = c["smoothing"];
    o.reduction = red == "mean" ? wick::Reduction::mean : red == "sum" ? wick::Reduction::sum : wick::Reduction::none;
    Tensor logits = f32(c["logits"], {c["n"].get<int64_t>(), c["v"].get<int64_t>()});
    Tensor labels = Tensor::from_vector(c["labels"].get<std::vector<int64_t>>(), {c["n"].get<int64_t>()});
    Tensor weights = f32(c["weights"], red == "none" ? wick::Shape{c["n"].get<int64_t>()} : wick::Shape{});
    auto [outs, grads] = wick::value_and_grad([&](const std::vector<Tensor>& v) {
      Tensor loss = wick::cross_entropy(v[0], labels, o);
      return std::vector<Tensor>{wick::sum(loss * weights), loss};
    })({logits});
    expect_close(outs[1], c["loss"], 1e-5, 1e-6, "loss");
    expect_close(grads[0], c["grad"], 1e-5, 1e-7, "grad");
  }
}

TEST(Train, LinearCrossEntropyEqualsTheMaterialisedFormInEveryChunking) {
  wick::Generator gen(3);
  Tensor h = wick::normal({2, 9, 16}, gen).eval();
  Tensor w = (wick::normal({37, 16}, gen) * 0.3).eval();
  Tensor labels = wick::astype(wick::uniform({2, 9}, gen, 0, 37), DType::i64);
  labels = wick::where(wick::less(wick::uniform({2, 9}, gen), 0.2), wick::full({2, 9}, -100, DType::i64), labels).eval();
  auto run = [&](int64_t chunk) {
    return wick::value_and_grad([&](const std::vector<Tensor>& v) {
      Tensor loss = chunk < 0 ? wick::cross_entropy(wick::matmul(v[0], wick::transpose(v[1])), labels)
                              : wick::linear_cross_entropy(v[0], v[1], labels, {}, chunk);
      return std::vector<Tensor>{loss};
    }, {0, 1})({h, w});
  };
  auto [ref_out, ref_g] = run(-1);
  for (int64_t chunk : {1, 4, 7, 18, 0}) {
    SCOPED_TRACE(chunk);
    auto [out, g] = run(chunk);
    EXPECT_NEAR(out[0].item<double>(), ref_out[0].item<double>(), 1e-5);
    for (int i = 0; i < 2; ++i) {
      auto a = g[i].to_vector<float>(), b = ref_g[i].to_vector<float>();
      for (size_t j = 0; j < a.size(); ++j) ASSERT_NEAR(a[j], b[j], 1e-5) << "grad " << i;
    }
  }
}

TEST(Train, CrossEntropyGradientAgainstFiniteDifferences) {
  Tensor logits = Tensor::from_vector(std::vector<double>{0.3, -1.2, 2.0, 0.1, 0.5, 0.5, -0.7, 1.1}, {2, 4});
  Tensor labels = Tensor::from_vector(std::vector<int32_t>{2, 1}, {2});
  wick::CrossEntropyOptions o{.label_smoothing = 0.15};
  auto g = wick::grad([&](const std::vector<Tensor>& v) { return std::vector<Tensor>{wick::cross_entropy(v[0], labels, o)}; })({logits});
  std::vector<double> x = logits.to_vector<double>(), got = g[0].to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    auto at = [&](double d) {
      auto y = x;
      y[i] += d;
      return wick::cross_entropy(Tensor::from_vector(y, {2, 4}), labels, o).item<double>();
    };
    EXPECT_NEAR(got[i], (at(1e-6) - at(-1e-6)) / 2e-6, 1e-7);
  }
}

TEST(Train, CrossEntropyRejectsBadLabels) {
  Tensor logits = wick::zeros({2, 3});
  EXPECT_THROW(wick::cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 3}, {2})).eval(), wick::Error);
  EXPECT_THROW(wick::cross_entropy(logits, wick::zeros({2})), wick::Error);
  EXPECT_THROW(wick::cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0}, {1})), wick::Error);
  // Every target ignored: the mean is NaN, as PyTorch's.
  EXPECT_TRUE(std::isnan(wick::cross_entropy(logits, wick::full({2}, -100, DType::i64)).item<double>()));
}

TEST(Train, SchedulesMatchTheReference) {
  const Json& c = fixture()["schedules"];
  for (std::string kind : {"constant", "linear", "cosine"}) {
    wick::LrSchedule s{wick::LrSchedule::parse(kind), c["base"], c["warmup"], c["total"], c["min_lr"]};
    for (int64_t i = 0; i < c["total"].get<int64_t>(); ++i)
      EXPECT_NEAR(s.lr(i), c[kind][i].get<double>(), 1e-12) << kind << " step " << i;
  }
  EXPECT_THROW(wick::LrSchedule::parse("step"), wick::Error);
}

TEST(Train, GradAccumulationAveragesMicroBatches) {
  wick::GradAccumulator acc;
  acc.add({{"w", wick::full({2}, 1.0)}});
  acc.add({{"w", wick::full({2}, 3.0)}});
  EXPECT_EQ(acc.average()["w"].to_vector<float>(), (std::vector<float>{2, 2}));
  acc.reset();
  EXPECT_THROW(acc.average(), wick::Error);
}

}  // namespace
