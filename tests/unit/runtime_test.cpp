// The evaluation contract: async results equal sync results bit for bit; eager, lazy and async
// paths agree; Future semantics; eval conveniences; repeated and shared evaluation; streams;
// buffer donation is invisible.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

using Builder = std::function<std::vector<Tensor>()>;

/// Evaluated inputs shared by the builders (built once, never modified).
struct Inputs {
  Tensor a = to_tensor(random_host({257, 129}, DType::f32, 1), DType::f32);
  Tensor b = to_tensor(random_host({129}, DType::f32, 2), DType::f32);
  Tensor x3 = to_tensor(random_host({2, 64, 96}, DType::f32, 3), DType::f32);
  Tensor w = to_tensor(random_host({80, 96}, DType::f32, 4, -0.3, 0.3), DType::f32);
  Tensor la = to_tensor(random_host({8, 96}, DType::f32, 5, -0.3, 0.3), DType::f32);
  Tensor lb = to_tensor(random_host({80, 8}, DType::f32, 6, -0.3, 0.3), DType::f32);
  Tensor w2 = to_tensor(random_host({96, 80}, DType::f32, 7, -0.3, 0.3), DType::f32);
  Tensor la2 = to_tensor(random_host({8, 80}, DType::f32, 8, -0.3, 0.3), DType::f32);
  Tensor lb2 = to_tensor(random_host({96, 8}, DType::f32, 9, -0.3, 0.3), DType::f32);
  Tensor bias = to_tensor(random_host({80}, DType::f32, 10), DType::f32);
  Tensor logits = to_tensor(random_host({64, 1000}, DType::f32, 11, -8, 8), DType::f32);
  Tensor h = to_tensor(random_host({64, 512}, DType::f32, 12), DType::f32);
  Tensor g = to_tensor(random_host({512}, DType::f32, 13, 0.5, 1.5), DType::f32);
  Tensor p = to_tensor(random_host({32, 48}, DType::f32, 14), DType::f32);
  Tensor q = to_tensor(random_host({32, 48}, DType::f32, 15), DType::f32);
  Tensor sq = to_tensor(random_host({48, 48}, DType::f32, 16, -0.2, 0.2), DType::f32);
  Tensor hb = to_tensor(random_host({32, 48}, DType::bf16, 17), DType::bf16);
};

Inputs& in() {
  static Inputs* i = new Inputs();
  return *i;
}

/// A fixed pseudo-random graph of 50 ops over [32, 48] values: unary, binary with broadcasts,
/// reductions, matmul on a transposed view, softmax, norms, where, slices, casts.
std::vector<Tensor> mixed_graph() {
  Inputs& I = in();
  std::vector<Tensor> pool = {I.p, I.q, wick::transpose(wick::transpose(I.p))};
  uint64_t s = 12345;
  for (int k = 0; k < 50; ++k) {
    const Tensor& u = pool[splitmix64(s) % pool.size()];
    const Tensor& v = pool[splitmix64(s) % pool.size()];
    Tensor r;
    switch (k % 12) {
      case 0: r = u + v; break;
      case 1: r = wick::tanh(u * v); break;
      case 2: r = u - wick::mean(v, {1}, true); break;
      case 3: r = wick::softmax(u, -1) * 10.0; break;
      case 4: r = wick::tanh(wick::matmul(u, wick::transpose(I.sq))); break;
      case 5: r = wick::rms_norm(u, std::nullopt, 1e-6); break;
      case 6: r = wick::where(wick::greater(u, v), u, v); break;
      case 7: r = wick::maximum(u, 0.1) * wick::sigmoid(v); break;
      case 8: r = wick::concatenate({wick::slice(u, 1, 0, 24), wick::slice(v, 1, 24, 48)}, 1); break;
      case 9: r = wick::astype(wick::astype(u, DType::bf16) + I.hb, DType::f32); break;
      case 10: r = wick::layer_norm(u + wick::max(v, {0}, true), std::nullopt, std::nullopt, 1e-5); break;
      case 11: r = wick::silu(u) + wick::logsumexp(v, {1}, true) * 0.01; break;
    }
    pool.push_back(r);
  }
  // Several roots, including intermediates that later ops also use.
  return {pool.back(), pool[pool.size() - 2], pool[10], pool[25], wick::sum(pool[40])};
}

