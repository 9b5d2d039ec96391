#pragma once
// Trainer checkpoints: a folder per saved step under <output>/checkpoints/ holding the trained
// weights (PEFT adapter, or model.safetensors with --full), the optimizer state and
// trainer_state.json (step, data position, tokens seen, the options that shape the run).
// Each folder appears atomically, and `latest` names the newest one.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "wick/optim.h"

namespace wick::detail {

struct TrainerState {
  int64_t step = 0;                 // optimizer steps done
  int64_t epoch = 0, batch = 0;     // the data position the next step starts at
  int64_t tokens_seen = 0;
  double last_loss = 0;
  nlohmann::json run;               // options that must match on resume
};

/// Writes <checkpoints_dir>/step-NNNNNNNN (replacing one of the same step) and updates
/// <checkpoints_dir>/latest. `write_weights` fills the folder with the trained weights.
/// Returns the checkpoint's path.
std::string write_checkpoint(const std::string& checkpoints_dir, const TrainerState& state, const AdamW& opt,
                             const std::function<void(const std::string& dir)>& write_weights);

struct Checkpoint {
  std::string dir;
  TrainerState state;
  TensorMap optimizer;  // AdamW::state_dict()
};

/// Reads a checkpoint folder, or the latest checkpoint of a training output folder.
/// Missing or malformed files are errors naming them.
Checkpoint read_checkpoint(const std::string& path);

}  // namespace wick::detail
