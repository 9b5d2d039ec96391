#pragma once
// Fine-tuning a Hugging Face decoder with LoRA (or all weights): the loop behind `wick train`.
// One optimizer step is one compiled plan (forward, backward, clipping, AdamW); checkpoints hold
// everything needed to continue bit-for-bit (adapter or weights, optimizer moments, data position;
// dropout masks derive from the seed and the step, so there is no other random state).
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace wick {

/// Everything `wick train` takes (defaults as its --help states).
struct TrainOptions {
  std::string model_dir;     // config.json, tokenizer.json and (unless init_random) weights
  std::string data_path;     // training JSONL
  std::string valid_path;    // optional validation JSONL
  std::string output_dir;    // adapter (or full model), checkpoints/, metrics.jsonl
  std::string init_adapter;  // start from this PEFT adapter's weights
  std::string resume;        // a checkpoint folder, or an output folder (its latest checkpoint)
  std::string metrics_path;  // default: <output_dir>/metrics.jsonl
  bool init_random = false;  // ignore any weights: initialise from the config (pretraining)

  // What is trained.
  bool full = false;  // every weight instead of a LoRA adapter
  int64_t rank = 8;
  double alpha = 16;
  double dropout = 0;
  std::vector<std::string> targets = {"q_proj", "v_proj"};  // or {"all-linear"}
  std::vector<int64_t> layers;                              // empty: every layer
  bool rslora = false;

  // Optimisation.
  double lr = 1e-4;
  std::string lr_schedule = "constant";  // constant | linear | cosine
  int64_t warmup_steps = 0;
  double min_lr = 0;
  double weight_decay = 0.01;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double max_grad_norm = 1.0;  // 0: no clipping

  // Schedule of the run: `steps` optimizer steps, or `epochs` passes (default one epoch).
  int64_t steps = 0;
  double epochs = 0;
  int64_t batch_size = 4;
  int64_t grad_accum = 1;
  int64_t max_seq_len = 2048;
  bool truncate = false;  // cut over-long records instead of failing
  bool shuffle = true;
  uint64_t seed = 0;
  bool mask_prompt = false;

  int64_t eval_every = 0;  // 0: validate only at the end (when there is a validation file)
  int64_t save_every = 0;  // 0: checkpoint only at the end (and on interruption)
  bool profile = false;    // time every kernel of the steps after the first; report at the end
  bool compile = true;     // off: the same step, evaluated lazily without compile()
  std::string save_dtype = "auto";  // full fine-tuning: auto (the config's) | f32 | bf16 | f16
  std::string device = "cpu";
};

/// What the trainer reports while it runs.
struct TrainEvent {
  enum class Kind { start, step, validation, checkpoint, message };
  Kind kind = Kind::step;
  int64_t step = 0, total_steps = 0;  // optimizer steps done / planned
  double loss = 0, lr = 0, grad_norm = 0;
  int64_t tokens = 0;      // tokens of this step (non-padding)
  int64_t tokens_seen = 0; // since the start of training (resumed runs included)
  double tok_s = 0;        // over the steps of this process so far
  double eta_s = 0;
  size_t memory_bytes = 0;     // live tensor memory
  double val_loss = 0;         // validation: mean loss per target token; perplexity = exp
  std::string text;            // message text, or the checkpoint folder
};

struct TrainResult {
  int64_t steps = 0;  // optimizer steps done in total
  bool interrupted = false;
  double last_loss = 0;
  std::optional<double> last_val_loss;
  double tok_s = 0;            // training tokens per second of this process
  double seconds = 0;
  size_t peak_memory_bytes = 0;  // highest live tensor memory on the training device
  std::string output_dir;      // where the adapter / model was written
  std::string last_checkpoint;
};

/// Runs a fine-tuning job. `on_event` sees progress (may be empty). When `stop` becomes true the
/// trainer finishes the current step, writes a checkpoint and returns with interrupted = true.
/// Bad inputs, a non-finite loss (the last good checkpoint is kept; the failed step is not
/// applied) and I/O failures throw wick::Error.
TrainResult train(const TrainOptions& options, const std::function<void(const TrainEvent&)>& on_event = {},
                  const std::atomic<bool>* stop = nullptr);

}  // namespace wick
