// `wick bench train`: the training toolkit's figures, in `wick bench engine`'s line format.
//
//   lora_linear/fwd_bwd*   x [4,16,512], W 512x512 frozen, LoRA r 8: forward plus the gradients
//                          of x, A and B (what a layer in a stack needs), lazy and compiled.
//   train_step/*           one full training step (forward, backward, AdamW on every parameter)
//                          of a small Qwen2-shaped decoder (4 layers, hidden 256, 4 heads / 2 KV
//                          heads, SwiGLU 704, vocab 4096, tied embeddings) on batch 4 x 128:
//                          eager (every op evaluated as built), lazy, and compiled.
// Every timed region ends with the step's loss, parameters and optimizer state evaluated.
// bench/peers/train_torch.py runs the same work in PyTorch; compare_train.sh prints both.
#include <CLI/CLI.hpp>

#include <cmath>
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
  bool profile = false;
  std::string filter;
};

struct ModelShape {
  int64_t vocab = 4096, hidden = 256, layers = 4, heads = 4, kv_heads = 2, inter = 704;
  int64_t batch = 4, seq = 128;
  int64_t head_dim() const { return hidden / heads; }
};

TensorMap init_params(const ModelShape& m, Generator& gen) {
  TensorMap p;
  auto w = [&](int64_t out, int64_t in) { return (normal({out, in}, gen) * 0.02).eval(); };
  p["model.embed_tokens.weight"] = w(m.vocab, m.hidden);
  p["model.norm.weight"] = ones({m.hidden});
  int64_t kv = m.kv_heads * m.head_dim();
  for (int64_t l = 0; l < m.layers; ++l) {
    std::string pre = "model.layers." + std::to_string(l) + ".";
    p[pre + "input_layernorm.weight"] = ones({m.hidden});
    p[pre + "post_attention_layernorm.weight"] = ones({m.hidden});
    p[pre + "self_attn.q_proj.weight"] = w(m.hidden, m.hidden);
    p[pre + "self_attn.q_proj.bias"] = zeros({m.hidden});
    p[pre + "self_attn.k_proj.weight"] = w(kv, m.hidden);
    p[pre + "self_attn.k_proj.bias"] = zeros({kv});
    p[pre + "self_attn.v_proj.weight"] = w(kv, m.hidden);
    p[pre + "self_attn.v_proj.bias"] = zeros({kv});
    p[pre + "self_attn.o_proj.weight"] = w(m.hidden, m.hidden);
    p[pre + "mlp.gate_proj.weight"] = w(m.inter, m.hidden);
    p[pre + "mlp.up_proj.weight"] = w(m.inter, m.hidden);
    p[pre + "mlp.down_proj.weight"] = w(m.hidden, m.inter);
  }
  return p;
}

/// The decoder's causal-LM loss, written with engine ops (Qwen2 semantics).
Tensor decoder_loss(const ModelShape& m, const TensorMap& p, const Tensor& ids, const Tensor& labels) {
  auto P = [&](const std::string& n) { return p.at(n); };
  int64_t B = ids.shape(0), T = ids.shape(1), hd = m.head_dim();
  Tensor h = embedding(P("model.embed_tokens.weight"), ids);
  auto heads = [&](const Tensor& t, int64_t n) { return transpose(reshape(t, {B, T, n, hd}), {0, 2, 1, 3}); };
  for (int64_t l = 0; l < m.layers; ++l) {
    std::string pre = "model.layers." + std::to_string(l) + ".";
    std::string at = pre + "self_attn.";
    Tensor x = rms_norm(h, P(pre + "input_layernorm.weight"), 1e-6);
    Tensor q = rope(heads(linear(x, P(at + "q_proj.weight"), P(at + "q_proj.bias")), m.heads), 1e6);
    Tensor k = rope(heads(linear(x, P(at + "k_proj.weight"), P(at + "k_proj.bias")), m.kv_heads), 1e6);
    Tensor v = heads(linear(x, P(at + "v_proj.weight"), P(at + "v_proj.bias")), m.kv_heads);
    Tensor a = scaled_dot_product_attention(q, k, v, 1.0 / std::sqrt(double(hd)), true);
    h = h + linear(reshape(transpose(a, {0, 2, 1, 3}), {B, T, m.hidden}), P(at + "o_proj.weight"));
    Tensor y = rms_norm(h, P(pre + "post_attention_layernorm.weight"), 1e-6);
    std::string mlp = pre + "mlp.";
    h = h + linear(silu(linear(y, P(mlp + "gate_proj.weight"))) * linear(y, P(mlp + "up_proj.weight")),
                   P(mlp + "down_proj.weight"));
  }
  h = rms_norm(h, P("model.norm.weight"), 1e-6);
  return linear_cross_entropy(h, P("model.embed_tokens.weight"), labels);
}

