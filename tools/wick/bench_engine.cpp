// `wick bench engine`: times the engine's evaluation paths and basic operations on the CPU.
//
// Every timed region ends with its result ready: eval() returns after the data is ready, and
// the eval_async variants call Future::get() inside the timed region. Inputs are evaluated
// before timing. Op benchmarks time "build the op + evaluate it", which is what a user pays per
// call (building is a few microseconds; a peer's per-call dispatch is likewise inside its
// figure); the async-overhead benchmarks build the graph outside the timed region so that only
// the evaluation path differs between the two variants.
#include <CLI/CLI.hpp>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "command.h"
#include "wick/wick.h"

namespace wick::bench {
namespace {

struct Options {
  bool json = false;
  bool quick = false;
  std::string filter;
  double min_time = -1;  // seconds; <0: default for the mode
};

double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}

class EngineBench {
 public:
  explicit EngineBench(const Options& o) : opt_(o), rep_(o.json) {
    if (o.quick) {
      topt_ = {.min_time_s = 0.05, .min_iters = 5, .max_iters = 1'000'000, .warmup = 2};
    }
    if (o.min_time >= 0) topt_.min_time_s = o.min_time;
  }

  int run() {
    async_overhead();
    overlap();
    lora();
    norms();
    matmul_vs_dnnl();
    if (rep_.json()) return 0;
    std::printf("\n");
    print_memory();
    return 0;
  }

 private:
  // A group runs when no filter is set or any of its entry names contains the filter.
  bool wanted(const std::vector<std::string>& names) const {
    if (opt_.filter.empty()) return true;
    for (const auto& n : names)
      if (n.find(opt_.filter) != std::string::npos) return true;
    return false;
  }

  Result result(std::string name, Timing t, std::string baseline = "") {
    Result r;
    r.name = std::move(name);
    r.timing = t;
    r.baseline = std::move(baseline);
    return r;
  }

  // ---- async overhead -------------------------------------------------------------------------
  // A chain of `kChainOps` elementwise ops over n elements; n is calibrated at run time so that
  // evaluating the chain takes roughly the target time on this machine. The measured time of the
  // eval entry is what the graph really cost (reported as its median).
  static constexpr int kChainOps = 8;
  static Tensor chain(const Tensor& x) {
    Tensor y = x;
    for (int i = 0; i < kChainOps; ++i) y = (i % 2 == 0) ? y * 0.999 : y + 0.001;
    return y;
  }

  double eval_chain_us(int64_t n, const TimingOptions& t) {
    Tensor x = full({n}, 1.0).eval();
    Tensor y;
    return measure([&] { eval({y}); }, t, [&] { y = chain(x); }).median_us;
  }

  int64_t calibrate_chain(double target_us) {
    TimingOptions t{.min_time_s = opt_.quick ? 0.01 : 0.03, .min_iters = 5, .warmup = 2};
    int64_t n = 4096;
    for (int i = 0; i < 8; ++i) {
      double us = eval_chain_us(n, t);
      double f = target_us / std::max(us, 0.1);
      if (f > 0.85 && f < 1.15) break;
      // Time is not linear in n at the small end (fixed per-graph cost), so this is a search, not
      // a solve: each move is bounded so that one noisy sample cannot throw it far. When even the
      // smallest graph costs more than the target, the smallest is used and its time reported.
      f = std::clamp(f, 1.0 / 16, 16.0);
      int64_t next = std::clamp<int64_t>(static_cast<int64_t>(double(n) * f), 64, int64_t{1} << 26);
      if (next == n) break;
      n = next;
    }
    return n;
  }

  void async_overhead() {
    struct Case {
      const char* label;
      double target_us;
    };
    for (Case c : {Case{"10us", 10}, Case{"100us", 100}, Case{"1ms", 1000}}) {
      std::string base = std::string("async_overhead/") + c.label;
      if (!wanted({base + "/eval", base + "/eval_async"})) continue;
      int64_t n = calibrate_chain(c.target_us);
      Tensor x = full({n}, 1.0).eval();
      Tensor y;
      auto build = [&] { y = chain(x); };
      Result r1 = result(base + "/eval", measure([&] { eval({y}); }, topt_, build));
      r1.extra["elements"] = double(n);
      rep_.add(r1);
      Result r2 = result(base + "/eval_async",
                         measure([&] { eval_async({y}).get(); }, topt_, build), base + "/eval");
      rep_.add(r2);
    }
  }

