#include "train/trainer_setup.h"

#include <cmath>
#include <map>

#include "io/files.h"
#include "io/json.h"
#include "io/model_folder.h"
#include "wick/adapter.h"
#include "wick/error.h"
#include "wick/ops.h"
#include "wick/optim.h"
#include "wick/safetensors.h"

namespace wick::detail {
namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw Error("train: " + what);
}

DType save_dtype(const TrainOptions& o, const ModelConfig& cfg) {
  std::string name = o.save_dtype;
  if (name == "auto") name = cfg.torch_dtype.empty() || o.init_random ? "f32" : cfg.torch_dtype;
  if (name == "f32" || name == "float32") return DType::f32;
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  if (name == "f16" || name == "float16") return DType::f16;
  throw Error("train: --save-dtype " + o.save_dtype + ": expected auto, f32, bf16 or f16");
}

LoraOptions lora_options(const TrainOptions& o) {
  LoraOptions lo;
  lo.targets = o.targets;
  lo.rank = o.rank;
  lo.alpha = o.alpha;
  lo.dropout = o.dropout;
  lo.rslora = o.rslora;
  lo.seed = o.seed;
  lo.layers = o.layers;
  return lo;
}

}  // namespace

void check_train_options(const TrainOptions& o) {
  require(!o.model_dir.empty(), "--model is required");
  require(!o.data_path.empty(), "--data is required");
  require(!o.output_dir.empty(), "--output is required");
  require(o.device == "cpu" || o.device == "cuda", "--device " + o.device + ": expected cpu or cuda");
  require(o.device == "cpu" || cuda_device_count() > 0,
          "--device cuda: no CUDA device is available (or this build of wick has no CUDA backend)");
  require(o.full || o.rank > 0, "--rank must be at least 1");
  require(o.full || !o.targets.empty(), "--targets must name at least one module (or all-linear)");
  require(std::isfinite(o.alpha) && o.alpha > 0, "--alpha must be positive");
  require(o.dropout >= 0 && o.dropout < 1, "--dropout must be in [0, 1)");
  require(std::isfinite(o.lr) && o.lr >= 0, "--lr must be a non-negative number");
  require(o.warmup_steps >= 0, "--warmup-steps must be non-negative");
  require(o.min_lr >= 0, "--min-lr must be non-negative");
  require(o.weight_decay >= 0, "--weight-decay must be non-negative");
  require(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "--betas must both be in [0, 1)");
  require(o.eps >= 0, "--eps must be non-negative");
  require(o.max_grad_norm >= 0, "--max-grad-norm must be non-negative (0 disables clipping)");
  require(o.steps >= 0 && o.epochs >= 0, "--steps and --epochs must be non-negative");
  require(!(o.steps > 0 && o.epochs > 0), "give --steps or --epochs, not both");
  require(o.batch_size >= 1, "--batch-size must be at least 1");
  require(o.grad_accum >= 1, "--grad-accum must be at least 1");
  require(o.max_seq_len >= 2, "--max-seq-len must be at least 2");
  require(o.eval_every >= 0 && o.save_every >= 0, "--eval-every and --save-every must be non-negative");
  require(!(o.full && !o.init_adapter.empty()), "--init-adapter trains an adapter; it cannot be combined with --full");
  LrSchedule::parse(o.lr_schedule);
}

nlohmann::json run_signature(const TrainOptions& o, int64_t total_steps) {
  return {{"full", o.full},
          {"rank", o.rank},
          {"alpha", o.alpha},
          {"dropout", o.dropout},
          {"targets", o.targets},
          {"layers", o.layers},
          {"rslora", o.rslora},
          {"lr", o.lr},
          {"lr_schedule", o.lr_schedule},
          {"warmup_steps", o.warmup_steps},
          {"min_lr", o.min_lr},
          {"weight_decay", o.weight_decay},
          {"betas", {o.beta1, o.beta2}},
          {"eps", o.eps},
          {"max_grad_norm", o.max_grad_norm},
          {"total_steps", total_steps},
          {"batch_size", o.batch_size},
          {"grad_accum", o.grad_accum},
          {"max_seq_len", o.max_seq_len},
          {"truncate", o.truncate},
          {"shuffle", o.shuffle},
          {"seed", o.seed},
          {"mask_prompt", o.mask_prompt}};
}

void check_resume_signature(const nlohmann::json& saved, const nlohmann::json& now, const std::string& checkpoint) {
  if (!saved.is_object()) throw Error(checkpoint + ": trainer_state.json has no \"run\" object");
  for (const auto& [key, value] : now.items()) {
    if (!saved.contains(key))
      throw Error(checkpoint + ": trainer_state.json lacks the run option \"" + key + "\"");
    if (saved[key] != value)
      throw Error("train: --resume " + checkpoint + ": the checkpoint was made with " + key + " = " + saved[key].dump() +
                  ", this run has " + value.dump() + " (a resumed run must repeat the original options)");
  }
}


std::shared_ptr<CausalLM> load_trainable_model(const TrainOptions& o, const std::string& adapter_dir) {
  std::shared_ptr<CausalLM> model;
  if (o.init_random) {
    model = std::make_shared<CausalLM>(ModelConfig::load(o.model_dir));
    model->init_random(o.seed);
  } else {
    // The CPU computes in f32; a GPU keeps the checkpoint's half type (LoRA weights and AdamW
    // state stay f32 either way).
    const Device device = o.device == "cuda" ? Device::cuda(0) : Device::cpu();
    model = CausalLM::load(o.model_dir, ModelConfig::load(o.model_dir).compute_dtype(device));
  }
  if (o.full) {
    if (!adapter_dir.empty()) model->load(io::join_path(adapter_dir, "model.safetensors"));
    model->unfreeze();
  } else if (!adapter_dir.empty()) {
    load_peft_adapter(*model, adapter_dir);
  } else if (!o.init_adapter.empty()) {
    load_peft_adapter(*model, o.init_adapter);
  } else {
    apply_lora(*model, lora_options(o));
  }
  return model;
}

void write_trained_weights(CausalLM& model, const TrainOptions& o, const std::string& dir) {
  if (!o.full) {
    // A new adapter is described by the options; one that was loaded keeps its own config.
    PeftAdapterConfig cfg;
    if (!o.init_adapter.empty()) {
      cfg = PeftAdapterConfig::load(io::join_path(o.init_adapter, "adapter_config.json"));
      cfg.base_model_name_or_path = o.model_dir;
    } else {
      cfg = PeftAdapterConfig::from_options(lora_options(o), o.model_dir);
    }
    save_peft_adapter(model, dir, cfg);
    return;
  }
  const ModelConfig& cfg = model.config();
  DType dt = save_dtype(o, cfg);
  std::map<std::string, Tensor> weights;
  for (const auto& [name, t] : model.parameters()) weights.emplace(name, astype(t, dt));
  save_safetensors(io::join_path(dir, "model.safetensors"), weights, {{"format", "pt"}});
  std::string config_path = io::join_path(o.model_dir, "config.json");
  io::write_file_atomic(io::join_path(dir, "config.json"),
                        io::retyped_config(io::read_file(config_path, size_t(1) << 24), config_path, dt));
  io::copy_tokenizer_files(o.model_dir, dir);
}

}  // namespace wick::detail
