// ModelConfig: config.json fields, defaults and the transformers 4.x / 5.x variants, RoPE
// frequencies with Llama 3 scaling (values from bench/peers/decoder_torch.py, which computes them
// as transformers does), and clean errors for unsupported or malformed configs.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "wick/model.h"

namespace {

using wick::Error;
using wick::ModelConfig;

const char* kQwen = R"({
  "model_type": "qwen2", "vocab_size": 256, "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "max_position_embeddings": 512, "rope_theta": 1000000.0, "rms_norm_eps": 1e-06,
  "tie_word_embeddings": true, "hidden_act": "silu", "eos_token_id": [2, 7], "bos_token_id": 1,
  "torch_dtype": "bfloat16", "sliding_window": 32, "use_sliding_window": false})";

/// `json` with one member set (`field` is "\"key\": value").
std::string with(const std::string& json, const std::string& field) {
  auto j = nlohmann::json::parse(json);
  auto f = nlohmann::json::parse("{" + field + "}");
  for (auto& [k, v] : f.items()) j[k] = v;
  return j.dump();
}

void expect_error(const std::string& json, const std::string& needle1, const std::string& needle2 = "") {
  try {
    ModelConfig::parse(json, "dir/config.json");
    FAIL() << "no error; expected " << needle1;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("dir/config.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle1), std::string::npos) << msg;
    if (!needle2.empty()) {
      EXPECT_NE(msg.find(needle2), std::string::npos) << msg;
    }
  }
}

TEST(ModelConfig, ParsesQwen2) {
  ModelConfig c = ModelConfig::parse(kQwen);
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.vocab_size, 256);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.sliding_window, (std::vector<int64_t>{0, 0}));  // use_sliding_window false
  EXPECT_EQ(c.rope_scaling.type, "default");
  // Parameters: embeddings (tied, once) + 2 layers + final norm.
  int64_t layer = (64 * 64 + 64) + 2 * (64 * 32 + 32) + 64 * 64 + 3 * 64 * 128 + 2 * 64;
  EXPECT_EQ(c.parameter_count(), 256 * 64 + 2 * layer + 64);
}

TEST(ModelConfig, DefaultsAndVariants) {
  ModelConfig c = ModelConfig::parse(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "eos_token_id": 5,
      "attention_bias": true, "mlp_bias": true, "dtype": "float16"})");
  EXPECT_EQ(c.num_key_value_heads, 4);  // absent: MHA
  EXPECT_EQ(c.head_dim, 8);             // absent: hidden / heads
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{5}));
  EXPECT_TRUE(c.qkv_bias && c.o_bias && c.mlp_bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, "float16");  // transformers 5 writes "dtype"
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);

  // Explicit head_dim (need not be hidden / heads).
  c = ModelConfig::parse(with(kQwen, R"("head_dim": 32)"));
  EXPECT_EQ(c.head_dim, 32);

  // Mistral: attention_bias means q/k/v bias only, and sliding_window applies to every layer.
  c = ModelConfig::parse(R"({"model_type": "mistral", "vocab_size": 10, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 1, "sliding_window": 6, "attention_bias": false})");
  EXPECT_EQ(c.sliding_window, (std::vector<int64_t>{6, 6}));
  EXPECT_FALSE(c.qkv_bias || c.o_bias || c.mlp_bias);
  c = ModelConfig::parse(R"({"model_type": "mistral", "vocab_size": 10, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "sliding_window": null})");
  EXPECT_EQ(c.sliding_window, (std::vector<int64_t>{0, 0}));

  // Qwen2 with use_sliding_window: layers from max_window_layers on.
  c = ModelConfig::parse(with(with(kQwen, R"("use_sliding_window": true)"), R"("max_window_layers": 1)"));
  EXPECT_EQ(c.sliding_window, (std::vector<int64_t>{0, 32}));
  // transformers 5: layer_types decides.
  c = ModelConfig::parse(with(kQwen, R"("layer_types": ["sliding_attention", "full_attention"])"));
  EXPECT_EQ(c.sliding_window, (std::vector<int64_t>{32, 0}));
  // rope_parameters (transformers 5) carries rope_theta.
  c = ModelConfig::parse(with(kQwen, R"("rope_parameters": {"rope_type": "default", "rope_theta": 5000.0})"));
  EXPECT_DOUBLE_EQ(c.rope_theta, 5000.0);
  c = ModelConfig::parse(with(kQwen, R"("rope_scaling": null)"));
  EXPECT_EQ(c.rope_scaling.type, "default");
}

