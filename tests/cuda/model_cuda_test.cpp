// Models and training on CUDA: the decoder fixtures' logits and greedy continuations (made by
// transformers, tests/tools/make_tiny_models.py), cached decoding, and LoRA training against
// PEFT's losses and against the same run on the CPU. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "common/adapter_util.h"
#include "common/compare.h"
#include "common/train_util.h"
#include "wick/wick.h"

namespace {

using namespace wick;
const Device kGpu = Device::cuda(0);

class CudaModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

std::string fixture(const std::string& name) { return wt::kFixtures + "/models/" + name; }

Tensor ids_of(const std::vector<int64_t>& seq) { return Tensor::from_vector(seq, {1, static_cast<int64_t>(seq.size())}); }

int64_t argmax_last(const Tensor& logits) {
  Tensor last = slice(logits, 1, logits.shape()[1] - 1, logits.shape()[1]);
  return argmax(reshape(last, {-1}), 0).item<int64_t>();
}

}  // namespace

TEST_P(CudaModel, LogitsGreedyAndCacheMatchTheReference) {
  auto j = nlohmann::json::parse(std::ifstream(fixture(GetParam()) + "/expected.json"));
  auto seqs = j.at("sequences").get<std::vector<std::vector<int64_t>>>();
  auto greedy = j.at("greedy").get<std::vector<int64_t>>();
  auto want = load_safetensors(fixture(GetParam()) + "/expected.safetensors");
  auto model = CausalLM::load(fixture(GetParam()));
  bool half = model->parameters().begin()->second.dtype() != f32;
  model->to(kGpu);
  ASSERT_EQ(model->device(), kGpu);
  for (size_t i = 0; i < seqs.size(); ++i) {
    Tensor logits = model->forward(ids_of(seqs[i]));
    ASSERT_EQ(logits.device(), kGpu);
    Tensor w = want.at("logits_" + std::to_string(i));
    // bf16 weights: each op rounds to bf16 on both sides, in a different order.
    EXPECT_LE(wt::max_abs_diff(reshape(logits, w.shape()), w), half ? 5e-2 : 1e-4) << GetParam() << " " << i;
  }
  KVCache cache = model->make_cache(1, static_cast<int64_t>(seqs[0].size() + greedy.size()));
  Tensor logits = model->forward(ids_of(seqs[0]), &cache);
  std::vector<int64_t> got;
  for (size_t i = 0; i < greedy.size(); ++i) {
    got.push_back(argmax_last(logits));
    if (i + 1 < greedy.size()) logits = model->forward(ids_of({got.back()}), &cache);
  }
  if (!half) {
    EXPECT_EQ(got, greedy) << GetParam();
  }
}

TEST_P(CudaModel, CompiledStepsReplayCudaGraphsWithTheLazyStepsTokens) {
  auto j = nlohmann::json::parse(std::ifstream(fixture(GetParam()) + "/expected.json"));
  auto seqs = j.at("sequences").get<std::vector<std::vector<int32_t>>>();
  auto greedy = j.at("greedy").get<std::vector<int32_t>>();
  auto model = CausalLM::load(fixture(GetParam()));
  bool half = model->parameters().begin()->second.dtype() != f32;
  auto cpu = CausalLM::load(fixture(GetParam()));
  model->to(kGpu);
  // decode_step on the GPU (in-place cache writes, positions read on the device) against the CPU.
  KVCache gc = model->make_cache(1, 6), cc = cpu->make_cache(1, 6);
  auto step = compile([&](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{model->decode_step(in[0], gc, in[1])};
  });
  for (int64_t p = 0; p < 6; ++p) {
    Tensor id = Tensor::from_vector<int32_t>({seqs[0][static_cast<size_t>(p)]}, {1, 1});
    Tensor pos = Tensor::from_vector<int64_t>({p}, {1});
    Tensor g = step({to(id, kGpu), to(pos, kGpu)})[0];
    Tensor c = cpu->decode_step(id, cc, pos);
    EXPECT_LE(wt::max_abs_diff(to(g, Device::cpu()), c), half ? 5e-2 : 1e-4) << GetParam() << " position " << p;
  }
  CompileStats st = step.stats();
  EXPECT_EQ(st.graph_captures, 1u) << st.graph_failure;
  EXPECT_EQ(st.graph_replays, 5u);
  // A position past the cache fails in the graph, through the device's error flag.
  try {
    step({to(Tensor::from_vector<int32_t>({1}, {1, 1}), kGpu), to(Tensor::from_vector<int64_t>({6}, {1}), kGpu)})[0].eval();
    FAIL() << "a write past the cache must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("write_at"), std::string::npos) << e.what();
  }
  // generate(): compiled steps replaying graphs, compiled steps without graphs, lazy steps.
  std::vector<std::vector<int32_t>> runs;
  for (int way = 0; way < 3; ++way) {
    for (bool pipeline : {true, false}) {
      GenerationOptions o;
      o.max_new_tokens = static_cast<int64_t>(greedy.size());
      o.sampling.do_sample = false;
      o.pipeline = pipeline;
      o.compiled_steps = way < 2;
      set_cuda_graphs(way == 0);
      runs.push_back(generate(*model, nullptr, seqs[0], o).tokens);
      set_cuda_graphs(true);
    }
  }
  for (size_t r = 0; r < runs.size(); ++r) {
    if (!half) {
      EXPECT_EQ(runs[r], greedy) << GetParam() << " run " << r;
    } else {
      EXPECT_EQ(runs[r].size(), greedy.size());
    }
  }
}

