#pragma once
// LoRA adapters as files and as swappable parts of a loaded model: PEFT's folder format (read and
// written exactly), mlx-lm's format (imported), a registry that keeps one base model in memory
// and switches between several adapters, and merging an adapter into a model folder.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wick/model.h"
#include "wick/nn.h"
#include "wick/tensor.h"

namespace wick {

/// The fields of a PEFT LoRA adapter_config.json that decide the adapter's math and targets.
struct PeftAdapterConfig {
  int64_t r = 8;
  double lora_alpha = 8;
  double lora_dropout = 0;
  /// Module-name suffixes ("q_proj", "self_attn.v_proj"), or {"all-linear"}.
  std::vector<std::string> target_modules;
  bool use_rslora = false;
  /// Layer indices ("layers.{i}."); empty = every layer (written as null).
  std::vector<int64_t> layers_to_transform;
  std::string base_model_name_or_path;

  /// The config of an adapter made by apply_lora(options) on the model in `base_model`.
  static PeftAdapterConfig from_options(const LoraOptions& options, const std::string& base_model);
  /// The apply_lora options that rebuild the adapter's modules (A drawn from `seed`).
  LoraOptions to_options(uint64_t seed = 0) const;
  /// alpha / r, or alpha / √r with rsLoRA.
  double scaling() const;

  /// Parses adapter_config.json text. A non-LoRA peft_type, missing or malformed fields and PEFT
  /// features wick does not implement (DoRA, rank/alpha patterns, modules_to_save, bias, regex
  /// targets, ...) are errors naming `source` and the field.
  static PeftAdapterConfig parse(std::string_view json_text, const std::string& source);
  /// Reads and parses the file at `path`.
  static PeftAdapterConfig load(const std::string& path);
  /// The file as PEFT 0.21 writes it for a CAUSAL_LM LoRA adapter (every field, sorted keys,
  /// two-space indent).
  std::string to_json() const;
};

/// One adapted module: A [r, in] and B [out, r], f32.
struct LoraPair {
  Tensor a;
  Tensor b;
};

/// A LoRA adapter held in memory, independent of any model.
struct LoraAdapter {
  PeftAdapterConfig config;
  /// Adapted module (dotted name, e.g. "model.layers.0.self_attn.q_proj") -> its weights.
  std::map<std::string, LoraPair> modules;
  /// Where it came from (for messages): the weights file, or "".
  std::string source;

  /// Elements of every A and B.
  int64_t parameter_count() const;
  /// Checks every pair against the config (rank r, 2-D, f32, finite shapes) and throws naming
  /// `source` otherwise.
  void validate() const;
};

/// Reads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) without a
/// model: the config is validated as PeftAdapterConfig::parse does, every tensor must be
/// "base_model.model.<module>.lora_A.weight" [r, in] or ".lora_B.weight" [out, r] with both of a
/// pair present. Errors name the file and the tensor.
LoraAdapter read_peft_adapter(const std::string& dir);

/// Writes `adapter` as a PEFT folder: adapter_model.safetensors (keys
/// "base_model.model.<module>.lora_{A,B}.weight", f32, metadata {"format": "pt"}) and
/// adapter_config.json (config.to_json()). Creates `dir` when missing and leaves other files in
/// it alone. Each file is replaced atomically; an existing adapter_config.json is removed first
/// and the new one written last, so that a crash leaves the old adapter, no adapter (no config),
/// or the new one, never new weights under an old config.
void save_peft_adapter(const LoraAdapter& adapter, const std::string& dir);

/// The LoRALinear modules under `root` as an adapter with config `cfg`. Every LoRALinear must
/// match cfg's targets and layers and have its rank and scaling, and every Linear that matches
/// must be wrapped: otherwise the folder would not load back, and this throws.
LoraAdapter extract_lora_adapter(const Module& root, const PeftAdapterConfig& cfg);

/// save_peft_adapter(extract_lora_adapter(root, cfg), dir): what a trainer calls with the
/// LoraOptions it used (PeftAdapterConfig::from_options). load_peft_adapter reads it back
/// bit-exactly.
void save_peft_adapter(const Module& root, const std::string& dir, const PeftAdapterConfig& cfg);

/// Reads an mlx-lm LoRA adapter folder (adapters.safetensors + adapter_config.json with
/// fine_tune_type "lora", num_layers, lora_parameters {rank, scale, dropout, keys}) as a PEFT
/// adapter: lora_a [in, r] -> A [r, in], lora_b [r, out] -> B [out, r]; mlx's scale is used as
/// is, so lora_alpha = scale · r (no rsLoRA). Targets become the module suffixes after
/// "layers.{i}." and layers_to_transform the adapted layers (null when they start at layer 0,
/// as mlx adapts the last num_layers layers). An adapter that PEFT's config cannot express
/// (different modules in different layers, modules outside "layers.{i}.", DoRA) is an error.
LoraAdapter import_mlx_adapter(const std::string& dir);

/// One base model in memory with several named LoRA adapters loaded beside it. Activating an
/// adapter wraps its target Linear modules in LoRALinear modules that share the base weight
/// tensors (nothing of the base is copied); deactivating puts the original Linear modules back.
/// The cost is proportional to the adapter, never to the model. Not thread-safe: switch between
/// forward passes, not during one.
class AdapterRegistry {
 public:
  /// Takes a model that carries no LoRALinear modules.
  explicit AdapterRegistry(std::shared_ptr<CausalLM> model);
  /// The model; its forward uses the active adapter, if any.
  CausalLM& model() const { return *model_; }
  const std::shared_ptr<CausalLM>& model_ptr() const { return model_; }

