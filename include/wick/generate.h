#pragma once
// Text generation with the semantics of transformers' generate(): the logits processors
// (repetition penalty, temperature, top-k, top-p, min-p) in its order and with its tie and
// threshold rules, greedy or seeded sampling, stopping on EOS ids, stop strings and a token
// budget, streaming per token, and left-padded batches whose rows stop independently.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "wick/model.h"
#include "wick/tokenizer.h"

namespace wick {

/// How the next token is chosen. Defaults change nothing (plain sampling at temperature 1);
/// temperature 0 (or do_sample false) is greedy decoding.
struct SamplingParams {
  double temperature = 1.0;         // > 0 divides the logits; 0 = greedy
  int64_t top_k = 0;                // keep tokens whose logit is >= the k-th largest (0 = off)
  double top_p = 1.0;               // nucleus: smallest set with cumulative probability >= top_p
  double min_p = 0.0;               // keep tokens with p >= min_p * p_max (0 = off)
  double repetition_penalty = 1.0;  // on every id already in the sequence: l < 0 ? l*r : l/r
  uint64_t seed = 0;                // the random stream of the draws
  bool do_sample = true;            // false = greedy, whatever the temperature
  /// Greedy decoding: do_sample is false or the temperature is 0.
  bool greedy() const { return !do_sample || temperature == 0.0; }
  /// Throws wick::Error naming the first invalid field (temperature < 0 or not finite,
  /// top_k < 0, top_p or min_p outside [0, 1], repetition_penalty <= 0 or not finite).
  void validate() const;
};

/// A chosen token and its log-probability.
struct TokenChoice {
  int32_t id = 0;
  /// log softmax of the *processed* logits at `id` (after the repetition penalty and, when
  /// sampling, temperature and filtering), as transformers' output_scores reports them; for a
  /// filtered distribution it is relative to the kept tokens only.
  float logprob = 0.0f;
};

/// Processes one row of logits and chooses a token, on the host, in transformers' order:
/// repetition penalty, then (when sampling) temperature, top-k, top-p, min-p, then a
/// categorical draw. Draw i of a sampler depends only on (seed, i): a sampler per sequence
/// repeats its tokens whatever else runs beside it.
class Sampler {
 public:
  /// Validates `params`.
  explicit Sampler(const SamplingParams& params);
  const SamplingParams& params() const { return params_; }

  /// Applies the processors to `logits` in place; filtered tokens become -infinity.
  /// `context` holds the ids already in the sequence (prompt included); ids outside the row
  /// are ignored. Greedy parameters apply only the repetition penalty.
  void process(std::span<float> logits, std::span<const int32_t> context) const;

  /// process() on a copy of `logits`, then the argmax (greedy; the first of equal maxima) or a
  /// draw from the softmax of the processed logits. NaN or +infinity in the logits, or a row
  /// with every token filtered, is a wick::Error.
  TokenChoice sample(std::span<const float> logits, std::span<const int32_t> context);

  /// Draws made so far (the position in the random stream).
  uint64_t draws() const { return draws_; }

