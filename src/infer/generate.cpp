// The generation loop: prefill, then one token per step through the KV cache.
//
// Two schedules, both returning the same tokens:
//  - host sampling (any SamplingParams): each step's logits [B, 1, vocab] are read back and the
//    Sampler picks the tokens. With `pipeline`, step n+1 is submitted (eval_async) as soon as its
//    tokens are known, and the host work of step n (detokenisation, stop strings, the callback)
//    runs while it computes.
//  - device-chained greedy (greedy without repetition penalty, with `pipeline`): the argmax and
//    its log-probability are part of the step's graph, so step n+1's graph is built on step n's
//    unevaluated token ids and submitted before step n's ids are read. The host then builds the
//    next graph and streams while the device computes; a sequence that stops costs one
//    speculative step.
#include <chrono>
#include <cmath>

#include "graph/ops_common.h"
#include "infer/text_stream.h"
#include "wick/compile.h"
#include "wick/generate.h"
#include "wick/ops.h"
#include "wick/runtime.h"

namespace wick {
namespace {

using Clock = std::chrono::steady_clock;
using detail::TextStream;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Row {
  std::vector<int32_t> context;  // prompt + generated ids, for the repetition penalty
  Sampler sampler;
  TextStream text;
  GenerationResult result;
  bool done = false;
  int32_t feed = 0;  // the id this row puts into the next step
};

class Run {
 public:
  Run(CausalLM& model, const Tokenizer* tokenizer, const std::vector<std::vector<int32_t>>& prompts,
      const GenerationOptions& options, const TokenCallback& on_token)
      : model_(model), options_(options), on_token_(on_token) {
    options_.sampling.validate();
    if (options_.max_new_tokens < 1)
      throw Error("generate: max_new_tokens must be >= 1, got " + std::to_string(options_.max_new_tokens));
    if (prompts.empty()) throw Error("generate: no prompts");
    const ModelConfig& c = model.config();
    batch_ = static_cast<int64_t>(prompts.size());
    for (size_t r = 0; r < prompts.size(); ++r) {
      const auto& p = prompts[r];
      if (p.empty()) throw Error("generate: prompt " + std::to_string(r) + " is empty");
      for (int32_t id : p)
        if (id < 0 || id >= c.vocab_size)
          throw Error("generate: prompt " + std::to_string(r) + " holds id " + std::to_string(id) +
                      ", outside the model's vocabulary [0, " + std::to_string(c.vocab_size) + ")");
      prompt_len_ = std::max<int64_t>(prompt_len_, static_cast<int64_t>(p.size()));
      prompt_tokens_ += static_cast<int64_t>(p.size());
    }
    // Beyond max_position_embeddings the model was never trained: stop there (StopReason::length).
    budget_ = options_.max_new_tokens;
    length_limited_ = false;
    if (c.max_position_embeddings > 0 && prompt_len_ + budget_ > c.max_position_embeddings) {
      budget_ = std::max<int64_t>(1, c.max_position_embeddings - prompt_len_);
      length_limited_ = budget_ < options_.max_new_tokens;
    }
    for (size_t r = 0; r < prompts.size(); ++r) {
      SamplingParams sp = options_.sampling;
      sp.seed += r;
      rows_.push_back(Row{prompts[r], Sampler(sp),
                          TextStream(tokenizer, options_.skip_special_tokens, options_.stop_strings), {}, false, 0});
    }
    for (int32_t e : options_.eos_token_ids) eos_.push_back(e);
    padded_ = false;
    for (const auto& p : prompts) padded_ = padded_ || static_cast<int64_t>(p.size()) != prompt_len_;
  }

  std::vector<GenerationResult> run(GenerationStats* stats) {
    cache_.emplace(model_.make_cache(batch_, prompt_len_ + budget_));
    const bool chained = options_.pipeline && options_.sampling.greedy() && options_.sampling.repetition_penalty == 1.0;
    const Device dev = model_.device();
    if (!padded_ && options_.compiled_steps.value_or(dev.type == Device::Type::cuda)) {
      // The cache is a constant of the trace, so the compiled step lives as long as this run.
      step_fn_.emplace(compile([this, chained](const std::vector<Tensor>& in) {
        Tensor logits = model_.decode_step(in[0], *cache_, in[1]);
        Tensor next = add(in[1], full({1}, 1.0, DType::i64));
        if (!chained) return std::vector<Tensor>{logits, next};
        auto [ids, lp] = pick(logits);
        return std::vector<Tensor>{ids, lp, next};
      }));
      position_ = to(Tensor::from_vector<int64_t>({prompt_len_}, {1}), dev);
    }
    auto t0 = Clock::now();
    if (chained) {
      run_chained(t0);
    } else {
      run_host(t0);
    }
    auto t1 = Clock::now();
    std::vector<GenerationResult> out;
    int64_t generated = 0;
    for (Row& r : rows_) {
      generated += static_cast<int64_t>(r.result.tokens.size());
      out.push_back(std::move(r.result));
    }
    if (stats) {
      stats->rows = batch_;
      stats->prompt_tokens = prompt_tokens_;
      stats->generated_tokens = generated;
      stats->decode_steps = steps_;
      stats->prefill_s = seconds(t0, prefill_end_);
      stats->decode_s = seconds(prefill_end_, t1);
    }
    return out;
  }