  /// Reads the PEFT folder `dir` and keeps it as `name` (which must be new and non-empty). Its
  /// targets and tensor shapes are checked against the model now, so activate cannot fail on
  /// them later. Returns the adapted module names.
  std::vector<std::string> load(const std::string& name, const std::string& dir);
  /// The same for an adapter already in memory (e.g. import_mlx_adapter's).
  std::vector<std::string> add(const std::string& name, LoraAdapter adapter);
  /// Makes `name` the active adapter (deactivating the previous one).
  void activate(const std::string& name);
  /// Restores the base model (no-op when nothing is active).
  void deactivate();
  /// The active adapter's name, or nullopt.
  std::optional<std::string> active() const { return active_; }
  /// Forgets `name` (deactivating it first when active).
  void unload(const std::string& name);
  /// Loaded adapter names, sorted.
  std::vector<std::string> names() const;
  /// A loaded adapter; unknown names throw.
  const LoraAdapter& adapter(const std::string& name) const;

 private:
  std::shared_ptr<CausalLM> model_;
  /// Every Linear of the base model by dotted name (the modules deactivate restores).
  std::map<std::string, std::shared_ptr<Linear>> base_linears_;
  std::map<std::string, LoraAdapter> adapters_;
  std::optional<std::string> active_;
};

/// How merge_adapter writes the merged model.
struct MergeOptions {
  /// Dtype of every floating tensor written; nullopt keeps each tensor's stored dtype.
  std::optional<DType> dtype;
  /// Replace a non-empty existing output folder.
  bool force = false;
};

/// What merge_adapter did.
struct MergeReport {
  std::vector<std::string> merged_modules;
  std::vector<std::string> copied_files;  // config.json and the tokenizer files present
  int64_t tensors = 0;
  uint64_t bytes = 0;  // of model.safetensors
};

/// Writes a complete model folder to `output_dir`: model.safetensors with W += scaling · B·A for
/// every adapted module (computed in f32, rounded once to the output dtype) and every other
/// tensor of `model_dir` unchanged (converted with options.dtype), HF names kept (no lm_head when
/// the embeddings are tied); config.json (its torch_dtype / dtype updated when options.dtype
/// changes it); the tokenizer and generation files present. The folder is built as a temporary
/// sibling and renamed into place; a non-empty existing `output_dir` is an error unless
/// options.force.
MergeReport merge_adapter(const std::string& model_dir, const std::string& adapter_dir, const std::string& output_dir,
                          const MergeOptions& options = {});

}  // namespace wick
