// Padded batches and their per-epoch order (seeded shuffle, length bucketing).
#include <algorithm>
#include <limits>
#include <map>
#include <numeric>

#include "wick/data.h"
#include "wick/error.h"

namespace wick {

namespace {

// The order must not depend on the standard library (std::shuffle and the distributions are
// implementation-defined), or a resumed run on another build would see other batches.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), without modulo bias.
  uint64_t below(uint64_t n) {
    uint64_t limit =
        std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }

 private:
  uint64_t state_;
};

template <class T>
void shuffle(std::vector<T>& v, SplitMix& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

// Rows sorted by length in windows of this many batches: wide enough that most batches hold
// rows of similar length, narrow enough that an epoch still mixes short and long batches.
constexpr int64_t kBucketWindowBatches = 50;

}  // namespace

namespace {

/// The padded width of a batch of `rows`: the longest row rounded up to pad_multiple, but not
/// past the dataset's max_seq_len unless a row is longer.
int64_t batch_width(const Dataset& data, const std::vector<size_t>& rows, int64_t pad_multiple) {
  int64_t longest = 0;
  for (size_t r : rows) {
    if (r >= data.size())
      throw Error("make_batch: row " + std::to_string(r) + " of a dataset of " +
                  std::to_string(data.size()));
    longest = std::max(longest, static_cast<int64_t>(data[r].ids.size()));
  }
  int64_t width = (longest + pad_multiple - 1) / pad_multiple * pad_multiple;
  if (data.max_seq_len() > 0) width = std::min(width, std::max(longest, data.max_seq_len()));
  return width;
}

}  // namespace

Batch make_batch(const Dataset& data, const std::vector<size_t>& rows, int32_t pad_id,
                 int64_t pad_multiple) {
  if (rows.empty()) throw Error("make_batch: no rows");
  if (pad_multiple < 1)
    throw Error("make_batch: pad_multiple must be at least 1, got " + std::to_string(pad_multiple));
  const int64_t width = batch_width(data, rows, pad_multiple);
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<int32_t> ids(static_cast<size_t>(n * width), pad_id);
  std::vector<int32_t> labels(ids.size(), -100);
  Batch b;
  b.rows = rows;
  for (int64_t i = 0; i < n; ++i) {
    const Example& ex = data[rows[static_cast<size_t>(i)]];
    size_t base = static_cast<size_t>(i * width);
    for (size_t j = 0; j < ex.ids.size(); ++j) {
      ids[base + j] = ex.ids[j];
      if (ex.target[j]) {
        labels[base + j] = ex.ids[j];
        if (j > 0) ++b.target_tokens;
      }
    }
    b.tokens += static_cast<int64_t>(ex.ids.size());
  }
  b.ids = Tensor::from_vector(ids, {n, width});
  b.labels = Tensor::from_vector(labels, {n, width});
  return b;
}

std::vector<Batch> ordered_batches(const Dataset& data, int64_t batch_size, int32_t pad_id,
                                   int64_t pad_multiple) {
  if (batch_size < 1)
    throw Error("ordered_batches: batch size must be at least 1, got " +
                std::to_string(batch_size));
  std::vector<Batch> out;
  for (size_t begin = 0; begin < data.size(); begin += static_cast<size_t>(batch_size)) {
    std::vector<size_t> rows;
    for (size_t r = begin; r < std::min(data.size(), begin + static_cast<size_t>(batch_size)); ++r)
      rows.push_back(r);
    out.push_back(make_batch(data, rows, pad_id, pad_multiple));
  }
  return out;
}

BatchIterator::BatchIterator(const Dataset& data, BatchOptions opts) : data_(&data), opts_(opts) {
  if (opts_.batch_size < 1)
    throw Error("batches: batch size must be at least 1, got " + std::to_string(opts_.batch_size));
  if (opts_.pad_multiple < 1)
    throw Error("batches: pad multiple must be at least 1, got " +
                std::to_string(opts_.pad_multiple));
  const int64_t n = static_cast<int64_t>(data.size());
  per_epoch_ =
      opts_.drop_last ? n / opts_.batch_size : (n + opts_.batch_size - 1) / opts_.batch_size;
  if (per_epoch_ == 0)
    throw Error(data.path() + ": " + std::to_string(n) + " example(s), fewer than one batch of " +
                std::to_string(opts_.batch_size) +
                (opts_.drop_last ? " (incomplete batches are dropped)" : ""));
}

std::vector<std::vector<size_t>> BatchIterator::epoch_plan(int64_t epoch) const {
  const size_t n = data_->size(), bs = static_cast<size_t>(opts_.batch_size);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  // Seed and epoch are mixed through SplitMix itself so that nearby seeds or epochs give
  // unrelated orders.
  SplitMix rng(SplitMix(opts_.seed).next() ^ SplitMix(static_cast<uint64_t>(epoch)).next());
  const bool bucket = opts_.shuffle && opts_.bucket && bs > 1;
  if (opts_.shuffle) shuffle(order, rng);
  if (bucket) {
    const size_t window = bs * kBucketWindowBatches;
    for (size_t begin = 0; begin < n; begin += window) {
      auto first = order.begin() + static_cast<std::ptrdiff_t>(begin);
      auto last = order.begin() + static_cast<std::ptrdiff_t>(std::min(n, begin + window));
      std::stable_sort(first, last, [&](size_t a, size_t b) {
        return (*data_)[a].ids.size() < (*data_)[b].ids.size();
      });
    }
  }
  std::vector<std::vector<size_t>> plan;
  for (size_t begin = 0; begin < n; begin += bs) {
    size_t end = std::min(n, begin + bs);
    if (end - begin < bs && opts_.drop_last) break;
    plan.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(begin),
                      order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  // Sorted windows would otherwise run from short to long batches, a pattern the optimiser sees.
  if (bucket) shuffle(plan, rng);
  return plan;
}

std::map<int64_t, int64_t> BatchIterator::widths(int64_t epoch) const {
  std::map<int64_t, int64_t> out;
  for (const auto& rows : epoch_plan(epoch)) ++out[batch_width(*data_, rows, opts_.pad_multiple)];
  return out;
}

Batch BatchIterator::next() {
  if (plan_epoch_ != pos_.epoch) {
    plan_ = epoch_plan(pos_.epoch);
    plan_epoch_ = pos_.epoch;
  }
  Batch b =
      make_batch(*data_, plan_[static_cast<size_t>(pos_.batch)], opts_.pad_id, opts_.pad_multiple);
  if (++pos_.batch == per_epoch_) {
    pos_.batch = 0;
    ++pos_.epoch;
  }
  return b;
}

void BatchIterator::seek(Position p) {
  if (p.epoch < 0 || p.batch < 0 || p.batch >= per_epoch_)
    throw Error("batches: cannot seek to epoch " + std::to_string(p.epoch) + ", batch " +
                std::to_string(p.batch) + " (an epoch has " + std::to_string(per_epoch_) +
                " batches)");
  pos_ = p;
}

}  // namespace wick
