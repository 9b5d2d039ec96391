// `wick bench decode`: prefill and batch-1 greedy decode speed of a decoder model, next to this
// machine's memory bandwidth measured in the same run, so that decode can be stated as a fraction
// of its bandwidth bound (every weight is read once per generated token).
//
// Timing: each prefill run evaluates the prompt's hidden states and the logits of its last
// position (all a generator needs; eval() returns with the data ready). Decode is greedy
// generate() itself, timed between the tokens it hands out (the first two, which prefill and
// the step that records the CUDA graph produce, are left out), once per way of running steps:
// compiled with CUDA graphs, compiled without them, and built lazily each step. Medians are
// reported. The PyTorch peer (bench/peers/decoder_torch.py --bench) does the same.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_models.h"
#include "bench_util.h"
#include "command.h"
#include "wick/wick.h"

namespace wick::bench {
namespace {

struct DecodeOptions {
  std::string model;  // empty: random weights of the built-in shape
  int64_t prompt = 128;
  int64_t steps = 64;
  int64_t reps = 3;
  int threads = 0;    // memory-bandwidth threads (0: hardware concurrency)
  int64_t batch = 1;  // prefill batch (decode is always batch 1)
  std::string device = "cpu";
  bool json = false;
  bool profile = false;
  int64_t lora_rank = 0;  // > 0: a random LoRA adapter of this rank is active while decoding
  std::vector<std::string> lora_targets = {"q_proj", "v_proj"};
  int streams = 1;  // > 1: also decode that many sequences at once, a stream each
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) { return percentile(v, 0.5); }

/// Copy bandwidth (bytes read + bytes written per second) and read bandwidth (a streaming sum)
/// over buffers far larger than the caches, split over `threads` threads. Best of a few runs.
std::pair<double, double> memory_bandwidth(int threads) {
  const size_t bytes = size_t{512} << 20;
  const size_t n = bytes / sizeof(float);
  std::vector<float> src(n, 1.0f), dst(n, 0.0f);
  auto split = [&](auto&& fn) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        size_t b = n * t / threads, e = n * (t + 1) / threads;
        fn(b, e);
      });
    for (auto& th : pool) th.join();
  };
  double copy = 0, read = 0;
  std::vector<double> sums(static_cast<size_t>(threads));
  for (int rep = 0; rep < 4; ++rep) {
    auto t0 = Clock::now();
    split([&](size_t b, size_t e) { std::memcpy(dst.data() + b, src.data() + b, (e - b) * sizeof(float)); });
    copy = std::max(copy, 2.0 * bytes / seconds_since(t0));
    t0 = Clock::now();
    split([&](size_t b, size_t e) {
      float acc[16] = {};
      for (size_t i = b; i + 16 <= e; i += 16)
        for (int k = 0; k < 16; ++k) acc[k] += src[i + k];
      float s = 0;
      for (float a : acc) s += a;
      sums[b * threads / n] = s;
    });
    read = std::max(read, static_cast<double>(bytes) / seconds_since(t0));
  }
  keep(dst.data());
  keep(sums.data());
  return {copy, read};
}

/// A GPU's copy bandwidth through wick's own copy kernel: a 1 GiB f32 buffer read and written.
double device_copy_bandwidth(Device d) {
  DeviceScope on(d);
  Tensor x = full({int64_t{1} << 28}, 1.0).eval();
  std::vector<double> t;
  for (int rep = 0; rep < 6; ++rep) {
    auto t0 = Clock::now();
    (x + 0.0).eval();
    if (rep) t.push_back(seconds_since(t0));
  }
  return 2.0 * x.nbytes() / median(t);
}

/// Host-to-GPU copy bandwidth of a 256 MiB f32 tensor from pageable memory and from pinned
/// memory (pin_memory), the copy evaluated to completion each time: what loading weights gets.
std::pair<double, double> host_copy_bandwidth(Device d) {
  Tensor pageable = full({int64_t{1} << 26}, 1.0).eval();
  Tensor pinned = pin_memory(pageable);
  auto rate = [&](const Tensor& src) {
    std::vector<double> t;
    for (int rep = 0; rep < 5; ++rep) {
      auto t0 = Clock::now();
      to(src, d).eval();
      if (rep) t.push_back(seconds_since(t0));
    }
    return src.nbytes() / median(t);
  };
  return {rate(pageable), rate(pinned)};
}

