#include "wick/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "io/files.h"
#include "train/checkpoint.h"
#include "train/train_step.h"
#include "train/trainer_setup.h"
#include "wick/chat_template.h"
#include "wick/compile.h"
#include "wick/data.h"
#include "wick/error.h"
#include "wick/memory.h"
#include "wick/ops.h"
#include "wick/runtime.h"
#include "wick/tokenizer.h"

namespace wick {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// The model folder's chat template, when it has one (messages records need it).
std::optional<ChatTemplateConfig> maybe_chat_template(const std::string& dir) {
  std::string config = io::join_path(dir, "tokenizer_config.json");
  bool has = io::is_file(io::join_path(dir, "chat_template.jinja")) ||
             (io::is_file(config) && io::read_file(config, size_t(1) << 26).find("\"chat_template\"") != std::string::npos);
  if (!has) return std::nullopt;
  return load_chat_template(dir);
}

/// Keeps the metrics lines of steps up to `step` (a resumed run rewrites what came after).
void truncate_metrics(const std::string& path, int64_t step) {
  if (!io::is_file(path)) return;
  std::istringstream in(io::read_file(path, size_t(1) << 32));
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() > step) continue;
    kept += line + "\n";
  }
  io::write_file_atomic(path, kept);
}

/// Appends one JSON line per optimizer step and flushes it, so a crash loses nothing logged.
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::app) {
    if (!out_) throw Error(path + ": cannot open the metrics file for appending");
  }
  void write(const nlohmann::json& j) {
    out_ << j.dump() << "\n";
    out_.flush();
    if (!out_) throw Error(path_ + ": write failed");
  }

 private:
  std::string path_;
  std::ofstream out_;
};

struct Data {
  Tokenizer tok;
  std::optional<ChatTemplateConfig> chat;
  std::optional<Dataset> train, valid;
  int32_t pad_id = 0;
};

Data load_data(const TrainOptions& o, std::vector<std::string>& notes) {
  std::string tok_path = io::join_path(o.model_dir, "tokenizer.json");
  Data d{Tokenizer::load(tok_path), maybe_chat_template(o.model_dir), std::nullopt, std::nullopt, 0};
  DatasetOptions dopt;
  dopt.max_seq_len = o.max_seq_len;
  dopt.overlong = o.truncate ? Overlong::truncate : Overlong::error;
  dopt.mask_prompt = o.mask_prompt;
  const ChatTemplateConfig* chat = d.chat ? &*d.chat : nullptr;
  d.train = Dataset::load_jsonl(o.data_path, d.tok, chat, dopt);
  for (const std::string& w : d.train->warnings()) notes.push_back(w);
  if (!o.valid_path.empty()) d.valid = Dataset::load_jsonl(o.valid_path, d.tok, chat, dopt);
  d.pad_id = d.tok.pad_token_id().value_or(d.tok.eos_token_id().value_or(0));
  return d;
}

}  // namespace