  // ---- overlap --------------------------------------------------------------------------------
  // A 100-step loop where building step n+1 costs about as much as running step n.
  //
  // Running a step: `layers` blocks of h = rms_norm(silu(lora_linear(h, W, A, B)), g) over a
  // [batch, dim] input, then mean(h²); weights are evaluated once up front. Two sizes:
  //   small_ops: [4,128] x 8 layers: 26 tiny ops, each below the threshold where the CPU kernels
  //              fork threads, so a step runs on one core (a decode-like workload);
  //   gemm:      [64,256] x 2 layers: GEMM-bound ops that use every core (OpenMP / oneDNN).
  // Building a step: synthesising the batch on the host (each value a sum of `terms` hashed
  // features, standing in for tokenisation / augmentation / data loading), copying it into a
  // tensor, and building the step's graph. `terms` is calibrated at run time so that building a
  // step costs about as much as running one; both costs are reported with the sync entry.
  // Sync: build n, eval n, read its loss. Pipelined: build n+1 and submit it, then wait for n and
  // read its loss (at most two steps in flight). The ideal ratio is 0.5; on a machine whose
  // cores are all busy with a step's kernels the host thread competes with them instead.
  static constexpr int64_t kSteps = 100;
  static constexpr int64_t kRank = 8;

  struct OverlapCase {
    const char* label;
    int64_t batch, dim, layers;
  };

  struct StepWeights {
    std::vector<Tensor> w, a, b, g;
  };

  static std::vector<float> host_batch(const OverlapCase& c, int64_t step, int terms) {
    std::vector<float> v(static_cast<size_t>(c.batch * c.dim));
    for (size_t i = 0; i < v.size(); ++i) {
      uint64_t h = (uint64_t(step) << 32) ^ (i * 0x9E3779B97F4A7C15ull);
      float acc = 0;
      for (int k = 0; k < terms; ++k) {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 29;
        acc += float(h & 0xffff) * (1.0f / 65536.0f) - 0.5f;
      }
      v[i] = acc / std::sqrt(float(terms));
    }
    return v;
  }

  static Tensor build_step(const OverlapCase& c, const StepWeights& w, int64_t step, int terms) {
    Tensor h = Tensor::from_vector(host_batch(c, step, terms), {c.batch, c.dim});
    for (int64_t l = 0; l < c.layers; ++l) {
      h = rms_norm(silu(lora_linear(h, w.w[l], std::nullopt, w.a[l], w.b[l], 2.0)), w.g[l], 1e-6);
    }
    return mean(square(h));
  }

  void overlap() {
    for (OverlapCase c : {OverlapCase{"small_ops", 4, 128, 8}, OverlapCase{"gemm", 64, 256, 2}}) {
      overlap_case(c);
    }
  }

