// concatenate, stack, split (both forms), take, take_along_axis, embedding.
#include <gtest/gtest.h>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Shape;
using wick::Tensor;

HostArray iota(const Dims& s, double start = 0) {
  HostArray h(s);
  for (int64_t i = 0; i < h.size(); ++i) h[i] = start + static_cast<double>(i);
  return h;
}

TEST(Concatenate, AxesDtypesAndMixedLayouts) {
  uint64_t seed = 1;
  for (DType dt : kAllTypes)
    for (int axis : {0, 1, 2, -1, -2}) {
      SCOPED_TRACE(std::string(wick::dtype_name(dt)) + " axis " + std::to_string(axis));
      int ax = axis < 0 ? axis + 3 : axis;
      std::vector<Input> ins;
      std::vector<Layout> layouts = {Layout::transposed, Layout::contiguous, Layout::strided,
                                     Layout::broadcast};
      int64_t sizes[] = {1, 3, 0, 2};
      for (int i = 0; i < 4; ++i) {
        Dims s = {2, 3, 4};
        s[ax] = sizes[i];
        ins.push_back(random_input(s, dt, layouts[i], seed++, -9, 9));
      }
      std::vector<Tensor> ts;
      std::vector<HostArray> hs;
      for (auto& in : ins) ts.push_back(in.tensor), hs.push_back(in.host);
      Tensor y = wick::concatenate(ts, axis);
      EXPECT_TRUE(matches(y, concatenate(hs, axis), dt, Tol{0, 0}));
    }
  // One input; 1-d; unevaluated inputs.
  HostArray a = iota({3}), b = iota({2}, 10);
  Tensor ta = to_tensor(a, DType::f32), tb = to_tensor(b, DType::f32);
  EXPECT_TRUE(matches(wick::concatenate({ta}), a, DType::f32));
  EXPECT_TRUE(matches(wick::concatenate({ta * 2.0, tb + 1.0, ta}),
                      concatenate({map(a, [](double v) { return 2 * v; }),
                                   map(b, [](double v) { return v + 1; }), a},
                                  0),
                      DType::f32));
}

TEST(Concatenate, Errors) {
  std::string msg =
      error_of([] { (void)wick::concatenate({wick::zeros({2, 3}), wick::zeros({2, 4})}, 0); });
  EXPECT_NE(msg.find("concatenate"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2,4]"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { (void)wick::concatenate({wick::zeros({2, 3}), wick::zeros({3})}, 0); }),
            "<no error>");
  EXPECT_NE(error_of([] { (void)wick::concatenate({}, 0); }), "<no error>");
  EXPECT_NE(error_of([] { (void)wick::concatenate({wick::zeros({2})}, 1); }), "<no error>");
  EXPECT_NE(error_of([] { (void)wick::concatenate({wick::scalar(1.0), wick::scalar(2.0)}, 0); }),
            "<no error>");
}

TEST(Stack, NewAxisAnywhere) {
  uint64_t seed = 50;
  for (DType dt : {DType::f32, DType::bf16, DType::i64, DType::boolean})
    for (int axis : {0, 1, 2, -1, -3}) {
      SCOPED_TRACE(std::string(wick::dtype_name(dt)) + " axis " + std::to_string(axis));
      Input a = random_input({2, 3}, dt, Layout::contiguous, seed++);
      Input b = random_input({2, 3}, dt, Layout::transposed, seed++);
      Input c = random_input({2, 3}, dt, Layout::strided, seed++);
      Tensor y = wick::stack({a.tensor, b.tensor, c.tensor}, axis);
      EXPECT_TRUE(matches(y, stack({a.host, b.host, c.host}, axis), dt, Tol{0, 0}));
    }
  EXPECT_TRUE(matches(wick::stack({wick::scalar(1.0), wick::scalar(2.0)}),
                      HostArray({2}, {1, 2}), DType::f32));
  EXPECT_NE(error_of([] { (void)wick::stack({wick::zeros({2, 3}), wick::zeros({3, 2})}); }),
            "<no error>");
  EXPECT_NE(error_of([] { (void)wick::stack({wick::zeros({2, 3})}, 3); }), "<no error>");
}