const std::vector<std::pair<const char*, Builder>>& builders() {
  static const std::vector<std::pair<const char*, Builder>> b = {
      {"add", [] { return std::vector<Tensor>{in().a + in().b}; }},
      {"matmul", [] { return std::vector<Tensor>{wick::matmul(in().x3, wick::transpose(in().w))}; }},
      {"lora chain",
       [] {
         Inputs& I = in();
         Tensor h1 = wick::silu(wick::lora_linear(I.x3, I.w, I.bias, I.la, I.lb, 2.0));
         Tensor h2 = wick::lora_linear(h1, I.w2, std::nullopt, I.la2, I.lb2, 2.0);
         return std::vector<Tensor>{h2 + I.x3, h1};
       }},
      {"softmax", [] { return std::vector<Tensor>{wick::softmax(in().logits, -1)}; }},
      {"rms_norm", [] { return std::vector<Tensor>{wick::rms_norm(in().h, in().g, 1e-6)}; }},
      {"mixed 50-op graph", mixed_graph},
  };
  return b;
}

TEST(AsyncEqualsSync, BitForBit) {
  for (const auto& [name, build] : builders()) {
    SCOPED_TRACE(name);
    std::vector<Tensor> sync = build();
    wick::eval(sync);
    std::vector<Tensor> lazy = build();
    wick::Future f = wick::eval_async(lazy);
    const std::vector<Tensor>& got = f.get();
    ASSERT_EQ(got.size(), sync.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(got[i].same(lazy[i])) << "get() returns the submitted tensors";
      EXPECT_TRUE(got[i].is_evaluated());
      EXPECT_EQ(bytes_of(got[i]), bytes_of(sync[i])) << "root " << i;
    }
    // On a separate stream too.
    std::vector<Tensor> other = build();
    wick::eval_async(other, wick::new_stream()).get();
    for (size_t i = 0; i < other.size(); ++i)
      EXPECT_EQ(bytes_of(other[i]), bytes_of(sync[i])) << "new stream, root " << i;
  }
}

TEST(AsyncEqualsSync, RepeatedRunsAreDeterministic) {
  std::vector<Tensor> first = mixed_graph();
  wick::eval(first);
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<Tensor> again = mixed_graph();
    wick::eval_async(again).wait();
    for (size_t i = 0; i < again.size(); ++i) EXPECT_EQ(bytes_of(again[i]), bytes_of(first[i]));
  }
}

TEST(EagerLazyAsync, AgreeOnEveryBuilder) {
  for (const auto& [name, build] : builders()) {
    SCOPED_TRACE(name);
    std::vector<Tensor> lazy = build();
    for (const Tensor& t : lazy) EXPECT_FALSE(t.is_evaluated()) << "lazy: nothing computed yet";
    wick::eval(lazy);
    std::vector<Tensor> eager;
    {
      wick::EagerScope scope;
      EXPECT_TRUE(wick::eager_mode());
      eager = build();
      for (const Tensor& t : eager) EXPECT_TRUE(t.is_evaluated()) << "eager: computed as built";
    }
    EXPECT_FALSE(wick::eager_mode());
    std::vector<Tensor> async = build();
    wick::eval_async(async).get();
    for (size_t i = 0; i < lazy.size(); ++i) {
      EXPECT_TRUE(all_close(to_host(eager[i]), to_host(lazy[i]), Tol{1e-6, 1e-6})) << "root " << i;
      EXPECT_EQ(bytes_of(async[i]), bytes_of(lazy[i])) << "root " << i;
    }
  }
}

TEST(EagerScope, NestsAndIsPerThread) {
  Tensor x = to_tensor(HostArray({3}, {1, 2, 3}), DType::f32);
  EXPECT_FALSE(wick::eager_mode());
  {
    wick::EagerScope outer;
    {
      wick::EagerScope inner;
      EXPECT_TRUE(wick::eager_mode());
      bool other_thread = true;
      std::thread t([&] { other_thread = wick::eager_mode(); });
      t.join();
      EXPECT_FALSE(other_thread) << "eager mode belongs to the thread that opened the scope";
    }
    EXPECT_TRUE(wick::eager_mode()) << "the outer scope is still open";
    Tensor y = wick::exp(x) + 1.0;
    EXPECT_TRUE(y.is_evaluated());
    EXPECT_TRUE(matches(y, HostArray({3}, {std::exp(1.0) + 1, std::exp(2.0) + 1, std::exp(3.0) + 1}),
                        DType::f32));
    Tensor v = wick::transpose(wick::reshape(x, {3, 1}));
    EXPECT_TRUE(v.is_evaluated()) << "views too";
  }
  EXPECT_FALSE(wick::eager_mode());
  Tensor z = x * 2.0;
  EXPECT_FALSE(z.is_evaluated());
  // Errors surface where the op is built in eager mode.
  wick::EagerScope scope;
  std::string msg = error_of([&] {
    (void)wick::take(x, to_tensor(HostArray({1}, {7}), DType::i64), 0);
  });
  EXPECT_NE(msg, "<no error>");
  EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
}