TrainResult train(const TrainOptions& o, const std::function<void(const TrainEvent&)>& on_event,
                  const std::atomic<bool>* stop) {
  detail::check_train_options(o);
  auto emit = [&](TrainEvent e) {
    if (on_event) on_event(e);
  };
  auto message = [&](const std::string& text) {
    TrainEvent e;
    e.kind = TrainEvent::Kind::message;
    e.text = text;
    emit(e);
  };
  const auto t_start = Clock::now();

  std::vector<std::string> notes;
  Data data = load_data(o, notes);
  for (const auto& n : notes) message(n);

  BatchOptions bopt;
  bopt.batch_size = o.batch_size;
  bopt.shuffle = o.shuffle;
  bopt.seed = o.seed;
  bopt.pad_id = data.pad_id;
  bopt.bucket = o.shuffle;  // --no-shuffle keeps the file order exactly
  BatchIterator batches(*data.train, bopt);
  const int64_t steps_per_epoch = (batches.batches_per_epoch() + o.grad_accum - 1) / o.grad_accum;
  const int64_t total = o.steps > 0 ? o.steps
                                    : std::max<int64_t>(1, static_cast<int64_t>(std::ceil((o.epochs > 0 ? o.epochs : 1.0) *
                                                                                          double(steps_per_epoch))));
  const nlohmann::json signature = detail::run_signature(o, total);

  // Resume: the checkpoint's weights, optimizer state and data position.
  std::optional<detail::Checkpoint> ckpt;
  if (!o.resume.empty()) {
    ckpt = detail::read_checkpoint(o.resume);
    detail::check_resume_signature(ckpt->state.run, signature, ckpt->dir);
  }
  auto model = detail::load_trainable_model(o, ckpt ? ckpt->dir : std::string());
  const Device device = o.device == "cuda" ? Device::cuda(0) : Device::cpu();
  model->to(device);
  // Optimizer moments, accumulators and constants are made where the parameters live.
  DeviceScope on_device(device);
  model->train(true);
  TensorMap trainable = model->trainable_parameters();
  std::vector<std::string> names;
  int64_t n_trainable = 0;
  for (const auto& [name, t] : trainable) {
    names.push_back(name);
    n_trainable += t.numel();
  }

  AdamWOptions aopt;
  aopt.beta1 = o.beta1;
  aopt.beta2 = o.beta2;
  aopt.eps = o.eps;
  aopt.weight_decay = o.weight_decay;
  // As transformers' Trainer: biases and norm weights (1-d) are not decayed.
  aopt.no_decay = [&trainable](const std::string& name) { return trainable.at(name).ndim() < 2; };
  AdamW adam(aopt);
  detail::StepState state;
  for (const auto& name : names) state.params.push_back(trainable.at(name));
  int64_t start = 0, tokens_seen = 0;
  if (ckpt) {
    adam.load_state_dict(ckpt->optimizer);
    start = ckpt->state.step;
    tokens_seen = ckpt->state.tokens_seen;
    if (adam.steps() != start) throw Error(ckpt->dir + ": optimizer step " + std::to_string(adam.steps()) +
                                           " differs from the trainer's step " + std::to_string(start));
    batches.seek({ckpt->state.epoch, ckpt->state.batch});
  }
  for (const auto& name : names) {
    auto mi = adam.first_moments().find(name), vi = adam.second_moments().find(name);
    bool have = mi != adam.first_moments().end() && vi != adam.second_moments().end();
    if (ckpt && !have) throw Error(ckpt->dir + ": optimizer state has no moments for \"" + name + "\"");
    state.m.push_back(have ? to(mi->second, device) : zeros(trainable.at(name).shape(), DType::f32));
    state.v.push_back(have ? to(vi->second, device) : zeros(trainable.at(name).shape(), DType::f32));
  }

  // Compiled randomness is fixed at trace time, so active dropout runs the same graph lazily.
  const bool compiled = o.compile && !(o.dropout > 0 && !o.full);
  if (o.compile && !compiled) message("LoRA dropout is active: the step runs lazily (compiled dropout masks would repeat)");
  // On a GPU the step replays as a CUDA graph per batch width where the widths are few and
  // nearly every step falls on one that recurs: recording a width costs a few plain steps (a
  // lazy first call, the capture, instantiation), and widths past the compile cache's would be
  // recorded again and again.
  bool graphs = false;
  if (compiled && device.type == Device::Type::cuda && o.grad_accum == 1) {
    const std::map<int64_t, int64_t> widths = batches.widths(0);
    const int64_t per_epoch = batches.batches_per_epoch();
    int64_t frequent = 0;  // an epoch's batches whose width the run sees at least 10 times
    for (const auto& [width, count] : widths)
      if (total * count >= 10 * per_epoch) frequent += count;
    graphs = widths.size() <= CompileOptions{}.max_cache_entries && frequent * 10 >= per_epoch * 9;
    message(std::string("the step ") + (graphs ? "replays as a CUDA graph" : "launches without CUDA graphs") +
            ": " + std::to_string(widths.size()) + " batch width(s), " + std::to_string(100 * frequent / per_epoch) +
            "% of the steps on widths seen at least 10 times (graphs from 90%, up to " +
            std::to_string(CompileOptions{}.max_cache_entries) + " widths)");
  }
  detail::TrainStep step_fn(*model, names, aopt, o.max_grad_norm, compiled, graphs);

  LrSchedule sched;
  sched.kind = LrSchedule::parse(o.lr_schedule);
  sched.base_lr = o.lr;
  sched.warmup_steps = o.warmup_steps;
  sched.total_steps = total;
  sched.min_lr = o.min_lr;

  std::error_code ec;
  std::filesystem::create_directories(o.output_dir, ec);
  if (ec) throw Error(o.output_dir + ": cannot create the output folder: " + ec.message());
  const std::string metrics_path = o.metrics_path.empty() ? io::join_path(o.output_dir, "metrics.jsonl") : o.metrics_path;
  if (ckpt) truncate_metrics(metrics_path, start);
  else if (io::is_file(metrics_path)) io::write_file_atomic(metrics_path, std::string());
  MetricsLog metrics(metrics_path);
  const std::string ckpt_dir = io::join_path(o.output_dir, "checkpoints");

  std::vector<Dropout*> dropouts;
  for (const auto& [name, m] : model->named_modules())
    if (auto* d = dynamic_cast<Dropout*>(m.get())) dropouts.push_back(d);

  auto sync_model = [&] {
    TensorMap p;
    for (size_t i = 0; i < names.size(); ++i) p.emplace(names[i], state.params[i]);
    model->update(p);
  };
  BatchIterator::Position position = batches.position();
  int64_t step = start;
  double last_loss = ckpt ? ckpt->state.last_loss : 0.0;
  auto save = [&](int64_t steps_done) {
    detail::TrainerState ts;
    ts.step = steps_done;
    ts.epoch = position.epoch;
    ts.batch = position.batch;
    ts.tokens_seen = tokens_seen;
    ts.last_loss = last_loss;
    ts.run = signature;
    TensorMap m, v;
    for (size_t i = 0; i < names.size(); ++i) {
      m.emplace(names[i], state.m[i]);
      v.emplace(names[i], state.v[i]);
    }
    adam.set_state(m, v, steps_done);
    sync_model();
    std::string dir = detail::write_checkpoint(ckpt_dir, ts, adam, [&](const std::string& tmp) {
      detail::write_trained_weights(*model, o, tmp);
    });
    TrainEvent e;
    e.kind = TrainEvent::Kind::checkpoint;
    e.step = steps_done;
    e.total_steps = total;
    e.text = dir;
    emit(e);
    return dir;
  };
  auto validate = [&]() -> double {
    model->train(false);
    double sum = 0;
    int64_t targets = 0;
    for (const Batch& b : ordered_batches(*data.valid, o.batch_size, data.pad_id)) {
      sum += step_fn.loss_sum(state.params, b.ids, b.labels).item<float>();
      targets += b.target_tokens;
    }
    model->train(true);
    if (targets == 0) throw Error(o.valid_path + ": the validation set has no target tokens");
    return sum / double(targets);
  };

  {
    TrainEvent e;
    e.kind = TrainEvent::Kind::start;
    e.step = start;
    e.total_steps = total;
    std::ostringstream s;
    s << data.train->size() << " training records (" << data.train->total_tokens() << " tokens, "
      << data.train->target_tokens() << " targets), " << (o.full ? "full fine-tuning" : "LoRA") << ", " << n_trainable
      << " trainable parameters, " << total << " steps of " << o.batch_size << " x " << o.grad_accum << " records"
      << (compiled ? ", compiled step" : ", lazy step");
    e.text = s.str();
    emit(e);
  }

  TrainResult result;
  result.output_dir = o.output_dir;
  std::string last_checkpoint = ckpt ? ckpt->dir : std::string();
  const auto t_loop = Clock::now();
  reset_peak_memory(device);
  int64_t tokens_run = 0;
  for (; step < total; ++step) {
    if (stop && stop->load()) {
      result.interrupted = true;
      break;
    }
    for (Dropout* d : dropouts) d->generator().set_counter(static_cast<uint64_t>(step) << 32);
    std::vector<Batch> micro_batches;
    int64_t targets = 0, tokens = 0;
    for (int64_t i = 0; i < o.grad_accum; ++i) {
      micro_batches.push_back(batches.next());
      targets += micro_batches.back().target_tokens;
      tokens += micro_batches.back().tokens;
    }
    Tensor inv = scalar(targets > 0 ? 1.0 / double(targets) : 0.0, DType::f32);
    std::vector<detail::MicroBatch> micro;
    for (const Batch& b : micro_batches) micro.push_back({b.ids, b.labels, inv});
    const double lr = sched.lr(step);
    AdamW hyper(aopt);
    hyper.set_state({}, {}, step);
    const auto t_step = Clock::now();
    detail::StepResult r = step_fn.step(state, micro, hyper.step_scalars(lr));
    std::vector<Tensor> pending = {r.loss, r.grad_norm};
    for (const auto* group : {&r.next.params, &r.next.m, &r.next.v}) pending.insert(pending.end(), group->begin(), group->end());
    eval(pending);
    const double loss = r.loss.item<float>(), norm = r.grad_norm.item<float>();
    if (!std::isfinite(loss) || !std::isfinite(norm))
      throw Error("train: step " + std::to_string(step + 1) + ": the " + (std::isfinite(loss) ? "gradient norm" : "loss") +
                  " is " + std::to_string(std::isfinite(loss) ? norm : loss) +
                  "; stopping without applying this step" +
                  (last_checkpoint.empty() ? std::string(" (no checkpoint was written yet)")
                                           : "; the last good checkpoint is " + last_checkpoint) +
                  ". Try a lower --lr or --max-grad-norm.");
    if (targets == 0) message("step " + std::to_string(step + 1) + ": the batch has no target tokens (loss 0)");
    state = std::move(r.next);
    position = batches.position();
    last_loss = loss;
    tokens_seen += tokens;
    tokens_run += tokens;
    const double dt = seconds_since(t_step), elapsed = seconds_since(t_loop);
    // The first step traces and compiles; the profile covers the steady state after it.
    if (o.profile && step == start) {
      profile_report(true);
      set_profiling(true);
    }

    TrainEvent e;
    e.kind = TrainEvent::Kind::step;
    e.step = step + 1;
    e.total_steps = total;
    e.loss = loss;
    e.lr = lr;
    e.grad_norm = norm;
    e.tokens = tokens;
    e.tokens_seen = tokens_seen;
    e.tok_s = double(tokens_run) / std::max(elapsed, 1e-9);
    e.eta_s = elapsed / double(step + 1 - start) * double(total - step - 1);
    e.memory_bytes = memory_stats(device).active;
    nlohmann::json line = {{"step", step + 1}, {"loss", loss},   {"lr", lr},
                           {"grad_norm", norm}, {"tokens", tokens_seen}, {"tok_s", double(tokens) / std::max(dt, 1e-9)}};
    emit(e);
    const bool last = step + 1 == total;
    if (data.valid && ((o.eval_every > 0 && (step + 1) % o.eval_every == 0) || last)) {
      TrainEvent v = e;
      v.kind = TrainEvent::Kind::validation;
      v.val_loss = validate();
      line["val_loss"] = v.val_loss;
      result.last_val_loss = v.val_loss;
      emit(v);
    }
    metrics.write(line);
    if (o.save_every > 0 && (step + 1) % o.save_every == 0 && !last) last_checkpoint = save(step + 1);
  }
  if (o.profile) {
    set_profiling(false);
    std::ostringstream os;
    os << "profile of steps 2.." << step << " (each kernel timed to completion):";
    for (const ProfileEntry& e : profile_report(true))
      if (e.total_us >= 1000) os << "\n  " << e.name << ": " << e.calls << " calls, " << int64_t(e.total_us / 1000) << " ms";
    message(os.str());
  }
  if (step > start || !ckpt) last_checkpoint = save(step);
  if (!result.interrupted) {
    sync_model();
    detail::write_trained_weights(*model, o, o.output_dir);
  }
  result.steps = step;
  result.last_loss = last_loss;
  result.last_checkpoint = last_checkpoint;
  result.seconds = seconds_since(t_start);
  result.tok_s = double(tokens_run) / std::max(seconds_since(t_loop), 1e-9);
  result.peak_memory_bytes = memory_stats(device).peak;
  return result;
}

}  // namespace wick
