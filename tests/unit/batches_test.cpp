// Training batches: padding and labels against a naive construction, counts, seeded and
// per-epoch orders, bucketing, resuming by position, and validation batches.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "common/dataset_util.h"

namespace {

// Example i has length lengths[i], ids 1000*i + j, targets where (i + j) % 3 != 0.
wick::Dataset dataset_of(const std::vector<int>& lengths) {
  std::vector<wick::Example> ex;
  for (size_t i = 0; i < lengths.size(); ++i) {
    wick::Example e;
    for (int j = 0; j < lengths[i]; ++j) {
      e.ids.push_back(static_cast<int32_t>(1000 * i + static_cast<size_t>(j)));
      e.target.push_back((i + static_cast<size_t>(j)) % 3 != 0 || j == 1);
    }
    ex.push_back(std::move(e));
  }
  return wick::Dataset::from_examples(std::move(ex));
}

std::vector<int> mixed_lengths(size_t n) {
  std::vector<int> l;
  uint32_t s = 12345;
  for (size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    l.push_back(2 + static_cast<int>((s >> 8) % 300));
  }
  return l;
}

std::vector<std::vector<size_t>> take(wick::BatchIterator& it, int n) {
  std::vector<std::vector<size_t>> out;
  for (int i = 0; i < n; ++i) out.push_back(it.next().rows);
  return out;
}

TEST(Batches, PaddingLabelsAndCounts) {
  auto d = dataset_of({5, 2, 9});
  auto b = wick::make_batch(d, {2, 0, 1}, /*pad_id=*/7, /*pad_multiple=*/4);
  ASSERT_EQ(b.ids.shape(), (wick::Shape{3, 12}));
  ASSERT_EQ(b.labels.shape(), (wick::Shape{3, 12}));
  EXPECT_EQ(b.ids.dtype(), wick::DType::i32);
  EXPECT_EQ(b.labels.dtype(), wick::DType::i32);
  auto ids = b.ids.to_vector<int32_t>(), labels = b.labels.to_vector<int32_t>();
  int64_t tokens = 0, targets = 0;
  const std::vector<size_t> rows = {2, 0, 1};
  for (size_t r = 0; r < 3; ++r) {
    const auto& ex = d[rows[r]];
    for (size_t j = 0; j < 12; ++j) {
      bool real = j < ex.ids.size();
      EXPECT_EQ(ids[r * 12 + j], real ? ex.ids[j] : 7) << r << "," << j;
      EXPECT_EQ(labels[r * 12 + j], real && ex.target[j] ? ex.ids[j] : -100) << r << "," << j;
      tokens += real;
      targets += real && j > 0 && ex.target[j];
    }
  }
  EXPECT_EQ(b.tokens, 16);
  EXPECT_EQ(b.tokens, tokens);
  EXPECT_EQ(b.target_tokens, targets);
  EXPECT_EQ(b.rows, rows);
  // pad_multiple 1: exactly the longest row.
  EXPECT_EQ(wick::make_batch(d, {0, 1}, 0, 1).ids.shape(), (wick::Shape{2, 5}));
  EXPECT_THROW(wick::make_batch(d, {}, 0), wick::Error);
  EXPECT_THROW(wick::make_batch(d, {3}, 0), wick::Error);
  EXPECT_THROW(wick::make_batch(d, {0}, 0, 0), wick::Error);
}

TEST(Batches, NeverPaddedBeyondMaxSeqLen) {
  wt::DataFile f("{\"text\": \"abcdef\"}\n{\"text\": \"ab\"}\n");
  wick::DatasetOptions o;
  o.max_seq_len = 10;
  auto d = f.load(o);
  // Longest row 7 (with EOS); rounding to 32 would give 32, the limit is 10.
  EXPECT_EQ(wick::make_batch(d, {0, 1}, 0, 32).ids.shape(), (wick::Shape{2, 10}));
  EXPECT_EQ(wick::make_batch(d, {0, 1}, 0, 4).ids.shape(), (wick::Shape{2, 8}));
}

TEST(Batches, EachEpochIsAPermutationAndTheSeedDecides) {
  auto d = dataset_of(mixed_lengths(103));
  for (bool bucket : {false, true}) {
    SCOPED_TRACE(bucket ? "bucketed" : "plain");
    wick::BatchOptions o;
    o.batch_size = 4;
    o.bucket = bucket;
    o.seed = 7;
    wick::BatchIterator a(d, o), b(d, o);
    ASSERT_EQ(a.batches_per_epoch(), 26);
    auto ea = take(a, 26 * 3), eb = take(b, 26 * 3);
    EXPECT_EQ(ea, eb);
    std::vector<std::vector<size_t>> epochs(3);
    for (size_t i = 0; i < ea.size(); ++i) {
      EXPECT_FALSE(ea[i].empty());
      EXPECT_LE(ea[i].size(), 4u);
      for (size_t r : ea[i]) epochs[i / 26].push_back(r);
    }
    for (auto& e : epochs) {
      std::vector<size_t> sorted = e;
      std::sort(sorted.begin(), sorted.end());
      for (size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], i);
      EXPECT_EQ(sorted.size(), 103u);
    }
    EXPECT_NE(epochs[0], epochs[1]);
    EXPECT_NE(epochs[1], epochs[2]);
    o.seed = 8;
    wick::BatchIterator c(d, o);
    EXPECT_NE(take(c, 26), std::vector<std::vector<size_t>>(ea.begin(), ea.begin() + 26));
    EXPECT_EQ(a.position().epoch, 3);
    EXPECT_EQ(a.position().batch, 0);
  }
}

