// wick::train end to end on the tiny Qwen2 fixture: parity with PEFT + torch AdamW (fixture made
// by tests/tools/make_peft_train_fixture.py), resume == uninterrupted, interruption, NaN stop,
// accumulation, compiled == lazy, full fine-tuning, and option errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/tensor_util.h"
#include "common/train_util.h"
#include "wick/wick.h"

namespace {

namespace fs = std::filesystem;
using namespace wick;

using wt::base_options;
using wt::data_file;
using wt::kFixtures;
using wt::kTrainFixture;
using wt::losses;
using wt::metrics;
using wt::model_folder;

TEST(Trainer, MatchesPeftAndTorchAdamW) {
  if (!fs::exists(kTrainFixture + "/losses.json")) GTEST_SKIP() << "run tests/tools/make_peft_train_fixture.py";
  wt::TempDir tmp;
  TrainOptions o = base_options(model_folder(tmp), kTrainFixture + "/data.jsonl", tmp.file("out"));
  o.init_adapter = kTrainFixture + "/initial";
  o.targets = {"q_proj", "v_proj"};
  o.steps = 20;
  o.batch_size = 1;
  o.shuffle = false;
  o.max_grad_norm = 0;
  o.weight_decay = 0.01;
  TrainResult r = train(o);
  EXPECT_EQ(r.steps, 20);
  auto expected = nlohmann::json::parse(std::ifstream(kTrainFixture + "/losses.json"))["losses"];
  std::vector<double> got = losses(o.output_dir);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[i].get<double>(), 1e-4 * std::abs(expected[i].get<double>())) << "step " << i + 1;
  auto want = load_safetensors(kTrainFixture + "/final/adapter_model.safetensors");
  auto have = load_safetensors(o.output_dir + "/adapter_model.safetensors");
  ASSERT_EQ(want.size(), have.size());
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(have.count(name)) << name;
    auto a = w.to_vector<float>(), b = have.at(name).to_vector<float>();
    ASSERT_EQ(a.size(), b.size());
    double worst = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, double(std::abs(a[i] - b[i])));
      scale = std::max(scale, double(std::abs(a[i])));
    }
    EXPECT_LE(worst, 1e-4 * std::max(scale, 1e-3)) << name;
  }
}

TEST(Trainer, ResumeEqualsUninterrupted) {
  wt::TempDir tmp;
  std::string model = model_folder(tmp), data = data_file(tmp, 12);
  TrainOptions full = base_options(model, data, tmp.file("full"));
  full.dropout = 0.1;  // resumed dropout masks must repeat too
  train(full);

  TrainOptions first = full;
  first.output_dir = tmp.file("split");
  std::atomic<bool> stop{false};
  TrainResult a = train(first, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::step && e.step == 3) stop = true;
  }, &stop);
  EXPECT_TRUE(a.interrupted);
  EXPECT_EQ(a.steps, 3);
  EXPECT_TRUE(fs::exists(a.last_checkpoint + "/adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(a.last_checkpoint + "/optimizer.safetensors"));

  TrainOptions second = first;
  second.resume = first.output_dir;  // the output folder: its latest checkpoint
  TrainResult b = train(second);
  EXPECT_FALSE(b.interrupted);
  EXPECT_EQ(b.steps, 8);
  std::vector<double> want = losses(full.output_dir), got = losses(second.output_dir);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << "step " << i + 1;
  auto wa = load_safetensors(full.output_dir + "/adapter_model.safetensors");
  auto wb = load_safetensors(second.output_dir + "/adapter_model.safetensors");
  for (const auto& [name, t] : wa) EXPECT_EQ(t.to_vector<float>(), wb.at(name).to_vector<float>()) << name;

  // A resumed run must repeat the original options.
  TrainOptions changed = second;
  changed.rank = 8;
  try {
    train(changed);
    FAIL() << "a different --rank was accepted on resume";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank"), std::string::npos) << e.what();
  }
}

TEST(Trainer, CheckpointsAreCompleteFolders) {
  wt::TempDir tmp;
  TrainOptions o = base_options(model_folder(tmp), data_file(tmp, 6), tmp.file("out"));
  o.steps = 4;
  o.save_every = 2;
  std::vector<std::string> saved;
  train(o, [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::checkpoint) saved.push_back(e.text);
  });
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(fs::path(saved[0]).filename(), "step-00000002");
  EXPECT_EQ(fs::path(saved[1]).filename(), "step-00000004");
  for (const auto& e : fs::directory_iterator(o.output_dir + "/checkpoints")) {
    std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "latest" || name.rfind("step-", 0) == 0) << "left behind: " << name;
  }
  std::ifstream latest(o.output_dir + "/checkpoints/latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "step-00000004");
  auto state = nlohmann::json::parse(std::ifstream(saved[1] + "/trainer_state.json"));
  EXPECT_EQ(state["step"], 4);
  // The adapter of the output loads back onto the base model.
  auto model = CausalLM::load(o.model_dir);
  EXPECT_EQ(load_peft_adapter(*model, o.output_dir).size(), 4u);  // q and v of 2 layers
}