  void overlap_case(const OverlapCase& c) {
    const std::string base = std::string("overlap/") + c.label + "/100_steps";
    const std::string sync_name = base + "/sync", pipe_name = base + "/pipelined";
    if (!wanted({sync_name, pipe_name})) return;
    Generator gen(7);
    const double s_in = 1.0 / std::sqrt(double(c.dim));
    StepWeights w;
    std::vector<Tensor> all;
    for (int64_t l = 0; l < c.layers; ++l) {
      w.w.push_back(normal({c.dim, c.dim}, gen, 0, s_in));
      w.a.push_back(normal({kRank, c.dim}, gen, 0, s_in));
      w.b.push_back(normal({c.dim, kRank}, gen, 0, 0.1));
      w.g.push_back(uniform({c.dim}, gen, 0.5, 1.5));
      all.insert(all.end(), {w.w.back(), w.a.back(), w.b.back(), w.g.back()});
    }
    eval(all);

    // Calibrate: the run cost of a step, then the number of hashed terms that makes building a
    // step cost the same (build time is close to linear in `terms`; a few secant steps settle it).
    TimingOptions t{.min_time_s = opt_.quick ? 0.02 : 0.1, .min_iters = 5, .warmup = 2};
    Tensor y;
    auto build_cost = [&](int terms) {
      return measure([&] { y = build_step(c, w, 0, terms); }, t).median_us;
    };
    const double run_us =
        measure([&] { eval({y}); }, t, [&] { y = build_step(c, w, 0, 1); }).median_us;
    // On an overloaded machine a step can take milliseconds; don't let the build follow it there
    // (the loops would then run for minutes).
    const double target_us = std::min(run_us, 2000.0);
    const double base_us = build_cost(1);
    int terms = 1;
    double build_us = base_us;
    int probe = 16;
    double probe_us = base_us < target_us ? build_cost(probe) : base_us;
    for (int i = 0; i < 4 && base_us < target_us; ++i) {
      double per_term = std::max((probe_us - base_us) / (probe - 1), 1e-3);
      terms = static_cast<int>(std::clamp((target_us - base_us) / per_term + 1, 1.0, 1e6));
      build_us = build_cost(terms);
      if (std::abs(build_us / target_us - 1) < 0.1 || terms == probe) break;
      probe = terms;
      probe_us = build_us;
    }
    y = Tensor();

    TimingOptions lt = topt_;
    lt.min_iters = opt_.quick ? 2 : 5;
    lt.warmup = 1;
    double sync_sum = 0, pipe_sum = 0;
    auto sync_loop = [&] {
      sync_sum = 0;
      for (int64_t n = 0; n < kSteps; ++n) {
        Tensor loss = build_step(c, w, n, terms);
        eval({loss});
        sync_sum += loss.item<float>();
      }
    };
    auto pipelined_loop = [&] {
      pipe_sum = 0;
      Tensor prev = build_step(c, w, 0, terms);
      Future prev_f = eval_async({prev});
      for (int64_t n = 1; n <= kSteps; ++n) {
        Tensor cur;
        Future cur_f;
        if (n < kSteps) {
          cur = build_step(c, w, n, terms);
          cur_f = eval_async({cur});
        }
        prev_f.get();
        pipe_sum += prev.item<float>();
        prev = cur;
        prev_f = cur_f;
      }
    };
    Result rs = result(sync_name, measure(sync_loop, lt));
    rs.extra["run_step_us"] = run_us;
    rs.extra["build_step_us"] = build_us;
    rep_.add(rs);
    rep_.add(result(pipe_name, measure(pipelined_loop, lt), sync_name));
    // Async and sync evaluation must give bit-identical results.
    if (sync_sum != pipe_sum) {
      throw Error("bench " + base + ": the pipelined loop's losses differ from the synchronous "
                  "loop's (" + std::to_string(pipe_sum) + " vs " + std::to_string(sync_sum) + ")");
    }
  }

  // ---- LoRA -----------------------------------------------------------------------------------
  // x [4,16,512], W 512x512, r 8, alpha 16 (scale 2), as in PEFT: y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ.
  void lora() {
    const std::vector<std::string> names = {"lora_linear/fused", "lora_linear/unfused_lazy",
                                            "lora_linear/unfused_eager", "lora_linear/fused_eager",
                                            "lora_delta/lazy", "lora_delta/eager"};
    if (!wanted(names)) return;
    Generator gen(1);
    const double s = 16.0 / 8.0;
    Tensor x = normal({4, 16, 512}, gen);
    Tensor w = normal({512, 512}, gen, 0, 1 / std::sqrt(512.0));
    Tensor a = normal({8, 512}, gen, 0, 1 / std::sqrt(512.0));
    Tensor b = normal({512, 8}, gen, 0, 0.1);
    eval({x, w, a, b});

    auto fused = [&] { return lora_linear(x, w, std::nullopt, a, b, s); };
    auto delta = [&] { return s * matmul(matmul(x, transpose(a)), transpose(b)); };
    auto unfused = [&] { return matmul(x, transpose(w)) + delta(); };
    const double flops = 2.0 * 64 * 512 * 512 + 2 * 2.0 * 64 * 512 * 8;

    auto lazy = [&](auto f) { return [f] { eval({f()}); }; };
    auto eager = [&](auto f) {
      return [f] {
        EagerScope scope;
        Tensor y = f();
        eval({y});  // already evaluated under the scope; this is a no-op that documents it
      };
    };
    struct Entry {
      std::string name;
      std::function<void()> fn;
      std::string baseline;
      double flops;
    };
    std::vector<Entry> entries = {
        {"lora_linear/fused", lazy(fused), "", flops},
        {"lora_linear/unfused_lazy", lazy(unfused), "lora_linear/fused", flops},
        {"lora_linear/unfused_eager", eager(unfused), "lora_linear/unfused_lazy", flops},
        {"lora_linear/fused_eager", eager(fused), "lora_linear/fused", flops},
        {"lora_delta/lazy", lazy(delta), "", 0},
        {"lora_delta/eager", eager(delta), "lora_delta/lazy", 0},
    };
    // An entry runs when the filter selects it or an entry compared with it (baselines come
    // first in the list, so one backward pass finds them all).
    std::vector<bool> run(entries.size());
    for (size_t i = entries.size(); i-- > 0;) {
      run[i] = wanted({entries[i].name});
      for (size_t k = i + 1; k < entries.size(); ++k)
        if (run[k] && entries[k].baseline == entries[i].name) run[i] = true;
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      if (!run[i]) continue;
      const Entry& e = entries[i];
      Result r = result(e.name, measure(e.fn, topt_), e.baseline);
      if (e.flops > 0) r.extra["gflops"] = e.flops / (r.timing.median_us * 1e3);
      rep_.add(r);
    }

    double diff = max_abs_diff(fused().eval(), unfused().eval());
    rep_.note("lora_linear: max |fused - unfused| = " + std::to_string(diff));
    if (!(diff < 1e-3)) throw Error("bench lora: fused and unfused results differ by " +
                                    std::to_string(diff));
  }

