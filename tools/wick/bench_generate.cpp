// `wick bench generate`: what generation costs on top of the raw forward pass, per token, with
// the line format of `wick bench engine`.
//
// The baseline (`forward/decode_step`) is the loop of `wick bench decode`: build the one-token
// graph, evaluate it, read the argmax of the last logits on the host. The `generate/...` entries
// run generate() (greedy and sampled, pipelined and not, optionally streaming text through a
// tokenizer) and take per-token samples from the time between consecutive token callbacks, so
// each sample covers one token from logits to the next token in the caller's hands; the first
// token (which the prefill produces) is not a sample. Prefill entries time the prompt up to the
// first token's logits (raw) or to the first token (generate). `sampler/...` times the host
// sampler alone on one vocabulary row. Every timed region ends with the data on the host.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench_models.h"
#include "bench_util.h"
#include "command.h"
#include "wick/wick.h"

namespace wick::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string model, tokenizer;
  int64_t prompt = 128;
  int64_t tokens = 32;
  int64_t reps = 3;
  bool quick = false;
  bool json = false;
};

double us_since(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

Timing summarise(std::vector<double> samples) {
  Timing t;
  t.iters = static_cast<int64_t>(samples.size());
  t.median_us = percentile(samples, 0.5);
  t.p10_us = percentile(samples, 0.1);
  t.p90_us = percentile(samples, 0.9);
  return t;
}

Result make_result(std::string name, Timing t, std::string baseline = "") {
  Result r;
  r.name = std::move(name);
  r.timing = t;
  r.baseline = std::move(baseline);
  return r;
}

class GenerateBench {
 public:
  explicit GenerateBench(const Options& o) : opt_(o), rep_(o.json) {
    if (!o.model.empty()) {
      model_ = CausalLM::load(o.model);
      shape_ = o.model;
    } else {
      model_ = std::make_shared<CausalLM>(ModelConfig::parse(kQwen2_100M, "qwen2-100m"));
      model_->init_random(0);
      shape_ = "qwen2-100m";
    }
    if (!o.tokenizer.empty()) tok_ = Tokenizer::load(o.tokenizer);
    if (o.quick) {
      opt_.tokens = std::min<int64_t>(opt_.tokens, 8);
      opt_.prompt = std::min<int64_t>(opt_.prompt, 32);
      opt_.reps = 1;
    }
    const int64_t vocab = model_->config().vocab_size;
    // A prompt of ids the tokenizer (if any) can decode.
    int64_t limit = tok_ ? std::min<int64_t>(vocab, tok_->vocab_size()) : vocab;
    for (int64_t i = 0; i < opt_.prompt; ++i) prompt_.push_back(static_cast<int32_t>((i * 7919 + 13) % limit));
  }

  int run() {
    rep_.note("model " + shape_ + ": " + std::to_string(model_->config().parameter_count() / 1000000) +
              "M parameters; prompt " + std::to_string(opt_.prompt) + ", " + std::to_string(opt_.tokens) +
              " new tokens, " + std::to_string(opt_.reps) + " runs per entry" +
              (tok_ ? ", streaming text through " + tok_->source() : std::string(", no tokenizer (no text)")));
    raw();
    generation();
    sampler();
    return 0;
  }

 private:
  /// Logits [1, 1, vocab] of the last prompt position.
  Tensor last_logits(const Tensor& ids, KVCache& cache) {
    Tensor h = model_->hidden_states(ids, &cache);
    int64_t t = h.shape()[1];
    return model_->logits(slice(h, 1, t - 1, t));
  }

  void raw() {
    const int64_t n = static_cast<int64_t>(prompt_.size());
    Tensor ids = Tensor::from_vector(prompt_, {1, n});
    std::vector<double> prefill, steps;
    for (int64_t r = 0; r <= opt_.reps; ++r) {  // run 0 warms up
      KVCache cache = model_->make_cache(1, n + opt_.tokens + 2);
      auto t0 = Clock::now();
      Tensor logits = last_logits(ids, cache).eval();
      if (r > 0) prefill.push_back(us_since(t0));
      int64_t next = argmax(reshape(logits, {-1}), 0).item<int64_t>();
      for (int64_t s = 0; s + 1 < opt_.tokens; ++s) {
        t0 = Clock::now();
        logits = model_->forward(Tensor::from_vector<int64_t>({next}, {1, 1}), &cache);
        next = argmax(reshape(logits, {-1}), 0).item<int64_t>();
        if (r > 0) steps.push_back(us_since(t0));
      }
    }
    Result p = make_result("prefill/forward", summarise(prefill));
    p.extra["tok_s"] = static_cast<double>(n) / (p.timing.median_us * 1e-6);
    rep_.add(p);
    Result d = make_result("forward/decode_step", summarise(steps));
    d.extra["tok_s"] = 1e6 / d.timing.median_us;
    rep_.add(d);
  }

  void one(const std::string& name, GenerationOptions g) {
    g.max_new_tokens = opt_.tokens;
    std::vector<double> per_token, prefill;
    for (int64_t r = 0; r <= opt_.reps; ++r) {
      std::vector<Clock::time_point> at;
      GenerationStats stats;
      generate(*model_, tok_ ? &*tok_ : nullptr, prompt_, g,
               [&](const TokenEvent&) {
                 at.push_back(Clock::now());
                 return true;
               },
               &stats);
      if (r == 0) continue;
      prefill.push_back(stats.prefill_s * 1e6);
      for (size_t i = 1; i < at.size(); ++i)
        per_token.push_back(std::chrono::duration<double, std::micro>(at[i] - at[i - 1]).count());
    }
    Result d = make_result("generate/" + name, summarise(per_token), "forward/decode_step");
    d.extra["tok_s"] = 1e6 / d.timing.median_us;
    rep_.add(d);
    if (name == "greedy_pipelined") {
      Result p = make_result("generate/prefill", summarise(prefill), "prefill/forward");
      p.extra["tok_s"] = static_cast<double>(prompt_.size()) / (p.timing.median_us * 1e-6);
      rep_.add(p);
    }
  }

  void generation() {
    GenerationOptions greedy;
    greedy.sampling.temperature = 0;
    greedy.pipeline = true;
    one("greedy_pipelined", greedy);
    greedy.pipeline = false;
    one("greedy_sequential", greedy);
    GenerationOptions sampled;
    sampled.sampling = sampled_params();
    sampled.pipeline = true;
    one("sampled_pipelined", sampled);
    sampled.pipeline = false;
    one("sampled_sequential", sampled);
  }

  static SamplingParams sampled_params() {
    SamplingParams s;
    s.temperature = 0.8;
    s.top_k = 40;
    s.top_p = 0.95;
    s.min_p = 0.05;
    s.repetition_penalty = 1.1;
    s.seed = 1;
    return s;
  }

  void sampler() {
    const int64_t vocab = model_->config().vocab_size;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> row(static_cast<size_t>(vocab));
    for (float& v : row) v = normal(rng);
    std::vector<int32_t> context(prompt_.begin(), prompt_.end());
    TimingOptions t{.min_time_s = opt_.quick ? 0.02 : 0.2, .min_iters = 10, .warmup = 2};
    Sampler greedy(SamplingParams{.temperature = 0});
    rep_.add(make_result("sampler/greedy", measure([&] { sink_ += greedy.sample(row, context).id; }, t)));
    Sampler full(sampled_params());
    rep_.add(make_result("sampler/full_chain", measure([&] { sink_ += full.sample(row, context).id; }, t)));
    keep(&sink_);
  }

  Options opt_;
  Reporter rep_;
  std::shared_ptr<CausalLM> model_;
  std::string shape_;
  std::optional<Tokenizer> tok_;
  std::vector<int32_t> prompt_;
  int64_t sink_ = 0;
};

[[maybe_unused]] const wick::cli::Command bench_generate{
    "bench generate", "Generation per token (greedy/sampled, pipelined or not) against the raw forward pass",
    [](CLI::App& app) -> wick::cli::Action {
      auto o = std::make_shared<Options>();
      app.add_option("--model", o->model, "Model folder (default: random weights of a ~100M Qwen2 shape)")
          ->check(CLI::ExistingDirectory);
      app.add_option("--tokenizer", o->tokenizer, "Tokenizer to stream text through (default: none)")
          ->check(CLI::ExistingPath);
      app.add_option("--prompt", o->prompt, "Prompt tokens")->check(CLI::Range(1, 32768));
      app.add_option("--tokens", o->tokens, "New tokens per run")->check(CLI::Range(2, 32768));
      app.add_option("--reps", o->reps, "Timed runs per entry (after one warm-up run)")->check(CLI::Range(1, 1000));
      app.add_flag("--quick", o->quick, "Short runs (smoke test; noisier figures)");
      app.add_flag("--json", o->json, "One JSON object per line");
      return [o] { return GenerateBench(*o).run(); };
    }};

}  // namespace
}  // namespace wick::bench
