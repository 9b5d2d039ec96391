// Gradients through the nn modules and the decoder: LoRALinear against the reference gradients
// of tests/tools/make_lora_fixture.py, and the whole CausalLM (LoRA-wrapped, padded batch,
// sliding window, GQA) against central finite differences in f64 — the forward is made only of
// differentiable ops.
#include <gtest/gtest.h>

#include <cmath>

#include "wick/wick.h"

namespace {

using namespace wick;

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

TEST(LoraGrad, LinearGradientsMatchReference) {
  auto f = load_safetensors(std::string(WICK_FIXTURES_DIR) + "/lora/linear.safetensors");
  for (bool rslora : {false, true}) {
    std::string sfx = rslora ? "_rslora" : "";
    Linear base(f.at("weight"), f.at("bias"));
    Generator g(0);
    LoRALinear layer(base, 4, 8.0, 0.0, rslora, g);
    layer.train();
    TensorMap params = {{"x", f.at("x")}, {"lora_A.weight", f.at("lora_A")}, {"lora_B.weight", f.at("lora_B")}};
    auto [loss, grads] = value_and_grad(
        [&](const TensorMap& p) {
          layer.update({{"lora_A.weight", p.at("lora_A.weight")}, {"lora_B.weight", p.at("lora_B.weight")}});
          return sum(multiply(layer(p.at("x")), f.at("cotangent")));
        },
        params);
    EXPECT_LE(max_abs_diff(grads.at("x"), f.at("grad_x" + sfx)), 1e-4) << sfx;
    EXPECT_LE(max_abs_diff(grads.at("lora_A.weight"), f.at("grad_lora_A" + sfx)), 1e-4) << sfx;
    EXPECT_LE(max_abs_diff(grads.at("lora_B.weight"), f.at("grad_lora_B" + sfx)), 1e-4) << sfx;
    EXPECT_NEAR(loss.item<double>(), sum(multiply(f.at("y" + sfx), f.at("cotangent"))).item<double>(), 1e-3);
  }
}

/// The loss of a tiny f64 model on a padded batch, as a function of named parameters.
struct TinyLM {
  std::shared_ptr<CausalLM> model;
  Tensor ids, mask, labels;

