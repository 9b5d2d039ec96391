#pragma once
// Training a byte-level BPE tokenizer from text, written as a Hugging Face tokenizer.json that
// wick::Tokenizer and the `tokenizers` library both load. The layout is Qwen 2's: no
// normalizer; pre-tokenizer Sequence[Split(Qwen's regex, Isolated), ByteLevel(no prefix space,
// no regex)]; a BPE model whose vocabulary is the special tokens (ids 0..), the 256 byte
// symbols (in code point order of GPT-2's byte alphabet, as GPT-2 and the library's trainer
// order them) and then one token per merge; ByteLevel decoder; the special tokens as added
// tokens.
//
// Training follows the library's BpeTrainer: words are counted after exactly the
// pre-tokenization the trained tokenizer applies (special tokens in the text are cut out and
// never merged into); pair counts are the number of adjacent positions times the word's count;
// each step merges the pair with the highest count, ties going to the smallest (left id, right
// id); it stops at vocab_size entries or when no pair reaches min_frequency.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wick {

/// Progress of a training run, reported during the merges.
struct BpeTrainProgress {
  size_t merges_done = 0;
  size_t merges_target = 0;  ///< vocab_size minus the special tokens and the 256 bytes
  double seconds = 0;        ///< since the merges started
};

/// Settings of train_bpe_tokenizer.
struct BpeTrainerOptions {
  /// Entries in the final vocabulary, special tokens and the 256 byte symbols included.
  int32_t vocab_size = 4096;
  /// A pair seen fewer times than this is never merged.
  uint64_t min_frequency = 2;
  /// Added first (ids 0, 1, ...), marked special; matched whole in any text, never split.
  std::vector<std::string> special_tokens;
  /// Print a progress line (merges, rate, ETA) on stderr during long runs.
  bool show_progress = false;
  /// Called every few hundred merges and at the end (optional; runs on the training thread).
  std::function<void(const BpeTrainProgress&)> on_progress;
  /// Threads for counting words (0: one per hardware thread).
  int threads = 0;
};

/// What training produced.
struct BpeTrainResult {
  /// The tokenizer.json text.
  std::string tokenizer_json;
  int32_t vocab_size = 0;       ///< entries, special tokens included
  size_t merges = 0;
  uint64_t corpus_bytes = 0;    ///< bytes of text read
  uint64_t words = 0;           ///< pre-tokenized pieces counted
  uint64_t unique_words = 0;
  double seconds = 0;           ///< whole training time
  /// Why the merges stopped: "vocab_size" or "min_frequency" (no pair frequent enough).
  std::string stopped_by;
};

/// Trains on `texts` (valid UTF-8 each, else wick::Error naming the text's index). Fails on
/// a vocab_size below 256 + the special tokens, an empty or repeated special token, or text
/// without a single word to count.
BpeTrainResult train_bpe_tokenizer(std::span<const std::string_view> texts,
                                   const BpeTrainerOptions& options);

/// Trains on the contents of `files` (errors name the file).
BpeTrainResult train_bpe_tokenizer_files(const std::vector<std::string>& files,
                                         const BpeTrainerOptions& options);

/// Settings of the tokenizer_config.json written beside a trained tokenizer.
struct BpeTokenizerConfigOptions {
  /// Sequence length recorded as model_max_length.
  int64_t model_max_length = 2048;
  /// "" for none, or "chatml": `<|im_start|>{role}\n{content}<|im_end|>\n` per message and
  /// `<|im_start|>assistant\n` as generation prompt (needs both tokens among the specials).
  std::string chat_template;
};

/// The tokenizer_config.json text for a tokenizer trained with `special_tokens`:
/// tokenizer_class PreTrainedTokenizerFast, eos and pad = the first special token (none when
/// there is none), no bos, model_max_length and the chat template.
std::string bpe_tokenizer_config_json(const std::vector<std::string>& special_tokens,
                                      const BpeTokenizerConfigOptions& options);

/// The ChatML chat template text that bpe_tokenizer_config_json writes for "chatml".
std::string chatml_chat_template();

/// Writes `dir`/tokenizer.json and, when `config_json` is not empty, `dir`/tokenizer_config.json,
/// each atomically; creates `dir` when missing.
void write_bpe_tokenizer(const std::string& dir, std::string_view tokenizer_json,
                         std::string_view config_json);

}  // namespace wick
