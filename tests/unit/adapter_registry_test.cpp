// AdapterRegistry: an activated adapter gives the logits of load_peft_adapter on a fresh model,
// deactivation gives the base model's, switching A -> B -> A restores A exactly, the base weight
// tensors are shared rather than copied, and adapters that do not fit the model are refused at
// load time.
#include <gtest/gtest.h>

#include <cstring>

#include "common/file_util.h"
#include "wick/wick.h"

namespace {

using namespace wick;

std::string fixtures() { return std::string(WICK_FIXTURES_DIR); }
std::string model_dir() { return fixtures() + "/models/qwen2-tied"; }
std::string peft_dir() { return fixtures() + "/lora/qwen2-tied-adapter"; }

const std::vector<int64_t> kIds = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

std::vector<float> logits_of(CausalLM& m) {
  int64_t T = static_cast<int64_t>(kIds.size());
  return m.forward(Tensor::from_vector(kIds, {1, T})).to_vector<float>();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// A second adapter with other targets (o_proj, gate_proj, up_proj; rank 2, rsLoRA), written by
/// wick into `dir`.
void write_other_adapter(const std::string& dir) {
  auto m = CausalLM::load(model_dir());
  LoraOptions o;
  o.targets = {"o_proj", "gate_proj", "up_proj"};
  o.rank = 2;
  o.alpha = 3;
  o.rslora = true;
  o.seed = 7;
  apply_lora(*m, o);
  Generator g(8);
  std::map<std::string, Tensor> bs;
  for (const auto& [name, t] : m->parameters())
    if (name.ends_with("lora_B.weight")) bs[name] = normal(t.shape(), g, 0.0, 0.3);
  m->update(bs);
  save_peft_adapter(*m, dir, PeftAdapterConfig::from_options(o, model_dir()));
}

std::vector<float> reference_logits(const std::string& adapter_dir) {
  auto m = CausalLM::load(model_dir());
  if (!adapter_dir.empty()) load_peft_adapter(*m, adapter_dir);
  return logits_of(*m);
}

TEST(AdapterRegistry, SwitchesGiveEachAdaptersLogits) {
  wt::TempDir tmp;
  write_other_adapter(tmp.path);
  const auto base = reference_logits(""), want_a = reference_logits(peft_dir()), want_b = reference_logits(tmp.path);
  ASSERT_FALSE(same_bits(base, want_a));
  ASSERT_FALSE(same_bits(want_a, want_b));

  AdapterRegistry reg(CausalLM::load(model_dir()));
  EXPECT_EQ(reg.load("a", peft_dir()).size(), 6u);
  EXPECT_EQ(reg.load("b", tmp.path).size(), 6u);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(reg.active());
  EXPECT_TRUE(same_bits(logits_of(reg.model()), base));

  reg.activate("a");
  EXPECT_EQ(reg.active(), "a");
  EXPECT_TRUE(same_bits(logits_of(reg.model()), want_a));
  reg.activate("b");  // different targets: a's modules go back to plain Linear
  EXPECT_TRUE(same_bits(logits_of(reg.model()), want_b));
  reg.activate("a");
  EXPECT_TRUE(same_bits(logits_of(reg.model()), want_a));
  reg.deactivate();
  EXPECT_FALSE(reg.active());
  EXPECT_TRUE(same_bits(logits_of(reg.model()), base));
  for (const auto& [name, m] : reg.model().named_modules()) EXPECT_NE(m->kind(), "LoRALinear") << name;

  reg.activate("b");
  reg.unload("b");  // unloading the active adapter restores the base
  EXPECT_FALSE(reg.active());
  EXPECT_TRUE(same_bits(logits_of(reg.model()), base));
  EXPECT_EQ(reg.names(), std::vector<std::string>{"a"});
}

TEST(AdapterRegistry, SharesTheBaseWeights) {
  auto model = CausalLM::load(model_dir());
  std::map<std::string, const float*> before;
  for (const auto& [name, t] : model->parameters()) before[name] = t.data<float>();
  AdapterRegistry reg(model);
  reg.load("a", peft_dir());
  reg.activate("a");
  size_t lora = 0;
  for (const auto& [name, t] : model->parameters()) {
    if (name.find(".lora_") != std::string::npos) {
      ++lora;
      continue;
    }
    ASSERT_TRUE(before.count(name)) << name;
    EXPECT_EQ(t.data<float>(), before.at(name)) << name << ": the base weight was copied";
  }
  EXPECT_EQ(lora, 12u);
  EXPECT_EQ(model->parameters().size(), before.size() + lora);
}

TEST(AdapterRegistry, GenerationUsesTheActiveAdapter) {
  auto fresh = CausalLM::load(model_dir());
  load_peft_adapter(*fresh, peft_dir());
  GenerationOptions g;
  g.max_new_tokens = 6;
  g.sampling.do_sample = false;
  std::vector<int32_t> prompt = {5, 17, 101};
  auto want = generate(*fresh, nullptr, prompt, g).tokens;
  auto base_model = CausalLM::load(model_dir());
  auto base = generate(*base_model, nullptr, prompt, g).tokens;

  AdapterRegistry reg(CausalLM::load(model_dir()));
  reg.load("a", peft_dir());
  reg.activate("a");
  EXPECT_EQ(generate(reg.model(), nullptr, prompt, g).tokens, want);
  reg.deactivate();
  EXPECT_EQ(generate(reg.model(), nullptr, prompt, g).tokens, base);
}

TEST(AdapterRegistry, RefusesWhatDoesNotFit) {
  AdapterRegistry reg(CausalLM::load(model_dir()));
  reg.load("a", peft_dir());
  EXPECT_THROW(reg.load("a", peft_dir()), Error);
  EXPECT_THROW(reg.activate("zz"), Error);
  EXPECT_THROW(reg.unload("zz"), Error);
  EXPECT_THROW(reg.load("", peft_dir()), Error);

  LoraAdapter bad = read_peft_adapter(peft_dir());
  bad.modules.erase("model.layers.1.self_attn.q_proj");
  try {
    reg.add("bad", bad);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.1.self_attn.q_proj"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("adapter_model.safetensors"), std::string::npos) << e.what();
  }
  bad = read_peft_adapter(peft_dir());
  auto& p = bad.modules.at("model.layers.0.self_attn.v_proj");
  p.b = zeros({64, 4});  // v_proj is [32, 64] (GQA)
  EXPECT_THROW(reg.add("bad", bad), Error);
  bad = read_peft_adapter(peft_dir());
  bad.config.target_modules = {"no_such_proj"};
  EXPECT_THROW(reg.add("bad", bad), Error);
  EXPECT_EQ(reg.names(), std::vector<std::string>{"a"});

  auto wrapped = CausalLM::load(model_dir());
  load_peft_adapter(*wrapped, peft_dir());
  EXPECT_THROW(AdapterRegistry{wrapped}, Error);
}

}  // namespace