  // ---- softmax / rms_norm ---------------------------------------------------------------------
  void norms() {
    Generator gen(2);
    Tensor x = normal({4, 16, 1024}, gen).eval();
    Tensor g = uniform({1024}, gen, 0.5, 1.5).eval();
    if (wanted({"softmax/4x16x1024"}))
      rep_.add(result("softmax/4x16x1024", measure([&] { eval({softmax(x, -1)}); }, topt_)));
    if (wanted({"rms_norm/4x16x1024"}))
      rep_.add(result("rms_norm/4x16x1024",
                      measure([&] { eval({rms_norm(x, g, 1e-6)}); }, topt_)));
  }

  // ---- matmul vs oneDNN directly --------------------------------------------------------------
  void matmul_vs_dnnl() {
    const std::string direct = "matmul/1024/dnnl_sgemm", engine = "matmul/1024/engine";
    if (!wanted({direct, engine})) return;
    const int64_t n = 1024;
    Generator gen(3);
    Tensor a = normal({n, n}, gen).eval();
    Tensor b = normal({n, n}, gen).eval();
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    std::vector<float> c(static_cast<size_t>(n * n));
    const double flops = 2.0 * double(n) * double(n) * double(n);
    // Row-major C = A·B through oneDNN's own sgemm, from the calling thread.
    auto sgemm = [&] {
      dnnl_status_t st = dnnl_sgemm('N', 'N', n, n, n, 1.0f, pa, n, pb, n, 0.0f, c.data(), n);
      if (st != dnnl_success) throw Error("dnnl_sgemm failed with status " + std::to_string(st));
      keep(c.data());
    };
    Result rd = result(direct, measure(sgemm, topt_));
    rd.extra["gflops"] = flops / (rd.timing.median_us * 1e3);
    rep_.add(rd);
    Result re = result(engine, measure([&] { eval({matmul(a, b)}); }, topt_), direct);
    re.extra["gflops"] = flops / (re.timing.median_us * 1e3);
    rep_.add(re);
    Tensor ref = Tensor::from_vector(c, {n, n});
    double diff = max_abs_diff(matmul(a, b).eval(), ref);
    rep_.note("matmul 1024: max |engine - sgemm| = " + std::to_string(diff));
  }

  void print_memory() {
    MemoryStats m = memory_stats();
    std::printf("memory (cpu): active %.1f MiB, peak %.1f MiB, cached %.1f MiB, %zu allocations "
                "(%zu cache hits)\n",
                m.active / 1048576.0, m.peak / 1048576.0, m.cached / 1048576.0, m.allocations,
                m.cache_hits);
  }

  Options opt_;
  Reporter rep_;
  TimingOptions topt_;
};

[[maybe_unused]] const wick::cli::Command bench_group =
    wick::cli::Command::group("bench", "Benchmarks (engine; more to come)");

[[maybe_unused]] const wick::cli::Command bench_engine{
    "bench engine", "Time the tensor engine: async overhead, overlap, LoRA, norms, GEMM",
    [](CLI::App& app) -> wick::cli::Action {
      auto o = std::make_shared<Options>();
      app.add_flag("--json", o->json, "One JSON object per line instead of a table");
      app.add_flag("--quick", o->quick, "Short runs (smoke test; noisier figures)");
      app.add_option("--filter", o->filter, "Only benchmarks whose name contains this text");
      app.add_option("--min-time", o->min_time, "Seconds to sample each benchmark for")
          ->check(CLI::NonNegativeNumber);
      return [o] { return EngineBench(*o).run(); };
    }};

}  // namespace
}  // namespace wick::bench
