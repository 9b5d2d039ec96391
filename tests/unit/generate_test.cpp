// Generation against the fixtures of tests/fixtures/models (greedy continuations written by the
// reference implementation), and against itself: pipelined = sequential, device-chained greedy =
// host greedy, a left-padded batch = one prompt at a time, and the stop rules (EOS, stop
// strings, token budget, context length, the callback) with the streamed text.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/adapter_util.h"
#include "common/byte_tokenizer.h"
#include "common/compare.h"
#include "wick/wick.h"

namespace {

using namespace wick;
using Json = nlohmann::json;

const std::vector<std::string> kModels = {"qwen2-tied", "qwen2-gqa-bf16", "llama3-rope", "mistral-swa"};

std::string fixture(const std::string& name) { return std::string(WICK_FIXTURES_DIR) + "/models/" + name; }

struct Expected {
  std::vector<std::vector<int32_t>> sequences;
  std::vector<int32_t> greedy;
};

Expected read_expected(const std::string& name) {
  std::ifstream f(fixture(name) + "/expected.json");
  auto j = Json::parse(f);
  return {j.at("sequences").get<std::vector<std::vector<int32_t>>>(), j.at("greedy").get<std::vector<int32_t>>()};
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

GenerationOptions greedy_options(int64_t n, bool pipeline) {
  GenerationOptions o;
  o.max_new_tokens = n;
  o.sampling.temperature = 0;
  o.pipeline = pipeline;
  return o;
}

GenerationOptions sampled_options(int64_t n, bool pipeline, uint64_t seed = 5) {
  GenerationOptions o;
  o.max_new_tokens = n;
  o.sampling.temperature = 0.9;
  o.sampling.top_k = 40;
  o.sampling.top_p = 0.95;
  o.sampling.min_p = 0.01;
  o.sampling.repetition_penalty = 1.15;
  o.sampling.seed = seed;
  o.pipeline = pipeline;
  return o;
}

class Models : public ::testing::TestWithParam<std::string> {};

TEST_P(Models, GreedyEqualsTheFixtureOnEverySchedule) {
  auto model = CausalLM::load(fixture(GetParam()));
  Expected e = read_expected(GetParam());
  const int64_t n = static_cast<int64_t>(e.greedy.size());
  // pipeline on: device-chained argmax; off: host sampler.
  GenerationResult chained = generate(*model, nullptr, e.sequences[0], greedy_options(n, true));
  GenerationResult host = generate(*model, nullptr, e.sequences[0], greedy_options(n, false));
  EXPECT_EQ(chained.tokens, e.greedy);
  EXPECT_EQ(host.tokens, e.greedy);
  EXPECT_EQ(chained.stop_reason, StopReason::max_tokens);
  ASSERT_EQ(chained.logprobs.size(), host.logprobs.size());
  for (size_t i = 0; i < host.logprobs.size(); ++i) {
    EXPECT_NEAR(chained.logprobs[i], host.logprobs[i], 1e-4) << i;
    EXPECT_LE(host.logprobs[i], 0.0f);
  }
  // The host path through the pipelined schedule: a penalty of 1 + epsilon changes nothing
  // about this argmax (the fixture's margins are clear) but forces host sampling.
  GenerationOptions o = greedy_options(n, true);
  o.sampling.repetition_penalty = 1.0 + 1e-7;
  EXPECT_EQ(generate(*model, nullptr, e.sequences[0], o).tokens, e.greedy);
}

TEST_P(Models, CompiledStepsEqualLazySteps) {
  // Steps through CausalLM::decode_step (the whole cache under a position mask, written in
  // place) against steps built lazily over the cache prefix.
  auto model = CausalLM::load(fixture(GetParam()));
  Expected e = read_expected(GetParam());
  const int64_t n = static_cast<int64_t>(e.greedy.size());
  for (bool pipeline : {true, false}) {
    GenerationOptions g = greedy_options(n, pipeline);
    g.compiled_steps = true;
    GenerationResult compiled = generate(*model, nullptr, e.sequences[0], g);
    g.compiled_steps = false;
    GenerationResult lazy = generate(*model, nullptr, e.sequences[0], g);
    EXPECT_EQ(compiled.tokens, e.greedy) << "pipeline " << pipeline;
    ASSERT_EQ(compiled.logprobs.size(), lazy.logprobs.size());
    for (size_t i = 0; i < lazy.logprobs.size(); ++i) EXPECT_NEAR(compiled.logprobs[i], lazy.logprobs[i], 1e-4) << i;
    GenerationOptions s = sampled_options(20, pipeline);
    s.compiled_steps = true;
    GenerationResult a = generate(*model, nullptr, e.sequences[1], s);
    s.compiled_steps = false;
    EXPECT_EQ(a.tokens, generate(*model, nullptr, e.sequences[1], s).tokens) << "pipeline " << pipeline;
  }
}

TEST(Generate, DecodeStepChecksItsPosition) {
  auto model = CausalLM::load(fixture("qwen2-tied"));
  KVCache cache = model->make_cache(1, 4);
  Tensor ids = Tensor::from_vector<int32_t>({5}, {1, 1});
  // The position is read when the step runs: past the cache it fails there, naming the write.
  Tensor bad = model->decode_step(ids, cache, Tensor::from_vector<int64_t>({4}, {1}));
  try {
    bad.eval();
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("write_at"), std::string::npos) << err.what();
  }
  EXPECT_THROW(model->decode_step(ids, cache, Tensor::from_vector<float>({0.0f}, {1})), Error);
  EXPECT_THROW(model->decode_step(Tensor::from_vector<int32_t>({1, 2}, {2, 1}), cache,
                                  Tensor::from_vector<int64_t>({0}, {1})),
               Error);
  // Steps at positions 0..3 give the logits of a lazy forward over the same ids.
  std::vector<int32_t> seq = {3, 1, 4, 1};
  Tensor full_logits = model->forward(Tensor::from_vector(seq, {1, 4}));
  for (int64_t p = 0; p < 4; ++p) {
    Tensor l = model->decode_step(Tensor::from_vector<int32_t>({seq[p]}, {1, 1}), cache,
                                  Tensor::from_vector<int64_t>({p}, {1}));
    std::vector<float> got = l.to_vector<float>();
    std::vector<float> want = slice(full_logits, 1, p, p + 1).to_vector<float>();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4) << p << " " << i;
  }
  // Several tokens per step (a chunk of a prompt): each row sees the positions up to its own.
  KVCache chunked = model->make_cache(1, 8);
  std::vector<int32_t> first = {3, 1, 4}, second = {1, 5};
  Tensor a = model->decode_step(Tensor::from_vector(first, {1, 3}), chunked, Tensor::from_vector<int64_t>({0}, {1}));
  Tensor b = model->decode_step(Tensor::from_vector(second, {1, 2}), chunked, Tensor::from_vector<int64_t>({3}, {1}));
  Tensor whole = model->forward(Tensor::from_vector<int32_t>({3, 1, 4, 1, 5}, {1, 5}));
  EXPECT_LE(wt::max_abs_diff(concatenate({a, b}, 1), whole), 1e-4);
}