TEST(Eval, ConveniencesAndFutureCopies) {
  Tensor y = in().p * 2.0;
  const Tensor& r = y.eval();
  EXPECT_EQ(&r, &y) << "eval() returns *this";
  EXPECT_TRUE(y.is_evaluated());

  Tensor z = in().p + 3.0;
  wick::Future f = z.eval_async();
  wick::Future copy = f;
  wick::Future assigned;
  assigned = copy;
  copy.wait();
  EXPECT_TRUE(f.ready());
  EXPECT_TRUE(copy.ready());
  EXPECT_TRUE(assigned.ready());
  ASSERT_EQ(f.get().size(), 1u);
  EXPECT_TRUE(f.get()[0].same(z));
  EXPECT_TRUE(assigned.get()[0].same(z));
  EXPECT_EQ(bytes_of(copy.get()[0]), bytes_of(z));
  HostArray hp = to_host(in().p);
  EXPECT_TRUE(matches(z, map(hp, [](double v) { return v + 3; }), DType::f32));
  // A future outliving the caller's handles keeps the results alive.
  wick::Future lone;
  {
    Tensor t = in().p - 1.0;
    lone = wick::eval_async({t});
  }
  EXPECT_TRUE(matches(lone.get()[0], map(hp, [](double v) { return v - 1; }), DType::f32));
  // Empty submissions.
  wick::eval({});
  EXPECT_TRUE(wick::eval_async({}).get().empty());
}

TEST(Eval, FireAndForgetSubmissions) {
  // Futures and tensors dropped while the work is queued or running.
  HostArray hp = to_host(in().p);
  std::vector<wick::Stream> streams = {wick::default_stream()};
  for (int i = 0; i < 50; ++i) {
    Tensor t = wick::softmax(wick::matmul(in().p, wick::transpose(in().q)) * double(i), -1);
    if (i % 2 == 0) streams.push_back(wick::new_stream());
    (void)wick::eval_async({t, t + 1.0}, i % 2 ? streams[0] : streams.back());
  }
  // A submission whose tensors the caller keeps but whose future it drops.
  Tensor kept = in().p * 4.0;
  (void)kept.eval_async();
  EXPECT_TRUE(matches(kept, map(hp, [](double v) { return 4 * v; }), DType::f32));
  // The engine is healthy afterwards.
  Tensor z = in().p - 1.0;
  EXPECT_TRUE(matches(z, map(hp, [](double v) { return v - 1; }), DType::f32));
  // Drain every stream used (a stream runs its submissions in order), so that nothing is in
  // flight when the test ends; exit_test checks exiting with work in flight.
  for (const wick::Stream& s : streams) wick::eval_async({in().p + 0.0}, s).get();
}

TEST(Eval, AlreadyEvaluatedIsANoOpAndTwiceIsStable) {
  Tensor x = to_tensor(random_host({64, 64}, DType::f32, 3), DType::f32);
  const float* before = x.data<float>();
  size_t allocs = wick::memory_stats().allocations;
  wick::eval({x});
  x.eval();
  wick::eval_async({x}).get();
  EXPECT_EQ(wick::memory_stats().allocations, allocs) << "nothing was computed";
  EXPECT_EQ(x.data<float>(), before);

  Tensor y = wick::exp(x);
  y.eval();
  const float* py = y.data<float>();
  std::vector<uint8_t> bytes = bytes_of(y);
  allocs = wick::memory_stats().allocations;
  wick::eval({y, y});
  y.eval();
  wick::eval_async({y}).get();
  EXPECT_EQ(y.data<float>(), py) << "an evaluated tensor never changes";
  EXPECT_EQ(bytes_of(y), bytes);
  EXPECT_EQ(wick::memory_stats().allocations, allocs);
}

