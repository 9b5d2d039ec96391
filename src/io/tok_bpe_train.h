#pragma once
// The merge loop of BPE training, on words already cut into symbol ids: the Hugging Face
// BpeTrainer's rule (highest pair count, ties to the smallest (left id, right id); a pair's count
// is the number of adjacent positions holding it, times the word's count) with exact
// incremental counts. Each merge touches only the words that hold the pair (an index pair ->
// words, refreshed as new pairs appear) and updates the counts of the neighbours of each merge
// site; a max-heap with lazy invalidation (an entry is trusted only when its count is still
// current) picks the next pair.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace wick::detail::tok {

struct BpeMergeInput {
  /// Token strings by id: the initial symbols (and anything else with an id, such as special
  /// tokens). Merged tokens are appended; a merge whose token already exists reuses its id.
  std::vector<std::string> vocab;
  /// Ids below this (special tokens) are never the result of a merge: a pair whose merged text
  /// equals one of them is never merged.
  size_t reserved = 0;
  /// Words as symbol ids (each < vocab.size()), and how often each occurs.
  std::vector<std::vector<int32_t>> words;
  std::vector<uint64_t> counts;
  /// Stop once the vocabulary has this many entries.
  size_t vocab_size = 0;
  /// Pairs seen fewer times are never merged (0 and 1 both mean "seen at all").
  uint64_t min_frequency = 0;
  /// Called with the number of merges done, every `progress_every` merges and at the end.
  std::function<void(size_t)> progress;
  size_t progress_every = 256;
};

struct BpeMergeOutput {
  /// The pairs merged, in order (ids into `vocab`).
  std::vector<std::pair<int32_t, int32_t>> merges;
  /// "vocab_size", or "min_frequency" when no pair was frequent enough (or none was left).
  std::string stopped_by;
};

/// Runs the merges; `in.vocab` grows with the new tokens and `in.words` ends up segmented.
BpeMergeOutput run_bpe_merges(BpeMergeInput& in);

}  // namespace wick::detail::tok
