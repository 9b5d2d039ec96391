// merge_adapter: the merged folder gives the logits of base + adapter, keeps names, dtypes and
// the tied head as the original, copies config and tokenizer files, is written atomically, and
// refuses to overwrite unless forced.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/compare.h"
#include "wick/wick.h"

namespace {

using namespace wick;
namespace fs = std::filesystem;
using nlohmann::json;

std::string fixtures() { return std::string(WICK_FIXTURES_DIR); }
std::string tied_dir() { return fixtures() + "/models/qwen2-tied"; }
std::string bf16_dir() { return fixtures() + "/models/qwen2-gqa-bf16"; }
std::string peft_dir() { return fixtures() + "/lora/qwen2-tied-adapter"; }

const std::vector<int64_t> kIds = {200, 13, 77, 9, 128, 64, 31, 190, 2, 255, 18, 100};

Tensor logits_of(CausalLM& m) {
  int64_t T = static_cast<int64_t>(kIds.size());
  return m.forward(Tensor::from_vector(kIds, {1, T})).eval();
}

using wt::max_abs_diff;

json read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

/// An all-linear rank-2 adapter for the bf16 (untied) model, written by wick.
void write_bf16_adapter(const std::string& dir) {
  auto m = CausalLM::load(bf16_dir());
  LoraOptions o;
  o.targets = {"all-linear"};
  o.rank = 2;
  o.alpha = 4;
  o.seed = 1;
  apply_lora(*m, o);
  Generator g(2);
  std::map<std::string, Tensor> bs;
  for (const auto& [name, t] : m->parameters())
    if (name.ends_with("lora_B.weight")) bs[name] = normal(t.shape(), g, 0.0, 0.3);
  m->update(bs);
  save_peft_adapter(*m, dir, PeftAdapterConfig::from_options(o, bf16_dir()));
}

TEST(Merge, TiedModelGivesTheAdaptersLogits) {
  wt::TempDir tmp;
  const std::string out = tmp.file("merged");
  MergeReport r = merge_adapter(tied_dir(), peft_dir(), out);
  EXPECT_EQ(r.merged_modules.size(), 6u);
  EXPECT_EQ(r.copied_files, (std::vector<std::string>{"config.json", "generation_config.json"}));
  EXPECT_EQ(tmp.entries(), std::vector<std::string>{"merged"});  // no temporary folder left

  // Same names, shapes and dtypes as the original; no lm_head (tied).
  SafetensorsFile orig(tied_dir() + "/model.safetensors"), merged(out + "/model.safetensors");
  EXPECT_EQ(merged.names(), orig.names());
  EXPECT_FALSE(merged.contains("lm_head.weight"));
  EXPECT_EQ(merged.metadata().at("format"), "pt");
  for (const auto& n : orig.names()) {
    EXPECT_EQ(merged.info(n).dtype, orig.info(n).dtype) << n;
    EXPECT_EQ(merged.info(n).shape, orig.info(n).shape) << n;
    bool adapted = n.find("q_proj.weight") != std::string::npos || n.find("v_proj.weight") != std::string::npos ||
                   n.find("down_proj.weight") != std::string::npos;
    double d = max_abs_diff(merged.load(n), orig.load(n));
    if (adapted)
      EXPECT_GT(d, 1e-3) << n;
    else
      EXPECT_EQ(d, 0.0) << n;
  }
  EXPECT_EQ(wt::read_raw(out + "/config.json"), wt::read_raw(tied_dir() + "/config.json"));

  auto with_adapter = CausalLM::load(tied_dir());
  load_peft_adapter(*with_adapter, peft_dir());
  auto merged_model = CausalLM::load(out);
  EXPECT_LE(max_abs_diff(logits_of(*merged_model), logits_of(*with_adapter)), 1e-4);
}

TEST(Merge, MergedWeightIsBaseplusScaledBA) {
  wt::TempDir tmp;
  merge_adapter(tied_dir(), peft_dir(), tmp.file("m"));
  const std::string mod = "model.layers.1.mlp.down_proj";
  Tensor w = load_safetensors(tied_dir() + "/model.safetensors").at(mod + ".weight");
  Tensor got = load_safetensors(tmp.file("m/model.safetensors")).at(mod + ".weight");
  auto ad = load_safetensors(peft_dir() + "/adapter_model.safetensors");
  auto a = ad.at("base_model.model." + mod + ".lora_A.weight").to_vector<float>();
  auto b = ad.at("base_model.model." + mod + ".lora_B.weight").to_vector<float>();
  auto wv = w.to_vector<float>(), gv = got.to_vector<float>();
  const int64_t out = w.shape()[0], in = w.shape()[1], r = 4;
  double worst = 0;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      double ba = 0;
      for (int64_t k = 0; k < r; ++k) ba += double(b[o * r + k]) * a[k * in + i];
      worst = std::max(worst, std::abs(wv[o * in + i] + 2.0 * ba - gv[o * in + i]));
    }
  EXPECT_LE(worst, 1e-6);
}

