// Several threads building and evaluating graphs at once over shared evaluated and
// unevaluated inputs; results must be exactly what a single thread gets.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

/// Collects failures from worker threads; the main thread reports them.
struct Failures {
  std::mutex m;
  std::vector<std::string> msgs;
  void add(std::string s) {
    std::lock_guard l(m);
    if (msgs.size() < 10) msgs.push_back(std::move(s));
    else msgs.back() = "... (more)";
  }
  void report() {
    for (const auto& s : msgs) ADD_FAILURE() << s;
  }
};

/// All threads leave together, to maximise overlap.
struct StartLine {
  std::atomic<int> waiting;
  explicit StartLine(int n) : waiting(n) {}
  void arrive() {
    waiting.fetch_sub(1);
    while (waiting.load() > 0) std::this_thread::yield();
  }
};

TEST(Concurrency, EightThreadsTwoHundredAsyncEvalsOnSharedInputs) {
  const int kThreads = 8, kIters = 200;
  HostArray hx = random_host({16, 32}, DType::f32, 1);
  Tensor x = to_tensor(hx, DType::f32);       // shared, evaluated
  Tensor u = wick::exp(x * 0.25);              // shared, not evaluated yet
  Tensor rs = wick::sum(x, {1}, true);         // shared, not evaluated yet
  Tensor sq = wick::matmul(x, wick::transpose(x));  // shared, [16,16], not evaluated yet
  HostArray hu = map(hx, [](double v) { return std::exp(0.25 * v); });
  HostArray hrs = reduce_axes(hx, {1}, true, sum_of);
  HostArray hsq = matmul(hx, transpose(hx));
  Failures fails;
  StartLine start(kThreads);
  std::atomic<int> checked{0};

  auto worker = [&](int t) {
    wick::Stream own = wick::new_stream();
    std::deque<std::pair<int, wick::Future>> inflight;
    auto check = [&](int i, const wick::Future& f) {
      try {
        const std::vector<Tensor>& r = f.get();
        HostArray want = zip(map(hu, [&](double v) { return v * (t + 1); }),
                             map(hrs, [&](double v) { return v + i; }), std::plus<double>());
        auto ok = all_close(to_host(r[0]), want, Tol{1e-5, 1e-5});
        if (!ok) fails.add(cat("thread ", t, " iter ", i, ": ", ok.message()));
        auto ok2 = all_close(to_host(r[1]), map(hsq, [&](double v) { return v - i; }), Tol{1e-5, 1e-4});
        if (!ok2) fails.add(cat("thread ", t, " iter ", i, " (matmul): ", ok2.message()));
        checked++;
      } catch (const std::exception& e) {
        fails.add(cat("thread ", t, " iter ", i, " threw: ", e.what()));
      }
    };
    start.arrive();
    for (int i = 0; i < kIters; ++i) {
      Tensor y = u * double(t + 1) + (rs + double(i));
      Tensor z = sq - double(i);
      wick::Stream s = i % 2 ? own : wick::default_stream();
      inflight.emplace_back(i, wick::eval_async({y, z}, s));
      if (inflight.size() > 3) {
        check(inflight.front().first, inflight.front().second);
        inflight.pop_front();
      }
    }
    while (!inflight.empty()) {
      check(inflight.front().first, inflight.front().second);
      inflight.pop_front();
    }
  };
  Watchdog dog(120, "8 threads x 200 eval_async");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  fails.report();
  EXPECT_EQ(checked.load(), kThreads * kIters);
  // The shared inputs were evaluated once and hold the right values.
  EXPECT_TRUE(matches(u, hu, DType::f32));
  EXPECT_TRUE(matches(rs, hrs, DType::f32, Tol{1e-5, 1e-5}));
  EXPECT_TRUE(matches(x, hx, DType::f32, Tol{0, 0}));
}

TEST(Concurrency, SamePendingTensorEvaluatedFromManyThreads) {
  const int kThreads = 8;
  // One pending tensor claimed by one submission while other submissions (on the same
  // stream) need it: the claim must never be queued behind a submission that waits for it.
  // The race is narrow, so it is tried many times.
  Watchdog dog(20, "evaluating one pending tensor from 8 threads (200 rounds)");
  for (int round = 0; round < 200; ++round) {
    HostArray hx = random_host({16, 12}, DType::f32, 100 + round);
    Tensor x = to_tensor(hx, DType::f32);
    Tensor p = wick::softmax(wick::matmul(x, wick::transpose(x)), -1);
    std::vector<std::vector<uint8_t>> got(kThreads);
    Failures fails;
    StartLine start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        start.arrive();
        try {
          if (t % 3 == 0) p.eval();
          else if (t % 3 == 1) wick::eval_async({p}).get();
          else wick::eval({p, p * 1.0});
          got[t] = bytes_of(p);
        } catch (const std::exception& e) {
          fails.add(std::string("thread threw: ") + e.what());
        }
      });
    for (auto& th : threads) th.join();
    fails.report();
    for (int t = 1; t < kThreads; ++t) ASSERT_EQ(got[t], got[0]) << "round " << round << " thread " << t;
    ASSERT_TRUE(matches(p, softmax(matmul(hx, transpose(hx)), -1), DType::f32, Tol{1e-5, 1e-6}))
        << "round " << round;
  }
}

TEST(Concurrency, EagerAndLazyThreadsSideBySide) {
  const int kThreads = 6;
  HostArray hx = random_host({8, 8}, DType::f32, 7);
  Tensor x = to_tensor(hx, DType::f32);
  Failures fails;
  StartLine start(kThreads);
  Watchdog dog(60, "eager and lazy threads");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::optional<wick::EagerScope> scope;
      if (t % 2) scope.emplace();
      start.arrive();
      for (int i = 0; i < 50; ++i) {
        Tensor y = wick::tanh(x * double(i)) + wick::mean(x);
        if (bool(t % 2) != y.is_evaluated())
          fails.add(cat("thread ", t, ": is_evaluated does not follow this thread's mode"));
        if (bool(t % 2) != wick::eager_mode()) fails.add("eager_mode leaked across threads");
        double m = mean_of(hx.v);
        auto ok = all_close(to_host(y), map(hx, [&](double v) { return std::tanh(v * i) + m; }),
                            Tol{1e-5, 1e-5});
        if (!ok) fails.add(cat("thread ", t, ": ", ok.message()));
      }
    });
  for (auto& th : threads) th.join();
  fails.report();
}

TEST(Concurrency, ManyWaitersOnOneFuture) {
  HostArray hx = random_host({128, 128}, DType::f32, 9, -0.1, 0.1);
  Tensor x = to_tensor(hx, DType::f32);
  Tensor y = wick::matmul(wick::matmul(x, x), x);
  wick::Future f = wick::eval_async({y});
  Watchdog dog(60, "waiters on one future");
  Failures fails;
  std::vector<std::thread> threads;
  std::vector<std::vector<uint8_t>> got(6);
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t, copy = f] {
      try {
        if (t % 2) copy.wait();
        got[t] = bytes_of(copy.get()[0]);
        if (!copy.ready()) fails.add("ready() false after get()");
      } catch (const std::exception& e) {
        fails.add(e.what());
      }
    });
  for (auto& th : threads) th.join();
  fails.report();
  for (int t = 1; t < 6; ++t) EXPECT_EQ(got[t], got[0]);
  EXPECT_TRUE(matches(y, matmul(matmul(hx, hx), hx), DType::f32, Tol{1e-4, 1e-5}));
}

}  // namespace
