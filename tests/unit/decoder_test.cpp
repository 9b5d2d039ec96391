// The decoder family against fixtures written by a reference implementation
// (tests/tools/make_tiny_models.py: transformers on the GPU machine, else the plain-PyTorch peer
// bench/peers/decoder_torch.py): full logits, greedy continuation, KV-cache decode = full
// recompute, left-padded batches = one by one, the cache written in place, and broken folders.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "common/compare.h"
#include "wick/wick.h"

namespace {

using namespace wick;
namespace fs = std::filesystem;

const std::vector<std::string> kFixtures = {"qwen2-tied", "qwen2-gqa-bf16", "llama3-rope", "mistral-swa"};

std::string fixture(const std::string& name) { return std::string(WICK_FIXTURES_DIR) + "/models/" + name; }

struct Expected {
  std::vector<std::vector<int64_t>> sequences;
  std::vector<int64_t> greedy;
  std::map<std::string, Tensor> tensors;
};

Expected read_expected(const std::string& name) {
  Expected e;
  std::ifstream f(fixture(name) + "/expected.json");
  auto j = nlohmann::json::parse(f);
  e.sequences = j.at("sequences").get<std::vector<std::vector<int64_t>>>();
  e.greedy = j.at("greedy").get<std::vector<int64_t>>();
  e.tensors = load_safetensors(fixture(name) + "/expected.safetensors");
  return e;
}

Tensor ids_of(const std::vector<int64_t>& seq) {
  return Tensor::from_vector(seq, {1, static_cast<int64_t>(seq.size())});
}

using wt::max_abs_diff;

int64_t argmax_last(const Tensor& logits, int64_t row = 0) {
  Tensor last = slice(slice(logits, 0, row, row + 1), 1, logits.shape()[1] - 1, logits.shape()[1]);
  return argmax(reshape(last, {-1}), 0).item<int64_t>();
}

class Fixture : public ::testing::TestWithParam<std::string> {};

TEST_P(Fixture, LogitsMatchReference) {
  auto model = CausalLM::load(fixture(GetParam()));
  Expected e = read_expected(GetParam());
  for (size_t i = 0; i < e.sequences.size(); ++i) {
    Tensor logits = model->forward(ids_of(e.sequences[i]));
    Tensor want = e.tensors.at("logits_" + std::to_string(i));
    EXPECT_LE(max_abs_diff(reshape(logits, want.shape()), want), 1e-4) << GetParam() << " sequence " << i;
  }
}

TEST_P(Fixture, GreedyContinuationMatchesReference) {
  auto model = CausalLM::load(fixture(GetParam()));
  Expected e = read_expected(GetParam());
  const auto& prompt = e.sequences[0];
  KVCache cache = model->make_cache(1, static_cast<int64_t>(prompt.size() + e.greedy.size()));
  Tensor logits = model->forward(ids_of(prompt), &cache);
  std::vector<int64_t> got;
  for (size_t i = 0; i < e.greedy.size(); ++i) {
    got.push_back(argmax_last(logits));
    if (i + 1 < e.greedy.size()) logits = model->forward(ids_of({got.back()}), &cache);
  }
  EXPECT_EQ(got, e.greedy) << GetParam();
  EXPECT_EQ(cache.length(), static_cast<int64_t>(prompt.size() + e.greedy.size() - 1));
}

TEST_P(Fixture, CachedDecodeEqualsFullRecompute) {
  auto model = CausalLM::load(fixture(GetParam()));
  Expected e = read_expected(GetParam());
  std::vector<int64_t> seq = e.sequences[1];  // 16 tokens: past the sliding window of 6
  Tensor full = model->forward(ids_of(seq));
  // Prefill 5 tokens, then chunks of 1, 3 and 1 ... tokens.
  KVCache cache = model->make_cache(1, 32);
  std::vector<Tensor> parts;
  size_t pos = 0;
  for (size_t chunk : {5, 1, 3, 1, 1, 5}) {
    std::vector<int64_t> ids(seq.begin() + pos, seq.begin() + pos + chunk);
    parts.push_back(model->forward(ids_of(ids), &cache));
    pos += chunk;
  }
  ASSERT_EQ(pos, seq.size());
  EXPECT_LE(max_abs_diff(concatenate(parts, 1), full), 1e-4) << GetParam();
  cache.reset();
  EXPECT_EQ(cache.length(), 0);
  EXPECT_LE(max_abs_diff(model->forward(ids_of(seq), &cache), full), 1e-5) << "after reset";
}

TEST_P(Fixture, LeftPaddedBatchEqualsOneByOne) {
  auto model = CausalLM::load(fixture(GetParam()));
  Expected e = read_expected(GetParam());
  int64_t n = static_cast<int64_t>(e.sequences.size()), t_max = 0;
  for (auto& s : e.sequences) t_max = std::max<int64_t>(t_max, s.size());
  std::vector<int64_t> ids(n * t_max, 0), mask(n * t_max, 0);
  for (int64_t i = 0; i < n; ++i) {
    const auto& s = e.sequences[i];
    int64_t pad = t_max - static_cast<int64_t>(s.size());
    for (size_t t = 0; t < s.size(); ++t) {
      ids[i * t_max + pad + t] = s[t];
      mask[i * t_max + pad + t] = 1;
    }
  }
  Tensor mask_t = Tensor::from_vector(mask, {n, t_max});
  KVCache cache = model->make_cache(n, t_max + 4);
  Tensor logits = model->forward(Tensor::from_vector(ids, {n, t_max}), &cache, mask_t);
  for (int64_t i = 0; i < n; ++i) {
    int64_t len = static_cast<int64_t>(e.sequences[i].size());
    Tensor rows = reshape(slice(slice(logits, 0, i, i + 1), 1, t_max - len, t_max), {len, -1});
    EXPECT_LE(max_abs_diff(rows, e.tensors.at("logits_" + std::to_string(i))), 1e-4) << GetParam() << " row " << i;
    Tensor ref_rows = reshape(slice(slice(e.tensors.at("padded_logits"), 0, i, i + 1), 1, t_max - len, t_max), {len, -1});
    EXPECT_LE(max_abs_diff(rows, ref_rows), 1e-4) << GetParam() << " row " << i << " vs padded reference";
  }
  // Decode two more tokens per row through the padded cache; compare with each row alone.
  std::vector<int64_t> next = {7, 11, 13};
  std::vector<int64_t> mask2;
  for (int step = 0; step < 2; ++step) {
    int64_t s = t_max + step + 1;
    mask2.clear();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t t = 0; t < s - 1; ++t) mask2.push_back(t < t_max ? mask[i * t_max + t] : 1);
      mask2.push_back(1);
    }
    Tensor step_logits = model->forward(Tensor::from_vector(next, {n, 1}), &cache, Tensor::from_vector(mask2, {n, s}));
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int64_t> alone = e.sequences[i];
      for (int k = 0; k <= step; ++k) alone.push_back(next[i]);
      Tensor ref = model->forward(ids_of(alone));
      Tensor ref_last = slice(ref, 1, ref.shape()[1] - 1, ref.shape()[1]);
      EXPECT_LE(max_abs_diff(slice(step_logits, 0, i, i + 1), ref_last), 1e-4) << GetParam() << " row " << i;
    }
  }
}

