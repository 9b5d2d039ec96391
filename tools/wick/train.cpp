// `wick train`: LoRA (or full) fine-tuning of a Hugging Face decoder on a JSONL dataset, with a
// live progress line, a metrics JSONL, checkpoints, --resume and a clean stop on Ctrl-C.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include "command.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_interrupt(int) {
  // A second Ctrl-C while the checkpoint is written ends the process at once.
  if (g_stop.exchange(true)) std::_Exit(130);
}

struct CliTrainOptions {
  TrainOptions t;
  std::string targets = "q_proj,v_proj", layers, betas = "0.9,0.999";
  bool no_shuffle = false, no_compile = false, json = false, quiet = false;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

/// "0-3,6" -> {0, 1, 2, 3, 6}.
std::vector<int64_t> parse_layers(const std::string& s) {
  std::vector<int64_t> out;
  for (const std::string& part : split_commas(s)) {
    size_t dash = part.find('-');
    try {
      size_t used = 0;
      int64_t lo = std::stoll(part.substr(0, dash), &used);
      if (used != (dash == std::string::npos ? part.size() : dash)) throw std::invalid_argument(part);
      int64_t hi = lo;
      if (dash != std::string::npos) {
        hi = std::stoll(part.substr(dash + 1), &used);
        if (used != part.size() - dash - 1) throw std::invalid_argument(part);
      }
      if (lo < 0 || hi < lo || hi - lo > 100000) throw std::invalid_argument(part);
      for (int64_t i = lo; i <= hi; ++i) out.push_back(i);
    } catch (const std::exception&) {
      throw Error("--layers " + s + ": expected layer numbers and ranges such as 0-3,6");
    }
  }
  return out;
}

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  long t = std::lround(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

/// The progress line: rewritten in place on a terminal, one line per few seconds otherwise.
class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), tty_(::isatty(2)) {}
  void step(const TrainEvent& e) {
    if (quiet_) return;
    auto now = std::chrono::steady_clock::now();
    bool due = tty_ || e.step == e.total_steps || e.step == 1 ||
               std::chrono::duration<double>(now - last_).count() >= 5.0;
    if (!due) return;
    last_ = now;
    std::fprintf(stderr, "%sstep %lld/%lld | loss %.4f | lr %.2e | grad %.3f | %.0f tok/s | ETA %s | mem %.0f MiB%s",
                 tty_ ? "\r\033[K" : "", static_cast<long long>(e.step), static_cast<long long>(e.total_steps), e.loss,
                 e.lr, e.grad_norm, e.tok_s, duration(e.eta_s).c_str(), double(e.memory_bytes) / 1048576.0,
                 tty_ ? "" : "\n");
    open_ = tty_;
  }
  void line(const std::string& text) {
    if (quiet_) return;
    std::fprintf(stderr, "%s%s\n", open_ ? "\n" : "", text.c_str());
    open_ = false;
  }
  void finish() {
    if (open_) std::fprintf(stderr, "\n");
    open_ = false;
  }

 private:
  bool quiet_, tty_, open_ = false;
  std::chrono::steady_clock::time_point last_{};
};

