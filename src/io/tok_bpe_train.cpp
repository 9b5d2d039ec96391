#include "io/tok_bpe_train.h"

#include <algorithm>
#include <queue>
#include <string_view>
#include <unordered_map>

#include "io/tok_hash.h"
#include "wick/error.h"

namespace wick::detail::tok {

namespace {

using Key = uint64_t;  // (left id << 32) | right id: numeric order is (left, right) order

Key key_of(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t left_of(Key k) { return static_cast<int32_t>(k >> 32); }
int32_t right_of(Key k) { return static_cast<int32_t>(k & 0xFFFFFFFFu); }

struct KeyHash {
  size_t operator()(Key k) const { return static_cast<size_t>(mix64(k)); }
};

struct Entry {
  uint64_t count;
  Key key;
};
// The top of the heap is the highest count, then the smallest pair.
struct EntryLess {
  bool operator()(const Entry& x, const Entry& y) const {
    return x.count != y.count ? x.count < y.count : x.key > y.key;
  }
};

class Merger {
 public:
  explicit Merger(BpeMergeInput& in) : in_(in) {}

  BpeMergeOutput run() {
    BpeMergeOutput out;
    count_all();
    for (size_t i = 0; i < in_.vocab.size(); ++i) ids_.emplace(in_.vocab[i], static_cast<int32_t>(i));
    uint64_t floor = std::max<uint64_t>(in_.min_frequency, 1);
    out.stopped_by = "vocab_size";
    while (in_.vocab.size() < in_.vocab_size) {
      if (heap_.empty()) {
        out.stopped_by = "min_frequency";
        break;
      }
      Entry top = heap_.top();
      heap_.pop();
      if (std::find(blocked_.begin(), blocked_.end(), top.key) != blocked_.end()) continue;
      uint64_t current = count_of(top.key);
      if (current != top.count) {
        if (current > 0) heap_.push({current, top.key});
        continue;
      }
      if (current < floor) {
        out.stopped_by = "min_frequency";
        break;
      }
      int32_t a = left_of(top.key), b = right_of(top.key);
      std::string token = in_.vocab[a] + in_.vocab[b];
      if (auto r = ids_.find(token); r != ids_.end() && static_cast<size_t>(r->second) < in_.reserved) {
        // Dropped for good: fresh occurrences would only bring it back to the top.
        counts_.erase(top.key);
        blocked_.push_back(top.key);
        continue;
      }
      auto [it, fresh] = ids_.emplace(token, static_cast<int32_t>(in_.vocab.size()));
      if (fresh) in_.vocab.push_back(std::move(token));
      out.merges.emplace_back(a, b);
      merge_everywhere(top.key, it->second);
      if (in_.progress && out.merges.size() % in_.progress_every == 0) in_.progress(out.merges.size());
    }
    if (in_.progress) in_.progress(out.merges.size());
    return out;
  }

 private:
  uint64_t count_of(Key k) const {
    auto it = counts_.find(k);
    return it == counts_.end() || it->second < 0 ? 0 : static_cast<uint64_t>(it->second);
  }

  void count_all() {
    if (in_.words.size() != in_.counts.size()) throw Error("bpe merges: words and counts differ in length");
    if (in_.words.size() > UINT32_MAX) throw Error("bpe merges: too many distinct words");
    for (size_t w = 0; w < in_.words.size(); ++w) {
      const std::vector<int32_t>& s = in_.words[w];
      auto c = static_cast<int64_t>(in_.counts[w]);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        Key k = key_of(s[i], s[i + 1]);
        counts_[k] += c;
        std::vector<uint32_t>& where = where_[k];
        if (where.empty() || where.back() != w) where.push_back(static_cast<uint32_t>(w));
      }
    }
    for (const auto& [k, c] : counts_)
      if (c > 0) heap_.push({static_cast<uint64_t>(c), k});
    stamp_.assign(in_.words.size(), 0);
  }

  // Merges pair `k` into `m` in every word that holds it, left to right within a word (the
  // library's Word::merge), adjusting the counts of the pairs around each merge site.
  void merge_everywhere(Key k, int32_t m) {
    ++step_;
    int32_t a = left_of(k), b = right_of(k);
    std::vector<uint32_t> words;
    if (auto it = where_.find(k); it != where_.end()) {
      words.swap(it->second);
      where_.erase(it);
    }
    fresh_.clear();
    for (uint32_t w : words) {
      if (stamp_[w] == step_) continue;  // listed twice
      stamp_[w] = step_;
      std::vector<int32_t>& s = in_.words[w];
      auto c = static_cast<int64_t>(in_.counts[w]);
      size_t n = s.size(), r = 0, out = 0;
      bool merged = false;
      while (r < n) {
        if (r + 1 < n && s[r] == a && s[r + 1] == b) {
          merged = true;
          counts_[k] -= c;
          // The left neighbour is already in its final form (out[-1]); the right one is
          // still unmerged (s[r + 2]), exactly as when merging in place left to right.
          if (out > 0) {
            add(key_of(s[out - 1], a), -c);
            add_fresh(key_of(s[out - 1], m), c, w);
          }
          if (r + 2 < n) {
            add(key_of(b, s[r + 2]), -c);
            add_fresh(key_of(m, s[r + 2]), c, w);
          }
          s[out++] = m;
          r += 2;
        } else {
          s[out++] = s[r++];
        }
      }
      if (merged) s.resize(out);
    }
    if (auto it = counts_.find(k); it != counts_.end() && it->second <= 0) counts_.erase(it);
    std::sort(fresh_.begin(), fresh_.end());
    fresh_.erase(std::unique(fresh_.begin(), fresh_.end()), fresh_.end());
    for (Key f : fresh_)
      if (uint64_t c = count_of(f)) heap_.push({c, f});
  }

  void add(Key k, int64_t d) { counts_[k] += d; }
  void add_fresh(Key k, int64_t d, uint32_t w) {
    counts_[k] += d;
    std::vector<uint32_t>& where = where_[k];
    if (where.empty() || where.back() != w) where.push_back(w);
    fresh_.push_back(k);
  }

  BpeMergeInput& in_;
  std::unordered_map<Key, int64_t, KeyHash> counts_;
  std::unordered_map<Key, std::vector<uint32_t>, KeyHash> where_;
  std::priority_queue<Entry, std::vector<Entry>, EntryLess> heap_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<uint32_t> stamp_;
  std::vector<Key> fresh_;
  std::vector<Key> blocked_;  // pairs whose text is a reserved token (rare: a linear scan)
  uint32_t step_ = 0;
};

}  // namespace

BpeMergeOutput run_bpe_merges(BpeMergeInput& in) {
  for (const auto& w : in.words)
    for (int32_t id : w)
      if (id < 0 || static_cast<size_t>(id) >= in.vocab.size())
        throw Error("bpe merges: symbol id " + std::to_string(id) + " is outside the vocabulary");
  return Merger(in).run();
}

}  // namespace wick::detail::tok