TEST(Generate, CompiledDecodeStepFusesEachLayerIntoFiveKernels) {
  // Per layer: q/k/v with their norm, attention writing the rotated key and the value into the
  // caches, rotating q and hiding keys by the position, o + residual, gate/up with their norm
  // and silu(gate)·up, down + residual. The same logits as the lazy step at every position (each
  // reads the rows the earlier steps wrote), and the same range check.
  auto model = CausalLM::load(fixture("qwen2-tied"));
  KVCache lazy = model->make_cache(1, 4), fused = model->make_cache(1, 4);
  auto step = compile([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model->decode_step(in[0], fused, in[1])}; });
  std::vector<int32_t> seq = {3, 1, 4, 1};
  for (int64_t p = 0; p < 4; ++p) {
    Tensor ids = Tensor::from_vector<int32_t>({seq[p]}, {1, 1}), pos = Tensor::from_vector<int64_t>({p}, {1});
    Tensor want = model->decode_step(ids, lazy, pos);
    Tensor got = step({ids, pos})[0];
    EXPECT_LE(wt::max_abs_diff(got, want), 1e-5) << "position " << p;
  }
  const std::string plan = step.describe();
  for (const char* op :
       {"fused_linear[rms_norm, 64+a | 32+a | 32+a]", "cached_attention[position mask]",
        "fused_linear[rms_norm, silu(gate)*up, 128 | 128]"})
    EXPECT_NE(plan.find(op), std::string::npos) << op << "\n" << plan;
  EXPECT_EQ(plan.find("write_at"), std::string::npos) << plan;
  const int64_t layers = model->config().num_hidden_layers;
  // Besides the layers: the embedding, and the final norm with the head (the mask is folded into
  // the attention kernels).
  EXPECT_LE(step.stats().kernels_planned, static_cast<size_t>(5 * layers + 2)) << plan;
  EXPECT_EQ(plan.find("position_mask"), std::string::npos) << plan;
  try {
    step({Tensor::from_vector<int32_t>({1}, {1, 1}), Tensor::from_vector<int64_t>({4}, {1})})[0].eval();
    FAIL() << "a write past the cache must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("write_at"), std::string::npos) << e.what();
  }
}