TEST(Trainer, NonFiniteLossStopsAndKeepsTheLastCheckpoint) {
  wt::TempDir tmp;
  TrainOptions o = base_options(model_folder(tmp), data_file(tmp, 8), tmp.file("out"));
  o.full = true;
  o.lr = 1e30;  // the first update overflows the weights
  o.max_grad_norm = 0;
  o.save_every = 1;
  o.steps = 6;
  try {
    train(o);
    FAIL() << "a non-finite loss did not stop training";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("step 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("step-00000001"), std::string::npos) << msg;
  }
  std::ifstream latest(o.output_dir + "/checkpoints/latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "step-00000001");
  EXPECT_EQ(metrics(o.output_dir + "/metrics.jsonl").size(), 1u);
}

TEST(Trainer, AccumulationEqualsOneBigBatch) {
  wt::TempDir tmp;
  std::string model = model_folder(tmp), data = data_file(tmp, 8);
  TrainOptions big = base_options(model, data, tmp.file("big"));
  big.shuffle = false;
  big.batch_size = 4;
  big.steps = 2;
  TrainOptions acc = big;
  acc.output_dir = tmp.file("acc");
  acc.batch_size = 1;
  acc.grad_accum = 4;
  train(big);
  train(acc);
  std::vector<double> a = losses(big.output_dir), b = losses(acc.output_dir);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5 * std::abs(a[i])) << "step " << i + 1;
}

TEST(Trainer, CompiledEqualsLazyAndValidationIsReported) {
  wt::TempDir tmp;
  std::string model = model_folder(tmp), data = data_file(tmp, 8), valid = data_file(tmp, 3, 99);
  TrainOptions c = base_options(model, data, tmp.file("compiled"));
  c.valid_path = valid;
  c.eval_every = 4;
  c.targets = {"all-linear"};
  TrainOptions l = c;
  l.output_dir = tmp.file("lazy");
  l.compile = false;
  train(c);
  train(l);
  auto mc = metrics(c.output_dir + "/metrics.jsonl"), ml = metrics(l.output_dir + "/metrics.jsonl");
  ASSERT_EQ(mc.size(), 8u);
  ASSERT_EQ(ml.size(), 8u);
  for (size_t i = 0; i < mc.size(); ++i) {
    EXPECT_NEAR(mc[i]["loss"].get<double>(), ml[i]["loss"].get<double>(), 1e-5) << "step " << i + 1;
    for (const char* key : {"step", "loss", "lr", "grad_norm", "tokens", "tok_s"}) EXPECT_TRUE(mc[i].contains(key)) << key;
    EXPECT_EQ(mc[i].contains("val_loss"), i == 3 || i == 7) << "step " << i + 1;
  }
  EXPECT_NEAR(mc[7]["val_loss"].get<double>(), ml[7]["val_loss"].get<double>(), 1e-5);
}

TEST(Trainer, FullFineTuningWritesALoadableModel) {
  wt::TempDir tmp;
  TrainOptions o = base_options(model_folder(tmp), data_file(tmp, 4), tmp.file("out"));
  o.full = true;
  o.lr = 3e-3;
  o.steps = 12;
  o.batch_size = 4;
  o.shuffle = false;
  o.save_dtype = "bf16";
  train(o);
  std::vector<double> l = losses(o.output_dir);
  EXPECT_LT(l.back(), l.front() - 0.3) << "training on 4 records did not lower the loss";
  auto model = CausalLM::load(o.output_dir);
  EXPECT_TRUE(fs::exists(o.output_dir + "/tokenizer.json"));
  auto cfg = nlohmann::json::parse(std::ifstream(o.output_dir + "/config.json"));
  EXPECT_EQ(cfg.contains("dtype") ? cfg["dtype"] : cfg["torch_dtype"], "bfloat16");
  EXPECT_EQ(SafetensorsFile(o.output_dir + "/model.safetensors").info("model.norm.weight").wick_dtype, DType::bf16);
}

TEST(Trainer, BadOptionsFailClearly) {
  wt::TempDir tmp;
  TrainOptions good = base_options(model_folder(tmp), data_file(tmp, 4), tmp.file("out"));
  auto fails = [&](TrainOptions o, const std::string& needle) {
    try {
      train(o);
      ADD_FAILURE() << "accepted; expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  TrainOptions o = good;
  o.rank = 0;
  fails(o, "--rank");
  o = good;
  o.steps = 3;
  o.epochs = 1;
  fails(o, "--steps or --epochs");
  o = good;
  o.device = "cuda";
  fails(o, "CUDA");
  o = good;
  o.targets = {"no_such_proj"};
  fails(o, "no_such_proj");
  o = good;
  o.resume = tmp.file("nowhere");
  fails(o, "nowhere");
}

}  // namespace