/// Median seconds between the tokens of a greedy generate() (see the timing note above).
double decode_step_seconds(CausalLM& model, const std::vector<int32_t>& prompt, int64_t steps, bool compiled,
                           bool graphs) {
  set_cuda_graphs(graphs);
  GenerationOptions g;
  g.max_new_tokens = steps + 2;
  g.sampling.do_sample = false;
  g.compiled_steps = compiled;
  std::vector<double> gaps;
  auto last = Clock::now();
  generate(model, nullptr, prompt, g, [&](const TokenEvent&) {
    gaps.push_back(seconds_since(last));
    last = Clock::now();
    return true;
  });
  set_cuda_graphs(true);
  gaps.erase(gaps.begin(), gaps.begin() + 2);
  return median(gaps);
}

/// Tokens per second over `streams` greedy generations run at once, each from its own thread on
/// a stream of its own (as a server decoding several requests would), counted over the window
/// in which all of them were past their first two tokens and none had finished.
double concurrent_decode_tok_s(CausalLM& model, const std::vector<int32_t>& prompt, int64_t steps,
                               int streams) {
  std::vector<std::vector<Clock::time_point>> stamps(static_cast<size_t>(streams));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(streams));
  std::latch start(streams);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < stamps.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        GenerationOptions g;
        g.max_new_tokens = steps + 2;
        g.sampling.do_sample = false;
        g.stream = new_stream(model.device());
        start.arrive_and_wait();
        generate(model, nullptr, prompt, g, [&](const TokenEvent&) {
          stamps[i].push_back(Clock::now());
          return true;
        });
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  Clock::time_point from = stamps[0][2], to = stamps[0].back();
  for (const auto& s : stamps) {
    from = std::max(from, s[2]);
    to = std::min(to, s.back());
  }
  if (to <= from)
    throw Error("bench decode --streams: the generations did not overlap; use more --steps");
  int64_t tokens = 0;
  for (const auto& s : stamps)
    tokens +=
        std::count_if(s.begin(), s.end(), [&](Clock::time_point t) { return t > from && t <= to; });
  return static_cast<double>(tokens) / std::chrono::duration<double>(to - from).count();
}

/// Logits [B, 1, vocab] of the last position only: prefill needs no others.
Tensor last_logits(CausalLM& model, const Tensor& ids, KVCache& cache) {
  Tensor h = model.hidden_states(ids, &cache);
  int64_t T = h.shape()[1];
  return model.logits(slice(h, 1, T - 1, T));
}