TEST(Generate, CompiledDecodeStepCarriesAnAdapterInsideItsFusedProjections) {
  // A served adapter on q, v, gate and up: each adapted projection joins its fused GEMV with its
  // rank-r path (q/k/v stay one op, gate/up with silu(gate)·up another), with the lazy step's
  // logits.
  auto model = CausalLM::load(fixture("qwen2-tied"));
  wt::add_random_adapter(*model, {"q_proj", "v_proj", "gate_proj", "up_proj"}, 11);
  KVCache lazy = model->make_cache(1, 4), fused = model->make_cache(1, 4);
  auto step = compile([&](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{model->decode_step(in[0], fused, in[1])};
  });
  std::vector<int32_t> seq = {3, 1, 4, 1};
  for (int64_t p = 0; p < 4; ++p) {
    Tensor ids = Tensor::from_vector<int32_t>({seq[p]}, {1, 1}),
           pos = Tensor::from_vector<int64_t>({p}, {1});
    Tensor want = model->decode_step(ids, lazy, pos);
    EXPECT_LE(wt::max_abs_diff(step({ids, pos})[0], want), 1e-5) << "position " << p;
  }
  const std::string plan = step.describe();
  for (const char* op : {"fused_linear[rms_norm, 64+a+lora | 32+a | 32+a+lora]",
                         "fused_linear[rms_norm, silu(gate)*up, 128+lora | 128+lora]"})
    EXPECT_NE(plan.find(op), std::string::npos) << op << "\n" << plan;
  EXPECT_EQ(plan.find("lora_linear"), std::string::npos) << plan;
}

TEST_P(Models, PipelinedSamplingEqualsSequential) {
  auto model = CausalLM::load(fixture(GetParam()));
  Expected e = read_expected(GetParam());
  GenerationResult a = generate(*model, nullptr, e.sequences[1], sampled_options(20, true));
  GenerationResult b = generate(*model, nullptr, e.sequences[1], sampled_options(20, false));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.logprobs, b.logprobs);
  EXPECT_EQ(a.tokens.size(), 20u);
  // Seeded: the same again; another seed, another continuation.
  EXPECT_EQ(generate(*model, nullptr, e.sequences[1], sampled_options(20, true)).tokens, a.tokens);
  EXPECT_NE(generate(*model, nullptr, e.sequences[1], sampled_options(20, true, 6)).tokens, a.tokens);
}

