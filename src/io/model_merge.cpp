// merge_adapter: a model folder with a LoRA adapter folded into its weights, which transformers
// loads as a plain model. Weights are read without conversion (zero-copy from the mapping), so
// only the adapted matrices and any --dtype conversion cost memory.
#include <filesystem>

#include "io/adapter_match.h"
#include "io/atomic_dir.h"
#include "io/files.h"
#include "io/model_folder.h"
#include "io/json.h"
#include "io/safetensors_header.h"
#include "wick/adapter.h"
#include "wick/ops.h"
#include "wick/safetensors.h"

namespace wick {

MergeReport merge_adapter(const std::string& model_dir, const std::string& adapter_dir, const std::string& output_dir,
                          const MergeOptions& options) {
  if (options.dtype && !is_floating(*options.dtype))
    throw Error(std::string("merge: the output dtype must be floating, got ") + dtype_name(*options.dtype));
  if (!io::is_directory(model_dir)) throw Error(model_dir + ": no such model folder");
  ModelConfig config = ModelConfig::load(model_dir);
  LoraAdapter adapter = read_peft_adapter(adapter_dir);

  // The model's modules and parameters as wick builds them (lazy zeros: no memory), so the
  // adapter is matched exactly as load_peft_adapter would match it.
  CausalLM skeleton(config);
  std::vector<std::string> targets = io::match_adapter(adapter, io::linear_shapes(skeleton), adapter.source);
  std::map<std::string, Tensor> expected = skeleton.parameters();

  std::map<std::string, Tensor> weights = load_model_weights(model_dir);
  const std::string weights_src = io::join_path(model_dir, "model.safetensors");
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : weights) {
    auto it = expected.find(name);
    if (it == expected.end()) {
      // A tied head is the embedding (transformers writes none); RoPE buffers are recomputed.
      if (name == "lm_head.weight" && config.tie_word_embeddings) continue;
      if (name.ends_with(".rotary_emb.inv_freq")) continue;
      throw Error(model_dir + ": unexpected tensor " + io::quote_name(name) + " (not part of this " +
                  config.model_type + " model as config.json describes it)");
    }
    if (t.shape() != it->second.shape())
      throw Error(model_dir + ": tensor " + io::quote_name(name) + " has shape " + shape_str(t.shape()) +
                  " but config.json implies " + shape_str(it->second.shape()));
    if (!is_floating(t.dtype()))
      throw Error(model_dir + ": tensor " + io::quote_name(name) + " is " + dtype_name(t.dtype()) +
                  ", not a floating-point weight");
    out.emplace(name, options.dtype && *options.dtype != t.dtype() ? astype(t, *options.dtype) : t);
  }
  for (const auto& [name, t] : expected)
    if (!out.count(name)) throw Error(weights_src + ": missing weight " + io::quote_name(name));

  // W += scaling·B·A in f32 (as PEFT does on the CPU for half-precision weights), rounded once.
  const double scaling = adapter.config.scaling();
  for (const auto& mod : targets) {
    const LoraPair& p = adapter.modules.at(mod);
    const Tensor& w = weights.at(mod + ".weight");
    DType dt = options.dtype.value_or(w.dtype());
    out[mod + ".weight"] = astype(add(astype(w, DType::f32), multiply(matmul(p.b, p.a), scaling)), dt);
  }

  MergeReport report;
  report.merged_modules = targets;
  report.tensors = static_cast<int64_t>(out.size());
  const std::string config_path = io::join_path(model_dir, "config.json");
  std::string config_text = io::read_file(config_path, size_t{16} << 20);
  if (options.dtype) {
    // Only a change of dtype rewrites the file; otherwise it is copied byte for byte.
    const char* name = io::torch_dtype_name(*options.dtype);
    if (name && config.torch_dtype != name) config_text = io::retyped_config(config_text, config_path, *options.dtype);
  }
  io::write_directory_atomic(
      output_dir,
      [&](const std::string& tmp) {
        const std::string st = io::join_path(tmp, "model.safetensors");
        save_safetensors(st, out, {{"format", "pt"}});
        report.bytes = static_cast<uint64_t>(std::filesystem::file_size(st));
        io::write_file_atomic(io::join_path(tmp, "config.json"), config_text);
        report.copied_files.push_back("config.json");
        for (const std::string& f : io::copy_tokenizer_files(model_dir, tmp)) report.copied_files.push_back(f);
      },
      options.force);
  return report;
}

}  // namespace wick