TEST(ModelConfig, DefaultRopeFrequencies) {
  ModelConfig c = ModelConfig::parse(kQwen);
  auto f = c.rope_inv_freq();
  ASSERT_EQ(f.size(), 8u);
  for (size_t i = 0; i < f.size(); ++i)
    EXPECT_NEAR(f[i], std::pow(1e6, -2.0 * i / 16.0), 1e-6 * std::pow(1e6, -2.0 * i / 16.0));
}

TEST(ModelConfig, Llama3RopeScalingMatchesTransformers) {
  const char* llama = R"({"model_type": "llama", "vocab_size": 256, "hidden_size": 64,
      "intermediate_size": 112, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "rope_theta": 500000.0,
      "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 64}})";
  ModelConfig c = ModelConfig::parse(llama);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  // torch, as transformers' _compute_llama3_parameters (unscaled, smoothed and divided bands).
  const double want[8] = {1.0, 0.079403013, 0.00470075384, 0.000911583134, 0.000176776681,
                          3.42810235e-05, 6.64786967e-06, 1.28917316e-06};
  auto f = c.rope_inv_freq();
  ASSERT_EQ(f.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(f[i], want[i], 2e-7 * want[i]) << i;
  // The old spelling "type" works too.
  std::string old = llama;
  old.replace(old.find("\"rope_type\""), 11, "\"type\"");
  EXPECT_EQ(ModelConfig::parse(old).rope_inv_freq(), f);
}

TEST(ModelConfig, ErrorsNameFileAndField) {
  expect_error(with(kQwen, R"("model_type": "gpt2")"), "model_type", "gpt2");
  expect_error(with(kQwen, R"("hidden_act": "gelu")"), "hidden_act", "gelu");
  expect_error(with(kQwen, R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0})"), "rope_scaling", "yarn");
  expect_error(with(kQwen, R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0})"), "low_freq_factor");
  expect_error(with(kQwen, R"("rope_scaling": "llama3")"), "rope_scaling");
  expect_error(with(kQwen, R"("num_key_value_heads": 3)"), "num_key_value_heads");
  expect_error(with(kQwen, R"("hidden_size": "64")"), "hidden_size");
  expect_error(with(kQwen, R"("hidden_size": -64)"), "hidden_size");
  expect_error(with(kQwen, R"("vocab_size": 1e30)"), "vocab_size");
  expect_error(with(kQwen, R"("head_dim": 15)"), "head_dim");
  expect_error(with(kQwen, R"("rms_norm_eps": 0)"), "rms_norm_eps");
  expect_error(with(kQwen, R"("eos_token_id": [1, "x"])"), "eos_token_id");
  expect_error(with(kQwen, R"("layer_types": ["full_attention"])"), "layer_types");
  expect_error(with(kQwen, R"("layer_types": ["chunked", "full_attention"])"), "layer_types");
  expect_error(R"({"model_type": "llama", "vocab_size": 10})", "hidden_size");
  expect_error(R"({"model_type": "llama", "vocab_size": 10,)", "invalid JSON");
  expect_error("[1, 2]", "object");
  expect_error("", "JSON");
  EXPECT_THROW(ModelConfig::load("/nonexistent/folder"), Error);
  try {
    ModelConfig::load("/nonexistent/folder");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/folder/config.json"), std::string::npos) << e.what();
  }
}

}  // namespace