TEST_P(Models, LeftPaddedBatchEqualsOneByOne) {
  auto model = CausalLM::load(fixture(GetParam()));
  Expected e = read_expected(GetParam());
  for (bool greedy : {true, false}) {
    for (bool pipeline : {true, false}) {
      GenerationOptions o = greedy ? greedy_options(12, pipeline) : sampled_options(12, pipeline, 11);
      // Row 1 stops early on an EOS id it generates alone; the others go on.
      GenerationResult alone1 = generate(*model, nullptr, e.sequences[1], [&] {
        GenerationOptions p = o;
        p.sampling.seed = o.sampling.seed + 1;
        return p;
      }());
      o.eos_token_ids = {alone1.tokens[4]};
      auto batch = generate_batch(*model, nullptr, e.sequences, o);
      ASSERT_EQ(batch.size(), e.sequences.size());
      for (size_t r = 0; r < e.sequences.size(); ++r) {
        GenerationOptions p = o;
        p.sampling.seed = o.sampling.seed + r;
        GenerationResult one = generate(*model, nullptr, e.sequences[r], p);
        EXPECT_EQ(batch[r].tokens, one.tokens) << "row " << r << (greedy ? " greedy" : " sampled");
        EXPECT_EQ(batch[r].stop_reason, one.stop_reason) << "row " << r;
        ASSERT_EQ(batch[r].logprobs.size(), one.logprobs.size());
        for (size_t i = 0; i < one.logprobs.size(); ++i) EXPECT_NEAR(batch[r].logprobs[i], one.logprobs[i], 1e-4);
      }
      EXPECT_EQ(batch[1].stop_reason, StopReason::eos);
      EXPECT_LE(batch[1].tokens.size(), 5u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Models, ::testing::ValuesIn(kModels), [](const auto& info) {
  std::string s = info.param;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
});

// ---- stop rules and streaming (qwen2-tied, byte tokenizer) ----

class Stops : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = CausalLM::load(fixture("qwen2-tied"));
    e_ = read_expected("qwen2-tied");
  }
  std::shared_ptr<CausalLM> model_;
  Expected e_;
  Tokenizer tok_ = wt::byte_tokenizer();
};

TEST_F(Stops, EosEndsTheSequenceAndKeepsTheId) {
  for (bool pipeline : {true, false}) {
    GenerationOptions o = greedy_options(24, pipeline);
    o.eos_token_ids = {999, e_.greedy[4]};  // 58: first generated at index 4
    GenerationResult r = generate(*model_, &tok_, e_.sequences[0], o);
    std::vector<int32_t> want(e_.greedy.begin(), e_.greedy.begin() + 5);
    EXPECT_EQ(r.tokens, want);
    EXPECT_EQ(r.stop_reason, StopReason::eos);
    // The EOS token's text is not part of the output.
    EXPECT_EQ(r.text, tok_.decode(std::vector<int32_t>(want.begin(), want.end() - 1)));
  }
}

TEST_F(Stops, MaxTokens) {
  GenerationResult r = generate(*model_, &tok_, e_.sequences[0], greedy_options(3, true));
  EXPECT_EQ(r.tokens.size(), 3u);
  EXPECT_EQ(r.stop_reason, StopReason::max_tokens);
  GenerationResult one = generate(*model_, &tok_, e_.sequences[0], greedy_options(1, true));
  EXPECT_EQ(one.tokens, std::vector<int32_t>{e_.greedy[0]});
}

TEST_F(Stops, StopStringCutsTheTextAndStreamsIt) {
  // greedy = 127 x4, then 58 (':') ...: bytes "\x7f\x7f\x7f\x7f:::".
  ASSERT_EQ(e_.greedy[3], 127);
  ASSERT_EQ(e_.greedy[4], 58);
  for (bool pipeline : {true, false}) {
    GenerationOptions o = greedy_options(24, pipeline);
    o.stop_strings = {"::", "\x7f:"};  // the second completes first (token 4)
    std::string streamed;
    int events = 0;
    GenerationResult r = generate(*model_, &tok_, e_.sequences[0], o, [&](const TokenEvent& ev) {
      EXPECT_EQ(ev.index, events);
      EXPECT_EQ(ev.last, ev.index == 4);
      streamed += ev.text;
      // Held back while it could still start "\x7f:": nothing but the first three bytes
      // before the match.
      if (ev.index < 4) {
        EXPECT_EQ(streamed, std::string(static_cast<size_t>(ev.index), '\x7f'));
      }
      ++events;
      return true;
    });
    EXPECT_EQ(r.stop_reason, StopReason::stop_string);
    EXPECT_EQ(r.stop_string, "\x7f:");
    EXPECT_EQ(r.tokens.size(), 5u);
    EXPECT_EQ(r.text, "\x7f\x7f\x7f\x7f:");
    EXPECT_EQ(streamed, r.text);
    EXPECT_EQ(events, 5);
  }
}

TEST_F(Stops, StreamedPiecesAreValidUtf8AndAddUpToTheText) {
  // Sampled bytes from a random model are mostly invalid UTF-8: the pieces must never split a
  // character, and together they are the decoded text.
  for (uint64_t seed = 0; seed < 6; ++seed) {
    GenerationOptions o = sampled_options(40, seed % 2 == 0, seed);
    o.sampling.temperature = 1.5;
    o.sampling.top_k = 0;
    std::string streamed;
    GenerationResult r = generate(*model_, &tok_, e_.sequences[2], o, [&](const TokenEvent& ev) {
      EXPECT_TRUE(valid_utf8(ev.text)) << "seed " << seed << " token " << ev.index;
      streamed += ev.text;
      return true;
    });
    EXPECT_EQ(streamed, r.text) << seed;
    EXPECT_EQ(r.text, tok_.decode(r.tokens)) << seed;
  }
}

TEST_F(Stops, CallbackStopsTheRow) {
  GenerationOptions o = sampled_options(30, true);
  std::string streamed;
  GenerationResult r = generate(*model_, &tok_, e_.sequences[0], o, [&](const TokenEvent& ev) {
    streamed += ev.text;
    return ev.index < 6;
  });
  EXPECT_EQ(r.tokens.size(), 7u);
  EXPECT_EQ(r.stop_reason, StopReason::callback);
  EXPECT_EQ(r.text, streamed);
}

TEST_F(Stops, BatchCallbackSeesEveryRow) {
  GenerationOptions o = greedy_options(5, true);
  std::vector<int> per_row(3, 0);
  auto results = generate_batch(*model_, nullptr, e_.sequences, o, [&](const TokenEvent& ev) {
    EXPECT_EQ(ev.index, per_row.at(static_cast<size_t>(ev.row)));
    per_row[static_cast<size_t>(ev.row)]++;
    return true;
  });
  EXPECT_EQ(per_row, (std::vector<int>{5, 5, 5}));
}

TEST_F(Stops, StatsCountWhatRan) {
  GenerationStats s;
  GenerationResult r = generate(*model_, nullptr, e_.sequences[0], greedy_options(8, false), {}, &s);
  EXPECT_EQ(s.rows, 1);
  EXPECT_EQ(s.prompt_tokens, static_cast<int64_t>(e_.sequences[0].size()));
  EXPECT_EQ(s.generated_tokens, 8);
  EXPECT_EQ(s.decode_steps, 7);  // the first token comes from the prefill
  EXPECT_GT(s.prefill_s, 0);
  EXPECT_GT(s.decode_s, 0);
  EXPECT_GT(s.decode_tok_s(), 0);
  (void)r;
}

TEST(Generate, StopsAtTheContextLength) {
  ModelConfig c = ModelConfig::parse(R"({"model_type": "llama", "vocab_size": 32, "hidden_size": 16,
      "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 10})");
  CausalLM model(c);
  model.init_random(1);
  GenerationResult r = generate(model, nullptr, std::vector<int32_t>{1, 2, 3, 4}, greedy_options(50, true));
  EXPECT_EQ(r.tokens.size(), 6u);
  EXPECT_EQ(r.stop_reason, StopReason::length);
}

TEST(Generate, CacheIsWrittenInPlaceOnEverySchedule) {
  // A chained step is built on the previous step's unevaluated cache: the cache must still be
  // updated in place (a copying cache would hold two buffers of a layer at once).
  ModelConfig c = ModelConfig::parse(R"({"model_type": "qwen2", "vocab_size": 64, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
      "max_position_embeddings": 100000})");
  CausalLM model(c);
  model.init_random(3);
  const size_t cache_bytes = model.make_cache(1, 8003).nbytes();  // 2 MB
  for (bool pipeline : {true, false}) {
    for (double temperature : {0.0, 1.0}) {
      GenerationOptions o;
      o.max_new_tokens = 8000;
      o.pipeline = pipeline;
      o.sampling.temperature = temperature;
      size_t active = memory_stats().active;
      reset_peak_memory();
      int n = 0;
      auto r = generate(model, nullptr, std::vector<int32_t>{1, 2, 3}, o, [&](const TokenEvent&) { return ++n < 20; });
      EXPECT_EQ(r.tokens.size(), 20u);
      EXPECT_LT(memory_stats().peak - active, cache_bytes + cache_bytes / 8)
          << "pipeline " << pipeline << " temperature " << temperature;
    }
  }
}

