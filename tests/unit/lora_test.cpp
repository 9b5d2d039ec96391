// LoRA against reference data from tests/tools/make_lora_fixture.py (PEFT on the GPU machine,
// else plain-PyTorch formulas): one LoRALinear's forward (plain and rsLoRA), and a PEFT adapter
// folder loaded onto the tiny Qwen2 model; broken adapter folders fail cleanly.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "common/compare.h"
#include "wick/wick.h"

namespace {

using namespace wick;
namespace fs = std::filesystem;

std::string fixtures() { return std::string(WICK_FIXTURES_DIR); }

using wt::max_abs_diff;

TEST(LoraFixture, LinearForwardMatchesReference) {
  auto f = load_safetensors(fixtures() + "/lora/linear.safetensors");
  for (bool rslora : {false, true}) {
    Linear base(f.at("weight"), f.at("bias"));
    Generator g(0);
    LoRALinear l(base, 4, 8.0, 0.0, rslora, g);
    l.update({{"lora_A.weight", f.at("lora_A")}, {"lora_B.weight", f.at("lora_B")}});
    Tensor want = f.at(rslora ? "y_rslora" : "y");
    EXPECT_LE(max_abs_diff(l(f.at("x")), want), 1e-5) << "rslora " << rslora;
    l.merge();
    EXPECT_LE(max_abs_diff(l(f.at("x")), want), 1e-5) << "merged, rslora " << rslora;
    // Training mode with p = 0 is the same function.
    Generator g2(0);
    LoRALinear t(base, 4, 8.0, 0.0, rslora, g2);
    t.update({{"lora_A.weight", f.at("lora_A")}, {"lora_B.weight", f.at("lora_B")}});
    t.train();
    EXPECT_LE(max_abs_diff(t(f.at("x")), want), 1e-5);
  }
}

TEST(LoraFixture, PeftAdapterMatchesReference) {
  auto model = CausalLM::load(fixtures() + "/models/qwen2-tied");
  auto names = load_peft_adapter(*model, fixtures() + "/lora/qwen2-tied-adapter");
  EXPECT_EQ(names.size(), 6u);  // q, v, down in 2 layers
  EXPECT_EQ(model->trainable_parameters().size(), 12u);
  std::ifstream jf(fixtures() + "/models/qwen2-tied/expected.json");
  auto seqs = nlohmann::json::parse(jf).at("sequences").get<std::vector<std::vector<int64_t>>>();
  auto want = load_safetensors(fixtures() + "/lora/adapter_expected.safetensors");
  auto base = load_safetensors(fixtures() + "/models/qwen2-tied/expected.safetensors");
  for (size_t i = 0; i < seqs.size(); ++i) {
    int64_t T = static_cast<int64_t>(seqs[i].size());
    Tensor logits = reshape(model->forward(Tensor::from_vector(seqs[i], {1, T})), {T, -1});
    std::string key = "logits_" + std::to_string(i);
    EXPECT_LE(max_abs_diff(logits, want.at(key)), 1e-4) << "sequence " << i;
    EXPECT_GT(max_abs_diff(want.at(key), base.at(key)), 1e-2) << "the adapter must change the logits";
  }
}

class BrokenAdapter : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wick_lora_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ifstream f(fixtures() + "/lora/qwen2-tied-adapter/adapter_config.json");
    config_ = nlohmann::json::parse(f);
    weights_ = load_safetensors(fixtures() + "/lora/qwen2-tied-adapter/adapter_model.safetensors");
    model_ = CausalLM::load(fixtures() + "/models/qwen2-tied");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write() {
    std::ofstream(dir_ / "adapter_config.json") << config_.dump();
    save_safetensors((dir_ / "adapter_model.safetensors").string(), weights_);
  }
  void expect_error(const std::string& a, const std::string& b = "") {
    write();
    model_ = CausalLM::load(fixtures() + "/models/qwen2-tied");  // unwrapped again
    try {
      load_peft_adapter(*model_, dir_.string());
      FAIL() << "no error; expected " << a;
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(a), std::string::npos) << msg;
      if (!b.empty()) {
        EXPECT_NE(msg.find(b), std::string::npos) << msg;
      }
    }
  }
  fs::path dir_;
  nlohmann::json config_;
  std::map<std::string, Tensor> weights_;
  std::shared_ptr<CausalLM> model_;
};

TEST_F(BrokenAdapter, Reference) {
  write();
  EXPECT_EQ(load_peft_adapter(*model_, dir_.string()).size(), 6u);
}

TEST_F(BrokenAdapter, MissingFiles) {
  try {
    load_peft_adapter(*model_, dir_.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adapter_config.json"), std::string::npos) << e.what();
  }
  std::ofstream(dir_ / "adapter_config.json") << config_.dump();
  EXPECT_THROW(load_peft_adapter(*model_, dir_.string()), Error);
}

TEST_F(BrokenAdapter, UnsupportedFeatures) {
  config_["use_dora"] = true;
  expect_error("adapter_config.json", "use_dora");
  config_["use_dora"] = false;
  config_["rank_pattern"] = {{"q_proj", 8}};
  expect_error("rank_pattern");
  config_["rank_pattern"] = nlohmann::json::object();
  config_["peft_type"] = "IA3";
  expect_error("peft_type");
  config_["peft_type"] = "LORA";
  config_["target_modules"] = ".*proj";
  expect_error("target_modules");
  config_["target_modules"] = {"q_proj"};
  config_["lora_bias"] = true;
  expect_error("lora_bias");
  config_["lora_bias"] = false;
  config_["exclude_modules"] = {"k_proj"};
  expect_error("exclude_modules");
  config_["exclude_modules"] = nullptr;
  config_["layers_pattern"] = "h";
  expect_error("layers_pattern");
  config_["layers_pattern"] = nullptr;
  config_.erase("r");
  expect_error("\"r\"");
}

TEST_F(BrokenAdapter, LayersToTransform) {
  config_["layers_to_transform"] = {1};
  expect_error("layers.0.", "matches no adapted module");
  for (auto it = weights_.begin(); it != weights_.end();)
    it = it->first.find(".layers.0.") != std::string::npos ? weights_.erase(it) : std::next(it);
  write();
  model_ = CausalLM::load(fixtures() + "/models/qwen2-tied");
  auto names = load_peft_adapter(*model_, dir_.string());
  EXPECT_EQ(names.size(), 3u);
  for (auto& n : names) EXPECT_TRUE(n.starts_with("model.layers.1.")) << n;
}

TEST_F(BrokenAdapter, TensorMismatches) {
  auto key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  Tensor a = weights_.at(key);
  weights_.erase(key);
  expect_error("adapter_model.safetensors", key);
  weights_[key] = zeros({4, 63});
  expect_error("adapter_model.safetensors", "lora_A");
  weights_[key] = a;
  weights_["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"] = zeros({4, 64});
  expect_error("up_proj");
  weights_.erase("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight");
  weights_["model.layers.0.self_attn.q_proj.lora_A.weight"] = a;
  expect_error("base_model.model.");
}

}  // namespace