  explicit TinyLM(const std::string& config) {
    model = std::make_shared<CausalLM>(ModelConfig::parse(config), DType::f64);
    model->init_random(7, 0.3);
    // Left padding on row 0 (own positions), none on row 1.
    ids = Tensor::from_vector<int64_t>({0, 0, 5, 9, 3, 12, 4, 8, 1, 2, 7, 11, 6, 3, 10, 13}, {2, 8});
    mask = Tensor::from_vector<int64_t>({0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 8});
    labels = Tensor::from_vector<int64_t>({-100, -100, 9, 3, 12, 4, 8, 1, 7, 11, 6, 3, 10, 13, 2, 5}, {2, 8});
  }
  Tensor loss(const TensorMap& p) {
    model->update(p);
    return causal_lm_loss(model->forward(ids, nullptr, mask), labels);
  }
};

void check_against_finite_differences(TinyLM& lm, const TensorMap& params, int per_param) {
  auto [loss, grads] = value_and_grad([&](const TensorMap& p) { return lm.loss(p); }, params);
  double base_loss = loss.item<double>();
  EXPECT_TRUE(std::isfinite(base_loss));
  double largest = 0;  // the check must not pass on all-zero gradients
  for (const auto& [name, value] : params) {
    std::vector<double> v = value.to_vector<double>();
    std::vector<double> g = grads.at(name).to_vector<double>();
    ASSERT_EQ(v.size(), g.size()) << name;
    for (int s = 0; s < per_param; ++s) {
      size_t i = (static_cast<size_t>(s) * 7919 + 3) % v.size();
      const double h = 1e-5;
      // Named copies: clang 14 cannot capture structured bindings.
      auto at = [&, key = name, shape = value.shape()](double delta) {
        std::vector<double> w = v;
        w[i] += delta;
        TensorMap p = params;
        p[key] = Tensor::from_vector(w, shape);
        return lm.loss(p).item<double>();
      };
      double fd = (at(h) - at(-h)) / (2 * h);
      largest = std::max(largest, std::abs(fd));
      EXPECT_NEAR(g[i], fd, 1e-6 + 1e-5 * std::abs(fd)) << name << "[" << i << "]";
    }
  }
  EXPECT_GT(largest, 1e-3);
  lm.model->update(params);
}

const char* kQwenTiny = R"({"model_type": "qwen2", "vocab_size": 16, "hidden_size": 16,
    "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "rope_theta": 100.0, "tie_word_embeddings": true})";

TEST(DecoderGrad, LoraParametersMatchFiniteDifferences) {
  TinyLM lm(kQwenTiny);
  LoraOptions o;
  o.targets = {"all-linear"};
  o.rank = 2;
  o.alpha = 4;
  auto wrapped = apply_lora(*lm.model, o);
  EXPECT_EQ(wrapped.size(), 2u * 7u);
  // B = 0 would make A's gradient vanish: start from nonzero adapters.
  Generator g(3);
  TensorMap params;
  for (const auto& [name, t] : lm.model->trainable_parameters()) {
    ASSERT_EQ(t.dtype(), DType::f64) << name;
    params[name] = normal(t.shape(), g, 0.0, 0.3, DType::f64).eval();
  }
  EXPECT_EQ(params.size(), 2u * 14u);
  check_against_finite_differences(lm, params, 2);
}

TEST(DecoderGrad, BaseWeightsOfGqaSlidingWindowModel) {
  // Mistral with a window shorter than the sequence, untied head, biases on llama's layout off;
  // every kind of base weight (embedding, norms, projections, head).
  TinyLM lm(R"({"model_type": "mistral", "vocab_size": 16, "hidden_size": 16,
      "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 1, "sliding_window": 3, "tie_word_embeddings": false})");
  TensorMap params;
  for (const auto& name : {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                           "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                           "model.layers.1.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight",
                           "model.layers.1.mlp.gate_proj.weight", "model.layers.0.mlp.down_proj.weight",
                           "model.norm.weight", "lm_head.weight"})
    params[name] = lm.model->parameters().at(name);
  check_against_finite_differences(lm, params, 3);
}

TEST(DecoderGrad, CompiledLoraStepMatchesEager) {
  // The training step the trainer will compile: loss and LoRA gradients of the tiny Qwen2.
  auto model = CausalLM::load(std::string(WICK_FIXTURES_DIR) + "/models/qwen2-tied");
  LoraOptions o;
  o.targets = {"q_proj", "v_proj"};
  o.rank = 4;
  apply_lora(*model, o);
  Generator g(5);
  TensorMap start;
  for (const auto& [name, t] : model->trainable_parameters()) start[name] = normal(t.shape(), g, 0.0, 0.1).eval();
  model->update(start);
  std::vector<std::string> names;
  for (const auto& [name, t] : start) names.push_back(name);
  Function step = [&](const std::vector<Tensor>& in) {
    TensorMap p;
    for (size_t i = 0; i < names.size(); ++i) p[names[i]] = in[2 + i];
    auto [loss, grads] = value_and_grad(
        [&](const TensorMap& q) {
          model->update(q);
          return causal_lm_loss(model->forward(in[0]), in[1]);
        },
        p);
    std::vector<Tensor> out = {loss};
    for (const auto& n : names) out.push_back(grads.at(n));
    return out;
  };
  std::vector<Tensor> inputs = {Tensor::from_vector<int64_t>({5, 17, 101, 3, 250, 42, 7, 9, 1, 2, 3, 4}, {2, 6}),
                                Tensor::from_vector<int64_t>({17, 101, 3, 250, 42, -100, 1, 2, 3, 4, 5, 6}, {2, 6})};
  for (const auto& n : names) inputs.push_back(start.at(n));
  std::vector<Tensor> eager = step(inputs);
  eval(eager);
  CompiledFunction compiled = compile(step);
  for (int call = 0; call < 2; ++call) {  // trace, then replay
    std::vector<Tensor> got = compiled(inputs);
    ASSERT_EQ(got.size(), eager.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_LE(max_abs_diff(got[i], eager[i]), 1e-5) << (i ? names[i - 1] : "loss") << " call " << call;
  }
  EXPECT_EQ(compiled.stats().traces, 1u);
  model->update(start);
}

}  // namespace
