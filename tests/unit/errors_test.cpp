// Errors: failures inside (async) evaluations reach the waiter as wick::Error without
// deadlocking and leave the engine usable; memory limits; build-time shape errors that name
// the op and the shapes.
#include <gtest/gtest.h>

#include <thread>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

/// take() with an index computed in the graph (so the builder cannot see it) that is out of
/// range at evaluation time.
Tensor bad_take(const Tensor& x) {
  Tensor idx = wick::astype(wick::astype(wick::arange(3), DType::f32) * 100.0, DType::i64);
  // idx = 0, 100, 200
  return wick::take(x, idx, 0);
}

Tensor good_input() { return to_tensor(random_host({10, 4}, DType::f32, 1), DType::f32); }

TEST(AsyncErrors, ComeBackFromGetAsWickError) {
  Tensor x = good_input();
  Tensor y = bad_take(x) * 2.0;
  wick::Future f = wick::eval_async({y});
  wait_or_die(f);
  EXPECT_NO_THROW(f.wait());
  EXPECT_TRUE(f.ready());
  std::string msg = error_of([&] { (void)f.get(); });
  EXPECT_NE(msg, "<no error>");
  EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
  EXPECT_NE(msg.find("take"), std::string::npos) << "the message names the failing op: " << msg;
  // Every copy sees the same failure, and get() keeps failing.
  wick::Future copy = f;
  EXPECT_TRUE(copy.ready());
  EXPECT_THROW((void)copy.get(), wick::Error);
  EXPECT_THROW((void)f.get(), wick::Error);
  EXPECT_FALSE(y.is_evaluated());
  // Reading the failed tensor or anything built on it fails too, without hanging.
  EXPECT_THROW((void)y.to_vector<float>(), wick::Error);
  EXPECT_THROW(wick::eval({y + 1.0}), wick::Error);
  wick::Future again = wick::eval_async({wick::sum(y)});
  wait_or_die(again);
  EXPECT_THROW((void)again.get(), wick::Error);
}

TEST(AsyncErrors, EngineKeepsWorkingAfterwards) {
  Tensor x = good_input();
  HostArray hx = to_host(x);
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    wick::Stream s = round % 2 ? wick::new_stream() : wick::default_stream();
    wick::Future bad = wick::eval_async({bad_take(x)}, s);
    // Work submitted behind the failure on the same stream still runs.
    Tensor ok = wick::exp(x) + double(round);
    wick::Future good = wick::eval_async({ok}, s);
    wait_or_die(bad);
    wait_or_die(good);
    EXPECT_THROW((void)bad.get(), wick::Error);
    EXPECT_NO_THROW((void)good.get());
    EXPECT_TRUE(matches(ok, map(hx, [&](double v) { return std::exp(v) + round; }), DType::f32));
    // And synchronous evaluation too.
    Tensor z = wick::sum(x * 2.0);
    EXPECT_NEAR(z.item<float>(), 2 * sum_of(hx.v), 1e-4);
  }
}

TEST(SyncErrors, EvalThrowsWickErrorAndRecovers) {
  Tensor x = good_input();
  Tensor y = bad_take(x);
  EXPECT_THROW(wick::eval({y}), wick::Error);
  EXPECT_THROW(y.eval(), wick::Error);
  EXPECT_THROW((void)y.to_vector<float>(), wick::Error);
  // Mixed submission: a failing root next to healthy ones.
  Tensor fine = x + 1.0;
  EXPECT_THROW(wick::eval({fine, bad_take(x)}), wick::Error);
  Tensor later = x * 3.0;
  EXPECT_NO_THROW(later.eval());
  EXPECT_TRUE(matches(later, map(to_host(x), [](double v) { return 3 * v; }), DType::f32));
  EXPECT_TRUE(matches(fine, map(to_host(x), [](double v) { return v + 1; }), DType::f32))
      << "a healthy root can be evaluated (again) after a failed submission";
}

TEST(SyncErrors, ErrorsFromManyThreadsAtOnce) {
  Tensor x = good_input();
  HostArray hx = to_host(x);
  std::atomic<int> wrong{0};
  Watchdog dog(60, "errors from many threads");
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        if ((i + t) % 2) {
          wick::Future f = wick::eval_async({bad_take(x)});
          try {
            (void)f.get();
            wrong++;
          } catch (const wick::Error&) {
          } catch (...) {
            wrong++;
          }
        } else {
          Tensor y = x * double(i);
          try {
            if (!all_close(to_host(y), map(hx, [&](double v) { return v * i; }), Tol{1e-6, 1e-6}))
              wrong++;
          } catch (...) {
            wrong++;
          }
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

struct LimitGuard {
  ~LimitGuard() { wick::set_memory_limit(0); }
};

TEST(MemoryLimit, FailsWithClearErrorAndRecovers) {
  LimitGuard guard;
  Tensor x = to_tensor(random_host({256}, DType::f32, 2), DType::f32);
  wick::clear_memory_cache();
  size_t limit = wick::memory_stats().active + (64 << 10);
  wick::set_memory_limit(limit);
  EXPECT_EQ(wick::memory_stats().limit, limit);
  Tensor big = wick::broadcast_to(x, {4096, 256}) * 2.0;  // 4 MiB result
  std::string msg = error_of([&] { big.eval(); });
  EXPECT_NE(msg, "<no error>");
  EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(limit)), std::string::npos) << "states the limit: " << msg;
  // Async: the same failure reaches get(), wait() does not throw.
  Tensor big2 = wick::exp(wick::broadcast_to(x, {4096, 256}));
  wick::Future f = wick::eval_async({big2});
  wait_or_die(f);
  EXPECT_NO_THROW(f.wait());
  EXPECT_TRUE(f.ready());
  EXPECT_THROW((void)f.get(), wick::Error);
  // Small work still fits under the limit.
  EXPECT_NO_THROW((x + 1.0).eval());
  // Clearing the limit recovers.
  wick::set_memory_limit(0);
  EXPECT_EQ(wick::memory_stats().limit, 0u);
  Tensor again = wick::broadcast_to(x, {4096, 256}) * 2.0;
  EXPECT_NO_THROW(again.eval());
  EXPECT_TRUE(matches(again, broadcast(map(to_host(x), [](double v) { return 2 * v; }), {4096, 256}),
                      DType::f32));
}