TEST(Merge, Bf16KeepsItsDtypeOrConverts) {
  wt::TempDir tmp;
  write_bf16_adapter(tmp.file("adapter"));
  auto reference = CausalLM::load(bf16_dir());
  load_peft_adapter(*reference, tmp.file("adapter"));
  Tensor want = logits_of(*reference);

  MergeReport r = merge_adapter(bf16_dir(), tmp.file("adapter"), tmp.file("auto"));
  EXPECT_EQ(r.merged_modules.size(), 14u);  // 7 per layer; lm_head is never adapted
  SafetensorsFile f(tmp.file("auto/model.safetensors"));
  ASSERT_TRUE(f.contains("lm_head.weight"));  // untied: the head stays
  for (const auto& t : f.tensors()) EXPECT_EQ(t.dtype, "BF16") << t.name;
  EXPECT_EQ(wt::read_raw(tmp.file("auto/config.json")), wt::read_raw(bf16_dir() + "/config.json"));
  // One bf16 rounding of each merged weight: the logits move by that rounding only.
  auto m = CausalLM::load(tmp.file("auto"));
  double d = max_abs_diff(logits_of(*m), want);
  EXPECT_LE(d, 2e-2);

  MergeOptions o;
  o.dtype = DType::f32;
  merge_adapter(bf16_dir(), tmp.file("adapter"), tmp.file("f32"), o);
  SafetensorsFile g(tmp.file("f32/model.safetensors"));
  for (const auto& t : g.tensors()) EXPECT_EQ(t.dtype, "F32") << t.name;
  json cfg = read_json(tmp.file("f32/config.json"));
  EXPECT_EQ(cfg["dtype"], "float32");
  EXPECT_FALSE(cfg.contains("torch_dtype"));
  json orig = read_json(bf16_dir() + "/config.json");
  orig["dtype"] = "float32";
  EXPECT_EQ(cfg, orig);  // nothing else changed
  auto m32 = CausalLM::load(tmp.file("f32"));
  EXPECT_LE(max_abs_diff(logits_of(*m32), want), 1e-4);
  EXPECT_LT(max_abs_diff(logits_of(*m32), want), d + 1e-9);  // f32 is at least as close as bf16
}

TEST(Merge, RefusesToOverwriteUnlessForced) {
  wt::TempDir tmp;
  const std::string out = tmp.file("out");
  fs::create_directories(out);
  merge_adapter(tied_dir(), peft_dir(), out);  // an empty folder is fine
  wt::write_raw(out + "/stale.txt", "x");
  try {
    merge_adapter(tied_dir(), peft_dir(), out);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(out + "/stale.txt"));
  MergeOptions o;
  o.force = true;
  merge_adapter(tied_dir(), peft_dir(), out, o);
  EXPECT_FALSE(fs::exists(out + "/stale.txt"));
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  EXPECT_EQ(tmp.entries(), std::vector<std::string>{"out"});
}

TEST(Merge, FailuresLeaveNothingBehind) {
  wt::TempDir tmp;
  write_bf16_adapter(tmp.file("bf16-adapter"));
  // An adapter for another shape of model (all-linear on a different model: k_proj/v_proj sizes
  // and the head differ) is refused before anything is written.
  try {
    merge_adapter(tied_dir(), tmp.file("bf16-adapter"), tmp.file("out"));
    ADD_FAILURE() << "merged an adapter made for another model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adapter_model.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_THROW(merge_adapter(tied_dir(), tmp.file("nope"), tmp.file("out")), Error);
  EXPECT_THROW(merge_adapter(tmp.file("nope"), peft_dir(), tmp.file("out")), Error);
  // A model folder whose weights are truncated.
  fs::create_directories(tmp.file("broken"));
  fs::copy_file(tied_dir() + "/config.json", tmp.file("broken/config.json"));
  std::string bytes = wt::read_raw(tied_dir() + "/model.safetensors");
  wt::write_raw(tmp.file("broken/model.safetensors"), bytes.substr(0, bytes.size() - 100));
  EXPECT_THROW(merge_adapter(tmp.file("broken"), peft_dir(), tmp.file("out")), Error);
  // The output path is a file.
  wt::write_raw(tmp.file("file"), "x");
  EXPECT_THROW(merge_adapter(tied_dir(), peft_dir(), tmp.file("file")), Error);
  std::vector<std::string> want = {"bf16-adapter", "broken", "file"};
  EXPECT_EQ(tmp.entries(), want);
}

}  // namespace