int run(CliTrainOptions& c) {
  TrainOptions& o = c.t;
  o.targets = split_commas(c.targets);
  o.layers = parse_layers(c.layers);
  std::vector<std::string> betas = split_commas(c.betas);
  try {
    if (betas.size() != 2) throw std::invalid_argument(c.betas);
    o.beta1 = std::stod(betas[0]);
    o.beta2 = std::stod(betas[1]);
  } catch (const std::exception&) {
    throw Error("--betas " + c.betas + ": expected two numbers such as 0.9,0.999");
  }
  o.shuffle = !c.no_shuffle;
  o.compile = !c.no_compile;

  Progress progress(c.quiet);
  auto on_event = [&](const TrainEvent& e) {
    char buf[160];
    switch (e.kind) {
      case TrainEvent::Kind::start:
      case TrainEvent::Kind::message:
        progress.line(e.text);
        break;
      case TrainEvent::Kind::step:
        progress.step(e);
        break;
      case TrainEvent::Kind::validation:
        std::snprintf(buf, sizeof buf, "step %lld: validation loss %.4f, perplexity %.2f", static_cast<long long>(e.step),
                      e.val_loss, std::exp(e.val_loss));
        progress.line(buf);
        break;
      case TrainEvent::Kind::checkpoint:
        progress.line("checkpoint: " + e.text);
        break;
    }
  };
  g_stop = false;
  auto previous = std::signal(SIGINT, on_interrupt);
  TrainResult r;
  try {
    r = train(o, on_event, &g_stop);
  } catch (...) {
    progress.finish();
    std::signal(SIGINT, previous);
    throw;
  }
  std::signal(SIGINT, previous);
  progress.finish();
  if (c.json) {
    nlohmann::json j = {{"steps", r.steps},
                        {"interrupted", r.interrupted},
                        {"loss", r.last_loss},
                        {"tok_s", r.tok_s},
                        {"seconds", r.seconds},
                        {"peak_memory_bytes", r.peak_memory_bytes},
                        {"output", r.output_dir},
                        {"checkpoint", r.last_checkpoint}};
    if (r.last_val_loss) j["val_loss"] = *r.last_val_loss;
    std::printf("%s\n", j.dump().c_str());
  } else if (r.interrupted) {
    std::fprintf(stderr, "interrupted after step %lld; checkpoint %s\nresume with: wick train ... --resume %s\n",
                 static_cast<long long>(r.steps), r.last_checkpoint.c_str(), r.last_checkpoint.c_str());
  } else {
    std::fprintf(stderr, "done: %lld steps in %s, %.0f tok/s, final loss %.4f%s; %s written to %s\n",
                 static_cast<long long>(r.steps), duration(r.seconds).c_str(), r.tok_s, r.last_loss,
                 r.last_val_loss ? (", validation loss " + std::to_string(*r.last_val_loss)).c_str() : "",
                 o.full ? "model" : "adapter", r.output_dir.c_str());
  }
  return r.interrupted ? 130 : 0;
}