int run_decode(const DecodeOptions& o) {
  std::shared_ptr<CausalLM> model;
  std::string shape;
  const bool gpu = o.device == "cuda";
  if (!gpu && o.device != "cpu") throw Error("--device " + o.device + ": expected cpu or cuda");
  if (gpu && cuda_device_count() == 0) throw Error("--device cuda: no CUDA device is available");
  if (!o.model.empty()) {
    model = CausalLM::load(o.model, ModelConfig::load(o.model).compute_dtype(gpu ? Device::cuda(0) : Device::cpu()));
    shape = o.model;
  } else {
    model = std::make_shared<CausalLM>(ModelConfig::parse(kQwen2_100M, "qwen2-100m"));
    model->init_random(0);
    shape = "qwen2-100m (random weights)";
  }
  const ModelConfig& c = model->config();
  // An adapter served from a registry, as `wick generate --adapter` does (unmerged: its rank-r
  // path runs beside every targeted projection).
  std::unique_ptr<AdapterRegistry> registry;
  if (o.lora_rank > 0) {
    registry = std::make_unique<AdapterRegistry>(model);
    registry->add("bench", random_adapter(*model, o.lora_targets, o.lora_rank, 7));
    registry->activate("bench");
    shape += ", LoRA r" + std::to_string(o.lora_rank) + " on";
    for (const std::string& t : o.lora_targets) shape += " " + t;
  }
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto [copy_bw, read_bw] = gpu ? std::pair<double, double>{0.0, 0.0} : memory_bandwidth(threads);
  std::pair<double, double> host_copy{0.0, 0.0};
  if (gpu) {
    model->to(Device::cuda(0));
    copy_bw = read_bw = device_copy_bandwidth(Device::cuda(0));
    host_copy = host_copy_bandwidth(Device::cuda(0));
  }

  double weight_bytes = 0;
  for (const auto& [name, t] : model->parameters()) weight_bytes += static_cast<double>(t.nbytes());
  const int64_t max_len = o.prompt + o.steps + 8;
  std::vector<int64_t> prompt(static_cast<size_t>(o.batch * o.prompt));
  for (int64_t i = 0; i < o.batch * o.prompt; ++i) prompt[i] = (i * 7919 + 13) % c.vocab_size;
  Tensor batch_ids = Tensor::from_vector(prompt, {o.batch, o.prompt});
  const DType cache_t = model->parameters().begin()->second.dtype();

  // Prefill: fresh cache each run; the first run warms allocator, oneDNN and RoPE tables.
  std::vector<double> prefill;
  for (int64_t r = 0; r <= o.reps; ++r) {
    KVCache cache = model->make_cache(o.batch, max_len, cache_t);
    auto t0 = Clock::now();
    Tensor logits = last_logits(*model, batch_ids, cache).eval();
    double dt = seconds_since(t0);
    if (r > 0) prefill.push_back(dt);
  }
  if (o.profile) {
    print_profile("prefill", [&] {
      KVCache cache = model->make_cache(o.batch, max_len, cache_t);
      last_logits(*model, batch_ids, cache).eval();
    });
    // Profiling turns CUDA graphs off, so this shows the compiled steps' kernels one by one.
    print_profile("decode (" + std::to_string(o.steps) + " compiled steps)", [&] {
      decode_step_seconds(*model, std::vector<int32_t>(prompt.begin(), prompt.begin() + o.prompt), o.steps,
                          true, false);
    });
  }
  // Decode: greedy generation after the first prompt, each way of running its steps.
  std::vector<int32_t> first(prompt.begin(), prompt.begin() + o.prompt);
  struct Way {
    const char* name;
    bool compiled, graphs;
    double step_s = 0;
  };
  std::vector<Way> ways = {{"compiled steps, CUDA graphs", true, true},
                           {"compiled steps, no graphs", true, false},
                           {"lazy steps", false, false}};
  if (!gpu) ways.erase(ways.begin());  // no graphs on the host
  for (Way& w : ways) w.step_s = decode_step_seconds(*model, first, o.steps, w.compiled, w.graphs);
  const double together_tok_s =
      o.streams > 1 ? concurrent_decode_tok_s(*model, first, o.steps, o.streams) : 0.0;
  // The default of generate(): graphs on a GPU, lazy steps on the host.
  const double step_s = gpu ? ways.front().step_s : ways.back().step_s;
  double prefill_s = median(prefill);
  // Per token: every weight once, plus the keys and values of the cache at mid-decode.
  double kv_bytes = 2.0 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * double(itemsize(cache_t)) *
                    static_cast<double>(o.prompt + o.steps / 2);
  double bound_s = (weight_bytes + kv_bytes) / copy_bw;
  double bound_read_s = (weight_bytes + kv_bytes) / read_bw;

  if (o.json) {
    nlohmann::json j = {
        {"model", shape},
        {"parameters", c.parameter_count()},
        {"weight_bytes", weight_bytes},
        {"copy_bandwidth_gbs", copy_bw / 1e9},
        {"read_bandwidth_gbs", read_bw / 1e9},
        {"host_to_device_pageable_gbs", host_copy.first / 1e9},
        {"host_to_device_pinned_gbs", host_copy.second / 1e9},
        {"device", o.device},
        {"prefill_batch", o.batch},
        {"prefill_tokens", o.prompt},
        {"prefill_s", prefill_s},
        {"prefill_tok_s", o.batch * o.prompt / prefill_s},
        {"decode_step_s", step_s},
        {"decode_tok_s", 1.0 / step_s},
        {"decode_ways",
         [&] {
           nlohmann::json a = nlohmann::json::array();
           for (const Way& w : ways) a.push_back({{"way", w.name}, {"tok_s", 1.0 / w.step_s}});
           return a;
         }()},
        {"decode_streams", o.streams},
        {"decode_streams_tok_s", o.streams > 1 ? nlohmann::json(together_tok_s) : nlohmann::json()},
        {"decode_bound_tok_s", 1.0 / bound_s},
        {"decode_fraction_of_bound", bound_s / step_s},
        {"decode_fraction_of_read_bound", bound_read_s / step_s}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model      %s: %.1fM parameters, %.0f MiB of weights (%s, %s)\n", shape.c_str(),
              c.parameter_count() / 1e6, weight_bytes / 1048576.0, dtype_name(cache_t), o.device.c_str());
  std::printf("memory     copy %.1f GB/s (read + write), read %.1f GB/s (%d threads)\n", copy_bw / 1e9,
              read_bw / 1e9, threads);
  if (gpu)
    std::printf("host copy  256 MiB to the GPU: %.1f GB/s from pageable memory, %.1f GB/s pinned\n",
                host_copy.first / 1e9, host_copy.second / 1e9);
  std::printf("prefill    %lld x %lld tokens: %.1f ms = %.0f tok/s\n", static_cast<long long>(o.batch),
              static_cast<long long>(o.prompt), prefill_s * 1e3, o.batch * o.prompt / prefill_s);
  for (const Way& w : ways)
    std::printf("decode     batch 1, %s: %.2f ms/token = %.1f tok/s\n", w.name, w.step_s * 1e3, 1.0 / w.step_s);
  if (o.streams > 1)
    std::printf("decode     %d sequences at once, a stream each: %.1f tok/s in all (%.1f each)\n",
                o.streams, together_tok_s, together_tok_s / o.streams);
  std::printf("bound      %.1f tok/s at the copy bandwidth: decode reaches %.0f%% (%.0f%% of the read bound)\n",
              1.0 / bound_s, 100.0 * bound_s / step_s, 100.0 * bound_read_s / step_s);
  return 0;
}

[[maybe_unused]] const wick::cli::Command bench_decode{
    "bench decode", "Prefill and batch-1 decode speed of a decoder, against the memory-bandwidth bound",
    [](CLI::App& app) -> wick::cli::Action {
      auto o = std::make_shared<DecodeOptions>();
      app.add_option("--model", o->model, "Model folder (default: random weights of a ~100M Qwen2 shape)")
          ->check(CLI::ExistingDirectory);
      app.add_option("--prompt", o->prompt, "Prompt tokens for prefill")->check(CLI::Range(1, 32768));
      app.add_option("--steps", o->steps, "Decode steps to time")->check(CLI::Range(1, 32768));
      app.add_option("--reps", o->reps, "Prefill repetitions")->check(CLI::Range(1, 1000));
      app.add_option("--threads", o->threads, "Threads for the bandwidth measurement")->check(CLI::Range(0, 1024));
      app.add_option("--batch", o->batch, "Prefill batch (decode runs at batch 1)")->check(CLI::Range(1, 4096));
      app.add_option("--device", o->device, "cpu or cuda (the GPU's copy bandwidth is measured instead of the host's)")
          ->capture_default_str();
      app.add_option("--streams", o->streams,
                     "Also decode this many sequences at once, each on a stream of its own "
                     "(default 1: not)")
          ->check(CLI::Range(1, 64));
      app.add_flag("--json", o->json, "One JSON object instead of text");
      app.add_flag("--profile", o->profile, "Print the kernel times of one prefill and of the decode steps (stderr)");
      app.add_option("--lora-rank", o->lora_rank,
                     "Decode with a random LoRA adapter of this rank active (0: none)")
          ->check(CLI::Range(0, 4096));
      app.add_option("--lora-targets", o->lora_targets,
                     "Modules the adapter targets (suffixes, or all-linear)")
          ->delimiter(',')
          ->capture_default_str();
      return [o] { return run_decode(*o); };
    }};

}  // namespace
}  // namespace wick::bench
