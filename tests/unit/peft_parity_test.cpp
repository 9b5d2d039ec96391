// Adapters and merged models written by wick, checked by the real peers: the folders under
// tests/fixtures/lora/wick-written/ are made by this file (WickWritten.*; regenerate with
// WICK_UPDATE_FIXTURES=1), and tests/tools/check_peft_adapters.py (run where PEFT and
// transformers are installed) loads them into PEFT / AutoModelForCausalLM and records their
// logits in peft_logits.safetensors, which PeftParity.* compares with wick's. Until that file
// exists, PeftParity.* skip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "wick/wick.h"

namespace {

using namespace wick;
namespace fs = std::filesystem;

std::string fixtures() { return std::string(WICK_FIXTURES_DIR); }
std::string model_dir() { return fixtures() + "/models/qwen2-tied"; }
std::string written_dir() { return fixtures() + "/lora/wick-written"; }

const std::vector<std::string> kAdapters = {"qv", "all-linear-rslora", "from-mlx"};

/// A wick adapter on the tiny model: apply_lora with `o`, B drawn N(0, 0.2) from `b_seed`.
void write_trained_like(const std::string& dir, const LoraOptions& o, uint64_t b_seed) {
  auto m = CausalLM::load(model_dir());
  apply_lora(*m, o);
  Generator g(b_seed);
  std::map<std::string, Tensor> bs;
  for (const auto& [name, t] : m->parameters())
    if (name.ends_with("lora_B.weight")) bs[name] = normal(t.shape(), g, 0.0, 0.2);
  m->update(bs);
  // A relative base path: the fixture must not name a machine's folders.
  save_peft_adapter(*m, dir, PeftAdapterConfig::from_options(o, "tests/fixtures/models/qwen2-tied"));
}

/// Everything under wick-written/, into `root`.
void make_fixtures(const std::string& root) {
  fs::create_directories(root);
  LoraOptions qv;
  qv.targets = {"q_proj", "v_proj"};
  qv.rank = 4;
  qv.alpha = 8;
  qv.seed = 1;
  write_trained_like(root + "/qv", qv, 2);

  LoraOptions all;
  all.targets = {"all-linear"};
  all.rank = 2;
  all.alpha = 4;
  all.dropout = 0.05;  // inactive in eval; checks that PEFT reads the field
  all.rslora = true;
  all.layers = {1};
  all.seed = 3;
  write_trained_like(root + "/all-linear-rslora", all, 4);

  // An mlx-lm adapter (layer 1 of the PEFT-made fixture, transposed, scale 2) converted.
  auto w = load_safetensors(fixtures() + "/lora/qwen2-tied-adapter/adapter_model.safetensors");
  std::map<std::string, Tensor> mlx;
  for (const auto& [k, t] : w) {
    std::string mod = k.substr(std::string("base_model.model.").size());
    if (!mod.starts_with("model.layers.1.")) continue;
    bool is_a = mod.ends_with(".lora_A.weight");
    mod = mod.substr(0, mod.size() - std::string(".lora_A.weight").size());
    mlx[mod + (is_a ? ".lora_a" : ".lora_b")] = contiguous(transpose(t));
  }
  wt::TempDir src;
  save_safetensors(src.file("adapters.safetensors"), mlx);
  nlohmann::json c = {{"model", "tests/fixtures/models/qwen2-tied"},
                      {"fine_tune_type", "lora"},
                      {"num_layers", 1},
                      {"lora_parameters", {{"rank", 4}, {"scale", 2.0}, {"dropout", 0.0}}}};
  wt::write_raw(src.file("adapter_config.json"), c.dump(2));
  save_peft_adapter(import_mlx_adapter(src.path), root + "/from-mlx");

  MergeOptions force;
  force.force = true;
  merge_adapter(model_dir(), root + "/qv", root + "/merged-qv", force);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  auto x = astype(a, DType::f32).to_vector<float>(), y = astype(b, DType::f32).to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}

std::vector<std::vector<int64_t>> sequences() {
  std::ifstream f(model_dir() + "/expected.json");
  return nlohmann::json::parse(f).at("sequences").get<std::vector<std::vector<int64_t>>>();
}

Tensor logits_of(CausalLM& m, const std::vector<int64_t>& ids) {
  int64_t T = static_cast<int64_t>(ids.size());
  return reshape(m.forward(Tensor::from_vector(ids, {1, T})), {T, -1}).eval();
}

TEST(WickWritten, FixturesAreWhatThisFileMakes) {
  const char* update = std::getenv("WICK_UPDATE_FIXTURES");
  if (update && std::string(update) == "1") {
    make_fixtures(written_dir());
    GTEST_SKIP() << "rewrote " << written_dir();
  }
  wt::TempDir tmp;
  make_fixtures(tmp.path);
  // Configs byte for byte; tensors within float rounding (the merge runs a GEMM whose order of
  // summation may differ between CPUs).
  for (const std::string& a : kAdapters) {
    EXPECT_EQ(wt::read_raw(tmp.path + "/" + a + "/adapter_config.json"),
              wt::read_raw(written_dir() + "/" + a + "/adapter_config.json"))
        << a;
  }
  for (const char* f : {"qv/adapter_model.safetensors", "all-linear-rslora/adapter_model.safetensors",
                               "from-mlx/adapter_model.safetensors", "merged-qv/model.safetensors"}) {
    auto want = load_safetensors(written_dir() + "/" + std::string(f));
    auto got = load_safetensors(tmp.path + "/" + std::string(f));
    ASSERT_EQ(want.size(), got.size()) << f;
    for (const auto& [k, t] : want) {
      ASSERT_TRUE(got.count(k)) << f << ": " << k;
      EXPECT_LE(max_abs_diff(got.at(k), t), 1e-6) << f << ": " << k;
    }
  }
  EXPECT_EQ(wt::read_raw(tmp.path + "/merged-qv/config.json"), wt::read_raw(written_dir() + "/merged-qv/config.json"));
}

class PeftParity : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = written_dir() + "/peft_logits.safetensors";
    if (!fs::exists(path_))
      GTEST_SKIP() << path_ << " is missing: run python3 tests/tools/check_peft_adapters.py where PEFT is installed";
    ref_ = load_safetensors(path_);
  }
  std::string path_;
  std::map<std::string, Tensor> ref_;
};