TEST(Split, SectionsAreViews) {
  HostArray h = iota({6, 4});
  Tensor x = to_tensor(h, DType::f32);
  std::vector<Tensor> parts = wick::split(x, 3, 0);
  ASSERT_EQ(parts.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(matches(parts[i], slice(h, 0, 2 * i, 2 * i + 2, 1), DType::f32, Tol{0, 0}));
    parts[i].eval();
    EXPECT_EQ(parts[i].data<float>(), x.data<float>() + 8 * i) << "part " << i << " is a view";
  }
  std::vector<Tensor> cols = wick::split(x, 2, -1);
  ASSERT_EQ(cols.size(), 2u);
  EXPECT_TRUE(matches(cols[1], slice(h, 1, 2, 4, 1), DType::f32, Tol{0, 0}));
  // Splitting an unevaluated value, then using all parts.
  std::vector<Tensor> q = wick::split(x * 3.0, 2, 0);
  EXPECT_TRUE(matches(q[0] + q[1], zip(map(slice(h, 0, 0, 3, 1), [](double v) { return 3 * v; }),
                                       map(slice(h, 0, 3, 6, 1), [](double v) { return 3 * v; }),
                                       std::plus<double>()),
                      DType::f32));
  EXPECT_EQ(wick::split(x, 1, 0).size(), 1u);
  std::string msg = error_of([&] { (void)wick::split(x, 4, 0); });
  EXPECT_NE(msg.find("split"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { (void)wick::split(x, 0, 0); }), "<no error>");
}

TEST(Split, AtIndices) {
  HostArray h = iota({8, 3});
  for (DType dt : {DType::f32, DType::i32}) {
    SCOPED_TRACE(wick::dtype_name(dt));
    Tensor x = make_input(h, dt, Layout::transposed);
    std::vector<Tensor> p = wick::split(x, std::vector<int64_t>{2, 5}, 0);
    ASSERT_EQ(p.size(), 3u);
    EXPECT_TRUE(matches(p[0], slice(h, 0, 0, 2, 1), dt));
    EXPECT_TRUE(matches(p[1], slice(h, 0, 2, 5, 1), dt));
    EXPECT_TRUE(matches(p[2], slice(h, 0, 5, 8, 1), dt));
    std::vector<Tensor> e = wick::split(x, std::vector<int64_t>{0, 3, 3}, 0);
    ASSERT_EQ(e.size(), 4u);
    EXPECT_EQ(e[0].shape(), (Shape{0, 3}));
    EXPECT_EQ(e[2].shape(), (Shape{0, 3}));
    EXPECT_TRUE(matches(e[1], slice(h, 0, 0, 3, 1), dt));
    EXPECT_TRUE(matches(e[3], slice(h, 0, 3, 8, 1), dt));
    std::vector<Tensor> one = wick::split(x, std::vector<int64_t>{}, 1);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_TRUE(matches(one[0], h, dt));
    std::vector<Tensor> c = wick::split(x, std::vector<int64_t>{1}, -1);
    ASSERT_EQ(c.size(), 2u);
    EXPECT_TRUE(matches(c[1], slice(h, 1, 1, 3, 1), dt));
  }
}

TEST(Take, AnyAxisNegativeAndMultiDimIndices) {
  HostArray x = random_host({4, 5, 6}, DType::f32, 3);
  std::vector<HostArray> idxs = {
      HostArray({3}, {0, -1, 2}),
      HostArray({2, 3}, {1, 1, -2, 0, 3, -4}),
      HostArray({}, {-3}),
      HostArray({0}),
      HostArray({1, 1, 2}, {2, 2}),
  };
  for (DType dt : {DType::f32, DType::bf16, DType::i64, DType::boolean})
    for (DType it : {DType::i32, DType::i64})
      for (int axis : {0, 1, 2, -1})
        for (const HostArray& idx : idxs)
          for (Layout l : {Layout::contiguous, Layout::transposed}) {
            SCOPED_TRACE(describe("take", dt, l, x.shape) + " indices " + dims_str(idx.shape) +
                         " " + wick::dtype_name(it) + " axis " + std::to_string(axis));
            HostArray q = quantize(x, dt);
            Tensor y = wick::take(make_input(q, dt, l), to_tensor(idx, it), axis);
            EXPECT_TRUE(matches(y, take(q, idx, axis), dt, Tol{0, 0}));
          }
  // Indices given as a (transposed) view.
  HostArray it = HostArray({3, 2}, {0, 3, -1, 2, 1, 1});
  Tensor itv = wick::transpose(to_tensor(it, DType::i64));  // logical [2,3]
  EXPECT_TRUE(matches(wick::take(to_tensor(x, DType::f32), itv, 1), take(x, transpose(it), 1),
                      DType::f32, Tol{0, 0}));
  // Indices that are computed in the same graph.
  Tensor xt = to_tensor(x, DType::f32);
  Tensor computed = wick::astype(wick::arange(0.0, 6.0, 2.0), DType::i64);  // 0, 2, 4
  EXPECT_TRUE(matches(wick::take(xt, computed, 2), take(x, HostArray({3}, {0, 2, 4}), 2),
                      DType::f32));
}

