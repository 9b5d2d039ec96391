// Adapter files: PEFT folders written by wick (config field for field as PEFT 0.21 writes it,
// weights bit-exact through load_peft_adapter), and mlx-lm adapters imported from tensors built
// here, checked against mlx-lm's formula computed naively.
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
std::string model_dir() { return fixtures() + "/models/qwen2-tied"; }
std::string peft_dir() { return fixtures() + "/lora/qwen2-tied-adapter"; }

json read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

Tensor logits_of(CausalLM& m, const std::vector<int64_t>& ids) {
  int64_t T = static_cast<int64_t>(ids.size());
  return reshape(m.forward(Tensor::from_vector(ids, {1, T})), {T, -1}).eval();
}

const std::vector<int64_t> kIds = {5, 17, 101, 3, 250, 42, 7};

bool bit_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  auto x = astype(a, DType::f32).to_vector<float>(), y = astype(b, DType::f32).to_vector<float>();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

using wt::max_abs_diff;

template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << parts[0];
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

// ---- PEFT config ----

TEST(PeftConfig, WritesEveryFieldAsPeftDoes) {
  // The fixture was written by PEFT 0.21's save_pretrained: parsing it and writing it back must
  // give the same JSON document (every key, every value).
  json peft = read_json(peft_dir() + "/adapter_config.json");
  PeftAdapterConfig c = PeftAdapterConfig::load(peft_dir() + "/adapter_config.json");
  EXPECT_EQ(c.r, 4);
  EXPECT_EQ(c.lora_alpha, 8.0);
  EXPECT_EQ(c.scaling(), 2.0);
  json ours = json::parse(c.to_json());
  EXPECT_EQ(ours, peft) << ours.dump(1) << "\nvs\n" << peft.dump(1);
  // PEFT's layout too: two-space indent, sorted keys.
  EXPECT_EQ(c.to_json(), peft.dump(2));
}

TEST(PeftConfig, OptionsRoundTrip) {
  LoraOptions o;
  o.targets = {"all-linear"};
  o.rank = 3;
  o.alpha = 5.5;
  o.dropout = 0.1;
  o.rslora = true;
  o.layers = {1};
  PeftAdapterConfig c = PeftAdapterConfig::from_options(o, "some/model");
  json j = json::parse(c.to_json());
  EXPECT_EQ(j["target_modules"], "all-linear");  // a string, as PEFT keeps it
  EXPECT_EQ(j["layers_to_transform"], json::array({1}));
  EXPECT_EQ(j["use_rslora"], true);
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["base_model_name_or_path"], "some/model");
  PeftAdapterConfig back = PeftAdapterConfig::parse(c.to_json(), "x");
  LoraOptions r = back.to_options();
  EXPECT_EQ(r.targets, o.targets);
  EXPECT_EQ(r.rank, 3);
  EXPECT_EQ(r.alpha, 5.5);
  EXPECT_EQ(r.dropout, 0.1);
  EXPECT_TRUE(r.rslora);
  EXPECT_EQ(r.layers, o.layers);
  EXPECT_DOUBLE_EQ(back.scaling(), 5.5 / std::sqrt(3.0));
}

TEST(PeftConfig, BadConfigsNameFileAndField) {
  expect_error([] { PeftAdapterConfig::parse("[1]", "a.json"); }, {"a.json", "object"});
  expect_error([] { PeftAdapterConfig::parse("{\"r\": 4}", "a.json"); }, {"a.json", "target_modules"});
  expect_error([] { PeftAdapterConfig::parse("{\"r\": 0, \"target_modules\": [\"q\"]}", "a.json"); }, {"a.json", "r"});
  expect_error([] { PeftAdapterConfig::parse("{\"r\": 4, \"target_modules\": []}", "a.json"); }, {"target_modules"});
  expect_error([] { PeftAdapterConfig::parse("{\"r\": \"4\", \"target_modules\": [\"q\"]}", "a.json"); }, {"r"});
  expect_error([] { PeftAdapterConfig::parse("{\"r\": 4, \"target_modules\": [\"q\"], \"use_dora\": true}", "a.json"); },
               {"use_dora"});
  expect_error([] { PeftAdapterConfig::parse("{\"r\": 4, \"r\": 5, \"target_modules\": [\"q\"]}", "a.json"); },
               {"a.json"});
  expect_error([] { PeftAdapterConfig::parse("{\"r\": 4, \"target_modules\": [\"q\"", "a.json"); }, {"a.json"});
}

