// Memory behaviour: nothing leaks once tensors are dropped, evaluated graphs are detached so
// intermediates are freed during evaluation, the cache can be cleared.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

/// A graph with matmul, views, reductions, softmax, norms and casts, built from fresh inputs.
void run_graph(int mode) {
  Tensor x = to_tensor(random_host({64, 96}, DType::f32, 1), DType::f32);
  Tensor w = to_tensor(random_host({32, 96}, DType::f32, 2), DType::f32);
  Tensor h = wick::linear(x, w);
  Tensor s = wick::softmax(h * 0.1, -1);
  Tensor n = wick::rms_norm(wick::transpose(s), std::nullopt, 1e-6);
  Tensor r = wick::sum(wick::astype(n, DType::bf16), {0}) + wick::mean(h);
  Tensor c = wick::concatenate(wick::split(wick::slice(h, 1, 0, 32, 2), 2, 0), 1);
  std::vector<Tensor> roots = {r, c, wick::argmax(h, 1)};
  if (mode == 0) {
    wick::eval(roots);
  } else if (mode == 1) {
    wick::Future f = wick::eval_async(roots);
    f.get();
  } else if (mode == 2) {
    wick::EagerScope scope;
    Tensor e = wick::exp(wick::tanh(x)) * 2.0;
    (void)e;
  } else if (mode == 3) {
    // Never evaluated.
  } else {
    // Partly evaluated: one intermediate only.
    s.eval();
  }
  for (const Tensor& t : roots)
    if (t.is_evaluated()) (void)bytes_of(t);
}

TEST(Memory, ActiveReturnsToBaselineAfterDroppingEverything) {
  for (int mode = 0; mode < 5; ++mode) run_graph(mode);  // warm up lazily built runtime state
  size_t base = quiesce();
  for (int rep = 0; rep < 2; ++rep)
    for (int mode = 0; mode < 5; ++mode) {
      SCOPED_TRACE(cat("mode ", mode, " rep ", rep));
      run_graph(mode);
      EXPECT_TRUE(settles_at(base));
    }
}

TEST(Memory, FailedEvaluationsDoNotLeak) {
  Tensor x = to_tensor(random_host({10, 4}, DType::f32, 1), DType::f32);
  auto fail_once = [&] {
    Tensor a = wick::exp(x) * 3.0;  // computed before the failing op
    Tensor idx = wick::astype(wick::astype(wick::arange(3), DType::f32) * 100.0, DType::i64);
    Tensor bad = wick::take(a, idx, 0) + 1.0;
    EXPECT_THROW(wick::eval({bad, a}), wick::Error);
  };
  fail_once();
  size_t base = quiesce();
  for (int i = 0; i < 3; ++i) {
    fail_once();
    EXPECT_TRUE(settles_at(base)) << "round " << i;
  }
}

TEST(Memory, IntermediatesAreFreedDuringEvaluation) {
  const int64_t n = 1 << 16;  // 256 KiB of f32
  const size_t buf = n * sizeof(float);
  Tensor x = to_tensor(random_host({n}, DType::f32, 3, 0, 1), DType::f32);
  auto chain = [&](int len) {
    Tensor y = x;
    for (int i = 0; i < len; ++i) {
      switch (i % 3) {
        case 0: y = y + 0.5; break;
        case 1: y = y * 0.999; break;
        case 2: y = wick::tanh(y); break;
      }
    }
    return y;
  };
  chain(5).eval();  // warm-up
  wick::clear_memory_cache();
  size_t before = quiesce();
  Tensor y = chain(300);
  size_t built = active();  // scalar operands, if the builders materialise them
  wick::reset_peak_memory();
  y.eval();
  size_t peak = wick::memory_stats().peak;
  EXPECT_LE(peak - built, 3 * buf) << "peak grew by " << (peak - built) / 1024
                                   << " KiB for a 300-op chain of 256 KiB values: intermediates "
                                      "are not released during evaluation";
  // The evaluated graph is detached: only the result's buffer remains.
  size_t after = quiesce();
  EXPECT_LE(after - before, buf + 4096) << "evaluated graph still holds "
                                        << (after - before) / 1024 << " KiB";
  HostArray hx = to_host(x), hy = hx;
  for (int i = 0; i < 300; ++i)
    hy = map(hy, [i](double v) { return i % 3 == 0 ? v + 0.5 : i % 3 == 1 ? v * 0.999 : std::tanh(v); });
  EXPECT_TRUE(matches(y, hy, DType::f32, Tol{1e-4, 1e-5}));
  y = Tensor();
  EXPECT_TRUE(settles_at(before));

  // An input that only the graph holds is released by the evaluation (or donated).
  Tensor z;
  {
    Tensor tmp = to_tensor(random_host({n}, DType::f32, 4), DType::f32);
    z = wick::exp(tmp);
  }
  size_t with_input = active();
  z.eval();
  EXPECT_LE(quiesce(), with_input) << "the input buffer was not released after evaluation";
}