 private:
  // ---- graphs ----

  /// The attention mask [B, S] for a step that ends at S positions (padding first), or none.
  std::optional<Tensor> mask(int64_t total) const {
    if (!padded_) return std::nullopt;
    std::vector<int64_t> m(static_cast<size_t>(batch_ * total), 1);
    for (int64_t r = 0; r < batch_; ++r) {
      int64_t pad = prompt_len_ - static_cast<int64_t>(rows_[r].context.size() - rows_[r].result.tokens.size());
      for (int64_t t = 0; t < pad; ++t) m[r * total + t] = 0;
    }
    return Tensor::from_vector(m, {batch_, total});
  }

  /// Logits [B, 1, vocab] of the last position after `ids` [B, T] (only that row of the head).
  Tensor step_logits(const Tensor& ids) {
    int64_t t = ids.shape()[1];
    Tensor h = model_.hidden_states(ids, &*cache_, mask(cache_->length() + t));
    return model_.logits(slice(h, 1, t - 1, t));
  }

  Tensor prompt_ids() const {
    std::vector<int32_t> ids(static_cast<size_t>(batch_ * prompt_len_), 0);
    for (int64_t r = 0; r < batch_; ++r) {
      const auto& p = rows_[r].context;
      int64_t pad = prompt_len_ - static_cast<int64_t>(p.size());
      std::copy(p.begin(), p.end(), ids.begin() + r * prompt_len_ + pad);
    }
    return Tensor::from_vector(ids, {batch_, prompt_len_});
  }

  // ---- per-token bookkeeping ----

  bool is_eos(int32_t id) const { return std::find(eos_.begin(), eos_.end(), id) != eos_.end(); }

  /// Records the token of an active row: ends the row on EOS, the token budget, a stop string or
  /// the callback's answer, and streams the token.
  void accept(int64_t r, TokenChoice c) {
    Row& row = rows_[r];
    row.result.tokens.push_back(c.id);
    row.result.logprobs.push_back(c.logprob);
    row.context.push_back(c.id);
    row.feed = c.id;
    const int64_t n = static_cast<int64_t>(row.result.tokens.size());
    bool eos = is_eos(c.id);
    bool last = true;
    if (eos) {
      row.result.stop_reason = StopReason::eos;
    } else if (n >= budget_) {
      row.result.stop_reason = length_limited_ ? StopReason::length : StopReason::max_tokens;
    } else {
      last = false;
    }
    TextStream::Step s = row.text.push(c.id, eos, last);
    if (s.stopped) {
      row.result.stop_reason = StopReason::stop_string;
      row.result.stop_string = s.stop_string;
      last = true;
    }
    row.done = last;
    if (on_token_) {
      TokenEvent e;
      e.row = r;
      e.index = n - 1;
      e.id = c.id;
      e.logprob = c.logprob;
      e.text = s.piece;
      e.last = last;
      if (!on_token_(e) && !last) {
        row.result.stop_reason = StopReason::callback;
        row.done = true;
      }
    }
    // A row stopped by its reader keeps only the text that was handed out.
    if (row.done)
      row.result.text = row.result.stop_reason == StopReason::callback ? row.text.released_text() : row.text.text();
  }

  bool all_done() const {
    for (const Row& r : rows_)
      if (!r.done) return false;
    return true;
  }

  Tensor feed_ids() const {
    std::vector<int32_t> ids(static_cast<size_t>(batch_));
    for (int64_t r = 0; r < batch_; ++r) ids[r] = rows_[r].feed;
    return Tensor::from_vector(ids, {batch_, 1});
  }

  /// Samples every active row from logits [B, 1, vocab] (evaluated); returns the choices.
  std::vector<TokenChoice> sample_rows(const Tensor& logits) {
    const int64_t vocab = logits.shape()[2];
    std::vector<float> copy;
    const float* data = nullptr;
    if (logits.dtype() == DType::f32 && logits.is_contiguous() && logits.device() == Device::cpu()) {
      data = logits.data<float>();
    } else {
      copy = logits.to_vector<float>();
      data = copy.data();
    }
    std::vector<TokenChoice> out(static_cast<size_t>(batch_));
    for (int64_t r = 0; r < batch_; ++r) {
      if (rows_[r].done) continue;
      std::span<const float> row(data + r * vocab, static_cast<size_t>(vocab));
      out[r] = rows_[r].sampler.sample(row, rows_[r].context);
    }
    return out;
  }

  // ---- schedules ----