// ---- writing PEFT folders ----

/// qwen2-tied with a fresh adapter whose B is non-zero (so it changes the logits).
std::shared_ptr<CausalLM> adapted_model(const LoraOptions& o) {
  auto m = CausalLM::load(model_dir());
  apply_lora(*m, o);
  Generator g(o.seed + 100);
  std::map<std::string, Tensor> bs;
  for (const auto& [name, t] : m->parameters())
    if (name.ends_with("lora_B.weight")) bs[name] = normal(t.shape(), g, 0.0, 0.2);
  m->update(bs);
  return m;
}

TEST(PeftWrite, RoundTripIsBitExact) {
  for (bool rslora : {false, true}) {
    LoraOptions o;
    o.targets = rslora ? std::vector<std::string>{"all-linear"} : std::vector<std::string>{"q_proj", "v_proj"};
    o.rank = 4;
    o.alpha = 8;
    o.rslora = rslora;
    o.seed = 3;
    if (rslora) o.layers = {1};
    auto m = adapted_model(o);
    wt::TempDir tmp;
    std::string dir = tmp.file("adapter");
    save_peft_adapter(*m, dir, PeftAdapterConfig::from_options(o, model_dir()));

    // The file itself: PEFT's key names, f32, [r, in] / [out, r], metadata format pt.
    SafetensorsFile f(dir + "/adapter_model.safetensors");
    EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
    size_t n_lora = 0;
    for (const auto& [name, t] : m->parameters()) {
      if (!name.ends_with("lora_A.weight") && !name.ends_with("lora_B.weight")) continue;
      ++n_lora;
      std::string key = "base_model.model." + name;
      ASSERT_TRUE(f.contains(key)) << key;
      EXPECT_EQ(f.info(key).dtype, "F32");
      EXPECT_TRUE(bit_equal(f.load(key), t)) << key;
    }
    EXPECT_EQ(f.names().size(), n_lora);
    EXPECT_EQ(n_lora, rslora ? 14u : 8u);  // all-linear in layer 1: 7 modules; q,v in 2 layers: 4

    auto fresh = CausalLM::load(model_dir());
    auto names = load_peft_adapter(*fresh, dir);
    EXPECT_EQ(names.size() * 2, n_lora);
    auto want = m->parameters();
    for (const auto& [name, t] : fresh->parameters()) EXPECT_TRUE(bit_equal(t, want.at(name))) << name;
    EXPECT_TRUE(bit_equal(logits_of(*fresh, kIds), logits_of(*m, kIds)));
  }
}

TEST(PeftWrite, PeftFixtureSurvivesReadAndWrite) {
  LoraAdapter a = read_peft_adapter(peft_dir());
  EXPECT_EQ(a.modules.size(), 6u);
  EXPECT_EQ(a.parameter_count(), 2 * (4 * 64 + 64 * 4) + 2 * (4 * 64 + 32 * 4) + 2 * (4 * 128 + 64 * 4));
  wt::TempDir tmp;
  save_peft_adapter(a, tmp.path);
  auto orig = load_safetensors(peft_dir() + "/adapter_model.safetensors");
  auto back = load_safetensors(tmp.file("adapter_model.safetensors"));
  ASSERT_EQ(orig.size(), back.size());
  for (const auto& [k, t] : orig) EXPECT_TRUE(bit_equal(t, back.at(k))) << k;
  EXPECT_EQ(read_json(tmp.file("adapter_config.json")), read_json(peft_dir() + "/adapter_config.json"));
}