TEST(Take, OutOfRangeIndexFailsTheEvaluation) {
  Tensor x = to_tensor(iota({4, 5}), DType::f32);
  for (double bad : {5.0, -6.0, 100.0}) {
    SCOPED_TRACE(bad);
    Tensor y = wick::take(x, to_tensor(HostArray({2}, {0, bad}), DType::i64), 1);
    std::string msg = error_of([&] { wick::eval({y}); });
    EXPECT_NE(msg, "<no error>");
    EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
  }
  // In range at the edges is fine.
  Tensor ok = wick::take(x, to_tensor(HostArray({2}, {4, -5}), DType::i32), 1);
  EXPECT_TRUE(matches(ok, take(iota({4, 5}), HostArray({2}, {4, -5}), 1), DType::f32));
  EXPECT_NE(error_of([&] { (void)wick::take(x, wick::zeros({2}), 0); }), "<no error>")
      << "float indices";
  EXPECT_NE(error_of([&] { (void)wick::take(x, wick::zeros({2}, DType::i64), 2); }), "<no error>")
      << "axis out of range";
}

TEST(TakeAlongAxis, GatherSemantics) {
  uint64_t seed = 9;
  HostArray x = random_host({3, 5, 4}, DType::f32, 4);
  for (int axis : {0, 1, 2, -1})
    for (DType it : {DType::i32, DType::i64})
      for (Layout l : {Layout::contiguous, Layout::transposed}) {
        SCOPED_TRACE(cat("take_along_axis axis ", axis, " ", wick::dtype_name(it), " ", layout_name(l)));
        int ax = axis < 0 ? axis + 3 : axis;
        Dims is = x.shape;
        is[ax] = 2;
        HostArray idx = random_host(is, DType::i32, seed++, -x.shape[ax], x.shape[ax] - 1);
        Tensor y = wick::take_along_axis(make_input(x, DType::f32, l), to_tensor(idx, it), axis);
        EXPECT_TRUE(matches(y, take_along_axis(x, idx, axis), DType::f32, Tol{0, 0}));
      }
  // The classic use: gather the argmax back equals max.
  Tensor xt = to_tensor(x, DType::f32);
  EXPECT_TRUE(matches(wick::take_along_axis(xt, wick::argmax(xt, 1, true), 1),
                      reduce_axes(x, {1}, true, max_of), DType::f32));
  // Label log-probabilities, as in a cross-entropy loss.
  HostArray logits = random_host({4, 7}, DType::f32, 5);
  HostArray labels({4, 1}, {6, 0, 3, 3});
  Tensor lp = wick::log_softmax(to_tensor(logits, DType::f32), -1);
  EXPECT_TRUE(matches(wick::take_along_axis(lp, to_tensor(labels, DType::i64), 1),
                      take_along_axis(softmax(logits, -1, true), labels, 1), DType::f32));
  EXPECT_NE(error_of([&] { (void)wick::take_along_axis(xt, wick::zeros({3, 2}, DType::i64), 1); }),
            "<no error>")
      << "rank mismatch";
}

TEST(Embedding, RowsForIdsOfAnyShape) {
  HostArray w = random_host({10, 4}, DType::f32, 6);
  std::vector<HostArray> ids = {HostArray({2, 3}, {0, 9, 3, 3, 1, 7}), HostArray({}, {5}),
                                HostArray({4}, {9, 8, 0, 1}), HostArray({0})};
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64})
    for (DType it : {DType::i32, DType::i64})
      for (const HostArray& id : ids) {
        SCOPED_TRACE(std::string(wick::dtype_name(dt)) + " ids " + dims_str(id.shape) + " " +
                     wick::dtype_name(it));
        HostArray q = quantize(w, dt);
        Tensor y = wick::embedding(to_tensor(q, dt), to_tensor(id, it));
        Dims s = id.shape;
        s.push_back(4);
        EXPECT_EQ(y.shape(), s);
        EXPECT_TRUE(matches(y, take(q, id, 0), dt, Tol{0, 0}));
      }
  Tensor bad = wick::embedding(to_tensor(w, DType::f32), to_tensor(HostArray({2}, {1, 10}), DType::i64));
  EXPECT_NE(error_of([&] { wick::eval({bad}); }), "<no error>");
  EXPECT_NE(error_of([&] { (void)wick::embedding(wick::zeros({10}), wick::zeros({2}, DType::i64)); }),
            "<no error>")
      << "weight must be 2-d";
}

}  // namespace