TEST(Eval, ManyRootsSharingSubgraphs) {
  Input x = random_input({40, 30}, DType::f32, Layout::transposed, 5);
  Tensor base = wick::exp(x.tensor * 0.5);
  Tensor total = wick::sum(base);
  std::vector<Tensor> roots;
  for (int i = 0; i < 20; ++i) roots.push_back(base * double(i) + total);
  roots.push_back(base);
  wick::eval(roots);
  HostArray hb = map(x.host, [](double v) { return std::exp(0.5 * v); });
  double ht = sum_of(hb.v);
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(matches(roots[i], map(hb, [&](double v) { return v * i + ht; }), DType::f32,
                        Tol{1e-5, 1e-3}));
  }
  EXPECT_TRUE(matches(base, hb, DType::f32));
  // A root evaluated alone first, then the rest that share its inputs.
  Tensor shared = wick::tanh(x.tensor);
  Tensor r1 = shared * 2.0, r2 = shared + 1.0, r3 = wick::sum(shared, {0});
  r1.eval();
  wick::eval({r2, r3});
  HostArray hs = map(x.host, [](double v) { return std::tanh(v); });
  EXPECT_TRUE(matches(r1, map(hs, [](double v) { return 2 * v; }), DType::f32));
  EXPECT_TRUE(matches(r2, map(hs, [](double v) { return v + 1; }), DType::f32));
  EXPECT_TRUE(matches(r3, reduce_axes(hs, {0}, false, sum_of), DType::f32, Tol{1e-5, 1e-5}));
  EXPECT_TRUE(matches(shared, hs, DType::f32));
}

TEST(Eval, DonationIsInvisible) {
  // Intermediates the user still holds must keep their values after later ops consume them.
  Input x = random_input({128, 64}, DType::f32, Layout::contiguous, 8);
  Tensor a = x.tensor + 1.0;
  Tensor b = a * 2.0;
  Tensor c = wick::exp(b) - b;
  c.eval();
  EXPECT_TRUE(matches(a, map(x.host, [](double v) { return v + 1; }), DType::f32));
  EXPECT_TRUE(matches(b, map(x.host, [](double v) { return 2 * (v + 1); }), DType::f32));
  EXPECT_TRUE(matches(x.tensor, x.host, DType::f32, Tol{0, 0})) << "inputs are never overwritten";
  // A chain where nothing is held: results still right.
  Tensor d = x.tensor;
  for (int i = 0; i < 10; ++i) d = wick::tanh(d) * 1.5;
  HostArray hd = x.host;
  for (int i = 0; i < 10; ++i) hd = map(hd, [](double v) { return std::tanh(v) * 1.5; });
  EXPECT_TRUE(matches(d, hd, DType::f32, Tol{1e-5, 1e-5}));
  EXPECT_TRUE(matches(x.tensor, x.host, DType::f32, Tol{0, 0}));
}

TEST(Streams, CrossStreamDependenciesAndInterleavedSubmissions) {
  Watchdog dog(60, "cross-stream evaluations");
  wick::Stream s1 = wick::new_stream(), s2 = wick::new_stream();
  EXPECT_FALSE(s1 == s2);
  EXPECT_TRUE(wick::default_stream() == wick::default_stream());
  Input x = random_input({256, 256}, DType::f32, Layout::contiguous, 9, -0.1, 0.1);
  Tensor a = wick::matmul(x.tensor, x.tensor);
  wick::Future fa = wick::eval_async({a}, s1);
  Tensor b = a + 1.0;  // depends on a value another stream may still be computing
  wick::Future fb = wick::eval_async({b}, s2);
  Tensor c = wick::sum(b);  // and a synchronous evaluation on the default stream
  c.eval();
  fb.get();
  fa.get();
  HostArray ha = matmul(x.host, x.host);
  EXPECT_TRUE(matches(a, ha, DType::f32, Tol{1e-5, 1e-5}));
  EXPECT_TRUE(matches(b, map(ha, [](double v) { return v + 1; }), DType::f32, Tol{1e-5, 1e-5}));
  EXPECT_NEAR(c.item<float>(), sum_of(ha.v) + ha.size(), 0.1);
  // Keep building while earlier submissions run.
  std::vector<wick::Future> fs;
  std::vector<Tensor> ys;
  Tensor prev = x.tensor;
  for (int i = 0; i < 20; ++i) {
    prev = wick::tanh(prev + 0.01);
    ys.push_back(prev);
    fs.push_back(wick::eval_async({prev}, i % 2 ? s1 : s2));
  }
  HostArray hp = x.host;
  for (int i = 0; i < 20; ++i) {
    hp = map(hp, [](double v) { return std::tanh(v + 0.01); });
    EXPECT_TRUE(matches(fs[i].get()[0], hp, DType::f32, Tol{1e-5, 1e-6})) << i;
  }
}

}  // namespace