TEST_P(Fixture, RightPaddedBatchEqualsOneByOne) {
  // The training layout: tokens first, padding after, masked out.
  auto model = CausalLM::load(fixture(GetParam()));
  Expected e = read_expected(GetParam());
  int64_t n = static_cast<int64_t>(e.sequences.size()), t_max = 0;
  for (auto& s : e.sequences) t_max = std::max<int64_t>(t_max, s.size());
  std::vector<int64_t> ids(n * t_max, 0), mask(n * t_max, 0);
  for (int64_t i = 0; i < n; ++i)
    for (size_t t = 0; t < e.sequences[i].size(); ++t) {
      ids[i * t_max + t] = e.sequences[i][t];
      mask[i * t_max + t] = 1;
    }
  Tensor logits = model->forward(Tensor::from_vector(ids, {n, t_max}), nullptr, Tensor::from_vector(mask, {n, t_max}));
  for (int64_t i = 0; i < n; ++i) {
    int64_t len = static_cast<int64_t>(e.sequences[i].size());
    Tensor rows = reshape(slice(slice(logits, 0, i, i + 1), 1, 0, len), {len, -1});
    EXPECT_LE(max_abs_diff(rows, e.tensors.at("logits_" + std::to_string(i))), 1e-4) << GetParam() << " row " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Fixture, ::testing::ValuesIn(kFixtures),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

TEST(Decoder, ModuleNamesMatchTransformers) {
  auto model = CausalLM::load(fixture("qwen2-tied"));
  auto p = model->parameters();
  EXPECT_TRUE(p.count("model.embed_tokens.weight"));
  EXPECT_TRUE(p.count("model.layers.1.self_attn.q_proj.bias"));
  EXPECT_FALSE(p.count("model.layers.1.self_attn.o_proj.bias"));
  EXPECT_TRUE(p.count("model.layers.0.mlp.down_proj.weight"));
  EXPECT_TRUE(p.count("model.layers.0.post_attention_layernorm.weight"));
  EXPECT_TRUE(p.count("model.norm.weight"));
  EXPECT_FALSE(p.count("lm_head.weight"));  // tied
  EXPECT_EQ(static_cast<int64_t>(p.size()), 1 + 2 * 12 + 1);
  int64_t count = 0;
  for (auto& [n, t] : p) count += t.numel();
  EXPECT_EQ(count, model->config().parameter_count());
  auto untied = CausalLM::load(fixture("llama3-rope"));
  EXPECT_TRUE(untied->parameters().count("lm_head.weight"));
  EXPECT_FALSE(untied->parameters().count("model.layers.0.self_attn.q_proj.bias"));
}

TEST(Decoder, LoraWrappedModelStartsEqualAndChangesWithB) {
  auto model = CausalLM::load(fixture("qwen2-tied"));
  Tensor ids = ids_of({3, 1, 4, 1, 5});
  Tensor base = model->forward(ids).eval();
  LoraOptions o;
  o.targets = {"q_proj", "v_proj"};
  o.rank = 4;
  auto names = apply_lora(*model, o);
  EXPECT_EQ(names.size(), 4u);
  EXPECT_LE(max_abs_diff(model->forward(ids), base), 1e-6);  // B = 0
  auto tp = model->trainable_parameters();
  EXPECT_EQ(tp.size(), 8u);
  Tensor b = full({32, 4}, 0.05);
  model->update({{"model.layers.0.self_attn.v_proj.lora_B.weight", b}});
  EXPECT_GT(max_abs_diff(model->forward(ids), base), 1e-4);
}

TEST(Decoder, CacheIsWrittenInPlace) {
  ModelConfig c = ModelConfig::parse(R"({"model_type": "qwen2", "vocab_size": 64, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2})");
  CausalLM model(c);
  model.init_random(3);
  const int64_t max_len = 8192;
  KVCache cache = model.make_cache(1, max_len);
  size_t layer_bytes = cache.nbytes() / 4;  // one layer's k (or v)
  ASSERT_GE(layer_bytes, size_t{1} << 19);
  Tensor logits = model.forward(ids_of({1, 2, 3, 4}), &cache).eval();
  for (int step = 0; step < 6; ++step) {
    int64_t next = argmax_last(logits);
    size_t active = memory_stats().active;
    reset_peak_memory();
    logits = model.forward(ids_of({next}), &cache).eval();
    // A copying cache would hold the old and the new buffer of a layer at once.
    EXPECT_LT(memory_stats().peak - active, layer_bytes / 2) << "step " << step;
  }
}

// ---- broken folders ----------------------------------------------------------------------------

class BrokenFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wick_decoder_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::copy(fixture("qwen2-tied") + "/config.json", dir_ / "config.json");
    weights_ = load_safetensors(fixture("qwen2-tied") + "/model.safetensors");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write_config(const std::string& text) {
    std::ofstream(dir_ / "config.json") << text;
  }
  void write_weights() { save_safetensors((dir_ / "model.safetensors").string(), weights_); }
  void expect_error(const std::string& a, const std::string& b = "") {
    try {
      CausalLM::load(dir_.string());
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
  std::map<std::string, Tensor> weights_;
};

TEST_F(BrokenFolder, Reference) {
  write_weights();
  EXPECT_NO_THROW(CausalLM::load(dir_.string()));
}

TEST_F(BrokenFolder, MissingConfig) {
  write_weights();
  fs::remove(dir_ / "config.json");
  expect_error("config.json", "missing");
}

TEST_F(BrokenFolder, BadJson) {
  write_weights();
  write_config("{\"model_type\": \"qwen2\", ");
  expect_error("config.json", "invalid JSON");
}

TEST_F(BrokenFolder, UnsupportedModelType) {
  write_weights();
  write_config(R"({"model_type": "gpt_neox", "vocab_size": 256})");
  expect_error("config.json", "model_type");
}

TEST_F(BrokenFolder, MissingWeightsFile) { expect_error("model.safetensors"); }

TEST_F(BrokenFolder, MissingWeight) {
  weights_.erase("model.layers.1.mlp.up_proj.weight");
  write_weights();
  expect_error("model.layers.1.mlp.up_proj.weight", "model.safetensors");
}

TEST_F(BrokenFolder, WrongShape) {
  weights_["model.layers.0.self_attn.k_proj.weight"] = zeros({16, 64});
  write_weights();
  expect_error("model.layers.0.self_attn.k_proj.weight", "[16,64]");
}

TEST_F(BrokenFolder, UnexpectedTensor) {
  weights_["model.layers.7.mlp.up_proj.weight"] = zeros({4});
  write_weights();
  expect_error("model.layers.7.mlp.up_proj.weight", "unexpected");
}

TEST_F(BrokenFolder, IntegerWeight) {
  weights_["model.norm.weight"] = zeros({64}, DType::i32);
  write_weights();
  expect_error("model.norm.weight");
}

TEST_F(BrokenFolder, TruncatedWeights) {
  write_weights();
  fs::resize_file(dir_ / "model.safetensors", fs::file_size(dir_ / "model.safetensors") - 100);
  expect_error("model.safetensors");
}

TEST(Decoder, BadInputsAreErrors) {
  auto model = CausalLM::load(fixture("qwen2-tied"));
  EXPECT_THROW(model->forward(Tensor::from_vector<float>({1, 2}, {1, 2})), Error);
  EXPECT_THROW(model->forward(Tensor::from_vector<int64_t>({1, 2}, {2})), Error);
  EXPECT_THROW(model->forward(Tensor::from_vector<int64_t>({1, 999}, {1, 2})).eval(), Error);
  KVCache cache = model->make_cache(1, 3);
  EXPECT_THROW(model->forward(ids_of({1, 2, 3, 4}), &cache), Error);
  EXPECT_EQ(cache.length(), 0);
  KVCache wide = model->make_cache(2, 8);
  EXPECT_THROW(model->forward(ids_of({1, 2}), &wide), Error);
  Tensor ids = ids_of({1, 2, 3});
  EXPECT_THROW(model->forward(ids, nullptr, Tensor::from_vector<int64_t>({1, 1}, {1, 2})), Error);
  EXPECT_THROW(model->forward(ids, nullptr, Tensor::from_vector<int64_t>({1, 2, 1}, {1, 3})), Error);
  EXPECT_THROW(model->forward(ids, nullptr, Tensor::from_vector<float>({1, 1, 1}, {1, 3})), Error);
}

}  // namespace