TEST(Generate, RefusesBadRequests) {
  auto model = CausalLM::load(fixture("qwen2-tied"));
  Tokenizer tok = wt::byte_tokenizer();
  std::vector<int32_t> ok = {1, 2, 3};
  EXPECT_THROW(generate(*model, nullptr, std::vector<int32_t>{}, greedy_options(4, true)), Error);
  EXPECT_THROW(generate(*model, nullptr, std::vector<int32_t>{1, 256}, greedy_options(4, true)), Error);
  EXPECT_THROW(generate(*model, nullptr, std::vector<int32_t>{-1}, greedy_options(4, true)), Error);
  EXPECT_THROW(generate(*model, nullptr, ok, greedy_options(0, true)), Error);
  GenerationOptions stops = greedy_options(4, true);
  stops.stop_strings = {"x"};
  EXPECT_THROW(generate(*model, nullptr, ok, stops), Error);  // no tokenizer
  stops.stop_strings = {""};
  EXPECT_THROW(generate(*model, &tok, ok, stops), Error);
  GenerationOptions bad = greedy_options(4, true);
  bad.sampling.top_p = 2;
  EXPECT_THROW(generate(*model, nullptr, ok, bad), Error);
  EXPECT_THROW(generate_batch(*model, nullptr, {}, greedy_options(4, true)), Error);
  EXPECT_THROW(generate_batch(*model, nullptr, {ok, {}}, greedy_options(4, true)), Error);
}