const Command train_command{
    "train", "Fine-tune a Hugging Face decoder with LoRA (or all weights) on a JSONL dataset",
    [](CLI::App& app) -> Action {
      auto c = std::make_shared<CliTrainOptions>();
      TrainOptions& o = c->t;
      app.footer(
          "Datasets: one JSON object per line, {\"text\"}, {\"prompt\",\"completion\"}, {\"messages\":[...]} (rendered "
          "with the model's chat template) or {\"input_ids\":[...]}.\nWrites the adapter (PEFT format) or, with --full, "
          "the model to --output, checkpoints to OUTPUT/checkpoints/, metrics to OUTPUT/metrics.jsonl.\nCtrl-C stops "
          "after the current step and writes a checkpoint; --resume continues it exactly.");
      app.add_option("--model", o.model_dir, "Hugging Face model folder (config.json, tokenizer.json, safetensors)")
          ->required()
          ->check(CLI::ExistingDirectory);
      app.add_option("--data", o.data_path, "Training data (JSONL)")->required()->check(CLI::ExistingFile);
      app.add_option("--valid", o.valid_path, "Validation data (JSONL): loss and perplexity every --eval-every steps")
          ->check(CLI::ExistingFile);
      app.add_option("--output", o.output_dir, "Output folder")->required();
      app.add_option("--init-adapter", o.init_adapter, "Start from this PEFT adapter's weights and configuration")
          ->check(CLI::ExistingDirectory);
      app.add_flag("--init-random", o.init_random,
                   "Ignore any weights in --model and start from random ones (training from scratch; use with --full)");
      app.add_option("--rank", o.rank, "LoRA rank")->capture_default_str();
      app.add_option("--alpha", o.alpha, "LoRA alpha (scaling = alpha / rank)")->capture_default_str();
      app.add_option("--dropout", o.dropout, "LoRA dropout")->capture_default_str();
      app.add_option("--targets", c->targets, "Modules to adapt: comma-separated names (q_proj,v_proj) or all-linear")
          ->capture_default_str();
      app.add_option("--layers", c->layers, "Adapt only these layers, e.g. 0-3,6 (default: all)");
      app.add_flag("--rslora", o.rslora, "Rank-stabilised LoRA (scaling = alpha / sqrt(rank))");
      app.add_flag("--full", o.full, "Train every weight instead of a LoRA adapter");
      app.add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
      app.add_option("--lr-schedule", o.lr_schedule, "constant, linear or cosine")
          ->check(CLI::IsMember({"constant", "linear", "cosine"}))
          ->capture_default_str();
      app.add_option("--warmup-steps", o.warmup_steps, "Linear warmup from 0 over these steps")->capture_default_str();
      app.add_option("--min-lr", o.min_lr, "Floor of the cosine schedule")->capture_default_str();
      app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay (not applied to biases and norms)")
          ->capture_default_str();
      app.add_option("--betas", c->betas, "AdamW betas")->capture_default_str();
      app.add_option("--eps", o.eps, "AdamW epsilon")->capture_default_str();
      app.add_option("--max-grad-norm", o.max_grad_norm, "Clip the global gradient norm to this (0 disables)")
          ->capture_default_str();
      auto* steps = app.add_option("--steps", o.steps, "Optimizer steps to run");
      auto* epochs = app.add_option("--epochs", o.epochs, "Passes over the data (default 1 when --steps is absent)");
      steps->excludes(epochs);
      app.add_option("--batch-size", o.batch_size, "Records per micro-batch")->capture_default_str();
      app.add_option("--grad-accum", o.grad_accum, "Micro-batches per optimizer step")->capture_default_str();
      app.add_option("--max-seq-len", o.max_seq_len, "Longest record in tokens (longer ones fail unless --truncate)")
          ->capture_default_str();
      app.add_flag("--truncate", o.truncate, "Cut records longer than --max-seq-len instead of failing");
      app.add_flag("--no-shuffle", c->no_shuffle, "Keep the file order (no shuffling, no length bucketing)");
      app.add_option("--seed", o.seed, "Seed of shuffling, LoRA initialisation and dropout")->capture_default_str();
      app.add_flag("--mask-prompt", o.mask_prompt, "Loss only on completions / assistant turns");
      app.add_option("--eval-every", o.eval_every, "Validate every N steps (and at the end)")->capture_default_str();
      app.add_option("--save-every", o.save_every, "Checkpoint every N steps (and at the end)")->capture_default_str();
      app.add_option("--resume", o.resume, "Continue from a checkpoint folder, or the latest one of an output folder")
          ->check(CLI::ExistingDirectory);
      app.add_option("--metrics", o.metrics_path, "Metrics JSONL (default OUTPUT/metrics.jsonl)");
      app.add_option("--save-dtype", o.save_dtype, "With --full: dtype of the saved weights (auto, f32, bf16, f16)")
          ->check(CLI::IsMember({"auto", "f32", "bf16", "f16"}))
          ->capture_default_str();
      app.add_option("--device", o.device, "cpu or cuda")->capture_default_str();
      app.add_flag("--profile", o.profile, "Time every kernel of the steps after the first and print where the time goes");
      app.add_flag("--no-compile", c->no_compile, "Evaluate the step lazily instead of compiling it (for comparison)");
      app.add_flag("--quiet", c->quiet, "No progress output");
      app.add_flag("--json", c->json, "Print a JSON summary on stdout at the end");
      return [c] { return run(*c); };
    }};

}  // namespace
}  // namespace wick::cli