 private:
  SamplingParams params_;
  uint64_t draws_ = 0;
  std::vector<float> scratch_;
};

/// A uniform double in [0, 1) for draw `index` of the stream `seed` (a counter-based hash:
/// stateless, so any draw can be recomputed on its own).
double uniform_draw(uint64_t seed, uint64_t index);

/// Why a sequence ended.
enum class StopReason {
  eos,          // an EOS id was generated (it is the last token; its text is not added)
  stop_string,  // a stop string appeared in the text (the text ends with it)
  max_tokens,   // max_new_tokens were generated
  length,       // the model's max_position_embeddings was reached
  callback,     // the token callback returned false
};
/// "eos", "stop_string", "max_tokens", "length", "callback".
const char* stop_reason_name(StopReason r);

/// One generated token, as the streaming callback sees it.
struct TokenEvent {
  int64_t row = 0;          // the prompt it belongs to (0 for generate())
  int64_t index = 0;        // its position among the row's generated tokens
  int32_t id = 0;
  float logprob = 0.0f;     // see TokenChoice::logprob
  /// Text this token releases: never a broken UTF-8 sequence, possibly empty (a character
  /// still incomplete, or text held back while it could still turn into a stop string); the
  /// pieces of a row concatenate to its GenerationResult::text.
  std::string_view text;
  bool last = false;        // the row's final token
};

/// Called once per generated token in generation order (rows of a batch interleaved step by
/// step). Return false to stop that row (StopReason::callback).
using TokenCallback = std::function<bool(const TokenEvent&)>;

struct GenerationOptions {
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  /// Generating one of these ends the sequence (transformers keeps the id in the output).
  std::vector<int32_t> eos_token_ids;
  /// Text that ends the sequence as soon as the generated text contains it; the text is cut
  /// right after the stop string (a token that completes it may decode to more). Needs a
  /// tokenizer; empty strings are an error.
  std::vector<std::string> stop_strings;
  /// Drop special tokens from the text (the ids stay in `tokens`).
  bool skip_special_tokens = false;
  /// Overlap the device work of step n+1 with the host work of step n (see docs/generation.md).
  /// Off: every step is built, evaluated, read and sampled in turn. Results are identical.
  bool pipeline = true;
  /// Decode through one compiled step whose shapes do not depend on the position
  /// (CausalLM::decode_step), which a GPU replays as a CUDA graph. Unset: on for a model on a
  /// CUDA device. Batches with padded prompts always decode lazily. Results are the same either
  /// way (attention sums over masked cache positions instead of a prefix).
  std::optional<bool> compiled_steps;
  /// The stream the steps are evaluated on. Generations on different streams of one GPU run side
  /// by side (each stream has a CUDA stream of its own), which serves several requests at once.
  Stream stream = default_stream();
};

struct GenerationResult {
  std::vector<int32_t> tokens;   // generated ids (prompt excluded; an EOS id is kept)
  std::vector<float> logprobs;   // one per token
  std::string text;              // decoded generated text (empty without a tokenizer)
  StopReason stop_reason = StopReason::max_tokens;
  std::string stop_string;       // the stop string that matched, if any
};

/// Timings of one generate()/generate_batch() call; every figure ends with the data ready.
struct GenerationStats {
  int64_t rows = 0;              // sequences generated
  int64_t prompt_tokens = 0;     // real (unpadded) prompt tokens over all rows
  int64_t generated_tokens = 0;  // tokens returned over all rows
  int64_t decode_steps = 0;      // one-token forward passes evaluated (a pipelined run may
                                 // evaluate one more than it uses)
  double prefill_s = 0;          // prompt forward pass up to the first token's logits on the host
  double decode_s = 0;           // everything after, to the last token
  double prefill_tok_s() const { return prefill_s > 0 ? prompt_tokens / prefill_s : 0.0; }
  /// Tokens generated after each row's first one (which prefill produced) per second of decode.
  double decode_tok_s() const {
    int64_t n = generated_tokens > rows ? generated_tokens - rows : 0;
    return decode_s > 0 ? static_cast<double>(n) / decode_s : 0.0;
  }
};

/// Generates a continuation of `prompt` (token ids). `tokenizer` (may be null: no text, no stop
/// strings) decodes the streamed text. Throws wick::Error for an empty prompt, ids outside the
/// model's vocabulary, or invalid options.
GenerationResult generate(CausalLM& model, const Tokenizer* tokenizer, std::span<const int32_t> prompt,
                          const GenerationOptions& options, const TokenCallback& on_token = {},
                          GenerationStats* stats = nullptr);

/// Generates for several prompts at once: left-padded into one batch with an attention mask,
/// each row stopping on its own. Row i samples from the stream of seed `sampling.seed + i`,
/// so it equals generate() of prompt i with that seed (up to floating-point differences
/// between batched and single matrix products). The repetition penalty sees only the row's
/// real tokens, never the padding.
std::vector<GenerationResult> generate_batch(CausalLM& model, const Tokenizer* tokenizer,
                                             const std::vector<std::vector<int32_t>>& prompts,
                                             const GenerationOptions& options, const TokenCallback& on_token = {},
                                             GenerationStats* stats = nullptr);

/// A model folder's generation_config.json, as transformers reads it: the sampling defaults
/// (do_sample, temperature, top_k (50 when absent, as GenerationConfig's default), top_p,
/// min_p, repetition_penalty) and eos_token_id (int or list).
struct GenerationConfig {
  /// GenerationConfig's defaults (greedy; top_k 50 should do_sample be switched on).
  SamplingParams sampling{.top_k = 50, .do_sample = false};
  std::vector<int32_t> eos_token_ids;
  std::optional<int64_t> max_new_tokens;
  /// Parses the text; malformed fields are errors naming `source` and the field.
  static GenerationConfig parse(std::string_view json_text, const std::string& source);
  /// `dir`/generation_config.json, or the defaults (greedy, no EOS ids) when the file is absent.
  static GenerationConfig load(const std::string& dir);
};

/// The EOS ids generation should stop on: generation_config's, config.json's and the
/// tokenizer's eos token, without duplicates, in that order.
std::vector<int32_t> default_eos_token_ids(const ModelConfig& config, const GenerationConfig& generation,
                                           const Tokenizer* tokenizer);

}  // namespace wick