TEST(PeftWrite, ReplacesAnAdapterAndKeepsOtherFiles) {
  wt::TempDir tmp;
  wt::write_raw(tmp.file("metrics.jsonl"), "{}\n");
  LoraAdapter a = read_peft_adapter(peft_dir());
  save_peft_adapter(a, tmp.path);
  LoraOptions o;
  o.targets = {"o_proj"};
  o.rank = 2;
  o.alpha = 4;
  auto m = adapted_model(o);
  save_peft_adapter(*m, tmp.path, PeftAdapterConfig::from_options(o, ""));
  EXPECT_EQ(tmp.entries(), (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors", "metrics.jsonl"}));
  LoraAdapter b = read_peft_adapter(tmp.path);
  EXPECT_EQ(b.config.r, 2);
  EXPECT_EQ(b.modules.size(), 2u);
}

TEST(PeftWrite, RefusesAConfigThatWouldNotLoadBack) {
  LoraOptions o;
  o.targets = {"q_proj", "v_proj"};
  o.rank = 4;
  o.alpha = 8;
  auto m = adapted_model(o);
  wt::TempDir tmp;
  auto cfg = PeftAdapterConfig::from_options(o, "");
  cfg.r = 8;
  expect_error([&] { save_peft_adapter(*m, tmp.path, cfg); }, {"rank"});
  cfg = PeftAdapterConfig::from_options(o, "");
  cfg.lora_alpha = 16;
  expect_error([&] { save_peft_adapter(*m, tmp.path, cfg); }, {"scaling"});
  cfg = PeftAdapterConfig::from_options(o, "");
  cfg.target_modules = {"q_proj"};
  expect_error([&] { save_peft_adapter(*m, tmp.path, cfg); }, {"v_proj", "do not select"});
  cfg.target_modules = {"q_proj", "v_proj", "k_proj"};
  expect_error([&] { save_peft_adapter(*m, tmp.path, cfg); }, {"k_proj", "no LoRA adapter"});
  auto plain = CausalLM::load(model_dir());
  expect_error([&] { save_peft_adapter(*plain, tmp.path, PeftAdapterConfig::from_options(o, "")); }, {"no LoRA"});
  EXPECT_TRUE(tmp.entries().empty());  // nothing written by a refused save
}

TEST(PeftRead, BrokenFoldersFailNamingTheFile) {
  wt::TempDir tmp;
  expect_error([&] { read_peft_adapter(tmp.path); }, {"adapter_config.json", "missing"});
  auto w = load_safetensors(peft_dir() + "/adapter_model.safetensors");
  fs::copy_file(peft_dir() + "/adapter_config.json", tmp.file("adapter_config.json"));
  expect_error([&] { read_peft_adapter(tmp.path); }, {"adapter_model.safetensors", "missing"});
  auto write = [&](std::map<std::string, Tensor> m) { save_safetensors(tmp.file("adapter_model.safetensors"), m); };
  const std::string qa = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  const std::string qb = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
  auto v = w;
  v.erase(qb);
  write(v);
  expect_error([&] { read_peft_adapter(tmp.path); }, {"adapter_model.safetensors", "lora_B", "missing"});
  v = w;
  v[qa] = zeros({5, 64});
  write(v);
  expect_error([&] { read_peft_adapter(tmp.path); }, {"adapter_model.safetensors", "rank"});
  v = w;
  v["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"] = zeros({64});
  write(v);
  expect_error([&] { read_peft_adapter(tmp.path); }, {"lora_magnitude_vector"});
  v = w;
  v["model.layers.0.x.lora_A.weight"] = zeros({4, 4});
  write(v);
  expect_error([&] { read_peft_adapter(tmp.path); }, {"base_model.model."});
  v = w;
  v[qa] = Tensor::from_vector(std::vector<int32_t>(4 * 64, 1), {4, 64});
  write(v);
  expect_error([&] { read_peft_adapter(tmp.path); }, {"adapter_model.safetensors", "floating-point"});
  // A truncated weights file.
  std::string bytes = wt::read_raw(peft_dir() + "/adapter_model.safetensors");
  wt::write_raw(tmp.file("adapter_model.safetensors"), bytes.substr(0, bytes.size() / 2));
  expect_error([&] { read_peft_adapter(tmp.path); }, {"adapter_model.safetensors"});
}

// ---- mlx-lm import ----

/// An mlx-lm adapter folder made from the PEFT fixture's tensors: lora_a = Aᵀ, lora_b = Bᵀ, and
/// scale = PEFT's alpha / r, over the modules of `layers`.
void write_mlx(const std::string& dir, const std::vector<int>& layers, json config_extra = json::object()) {
  auto w = load_safetensors(peft_dir() + "/adapter_model.safetensors");
  std::map<std::string, Tensor> out;
  for (const auto& [k, t] : w) {
    std::string mod = k.substr(std::string("base_model.model.").size());
    bool keep = false;
    for (int l : layers) keep = keep || mod.starts_with("model.layers." + std::to_string(l) + ".");
    if (!keep) continue;
    bool is_a = mod.ends_with(".lora_A.weight");
    mod = mod.substr(0, mod.size() - std::string(".lora_A.weight").size());
    out[mod + (is_a ? ".lora_a" : ".lora_b")] = contiguous(transpose(t));
  }
  fs::create_directories(dir);
  save_safetensors(dir + "/adapters.safetensors", out);
  json c = {{"model", "tiny-qwen2"},
            {"fine_tune_type", "lora"},
            {"num_layers", static_cast<int>(layers.size())},
            {"batch_size", 4},
            {"learning_rate", 1e-5},
            {"lora_parameters", {{"rank", 4}, {"scale", 2.0}, {"dropout", 0.0},
                                 {"keys", {"self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"}}}}};
  c.merge_patch(config_extra);
  std::ofstream(dir + "/adapter_config.json") << c.dump(2);
}

TEST(MlxImport, TransposesAndKeepsTheScale) {
  wt::TempDir tmp;
  write_mlx(tmp.path, {0, 1});
  LoraAdapter a = import_mlx_adapter(tmp.path);
  EXPECT_EQ(a.config.r, 4);
  EXPECT_EQ(a.config.lora_alpha, 8.0);
  EXPECT_EQ(a.config.scaling(), 2.0);
  EXPECT_TRUE(a.config.layers_to_transform.empty());  // layers 0..1: every layer
  EXPECT_EQ(a.config.target_modules, (std::vector<std::string>{"mlp.down_proj", "self_attn.q_proj", "self_attn.v_proj"}));
  EXPECT_EQ(a.config.base_model_name_or_path, "tiny-qwen2");
  LoraAdapter peft = read_peft_adapter(peft_dir());
  ASSERT_EQ(a.modules.size(), peft.modules.size());
  for (const auto& [m, p] : peft.modules) {
    ASSERT_TRUE(a.modules.count(m)) << m;
    EXPECT_TRUE(bit_equal(a.modules.at(m).a, p.a)) << m;
    EXPECT_TRUE(bit_equal(a.modules.at(m).b, p.b)) << m;
  }

  // Written as PEFT and loaded onto the model: the PEFT fixture's logits.
  save_peft_adapter(a, tmp.file("peft"));
  auto m1 = CausalLM::load(model_dir());
  load_peft_adapter(*m1, tmp.file("peft"));
  auto m2 = CausalLM::load(model_dir());
  load_peft_adapter(*m2, peft_dir());
  EXPECT_TRUE(bit_equal(logits_of(*m1, kIds), logits_of(*m2, kIds)));
}

TEST(MlxImport, LoraOutputMatchesMlxFormula) {
  // mlx-lm's layer: y = x·W + scale·(x·lora_a)·lora_b with W stored as [out, in] (x·Wᵀ), computed
  // here in double loops from the mlx tensors, against the imported adapter's LoRALinear.
  wt::TempDir tmp;
  const int64_t in = 6, out = 5, r = 3;
  const double scale = 1.75;
  Generator g(11);
  Tensor w = normal({out, in}, g, 0, 0.5).eval(), la = normal({in, r}, g, 0, 0.5).eval(),
         lb = normal({r, out}, g, 0, 0.5).eval(), x = normal({2, in}, g).eval();
  save_safetensors(tmp.file("adapters.safetensors"),
                   {{"model.layers.0.mlp.gate_proj.lora_a", la}, {"model.layers.0.mlp.gate_proj.lora_b", lb}});
  json c = {{"fine_tune_type", "lora"}, {"num_layers", 1}, {"lora_parameters", {{"rank", r}, {"scale", scale}, {"dropout", 0.0}}}};
  std::ofstream(tmp.file("adapter_config.json")) << c.dump();
  LoraAdapter a = import_mlx_adapter(tmp.path);
  EXPECT_EQ(a.config.layers_to_transform, std::vector<int64_t>{});
  EXPECT_EQ(a.config.target_modules, std::vector<std::string>{"mlp.gate_proj"});
  const LoraPair& p = a.modules.at("model.layers.0.mlp.gate_proj");
  Linear base(w);
  Generator g2(0);
  LoRALinear l(base, r, a.config.lora_alpha, 0, a.config.use_rslora, g2);
  l.update({{"lora_A.weight", p.a}, {"lora_B.weight", p.b}});
  Tensor y = l(x);
  auto xv = x.to_vector<float>(), wv = w.to_vector<float>(), av = la.to_vector<float>(), bv = lb.to_vector<float>();
  std::vector<float> want(2 * out);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += double(xv[n * in + i]) * wv[o * in + i];
      double lo = 0;
      for (int64_t k = 0; k < r; ++k) {
        double xa = 0;
        for (int64_t i = 0; i < in; ++i) xa += double(xv[n * in + i]) * av[i * r + k];
        lo += xa * bv[k * out + o];
      }
      want[n * out + o] = static_cast<float>(acc + scale * lo);
    }
  EXPECT_LE(max_abs_diff(y, Tensor::from_vector(want, {2, out})), 1e-5);
}

TEST(MlxImport, LayerSubsetBecomesLayersToTransform) {
  wt::TempDir tmp;
  write_mlx(tmp.path, {1}, {{"num_layers", 1}});
  LoraAdapter a = import_mlx_adapter(tmp.path);
  EXPECT_EQ(a.config.layers_to_transform, std::vector<int64_t>{1});
  save_peft_adapter(a, tmp.file("peft"));
  auto m = CausalLM::load(model_dir());
  auto names = load_peft_adapter(*m, tmp.file("peft"));
  EXPECT_EQ(names.size(), 3u);
  for (const auto& n : names) EXPECT_TRUE(n.starts_with("model.layers.1.")) << n;
}

TEST(MlxImport, BadFoldersFailNamingTheFile) {
  wt::TempDir tmp;
  expect_error([&] { import_mlx_adapter(tmp.path); }, {"adapter_config.json", "missing"});
  write_mlx(tmp.path, {0, 1}, {{"fine_tune_type", "dora"}});
  expect_error([&] { import_mlx_adapter(tmp.path); }, {"adapter_config.json", "fine_tune_type"});
  write_mlx(tmp.path, {0, 1}, {{"lora_parameters", {{"scale", nullptr}}}});
  expect_error([&] { import_mlx_adapter(tmp.path); }, {"adapter_config.json", "scale"});
  write_mlx(tmp.path, {0, 1}, {{"lora_parameters", {{"rank", 8}}}});
  expect_error([&] { import_mlx_adapter(tmp.path); }, {"adapters.safetensors", "rank 8"});
  write_mlx(tmp.path, {0, 1}, {{"lora_parameters", {{"keys", {"self_attn.q_proj"}}}}});
  expect_error([&] { import_mlx_adapter(tmp.path); }, {"adapters.safetensors", "keys"});
  // Different modules in different layers: no PEFT config says that.
  write_mlx(tmp.path, {0, 1});
  auto w = load_safetensors(tmp.file("adapters.safetensors"));
  w.erase("model.layers.1.mlp.down_proj.lora_a");
  w.erase("model.layers.1.mlp.down_proj.lora_b");
  save_safetensors(tmp.file("adapters.safetensors"), w);
  expect_error([&] { import_mlx_adapter(tmp.path); }, {"mlp.down_proj", "cannot express"});
  w.erase("model.layers.1.self_attn.q_proj.lora_b");
  save_safetensors(tmp.file("adapters.safetensors"), w);
  expect_error([&] { import_mlx_adapter(tmp.path); }, {"q_proj.lora_b", "missing"});
  w["model.layers.0.mlp.down_proj.m"] = zeros({64});
  save_safetensors(tmp.file("adapters.safetensors"), w);
  expect_error([&] { import_mlx_adapter(tmp.path); }, {"down_proj.m"});
  save_safetensors(tmp.file("adapters.safetensors"),
                   {{"lm_head.lora_a", zeros({64, 4})}, {"lm_head.lora_b", zeros({4, 256})}});
  expect_error([&] { import_mlx_adapter(tmp.path); }, {"lm_head", "layers"});
}

}  // namespace
