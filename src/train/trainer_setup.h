#pragma once
// The pieces of a training run that are not the loop: the model with its trainable parameters,
// the options a resumed run must share with the original, and writing the trained weights.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wick/model.h"
#include "wick/trainer.h"

namespace wick::detail {

/// Throws wick::Error("train: ...") for out-of-range or contradictory options.
void check_train_options(const TrainOptions& o);

/// The options that shape the sequence of steps (and so must match when resuming).
nlohmann::json run_signature(const TrainOptions& o, int64_t total_steps);
/// Compares a checkpoint's signature with this run's; a difference is an error naming it.
void check_resume_signature(const nlohmann::json& saved, const nlohmann::json& now, const std::string& checkpoint);

/// Loads (or, with init_random, initialises) the model and makes the parameters to train
/// trainable: every weight with --full; otherwise a LoRA adapter, new, from --init-adapter, or
/// from `adapter_dir` (a checkpoint being resumed; empty for none).
std::shared_ptr<CausalLM> load_trainable_model(const TrainOptions& o, const std::string& adapter_dir);

/// Writes the trained weights into `dir` (an existing folder): a PEFT adapter, or with --full a
/// complete model folder (model.safetensors in the save dtype, config.json, tokenizer files).
void write_trained_weights(CausalLM& model, const TrainOptions& o, const std::string& dir);

}  // namespace wick::detail