// ---- generation_config.json ----

TEST(GenerationConfigFile, ParsesTransformersDefaults) {
  auto g = GenerationConfig::parse(R"({"do_sample": true, "temperature": 0.7, "top_p": 0.8,
      "repetition_penalty": 1.05, "eos_token_id": [151645, 151643], "bos_token_id": 151643})", "gc.json");
  EXPECT_FALSE(g.sampling.greedy());
  EXPECT_EQ(g.sampling.top_k, 50);  // GenerationConfig's default
  EXPECT_DOUBLE_EQ(g.sampling.temperature, 0.7);
  EXPECT_DOUBLE_EQ(g.sampling.top_p, 0.8);
  EXPECT_DOUBLE_EQ(g.sampling.repetition_penalty, 1.05);
  EXPECT_EQ(g.eos_token_ids, (std::vector<int32_t>{151645, 151643}));
  EXPECT_TRUE(GenerationConfig::parse(R"({"eos_token_id": 2})", "gc.json").sampling.greedy());
  EXPECT_EQ(GenerationConfig::parse(R"({"eos_token_id": 2})", "gc.json").eos_token_ids, std::vector<int32_t>{2});
  EXPECT_TRUE(GenerationConfig::load(fixture("qwen2-tied")).sampling.greedy());  // no file: greedy
  EXPECT_TRUE(GenerationConfig{}.sampling.greedy());
  EXPECT_EQ(GenerationConfig{}.sampling.top_k, 50);
}

TEST(GenerationConfigFile, MalformedFieldsNameTheFile) {
  for (const char* bad : {R"({"temperature": "hot"})", R"({"top_p": 3})", R"({"eos_token_id": [1, "x"]})",
                          R"({"eos_token_id": -4})", R"([1, 2])", R"({"top_k": -1})", "{not json"}) {
    try {
      GenerationConfig::parse(bad, "dir/generation_config.json");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("generation_config.json"), std::string::npos) << e.what();
    }
  }
}

TEST(GenerationConfigFile, DefaultEosIdsMergeTheSources) {
  ModelConfig c = ModelConfig::load(fixture("qwen2-tied"));  // eos_token_id 2
  GenerationConfig g;
  g.eos_token_ids = {7, 2};
  EXPECT_EQ(default_eos_token_ids(c, g, nullptr), (std::vector<int32_t>{7, 2}));
  EXPECT_EQ(default_eos_token_ids(c, GenerationConfig{}, nullptr), (std::vector<int32_t>{2}));
}

}  // namespace