class TrainBench {
 public:
  explicit TrainBench(const Options& o) : opt_(o), rep_(o.json) {
    if (o.quick) topt_ = {.min_time_s = 0.05, .min_iters = 3, .max_iters = 1'000'000, .warmup = 1};
    else topt_ = {.min_time_s = 2.0, .min_iters = 10, .max_iters = 1'000'000, .warmup = 3};
  }

  int run() {
    lora();
    train_step();
    return 0;
  }

 private:
  bool wanted(const std::string& group) const { return opt_.filter.empty() || group.find(opt_.filter) != std::string::npos; }

  Result result(std::string name, Timing t, std::string baseline = "") {
    Result r;
    r.name = std::move(name);
    r.timing = t;
    r.baseline = std::move(baseline);
    return r;
  }

  void lora() {
    if (!wanted("lora_linear/fwd_bwd")) return;
    Generator gen(1);
    Tensor x = normal({4, 16, 512}, gen).eval();
    Tensor w = (normal({512, 512}, gen) * 0.04).eval();
    Tensor a = (uniform({8, 512}, gen, -1, 1) * (1 / std::sqrt(512.0))).eval();
    Tensor b = (normal({512, 8}, gen) * 0.01).eval();
    // Sum of the output as the loss, as the PyTorch peer does (y.sum().backward()).
    Function f = [w](const std::vector<Tensor>& v) {
      return std::vector<Tensor>{sum(lora_linear(v[0], w, std::nullopt, v[1], v[2], 2.0))};
    };
    auto step = value_and_grad(f, {0, 1, 2});
    Function as_fn = [step](const std::vector<Tensor>& v) {
      auto [o, g] = step(v);
      return std::vector<Tensor>{o[0], g[0], g[1], g[2]};
    };
    CompiledFunction compiled = compile(as_fn);
    double flops = 3 * 2.0 * 64 * 512 * 512;  // forward GEMM plus the x-gradient GEMM, and the rank-8 terms
    auto lazy = measure([&] { eval(as_fn({x, a, b})); }, topt_);
    Result r1 = result("lora_linear/fwd_bwd", lazy);
    r1.extra["gflops"] = flops / (lazy.median_us * 1e3);
    rep_.add(r1);
    auto comp = measure([&] { eval(compiled({x, a, b})); }, topt_);
    rep_.add(result("lora_linear/fwd_bwd_compiled", comp, "lora_linear/fwd_bwd"));
  }

