// `wick bench adapters`: what switching LoRA adapters costs in an AdapterRegistry, next to the
// alternative of reloading the base model and applying the adapter.
//
// The model (a folder, or random weights of the ~100M Qwen2 shape written once as f32 into a
// temporary folder) gets random adapters of growing size, saved as PEFT folders. Timed:
//   base/reload              CausalLM::load of the folder (f32 safetensors from the page cache:
//                            zero-copy, the cheapest reload there is)
//   base/reload bf16 file    the same from a bf16 file (converted to f32 on load), as most
//                            published checkpoints are stored
//   base/reload+adapter      the f32 reload plus load_peft_adapter: what a switch costs without a registry
//   registry/load <a>        read_peft_adapter + AdapterRegistry::add (once per adapter)
//   registry/activate <a>    activate from the base model (deactivate is untimed preparation)
//   registry/switch <a>-><b> activate b while a is active
//   registry/deactivate <a>  back to the base model
// Activation only rewires modules over tensors already in memory and evaluates nothing, so each
// timed call has finished its work when it returns. Figures are medians; ratios are to
// base/reload+adapter of the same run.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_models.h"
#include "bench_util.h"
#include "command.h"
#include "wick/wick.h"

namespace wick::bench {

LoraAdapter random_adapter(const CausalLM& model, const std::vector<std::string>& targets,
                           int64_t rank, uint64_t seed) {
  LoraAdapter a;
  a.config.r = rank;
  a.config.lora_alpha = 2.0 * static_cast<double>(rank);
  a.config.target_modules = targets;
  LoraOptions opts = a.config.to_options();
  Generator g(seed);
  for (const auto& [name, m] : model.named_modules()) {
    auto* l = dynamic_cast<Linear*>(m.get());
    if (!l || !lora_targets_module(opts, name)) continue;
    a.modules.emplace(name, LoraPair{normal({rank, l->in_features()}, g, 0, 0.02).eval(),
                                     normal({l->out_features(), rank}, g, 0, 0.02).eval()});
  }
  return a;
}

namespace {

namespace fs = std::filesystem;

struct AdaptersOptions {
  std::string model;
  bool json = false;
  bool quick = false;
};

struct Spec {
  std::string name;
  std::vector<std::string> targets;
  int64_t rank;
};

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/wick-bench-adapters-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw Error("bench adapters: cannot create a temporary folder");
  return tmpl;
}

int run_adapters(const AdaptersOptions& o) {
  Reporter rep(o.json);
  std::string tmp = make_temp_dir();
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{tmp};

  std::string model_dir = o.model, bf16_dir;
  if (model_dir.empty()) {
    auto m = std::make_shared<CausalLM>(ModelConfig::parse(kQwen2_100M, "qwen2-100m"));
    m->init_random(0);
    auto write_model = [&](const std::string& dir, DType dt) {
      fs::create_directories(dir);
      std::map<std::string, Tensor> w;
      for (const auto& [name, t] : m->parameters()) w.emplace(name, astype(t, dt));
      save_safetensors(dir + "/model.safetensors", w);
      std::string cfg = kQwen2_100M;
      FILE* f = std::fopen((dir + "/config.json").c_str(), "wb");
      bool ok = f && std::fwrite(cfg.data(), 1, cfg.size(), f) == cfg.size();
      if (f) std::fclose(f);
      if (!ok) throw Error("bench adapters: cannot write " + dir + "/config.json");
    };
    model_dir = tmp + "/model";
    write_model(model_dir, DType::f32);
    // Published checkpoints are mostly bf16, which a reload must convert: the common case.
    bf16_dir = tmp + "/model-bf16";
    write_model(bf16_dir, DType::bf16);
    rep.note("model: qwen2-100m shape, random weights, f32 (and bf16) safetensors in " + tmp);
  } else {
    rep.note("model: " + model_dir);
  }

  auto model = CausalLM::load(model_dir);
  std::vector<Spec> specs = {{"qv-r8", {"q_proj", "v_proj"}, 8},
                             {"all-linear-r16", {"all-linear"}, 16},
                             {"all-linear-r64", {"all-linear"}, 64}};
  if (o.quick) specs.pop_back();
  for (size_t i = 0; i < specs.size(); ++i) {
    LoraAdapter a = random_adapter(*model, specs[i].targets, specs[i].rank, 100 + i);
    a.config.base_model_name_or_path = model_dir;
    save_peft_adapter(a, tmp + "/" + specs[i].name);
  }

  TimingOptions slow;  // whole-model reloads: a few samples
  slow.min_time_s = 0;
  slow.min_iters = o.quick ? 2 : 5;
  slow.warmup = 1;
  TimingOptions fast;
  fast.min_time_s = o.quick ? 0.05 : 0.3;
  fast.min_iters = 10;
  fast.warmup = 2;

  Result r;
  r.name = "base/reload";
  r.timing = measure([&] { keep(CausalLM::load(model_dir).get()); }, slow);
  rep.add(r);
  if (!bf16_dir.empty()) {
    r = Result{};
    r.name = "base/reload bf16 file";
    r.timing = measure([&] { keep(CausalLM::load(bf16_dir).get()); }, slow);
    rep.add(r);
  }
  const std::string base_name = "base/reload+adapter " + specs[0].name;
  r = Result{};
  r.name = base_name;
  r.timing = measure(
      [&] {
        auto m = CausalLM::load(model_dir);
        load_peft_adapter(*m, tmp + "/" + specs[0].name);
        keep(m.get());
      },
      slow);
  rep.add(r);

  AdapterRegistry reg(model);
  for (const auto& s : specs) {
    r = Result{};
    r.name = "registry/load " + s.name;
    int64_t n = 0;
    r.timing = measure(
        [&] {
          AdapterRegistry scratch(model);  // a fresh name space each time; the base is shared
          scratch.load(s.name, tmp + "/" + s.name);
          keep(&scratch);
        },
        slow);
    reg.load(s.name, tmp + "/" + s.name);
    n = reg.adapter(s.name).parameter_count();
    r.extra["adapter_params"] = static_cast<double>(n);
    r.extra["modules"] = static_cast<double>(reg.adapter(s.name).modules.size());
    rep.add(r);
  }
  for (const auto& s : specs) {
    r = Result{};
    r.name = "registry/activate " + s.name;
    r.baseline = base_name;
    r.timing = measure([&] { reg.activate(s.name); }, fast, [&] { reg.deactivate(); });
    r.extra["modules"] = static_cast<double>(reg.adapter(s.name).modules.size());
    rep.add(r);
  }
  for (size_t i = 0; i + 1 < specs.size(); ++i) {
    const Spec &a = specs[i], &b = specs[i + 1];
    r = Result{};
    r.name = "registry/switch " + a.name + "->" + b.name;
    r.baseline = base_name;
    r.timing = measure([&] { reg.activate(b.name); }, fast, [&] { reg.activate(a.name); });
    rep.add(r);
  }
  for (const auto& s : specs) {
    r = Result{};
    r.name = "registry/deactivate " + s.name;
    r.baseline = base_name;
    r.timing = measure([&] { reg.deactivate(); }, fast, [&] { reg.activate(s.name); });
    rep.add(r);
  }
  reg.deactivate();
  return 0;
}

[[maybe_unused]] const wick::cli::Command bench_adapters{
    "bench adapters", "Adapter activate/switch time in an AdapterRegistry vs reloading the base model",
    [](CLI::App& app) -> wick::cli::Action {
      auto o = std::make_shared<AdaptersOptions>();
      app.add_option("--model", o->model, "Model folder (default: random weights of a ~100M Qwen2 shape)")
          ->check(CLI::ExistingDirectory);
      app.add_flag("--quick", o->quick, "Fewer samples and no rank-64 adapter");
      app.add_flag("--json", o->json, "One JSON object per line instead of a table");
      return [o] { return run_adapters(*o); };
    }};

}  // namespace
}  // namespace wick::bench