TEST_P(CudaModel, GenerationsOnSeveralStreamsRunSideBySideWithTheSameTokens) {
  // Three generations at once, each on a stream (and so a CUDA stream) of its own, replaying
  // graphs of their own: the tokens equal those of one generation on the default stream.
  auto j = nlohmann::json::parse(std::ifstream(fixture(GetParam()) + "/expected.json"));
  auto seqs = j.at("sequences").get<std::vector<std::vector<int32_t>>>();
  auto model = CausalLM::load(fixture(GetParam()));
  model->to(kGpu);
  GenerationOptions o;
  o.max_new_tokens = 24;
  o.sampling.do_sample = false;
  const std::vector<int32_t> want = generate(*model, nullptr, seqs[0], o).tokens;
  std::vector<std::vector<int32_t>> got(3);
  std::vector<std::exception_ptr> errors(3);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      try {
        GenerationOptions mine = o;
        mine.stream = new_stream(kGpu);
        got[t] = generate(*model, nullptr, seqs[0], mine).tokens;
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  for (std::thread& t : threads) t.join();
  for (size_t t = 0; t < got.size(); ++t) {
    if (errors[t]) std::rethrow_exception(errors[t]);
    EXPECT_EQ(got[t], want) << GetParam() << " stream " << t;
  }
}

TEST_P(CudaModel, CompiledStepsWithAnAdapterGiveTheCpuLogits) {
  // An adapter on q, v, gate and up: its rank-r paths run inside the fused GEMVs (one with the
  // norm and q/k/v, one with silu(gate)·up), against the lazy steps on the CPU.
  const std::vector<std::string> targets = {"q_proj", "v_proj", "gate_proj", "up_proj"};
  auto model = CausalLM::load(fixture(GetParam())), cpu = CausalLM::load(fixture(GetParam()));
  bool half = model->parameters().begin()->second.dtype() != f32;
  wt::add_random_adapter(*model, targets, 11);
  wt::add_random_adapter(*cpu, targets, 11);
  model->to(kGpu);
  KVCache gc = model->make_cache(1, 6), cc = cpu->make_cache(1, 6);
  auto step = compile([&](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{model->decode_step(in[0], gc, in[1])};
  });
  for (int64_t p = 0; p < 6; ++p) {
    Tensor id = Tensor::from_vector<int32_t>(
        {std::vector<int32_t>{3, 1, 4, 1, 5, 9}[static_cast<size_t>(p)]}, {1, 1});
    Tensor pos = Tensor::from_vector<int64_t>({p}, {1});
    Tensor g = step({to(id, kGpu), to(pos, kGpu)})[0];
    Tensor c = cpu->decode_step(id, cc, pos);
    EXPECT_LE(wt::max_abs_diff(to(g, Device::cpu()), c), half ? 5e-2 : 1e-4)
        << GetParam() << " position " << p;
  }
  const std::string plan = step.describe();
  EXPECT_NE(plan.find("+lora"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("lora_linear"), std::string::npos) << plan;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaModel,
                         ::testing::Values("qwen2-tied", "qwen2-gqa-bf16", "llama3-rope", "mistral-swa"));

TEST(CudaTrain, MatchesPeftLikeTheCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  wt::TempDir tmp;
  TrainOptions o = wt::base_options(wt::model_folder(tmp), wt::kTrainFixture + "/data.jsonl", tmp.file("out"));
  o.device = "cuda";
  o.init_adapter = wt::kTrainFixture + "/initial";
  o.targets = {"q_proj", "v_proj"};
  o.steps = 20;
  o.batch_size = 1;
  o.shuffle = false;
  o.max_grad_norm = 0;
  o.weight_decay = 0.01;
  TrainResult r = train(o);
  EXPECT_EQ(r.steps, 20);
  auto expected = nlohmann::json::parse(std::ifstream(wt::kTrainFixture + "/losses.json"))["losses"];
  std::vector<double> got = wt::losses(o.output_dir);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[i].get<double>(), 1e-4 * std::abs(expected[i].get<double>())) << "step " << i + 1;
}

TEST(CudaTrain, AllLinearLoraEqualsTheCpuRun) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  wt::TempDir tmp;
  std::string model = wt::model_folder(tmp), data = wt::data_file(tmp, 24);
  TrainOptions cpu = wt::base_options(model, data, tmp.file("cpu"));
  cpu.targets = {"all-linear"};
  cpu.steps = 10;
  cpu.batch_size = 4;
  cpu.grad_accum = 2;
  TrainOptions gpu = cpu;
  gpu.output_dir = tmp.file("gpu");
  gpu.device = "cuda";
  train(cpu);
  train(gpu);
  std::vector<double> a = wt::losses(cpu.output_dir), b = wt::losses(gpu.output_dir);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * std::abs(a[i])) << "step " << i + 1;
  auto wa = load_safetensors(cpu.output_dir + "/adapter_model.safetensors");
  auto wb = load_safetensors(gpu.output_dir + "/adapter_model.safetensors");
  for (const auto& [name, t] : wa) EXPECT_LE(wt::max_abs_diff(t, wb.at(name)), 1e-4) << name;
}