  void train_step() {
    if (!wanted("train_step")) return;
    ModelShape m;
    Generator gen(2);
    TensorMap params = init_params(m, gen);
    Tensor ids = astype(uniform({m.batch, m.seq}, gen, 0, double(m.vocab)), DType::i64).eval();
    Tensor labels = astype(uniform({m.batch, m.seq}, gen, 0, double(m.vocab)), DType::i64).eval();
    int64_t n_params = 0;
    for (auto& [k, v] : params) n_params += v.numel();
    double tokens = double(m.batch * m.seq);
    rep_.note("train_step: " + std::to_string(n_params) + " parameters, " + std::to_string(m.batch) + " x " +
              std::to_string(m.seq) + " tokens, AdamW on every parameter");

    // Plain step: value_and_grad over the map, AdamW::step.
    auto plain = [&](AdamW& opt, TensorMap& p) {
      auto [loss, g] = value_and_grad([&](const TensorMap& q) { return decoder_loss(m, q, ids, labels); }, p);
      p = opt.step(p, g, 1e-4);
      std::vector<Tensor> all = {loss};
      for (auto& [k, v] : p) all.push_back(v);
      for (auto& [k, v] : opt.first_moments()) all.push_back(v);
      for (auto& [k, v] : opt.second_moments()) all.push_back(v);
      eval(all);
    };
    auto peak_of = [](const std::function<void()>& f) {
      clear_memory_cache();
      reset_peak_memory();
      size_t base = memory_stats().active;
      f();
      return double(memory_stats().peak - base) / 1048576.0;
    };
    auto add = [&](const std::string& name, const Timing& t, double peak, const std::string& base) {
      Result r = result(name, t, base);
      r.extra["tok_s"] = tokens / (t.median_us * 1e-6);
      r.extra["peak_mib"] = peak;
      rep_.add(r);
    };
    {
      AdamW opt;
      TensorMap p = params;
      auto once = [&] {
        EagerScope eager;
        plain(opt, p);
      };
      double peak = peak_of(once);
      add("train_step/eager", measure(once, topt_), peak, "");
    }
    {
      AdamW opt;
      TensorMap p = params;
      auto once = [&] { plain(opt, p); };
      double peak = peak_of(once);
      add("train_step/lazy", measure(once, topt_), peak, "train_step/eager");
    }
    {
      AdamW opt;
      std::vector<std::string> names;
      for (auto& [k, v] : params) names.push_back(k);
      size_t n = names.size();
      // Inputs: params, m, v (name order), the three AdamW scalars, ids, labels.
      CompiledFunction step = compile([&, n](const std::vector<Tensor>& in) {
        TensorMap p, mm, vv;
        for (size_t i = 0; i < n; ++i) {
          p[names[i]] = in[i];
          mm[names[i]] = in[n + i];
          vv[names[i]] = in[2 * n + i];
        }
        auto [loss, g] = value_and_grad([&](const TensorMap& q) { return decoder_loss(m, q, in[3 * n + 3], in[3 * n + 4]); }, p);
        auto r = opt.update(p, g, mm, vv, {in[3 * n], in[3 * n + 1], in[3 * n + 2]});
        std::vector<Tensor> out = {loss};
        for (auto& x : names) out.push_back(r.params[x]);
        for (auto& x : names) out.push_back(r.m[x]);
        for (auto& x : names) out.push_back(r.v[x]);
        return out;
      });
      std::vector<Tensor> state;
      for (auto& x : names) state.push_back(params[x]);
      for (auto& x : names) state.push_back(zeros(params[x].shape()));
      for (auto& x : names) state.push_back(zeros(params[x].shape()));
      int64_t t = 0;
      auto once = [&] {
        std::vector<Tensor> in = state;
        AdamW hyper;
        hyper.set_state({}, {}, t++);
        for (auto& s : hyper.step_scalars(1e-4)) in.push_back(s);
        in.push_back(ids);
        in.push_back(labels);
        std::vector<Tensor> out = step(in);
        eval(out);
        state.assign(out.begin() + 1, out.end());
      };
      once();  // trace outside the measurement of memory
      if (opt_.profile) {
        set_profiling(true);
        profile_report(true);
        once();
        set_profiling(false);
        for (const auto& e : profile_report(true))
          if (e.total_us > 200)
            rep_.note("profile " + e.name + ": " + std::to_string(e.calls) + " calls, " + std::to_string(int64_t(e.total_us)) + " us");
      }
      double peak = peak_of(once);
      add("train_step/compiled", measure(once, topt_), peak, "train_step/eager");
      CompileStats st = step.stats();
      rep_.note("compiled step: " + std::to_string(st.nodes_traced) + " traced ops -> " +
                std::to_string(st.nodes_planned) + " (" + std::to_string(st.kernels_planned) + " kernels; " +
                std::to_string(st.fused_elementwise) + " fused chains, " + std::to_string(st.fused_patterns) +
                " patterns, " + std::to_string(st.merged) + " merged, " + std::to_string(st.folded) +
                " folded); plan peak " + std::to_string(st.plan_peak_bytes / 1048576.0) + " MiB");
    }
  }

  Options opt_;
  Reporter rep_;
  TimingOptions topt_;
};

[[maybe_unused]] const wick::cli::Command bench_train{
    "bench train", "Time training: LoRA linear forward+backward and a full compiled training step",
    [](CLI::App& app) -> wick::cli::Action {
      auto o = std::make_shared<Options>();
      app.add_flag("--json", o->json, "One JSON object per line instead of a table");
      app.add_flag("--quick", o->quick, "Short runs (smoke test; noisier figures)");
      app.add_option("--filter", o->filter, "Only benchmark groups whose name contains this text");
      app.add_flag("--profile", o->profile, "Print where the compiled training step spends its time");
      return [o] { return TrainBench(*o).run(); };
    }};

}  // namespace
}  // namespace wick::bench