TEST_F(PeftParity, PeftLoadsWicksAdaptersWithTheSameLogits) {
  auto seqs = sequences();
  auto base = CausalLM::load(model_dir());
  for (const std::string& a : kAdapters) {
    auto m = CausalLM::load(model_dir());
    load_peft_adapter(*m, written_dir() + "/" + a);
    for (size_t i = 0; i < seqs.size(); ++i) {
      std::string key = "adapter/" + a + "/logits_" + std::to_string(i);
      ASSERT_TRUE(ref_.count(key)) << path_ << " has no " << key;
      Tensor ours = logits_of(*m, seqs[i]);
      EXPECT_LE(max_abs_diff(ours, ref_.at(key)), 1e-4) << key;
      EXPECT_GT(max_abs_diff(logits_of(*base, seqs[i]), ref_.at(key)), 1e-3) << key << ": the adapter must matter";
    }
  }
}

TEST_F(PeftParity, TransformersLoadsTheMergedModelWithTheAdaptersLogits) {
  auto seqs = sequences();
  auto with_adapter = CausalLM::load(model_dir());
  load_peft_adapter(*with_adapter, written_dir() + "/qv");
  auto merged = CausalLM::load(written_dir() + "/merged-qv");
  for (size_t i = 0; i < seqs.size(); ++i) {
    std::string key = "merged-qv/logits_" + std::to_string(i);
    ASSERT_TRUE(ref_.count(key)) << path_ << " has no " << key;
    EXPECT_LE(max_abs_diff(logits_of(*with_adapter, seqs[i]), ref_.at(key)), 1e-4) << key;
    EXPECT_LE(max_abs_diff(logits_of(*merged, seqs[i]), ref_.at(key)), 1e-4) << key;
  }
}

}  // namespace