  void run_host(Clock::time_point) {
    Tensor logits = step_logits(prompt_ids());
    eval_async({logits}, options_.stream).get();
    std::vector<TokenChoice> choices = sample_rows(logits);
    prefill_end_ = Clock::now();
    for (;;) {
      // The budget and EOS are known before streaming: submit the next step first when any
      // row will want another token whatever its stop strings say.
      bool more = false;
      for (int64_t r = 0; r < batch_; ++r) {
        if (rows_[r].done) continue;
        rows_[r].feed = choices[r].id;
        int64_t n = static_cast<int64_t>(rows_[r].result.tokens.size()) + 1;
        more = more || (!is_eos(choices[r].id) && n < budget_);
      }
      std::optional<Future> next;
      if (options_.pipeline && more) next = submit_step();
      for (int64_t r = 0; r < batch_; ++r)
        if (!rows_[r].done) accept(r, choices[r]);
      if (all_done()) {
        if (next) next->wait();  // a speculative step: let it finish before the cache goes
        return;
      }
      if (!next) next = submit_step();
      choices = sample_rows(next->get().front());
    }
  }

  Future submit_step() {
    ++steps_;
    if (step_fn_)
      return eval_async({compiled_step(to(feed_ids(), model_.device()))[0]}, options_.stream);
    return eval_async({step_logits(feed_ids())}, options_.stream);
  }

  /// One compiled step after the prompt: its outputs, the next position taken off the end.
  std::vector<Tensor> compiled_step(const Tensor& ids) {
    std::vector<Tensor> out = (*step_fn_)({ids, position_});
    position_ = out.back();
    out.pop_back();
    cache_->advance(1);
    return out;
  }

  /// Greedy choice and log-probability inside the graph: ids [B, 1] (i64), logprob [B, 1].
  std::pair<Tensor, Tensor> pick(const Tensor& logits) {
    // The chosen logit is the row's maximum, so its log-probability is −log Σ exp(l − max):
    // argmax and that sum in one pass over the vocabulary. A NaN or ±inf maximum gives NaN.
    Tensor r = detail::greedy_pick(reshape(logits, {batch_, -1}));
    return {astype(slice(r, 1, 1, 2), DType::i64), slice(r, 1, 0, 1)};
  }

  void read_chained(const Tensor& ids, const Tensor& lp) {
    std::vector<int64_t> id = ids.to_vector<int64_t>();
    std::vector<float> p = lp.to_vector<float>();
    for (int64_t r = 0; r < batch_; ++r) {
      if (rows_[r].done) continue;
      // NaN or +inf logits make the log-probability NaN; the host sampler refuses them too.
      if (std::isnan(p[r])) throw Error("sampler: the logits contain NaN or +infinity");
      accept(r, TokenChoice{static_cast<int32_t>(id[r]), p[r]});
    }
  }

  void run_chained(Clock::time_point) {
    auto [ids, lp] = pick(step_logits(prompt_ids()));
    Future cur = eval_async({ids, lp}, options_.stream);
    bool first = true;
    int64_t produced = 0;  // tokens per row so far (all rows advance together)
    for (;;) {
      // Rows that ended earlier are known; rows ending on this step's token are not yet.
      std::optional<std::tuple<Tensor, Tensor, Future>> next;
      if (produced + 1 < budget_ && !all_done()) {
        Tensor nids, nlp;
        if (step_fn_) {
          std::vector<Tensor> out = compiled_step(ids);
          nids = out[0];
          nlp = out[1];
        } else {
          std::tie(nids, nlp) = pick(step_logits(ids));
        }
        ++steps_;
        next.emplace(nids, nlp, eval_async({nids, nlp}, options_.stream));
      }
      cur.get();
      if (first) {
        prefill_end_ = Clock::now();
        first = false;
      }
      read_chained(ids, lp);
      ++produced;
      if (all_done() || !next) {
        if (next) std::get<2>(*next).wait();
        return;
      }
      ids = std::get<0>(*next);
      lp = std::get<1>(*next);
      cur = std::get<2>(*next);
    }
  }

  CausalLM& model_;
  GenerationOptions options_;
  const TokenCallback& on_token_;
  int64_t batch_ = 0, prompt_len_ = 0, prompt_tokens_ = 0, budget_ = 0, steps_ = 0;
  bool length_limited_ = false, padded_ = false;
  std::vector<int32_t> eos_;
  std::vector<Row> rows_;
  std::optional<KVCache> cache_;
  std::optional<CompiledFunction> step_fn_;  // decode steps through CausalLM::decode_step
  Tensor position_;                           // the next compiled step's position [1] (device)
  Clock::time_point prefill_end_;
};

}  // namespace

GenerationResult generate(CausalLM& model, const Tokenizer* tokenizer, std::span<const int32_t> prompt,
                          const GenerationOptions& options, const TokenCallback& on_token, GenerationStats* stats) {
  std::vector<std::vector<int32_t>> prompts{std::vector<int32_t>(prompt.begin(), prompt.end())};
  return std::move(Run(model, tokenizer, prompts, options, on_token).run(stats).front());
}

std::vector<GenerationResult> generate_batch(CausalLM& model, const Tokenizer* tokenizer,
                                             const std::vector<std::vector<int32_t>>& prompts,
                                             const GenerationOptions& options, const TokenCallback& on_token,
                                             GenerationStats* stats) {
  return Run(model, tokenizer, prompts, options, on_token).run(stats);
}

}  // namespace wick