TEST(DeviceErrors, UnavailableDevicesFailCleanly) {
  // This build has no CUDA device: asking for one is a wick::Error, never a crash.
  Tensor x = good_input();
  std::string msg = error_of([&] {
    wick::Stream s = wick::new_stream(wick::Device::cuda(0));
    wick::eval_async({x + 1.0}, s).get();
  });
  EXPECT_NE(msg, "<no error>");
  EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
  EXPECT_THROW((void)wick::memory_stats(wick::Device::cuda(0)), wick::Error);
  EXPECT_NO_THROW((x * 2.0).eval()) << "the CPU keeps working";
}

struct BuildError {
  const char* what;
  std::function<void()> build;
  std::vector<std::string> must_mention;
};

TEST(BuildErrors, NameTheOpAndTheShapes) {
  auto z = [](Dims s, DType dt = DType::f32) { return wick::zeros(s, dt); };
  const std::vector<BuildError> cases = {
      {"matmul", [&] { (void)wick::matmul(z({4, 16, 512}), z({256, 8})); },
       {"matmul", "[4,16,512]", "[256,8]"}},
      {"add", [&] { (void)wick::add(z({3, 4}), z({2, 4})); }, {"add", "[3,4]", "[2,4]"}},
      {"multiply", [&] { (void)(z({3}) * z({4})); }, {"multiply", "[3]", "[4]"}},
      {"where", [&] { (void)wick::where(z({2}, DType::boolean), z({3}), z({3})); }, {"where"}},
      {"reshape", [&] { (void)wick::reshape(z({2, 3}), {4, 2}); }, {"reshape", "[2,3]"}},
      {"concatenate", [&] { (void)wick::concatenate({z({2, 3}), z({2, 5, 1})}, 0); },
       {"concatenate"}},
      {"linear", [&] { (void)wick::linear(z({2, 8}), z({4, 7})); }, {"linear", "[2,8]"}},
      {"softmax", [&] { (void)wick::softmax(z({2, 8}), 3); }, {"softmax"}},
      {"sum", [&] { (void)wick::sum(z({2, 8}), {2}); }, {"sum"}},
      {"take_along_axis", [&] { (void)wick::take_along_axis(z({2, 8}), z({2}, DType::i64), 1); },
       {"take_along_axis"}},
      {"embedding", [&] { (void)wick::embedding(z({2, 8}), z({3})); }, {"embedding"}},
      {"broadcast_to", [&] { (void)wick::broadcast_to(z({3}), {4, 2}); }, {"broadcast_to", "[3]"}},
      {"rms_norm", [&] { (void)wick::rms_norm(z({2, 8}), z({4}), 1e-6); }, {"rms_norm"}},
      {"transpose", [&] { (void)wick::transpose(z({2, 8}), {0, 2}); }, {"transpose"}},
      {"stack", [&] { (void)wick::stack({z({2}), z({3})}); }, {"stack"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::string msg = error_of(c.build);
    ASSERT_NE(msg, "<no error>") << "the builder must throw at once";
    EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
    for (const std::string& m : c.must_mention)
      EXPECT_NE(msg.find(m), std::string::npos) << "\"" << msg << "\" should mention " << m;
  }
}

TEST(BuildErrors, NothingIsComputedBeforeEval) {
  // A shape error in a graph built on an unevaluated expensive value does not evaluate it.
  Tensor x = to_tensor(random_host({64, 64}, DType::f32, 3), DType::f32);
  Tensor e = wick::matmul(x, x);
  EXPECT_THROW((void)wick::add(e, wick::zeros({3})), wick::Error);
  EXPECT_FALSE(e.is_evaluated());
  // Out-of-range data-dependent errors only show at evaluation.
  Tensor t = bad_take(x);
  EXPECT_FALSE(t.is_evaluated());
  EXPECT_EQ(t.shape(), (wick::Shape{3, 64}));
  EXPECT_THROW(t.eval(), wick::Error);
}

}  // namespace