TEST(Memory, EvalReturnsOnlyAfterTheGraphIsReleased) {
  // Once eval() returns and the caller drops every handle, nothing of the graph may still be
  // held (by the worker): otherwise a loop of steps briefly holds two steps' buffers, and
  // memory_stats() or a memory limit sees memory the caller already gave up.
  const int64_t n = 1 << 16;
  Tensor x = to_tensor(random_host({n}, DType::f32, 7), DType::f32);
  ((x + 0.5) * 0.999).eval();
  size_t base = quiesce();
  int lagging_sync = 0, lagging_async = 0;
  for (int i = 0; i < 40; ++i) {
    {
      Tensor y = (x + 0.5) * 0.999;
      y.eval();
    }
    lagging_sync += active() != base;
    quiesce();
    {
      Tensor y = (x + 0.5) * 0.999;
      wick::eval_async({y}).get();
    }
    lagging_async += active() != base;
    quiesce();
  }
  EXPECT_EQ(lagging_sync, 0) << "after eval() returned and all handles were dropped, buffers "
                                "were still held in "
                             << lagging_sync << " of 40 runs";
  EXPECT_EQ(lagging_async, 0) << "after Future::get() returned and all handles were dropped, "
                                 "buffers were still held in "
                              << lagging_async << " of 40 runs";
}

TEST(Memory, AsyncChainsAlsoReleaseIntermediates) {
  const int64_t n = 1 << 16;
  const size_t buf = n * sizeof(float);
  Tensor x = to_tensor(random_host({n}, DType::f32, 5), DType::f32);
  (wick::sin(x) + 1.0).eval_async().get();  // warm-up
  wick::clear_memory_cache();
  size_t before = quiesce();
  Tensor y = x;
  for (int i = 0; i < 200; ++i) y = wick::sin(y) + 1.0;
  size_t built = active();
  wick::reset_peak_memory();
  y.eval_async().get();
  EXPECT_LE(wick::memory_stats().peak - built, 3 * buf);
  y = Tensor();
  EXPECT_TRUE(settles_at(before));
}

TEST(Memory, CacheStatsAndClearing) {
  Tensor x = to_tensor(random_host({1 << 14}, DType::f32, 6), DType::f32);
  for (int i = 0; i < 3; ++i) (x * double(i)).eval();
  wick::MemoryStats s = wick::memory_stats();
  EXPECT_GT(s.allocations, 0u);
  EXPECT_GE(s.peak, s.active);
  size_t hits = s.cache_hits;
  for (int i = 0; i < 5; ++i) (x * double(i)).eval();  // same size: served from the cache
  EXPECT_GT(wick::memory_stats().cache_hits, hits);
  wick::clear_memory_cache();
  EXPECT_EQ(wick::memory_stats().cached, 0u);
  EXPECT_TRUE(matches(x * 2.0, map(to_host(x), [](double v) { return 2 * v; }), DType::f32));
}

}  // namespace

TEST(Memory, PinMemoryGivesADenseCopyWithTheValues) {
  // On this machine's devices: pinned when there is a GPU to copy to, else a plain dense copy.
  Tensor x = wick::transpose(wick::reshape(wick::arange(12, DType::f32), {3, 4}));
  Tensor p = wick::pin_memory(x);
  EXPECT_TRUE(p.is_contiguous());
  EXPECT_EQ(p.shape(), (wick::Shape{4, 3}));
  EXPECT_EQ(p.to_vector<float>(), wick::contiguous(x).to_vector<float>());
  EXPECT_EQ(wick::is_pinned(p), wick::cuda_device_count() > 0);
  EXPECT_FALSE(wick::is_pinned(x));
  EXPECT_THROW(wick::pin_memory(Tensor()), wick::Error);
}