TEST(Batches, OrderIsFixedAcrossBuilds) {
  // The order comes from wick's own generator, not the standard library's: pin a few rows so
  // that a change (which would break resuming old checkpoints) is seen.
  auto d = dataset_of(std::vector<int>(10, 3));
  wick::BatchOptions o;
  o.batch_size = 1;
  o.seed = 0;
  wick::BatchIterator it(d, o);
  std::vector<size_t> order;
  for (int i = 0; i < 10; ++i) order.push_back(it.next().rows[0]);
  wick::BatchIterator again(d, o);
  std::vector<size_t> order2;
  for (int i = 0; i < 10; ++i) order2.push_back(again.next().rows[0]);
  EXPECT_EQ(order, order2);
  EXPECT_EQ(order, (std::vector<size_t>{6, 3, 2, 9, 8, 1, 4, 7, 0, 5}));
}

TEST(Batches, NoShuffleIsFileOrder) {
  auto d = dataset_of(mixed_lengths(10));
  wick::BatchOptions o;
  o.batch_size = 3;
  o.shuffle = false;
  wick::BatchIterator it(d, o);
  EXPECT_EQ(take(it, 8),
            (std::vector<std::vector<size_t>>{
                {0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}, {0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}}));
  o.drop_last = true;
  wick::BatchIterator dropped(d, o);
  EXPECT_EQ(dropped.batches_per_epoch(), 3);
  EXPECT_EQ(take(dropped, 4),
            (std::vector<std::vector<size_t>>{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {0, 1, 2}}));
}

TEST(Batches, DropLastKeepsFullBatches) {
  auto d = dataset_of(mixed_lengths(50));
  wick::BatchOptions o;
  o.batch_size = 8;
  o.drop_last = true;
  wick::BatchIterator it(d, o);
  EXPECT_EQ(it.batches_per_epoch(), 6);
  for (auto& rows : take(it, 18)) EXPECT_EQ(rows.size(), 8u);
  o.batch_size = 64;
  EXPECT_THROW(wick::BatchIterator(d, o), wick::Error);
  o.batch_size = 0;
  EXPECT_THROW(wick::BatchIterator(d, o), wick::Error);
}

TEST(Batches, BucketingReducesPadding) {
  auto d = dataset_of(mixed_lengths(800));
  auto padded_area = [&](bool bucket) {
    wick::BatchOptions o;
    o.batch_size = 8;
    o.bucket = bucket;
    o.pad_multiple = 1;
    wick::BatchIterator it(d, o);
    int64_t area = 0, tokens = 0;
    for (int64_t i = 0; i < it.batches_per_epoch(); ++i) {
      auto b = it.next();
      area += b.ids.numel();
      tokens += b.tokens;
    }
    EXPECT_EQ(tokens, d.total_tokens());
    return area - tokens;
  };
  int64_t plain = padded_area(false), bucketed = padded_area(true);
  EXPECT_LT(bucketed * 5, plain) << "padding: bucketed " << bucketed << ", plain " << plain;
}

TEST(Batches, WidthsCountTheEpochsBatchesByPaddedWidth) {
  // What the trainer reads to decide whether the step's CUDA graphs pay: the same widths, as
  // often, as the epoch's batches have.
  auto d = dataset_of(mixed_lengths(300));
  for (int64_t multiple : {int64_t(1), int64_t(32)}) {
    wick::BatchOptions o;
    o.batch_size = 8;
    o.pad_multiple = multiple;
    o.seed = 4;
    wick::BatchIterator it(d, o);
    std::map<int64_t, int64_t> seen;
    for (int64_t i = 0; i < it.batches_per_epoch(); ++i) ++seen[it.next().ids.shape()[1]];
    EXPECT_EQ(it.widths(0), seen) << "pad multiple " << multiple;
    for (const auto& [w, n] : seen) EXPECT_EQ(w % multiple, 0) << w;
  }
}

TEST(Batches, SeekResumesTheUninterruptedSequence) {
  auto d = dataset_of(mixed_lengths(37));
  wick::BatchOptions o;
  o.batch_size = 4;
  o.seed = 3;
  wick::BatchIterator full(d, o);
  std::vector<wick::BatchIterator::Position> positions;
  std::vector<std::vector<size_t>> seq;
  for (int i = 0; i < 30; ++i) {
    positions.push_back(full.position());
    seq.push_back(full.next().rows);
  }
  for (int k : {0, 1, 9, 10, 11, 23}) {
    wick::BatchIterator resumed(d, o);
    resumed.seek(positions[k]);
    for (int i = k; i < 30; ++i)
      ASSERT_EQ(resumed.next().rows, seq[i]) << "from " << k << " at " << i;
  }
  // Positions past an epoch's end, or negative, are refused.
  wick::BatchIterator it(d, o);
  EXPECT_THROW(it.seek({0, 10}), wick::Error);
  EXPECT_THROW(it.seek({-1, 0}), wick::Error);
  EXPECT_THROW(it.seek({0, -1}), wick::Error);
}

TEST(Batches, OrderedBatchesCoverEveryRowOnceInOrder) {
  auto d = dataset_of(mixed_lengths(11));
  auto batches = wick::ordered_batches(d, 4, 0, 8);
  ASSERT_EQ(batches.size(), 3u);
  std::vector<size_t> rows;
  int64_t tokens = 0, targets = 0;
  for (auto& b : batches) {
    rows.insert(rows.end(), b.rows.begin(), b.rows.end());
    tokens += b.tokens;
    targets += b.target_tokens;
    EXPECT_EQ(b.ids.shape(1) % 8, 0);
  }
  EXPECT_EQ(rows, (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(batches[2].ids.shape(0), 3);
  EXPECT_EQ(tokens, d.total_tokens());
  EXPECT_EQ(targets, d.target_tokens());
  EXPECT_THROW(wick::ordered_batches(d, 0, 0), wick::Error);
}

}  // namespace
