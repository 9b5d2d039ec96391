#pragma once
// Training data: JSONL datasets in the four record shapes of the Hugging Face / mlx-lm world
// ({"text"}, {"prompt","completion"}, {"messages"}, {"input_ids"}), tokenised with a target mask
// for prompt masking, and padded, length-bucketed, seeded batches for the trainer. A dataset
// file is untrusted input: every problem is a wick::Error "FILE:LINE: problem".
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "wick/chat_template.h"
#include "wick/tensor.h"
#include "wick/tokenizer.h"

namespace wick {

/// One tokenised training sequence. `ids` are token ids; `target[i]` says whether ids[i] counts
/// as a label (the loss is taken on predicting it). Prompt tokens and template scaffolding are
/// not targets when masking. `line` is the record's 1-based line in its file (0 when built in
/// memory).
struct Example {
  std::vector<int32_t> ids;
  std::vector<uint8_t> target;
  int64_t line = 0;
};

/// What to do with a record longer than `max_seq_len` tokens.
enum class Overlong { error, truncate };

/// How records become examples.
struct DatasetOptions {
  /// Longest allowed example, in tokens.
  int64_t max_seq_len = 2048;
  /// `error` names file:line and suggests --truncate; `truncate` keeps the first max_seq_len.
  Overlong overlong = Overlong::error;
  /// Loss only on completion / assistant tokens.
  bool mask_prompt = false;
  /// Append the tokenizer's EOS to text and completion records (when it has one and it is not
  /// already the last token).
  bool add_eos = true;
  /// Largest file accepted.
  size_t max_file_bytes = size_t(4) << 30;
  /// Threads that tokenise records (0: one per hardware thread). The result does not depend on it.
  int threads = 0;
};

/// A tokenised dataset, in file order.
class Dataset {
 public:
  /// Reads a JSONL file (one record a line; blank lines are skipped). Each record's shape is
  /// detected on its own: {"text"}, {"prompt","completion"}, {"messages":[{"role","content"},
  /// ...]} (with optional "tools"), {"input_ids":[...]}; other keys are ignored, and a line
  /// matching no shape, or mixing two, is an error. `chat` is the model's template, needed only
  /// for messages records (a messages record without one is an error naming the line).
  static Dataset load_jsonl(const std::string& path, const Tokenizer& tok,
                            const ChatTemplateConfig* chat, const DatasetOptions& opts);
  /// load_jsonl of text already in memory; `name` stands for the path in errors.
  static Dataset from_jsonl(std::string_view text, const std::string& name, const Tokenizer& tok,
                            const ChatTemplateConfig* chat, const DatasetOptions& opts);
  /// A dataset of examples built in memory (`name` stands for the path); each needs at least
  /// two ids, a target flag per id, and a target after the first position.
  static Dataset from_examples(std::vector<Example> examples, std::string name = "<memory>");

  size_t size() const { return examples_.size(); }
  const Example& operator[](size_t i) const { return examples_.at(i); }
  /// All tokens; target tokens that are predicted (positions 1.. of each example, as in
  /// Batch::target_tokens: the loss terms of an epoch); the longest example.
  int64_t total_tokens() const { return total_tokens_; }
  int64_t target_tokens() const { return target_tokens_; }
  int64_t longest() const { return longest_; }
  const std::string& path() const { return path_; }
  /// Records cut to max_seq_len (truncate mode).
  int64_t truncated() const { return truncated_; }
  /// The max_seq_len it was loaded with (0 for from_examples: no limit). Batches are never
  /// padded beyond it.
  int64_t max_seq_len() const { return max_seq_len_; }
  /// Things the user should know that are not errors (each said once, with a count): e.g. a
  /// chat template that does not render conversations incrementally, so only the last
  /// assistant turn of a conversation could be kept as target.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  Dataset() = default;
  void add(Example e);
  std::string path_;
  std::vector<Example> examples_;
  int64_t total_tokens_ = 0, target_tokens_ = 0, longest_ = 0, truncated_ = 0, max_seq_len_ = 0;
  std::vector<std::string> warnings_;
};

/// A padded batch. ids [B, T] i32, right-padded with pad_id; labels [B, T] i32 = ids where the
/// token is a target, -100 elsewhere (padding, masked prompt). T is the longest row rounded up
/// to pad_multiple (so a compiled step sees few shapes), but not beyond the dataset's
/// max_seq_len. The last batch of an epoch may have
/// fewer rows unless drop_last.
struct Batch {
  Tensor ids, labels;
  /// Non-padding tokens.
  int64_t tokens = 0;
  /// Labels != -100 after the causal shift: positions 1.. of each row that are targets (the
  /// count a mean causal-LM loss divides by).
  int64_t target_tokens = 0;
  /// The dataset index of each row.
  std::vector<size_t> rows;
};

/// How batches are cut.
struct BatchOptions {
  int64_t batch_size = 4;
  /// Shuffle every epoch; false keeps file order (and turns bucketing off).
  bool shuffle = true;
  uint64_t seed = 0;
  /// Group rows of similar length (see BatchIterator).
  bool bucket = true;
  int64_t pad_multiple = 32;
  int32_t pad_id = 0;
  /// Leave out an epoch's last, incomplete batch.
  bool drop_last = false;
};

/// Endless, deterministic batches, epoch by epoch: epoch e's order depends only on (seed, e),
/// the dataset and the options. With `shuffle` and `bucket`, an epoch is a shuffle of the rows,
/// sorted by length inside windows of 50 batches, cut into batches, and the batches shuffled,
/// so padding stays small while every batch is still a random mix.
class BatchIterator {
 public:
  /// Keeps a reference to `data`, which must outlive the iterator.
  BatchIterator(const Dataset& data, BatchOptions opts);
  int64_t batches_per_epoch() const { return per_epoch_; }
  /// The next batch; after an epoch's last one, the first of the next epoch.
  Batch next();
  /// Where next() stands: the batch it returns next is batch `batch` of epoch `epoch`.
  struct Position {
    int64_t epoch = 0, batch = 0;
  };
  Position position() const { return pos_; }
  /// Moves to `p` (for --resume): next() then returns what an uninterrupted run would have.
  void seek(Position p);
  /// The dataset rows of every batch of epoch `epoch`, in order.
  std::vector<std::vector<size_t>> epoch_plan(int64_t epoch) const;
  /// The padded widths of epoch `epoch`'s batches, each with how many batches have it (a
  /// compiled step is traced, and on a GPU recorded, once per width).
  std::map<int64_t, int64_t> widths(int64_t epoch) const;

 private:
  const Dataset* data_;
  BatchOptions opts_;
  int64_t per_epoch_ = 0;
  Position pos_;
  int64_t plan_epoch_ = -1;
  std::vector<std::vector<size_t>> plan_;
};

/// Builds the padded batch of `rows` of `data` (see Batch).
Batch make_batch(const Dataset& data, const std::vector<size_t>& rows, int32_t pad_id,
                 int64_t pad_multiple = 32);

/// Every example of `data` in file order, `batch_size` at a time, unshuffled (validation).
std::vector<Batch> ordered_batches(const Dataset& data, int64_t batch_size, int32_t pad_id,
                                   int64_t pad_multiple = 32);

}  // namespace wick
