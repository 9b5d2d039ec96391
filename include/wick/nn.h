#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "wick/random.h"
#include "wick/tensor.h"

// Neural-network modules: named parameters (Hugging Face dotted names, e.g.
// "model.layers.0.self_attn.q_proj.weight"), composed from child modules. A forward pass only
// builds lazy ops from include/wick/ops.h, so every module is differentiable by the transforms.

namespace wick {

/// Selects parameters or modules by their dotted name.
using NamePredicate = std::function<bool(const std::string& name)>;

/// A node of a model tree: its own parameters plus named child modules. Modules are held by
/// shared_ptr and are not copyable. Parameter handles are replaced (update), never mutated.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The module's type for messages ("Linear", "LoRALinear", ...).
  virtual std::string kind() const { return "Module"; }
  /// Single-input forward (layers). Modules whose forward takes other inputs throw.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// Every parameter of this module and its descendants, by dotted name.
  std::map<std::string, Tensor> parameters() const;
  /// The parameters not frozen.
  std::map<std::string, Tensor> trainable_parameters() const;
  /// Moves every parameter to device `d` (copies evaluated at once; trainability is kept).
  void to(Device d);
  /// The device of the parameters (cpu for a module without any).
  Device device() const;
  /// Replaces parameter handles by dotted name. Unknown names, shape or dtype mismatches throw
  /// naming the parameter; nothing is replaced then.
  void update(const std::map<std::string, Tensor>& values);

  /// Marks every parameter of the subtree frozen (not trainable) / trainable.
  void freeze();
  void unfreeze();
  /// The same for the parameters whose dotted name satisfies `which`.
  void freeze(const NamePredicate& which);
  void unfreeze(const NamePredicate& which);
  /// Whether the named parameter is trainable; unknown names throw.
  bool is_trainable(const std::string& name) const;

  /// Training mode for this module and every descendant (dropout is active only in training).
  void train(bool on = true);
  bool is_training() const { return training_; }

  /// Adds a parameter named `name` (no dots) to this module.
  void register_parameter(const std::string& name, Tensor value, bool trainable = true);
  /// Adds a child module named `name` (no dots).
  void register_module(const std::string& name, std::shared_ptr<Module> module);
  /// Replaces the descendant at `dotted_name` (e.g. "model.layers.0.self_attn.q_proj"), keeping
  /// its place; the parent then forwards through the new module.
  void replace_module(const std::string& dotted_name, std::shared_ptr<Module> module);
  /// The descendant at `dotted_name`, or null.
  std::shared_ptr<Module> find_module(const std::string& dotted_name) const;
  /// Every descendant (not this module), depth first in registration order.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;
  /// This module's direct children in registration order.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

  /// Writes parameters() to a safetensors file (atomically).
  void save(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;
  /// Reads a safetensors file into the parameters (converted to each parameter's dtype). With
  /// `strict`, names missing from the file or unknown to the module are errors; shape
  /// mismatches always are. Messages name the file and the tensor.
  void load(const std::string& path, bool strict = true);

 protected:
  /// Index-based access for subclasses' forward passes (O(1), follows replace_module).
  size_t parameter_index(const std::string& name) const;
  const Tensor& parameter(size_t index) const { return params_[index].value; }
  bool has_parameter(const std::string& name) const;
  size_t child_index(const std::string& name) const;
  Module& child(size_t index) const { return *children_[index].second; }

 private:
  struct Param {
    std::string name;
    Tensor value;
    bool trainable = true;
  };
  void collect(const std::string& prefix, bool only_trainable, std::map<std::string, Tensor>& out) const;
  void collect_modules(const std::string& prefix,
                       std::vector<std::pair<std::string, std::shared_ptr<Module>>>& out) const;
  void set_trainable(const std::string& prefix, const NamePredicate* which, bool on);
  /// The module owning `dotted` parameter and the parameter's slot; null when unknown.
  Param* find_param(const std::string& dotted);

  std::vector<Param> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = false;
};

/// y = x·Wᵀ + b with W [out, in] ("weight") and optional b [out] ("bias").
class Linear : public Module {
 public:
  /// Weight and bias drawn from U(−1/√in, 1/√in), as PyTorch's nn.Linear.
  Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen, DType dtype = DType::f32);
  /// Wraps existing tensors (weight [out, in], bias [out]).
  explicit Linear(Tensor weight, std::optional<Tensor> bias = std::nullopt);
  std::string kind() const override { return "Linear"; }
  Tensor forward(const Tensor& x) override;
  Tensor weight() const { return parameter(0); }
  std::optional<Tensor> bias() const;
  int64_t in_features() const { return weight().shape()[1]; }
  int64_t out_features() const { return weight().shape()[0]; }
};

/// Rows of "weight" [num, dim] for integer ids.
class Embedding : public Module {
 public:
  /// Weight drawn from N(0, 1), as PyTorch's nn.Embedding.
  Embedding(int64_t num, int64_t dim, Generator& gen, DType dtype = DType::f32);
  explicit Embedding(Tensor weight);
  std::string kind() const override { return "Embedding"; }
  /// ids of any shape (i32/i64) -> ids.shape + [dim].
  Tensor forward(const Tensor& ids) override;
  /// x·weightᵀ: the embedding used as a tied output head.
  Tensor attend(const Tensor& x) const;
  Tensor weight() const { return parameter(0); }
};

/// x · rsqrt(mean(x²) + eps) · weight over the last axis (weight initialised to ones).
class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, double eps, DType dtype = DType::f32);
  std::string kind() const override { return "RMSNorm"; }
  Tensor forward(const Tensor& x) override;
  double eps() const { return eps_; }

 private:
  double eps_;
};

/// (x − mean) · rsqrt(var + eps) · weight + bias over the last axis (ones and zeros initially).
class LayerNorm : public Module {
 public:
  LayerNorm(int64_t dim, double eps, bool affine = true, bool bias = true, DType dtype = DType::f32);
  std::string kind() const override { return "LayerNorm"; }
  Tensor forward(const Tensor& x) override;

 private:
  double eps_;
  bool affine_, bias_;
};

/// Zeroes each element with probability p in training mode and scales the rest by 1/(1−p);
/// the identity in eval mode or with p = 0. Draws from its own seeded Generator.
class Dropout : public Module {
 public:
  explicit Dropout(double p, uint64_t seed = 0);
  std::string kind() const override { return "Dropout"; }
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }
  /// True when forward would drop anything (training and p > 0).
  bool active() const { return is_training() && p_ > 0; }
  /// The source of the masks: a trainer sets its counter per step so that resumed runs draw
  /// the same masks as uninterrupted ones.
  Generator& generator() { return gen_; }

 private:
  double p_;
  Generator gen_;
};

/// A Linear with a low-rank adapter, in PEFT's layout and semantics:
/// y = x·Wᵀ + b + scaling · B(A(dropout(x))), scaling = alpha/r (alpha/√r with rsLoRA).
/// Parameters: "weight" and "bias" (the wrapped Linear's, frozen, so HF names stay valid),
/// "lora_A.weight" [r, in] ~ U(−1/√in, 1/√in) and "lora_B.weight" [out, r] = 0 (trainable; f32,
/// or f64 over an f64 base for reference checks).
class LoRALinear : public Module {
 public:
  LoRALinear(const Linear& base, int64_t rank, double alpha, double dropout, bool rslora, Generator& gen);
  std::string kind() const override { return "LoRALinear"; }
  Tensor forward(const Tensor& x) override;
  int64_t rank() const { return rank_; }
  double scaling() const { return scaling_; }
  Tensor weight() const { return parameter(0); }
  Tensor lora_a() const;
  Tensor lora_b() const;
  /// Folds the adapter into the weight (W += scaling·B·A); forward then is a plain linear.
  void merge();
  /// Undoes merge() (W −= scaling·B·A with the current A and B).
  void unmerge();
  bool merged() const { return merged_; }

 private:
  size_t bias_ = SIZE_MAX, a_ = 0, b_ = 0, dropout_ = 0;
  int64_t rank_;
  double scaling_;
  bool merged_ = false;
};

/// Which Linear modules apply_lora wraps and how.
struct LoraOptions {
  /// Module-name suffixes ("q_proj", "self_attn.v_proj"), or {"all-linear"}: every Linear
  /// except the output head (lm_head).
  std::vector<std::string> targets;
  int64_t rank = 8;
  double alpha = 16;
  double dropout = 0;
  bool rslora = false;
  uint64_t seed = 0;
  /// Only modules under "layers.{i}." for these i (empty: all layers).
  std::vector<int64_t> layers;
};

/// Whether a Linear module named `name` (dotted) is one that `options` targets: a target suffix
/// ends the name at a component boundary ("all-linear": anything but lm_head), within
/// options.layers when given. PEFT's rule for list targets; apply_lora selects with it.
bool lora_targets_module(const LoraOptions& options, const std::string& name);

/// Wraps every matching Linear under `root` in a LoRALinear (in module order, A drawn from one
/// Generator seeded with options.seed) and freezes every parameter of `root` that is not an
/// adapter's (lora_A / lora_B), as PEFT does. Returns the dotted names of the wrapped modules; no match is an error.
std::vector<std::string> apply_lora(Module& root, const LoraOptions& options);

/// Loads a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors, keys
/// "base_model.model.<module>.lora_A.weight" / ".lora_B.weight") onto `root`: wraps the modules
/// the config targets with apply_lora and fills the adapter weights (f32). Unsupported PEFT
/// features (DoRA, rank_pattern, modules_to_save, bias, regex targets) and mismatched tensors are
/// errors naming the file (after a tensor-name or shape error the targets stay wrapped, with
/// B = 0). Returns the wrapped module names.
std::vector<std::string> load_peft_adapter(Module& root, const std::string& dir);

}  // namespace wick
