// View ops: reshape (view and copy cases), flatten, transpose, swapaxes, slice, broadcast_to,
// expand_dims, squeeze, contiguous. Checks values against the reference and, where the API
// promises a view, that storage is shared (data pointers and strides).
#include <gtest/gtest.h>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Shape;
using wick::Strides;
using wick::Tensor;

HostArray iota(const Dims& s) {
  HostArray h(s);
  for (int64_t i = 0; i < h.size(); ++i) h[i] = static_cast<double>(i);
  return h;
}

TEST(Reshape, ContiguousInputIsAViewWithInference) {
  HostArray h = iota({2, 3, 4});
  Tensor x = to_tensor(h, DType::f32);
  Tensor y = wick::reshape(x, {6, 4});
  EXPECT_EQ(y.shape(), (Shape{6, 4}));
  EXPECT_TRUE(matches(y, reshape(h, {6, 4}), DType::f32, Tol{0, 0}));
  EXPECT_EQ(y.data<float>(), x.data<float>()) << "reshape of a dense tensor shares its storage";
  EXPECT_EQ(y.strides(), (Strides{4, 1}));
  EXPECT_EQ(wick::reshape(x, {-1, 4}).shape(), (Shape{6, 4}));
  EXPECT_EQ(wick::reshape(x, {2, -1}).shape(), (Shape{2, 12}));
  EXPECT_EQ(wick::reshape(x, {4, 1, -1, 2}).shape(), (Shape{4, 1, 3, 2}));
  EXPECT_TRUE(matches(wick::reshape(x, {24}), reshape(h, {24}), DType::f32, Tol{0, 0}));
  EXPECT_TRUE(matches(wick::reshape(wick::scalar(5.0), {1, 1}), HostArray({1, 1}, {5}), DType::f32));
  EXPECT_TRUE(matches(wick::reshape(to_tensor(HostArray({1}, {5}), DType::f32), {}),
                      HostArray({}, {5}), DType::f32));
  EXPECT_EQ(wick::reshape(wick::zeros({0, 3}), {3, 0}).shape(), (Shape{3, 0}));
}

TEST(Reshape, NonContiguousInputCopiesWhenItMust) {
  HostArray h = iota({2, 3, 4});
  for (DType dt : kAllTypes) {
    SCOPED_TRACE(wick::dtype_name(dt));
    HostArray q = quantize(h, dt);
    Tensor x = to_tensor(q, dt);
    Tensor t = wick::transpose(x, {2, 0, 1});  // [4,2,3]
    HostArray ht = transpose(q, {2, 0, 1});
    // Merging transposed axes cannot be a view: a copy with the right values.
    EXPECT_TRUE(matches(wick::reshape(t, {24}), reshape(ht, {24}), dt, Tol{0, 0}));
    EXPECT_TRUE(matches(wick::reshape(t, {4, 6}), reshape(ht, {4, 6}), dt, Tol{0, 0}));
    EXPECT_TRUE(matches(wick::reshape(t, {8, 3}), reshape(ht, {8, 3}), dt, Tol{0, 0}));
    // Splitting one axis of a transposed view can stay a view.
    Tensor s = wick::reshape(t, {2, 2, 2, 3});
    EXPECT_TRUE(matches(s, reshape(ht, {2, 2, 2, 3}), dt, Tol{0, 0}));
    // Strided slices and broadcasts.
    Tensor sl = wick::slice(x, 2, 0, 4, 2);  // [2,3,2]
    EXPECT_TRUE(matches(wick::reshape(sl, {6, 2}), reshape(slice(q, 2, 0, 4, 2), {6, 2}), dt,
                        Tol{0, 0}));
    Tensor b = wick::broadcast_to(wick::reshape(x, {2, 1, 12}), {2, 2, 12});
    EXPECT_TRUE(matches(wick::reshape(b, {4, 12}),
                        reshape(broadcast(reshape(q, {2, 1, 12}), {2, 2, 12}), {4, 12}), dt,
                        Tol{0, 0}));
  }
  // The copy is dense.
  Tensor x = to_tensor(h, DType::f32);
  Tensor r = wick::reshape(wick::transpose(x), {24});
  r.eval();
  EXPECT_TRUE(r.is_contiguous());
  EXPECT_NE(r.data<float>(), x.data<float>());
}

TEST(Reshape, Errors) {
  Tensor x = wick::zeros({2, 3, 4});
  std::string msg = error_of([&] { (void)wick::reshape(x, {5, 5}); });
  EXPECT_NE(msg.find("reshape"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2,3,4]"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { (void)wick::reshape(x, {-1, -1}); }), "<no error>");
  EXPECT_NE(error_of([&] { (void)wick::reshape(x, {-1, 5}); }), "<no error>");
}

TEST(Flatten, AnyInput) {
  HostArray h = iota({2, 3, 4});
  Tensor x = to_tensor(h, DType::i32);
  EXPECT_TRUE(matches(wick::flatten(x), reshape(h, {24}), DType::i32));
  EXPECT_TRUE(matches(wick::flatten(wick::transpose(x)), reshape(transpose(h), {24}), DType::i32));
  EXPECT_EQ(wick::flatten(wick::scalar(1.0)).shape(), (Shape{1}));
  EXPECT_EQ(wick::flatten(wick::zeros({3, 0})).shape(), (Shape{0}));
}

TEST(Transpose, PermutationsAreViews) {
  HostArray h = iota({2, 3, 4});
  Tensor x = to_tensor(h, DType::f32);
  for (const std::vector<int>& perm : std::vector<std::vector<int>>{
           {0, 1, 2}, {1, 0, 2}, {2, 0, 1}, {0, 2, 1}, {2, 1, 0}, {1, 2, 0}}) {
    Tensor t = wick::transpose(x, perm);
    EXPECT_TRUE(matches(t, transpose(h, perm), DType::f32, Tol{0, 0}));
    t.eval();
    EXPECT_EQ(t.data<float>(), x.data<float>());
    Strides want(3);
    for (int d = 0; d < 3; ++d) want[d] = Strides{12, 4, 1}[perm[d]];
    EXPECT_EQ(t.strides(), want);
  }
  EXPECT_TRUE(matches(wick::transpose(x), transpose(h), DType::f32, Tol{0, 0}));
  EXPECT_FALSE(wick::transpose(x).eval().is_contiguous());
  // Transposing twice gives back the original values.
  EXPECT_TRUE(matches(wick::transpose(wick::transpose(x, {2, 0, 1}), {1, 2, 0}), h, DType::f32));
  EXPECT_EQ(wick::transpose(wick::scalar(2.0)).shape(), Shape{});
  std::string msg = error_of([&] { (void)wick::transpose(x, {0, 0, 1}); });
  EXPECT_NE(msg.find("transpose"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { (void)wick::transpose(x, {0, 1}); }), "<no error>");
  EXPECT_NE(error_of([&] { (void)wick::transpose(x, {0, 1, 3}); }), "<no error>");
}

TEST(Swapaxes, MatchesTranspose) {
  HostArray h = iota({2, 3, 4});
  Tensor x = to_tensor(h, DType::f64);
  EXPECT_TRUE(matches(wick::swapaxes(x, 0, 2), transpose(h, {2, 1, 0}), DType::f64));
  EXPECT_TRUE(matches(wick::swapaxes(x, -1, -2), transpose(h, {0, 2, 1}), DType::f64));
  EXPECT_TRUE(matches(wick::swapaxes(x, 1, 1), h, DType::f64));
  EXPECT_NE(error_of([&] { (void)wick::swapaxes(x, 0, 3); }), "<no error>");
}

TEST(Slice, StepsNegativeIndicesAndClamping) {
  HostArray h = iota({10});
  Tensor x = to_tensor(h, DType::f32);
  const int64_t cases[][3] = {{0, 10, 1},  {2, 8, 3},  {-3, 100, 1}, {-100, 3, 2}, {5, 2, 1},
                              {-1, 10, 1}, {0, -1, 4}, {9, 10, 5},   {10, 20, 1},  {-4, -2, 1},
                              {1, 10, 20}, {0, 0, 1}};
  for (const auto& c : cases) {
    SCOPED_TRACE(cat("slice ", c[0], ":", c[1], ":", c[2]));
    EXPECT_TRUE(matches(wick::slice(x, 0, c[0], c[1], c[2]), slice(h, 0, c[0], c[1], c[2]),
                        DType::f32, Tol{0, 0}));
  }
  // Shares storage: the first element is at the source's start.
  Tensor v = wick::slice(x, 0, 3, 9, 2);
  v.eval();
  EXPECT_EQ(v.data<float>(), x.data<float>() + 3);
  EXPECT_EQ(v.strides(), (Strides{2}));
  // Multi-axis form, default steps, on a view of a view.
  HostArray h3 = iota({4, 5, 6});
  Tensor x3 = to_tensor(h3, DType::i64);
  Tensor m = wick::slice(x3, {1, 0, -2}, {3, 5, 100}, {1, 2, 1});
  HostArray want = slice(slice(slice(h3, 0, 1, 3, 1), 1, 0, 5, 2), 2, -2, 100, 1);
  EXPECT_TRUE(matches(m, want, DType::i64));
  EXPECT_TRUE(matches(wick::slice(x3, {0, 1, 2}, {2, 3, 4}), slice(slice(slice(h3, 0, 0, 2, 1), 1, 1, 3, 1), 2, 2, 4, 1),
                      DType::i64));
  EXPECT_TRUE(matches(wick::slice(m, 2, 1, 2), slice(want, 2, 1, 2, 1), DType::i64));
  EXPECT_TRUE(matches(wick::slice(x3, -1, 1, 6, 2), slice(h3, 2, 1, 6, 2), DType::i64));
  // Slicing an unevaluated result and a transposed view.
  Tensor t = wick::transpose(wick::astype(x3, DType::f32) * 2.0);
  EXPECT_TRUE(matches(wick::slice(t, 0, 1, 5, 3),
                      slice(transpose(map(h3, [](double a) { return 2 * a; })), 0, 1, 5, 3),
                      DType::f32));
  EXPECT_NE(error_of([&] { (void)wick::slice(x, 0, 0, 5, 0); }), "<no error>") << "step 0";
  EXPECT_NE(error_of([&] { (void)wick::slice(x, 0, 5, 0, -1); }), "<no error>") << "step < 0";
  EXPECT_NE(error_of([&] { (void)wick::slice(x, 1, 0, 1); }), "<no error>") << "axis";
  EXPECT_NE(error_of([&] { (void)wick::slice(x3, {0, 0}, {1, 1, 1}); }), "<no error>");
}

TEST(BroadcastTo, ZeroStrideViews) {
  HostArray h({3, 1}, {1, 2, 3});
  Tensor x = to_tensor(h, DType::f32);
  Tensor b = wick::broadcast_to(x, {2, 3, 4});
  EXPECT_TRUE(matches(b, broadcast(h, {2, 3, 4}), DType::f32, Tol{0, 0}));
  b.eval();
  EXPECT_EQ(b.strides()[0], 0);
  EXPECT_EQ(b.strides()[2], 0);
  EXPECT_EQ(b.data<float>(), x.data<float>());
  EXPECT_TRUE(matches(wick::broadcast_to(wick::scalar(7.0, DType::i32), {2, 2}),
                      HostArray({2, 2}, 7.0), DType::i32));
  EXPECT_TRUE(matches(wick::broadcast_to(x, {3, 0}), HostArray({3, 0}), DType::f32));
  // Ops on broadcast views read each element through stride 0.
  EXPECT_TRUE(matches(wick::contiguous(b) * 2.0, map(broadcast(h, {2, 3, 4}), [](double v) {
                        return 2 * v;
                      }),
                      DType::f32));
  std::string msg = error_of([&] { (void)wick::broadcast_to(wick::zeros({3, 2}), {3, 4}); });
  EXPECT_NE(msg.find("broadcast_to"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { (void)wick::broadcast_to(wick::zeros({3}), {}); }), "<no error>");
}

TEST(ExpandSqueeze, AxesAndErrors) {
  HostArray h = iota({2, 3});
  Tensor x = to_tensor(h, DType::f32);
  EXPECT_EQ(wick::expand_dims(x, 0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(wick::expand_dims(x, 1).shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(wick::expand_dims(x, 2).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(wick::expand_dims(x, -1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(wick::expand_dims(x, -3).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(wick::expand_dims(wick::scalar(1.0), 0).shape(), (Shape{1}));
  EXPECT_TRUE(matches(wick::expand_dims(x, 1), reshape(h, {2, 1, 3}), DType::f32));
  EXPECT_NE(error_of([&] { (void)wick::expand_dims(x, 4); }), "<no error>");

  Tensor y = to_tensor(iota({1, 3, 1, 2}), DType::f32);
  EXPECT_EQ(wick::squeeze(y).shape(), (Shape{3, 2}));
  EXPECT_EQ(wick::squeeze(y, 0).shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(wick::squeeze(y, -2).shape(), (Shape{1, 3, 2}));
  EXPECT_TRUE(matches(wick::squeeze(y), reshape(iota({1, 3, 1, 2}), {3, 2}), DType::f32));
  EXPECT_EQ(wick::squeeze(wick::scalar(1.0)).shape(), Shape{});
  EXPECT_EQ(wick::squeeze(wick::ones({1, 1})).shape(), Shape{});
  std::string msg = error_of([&] { (void)wick::squeeze(y, 1); });
  EXPECT_NE(msg.find("squeeze"), std::string::npos) << msg;
}

TEST(Contiguous, CopiesOnlyWhenNeeded) {
  HostArray h = iota({3, 4});
  Tensor x = to_tensor(h, DType::f32);
  Tensor c = wick::contiguous(x);
  c.eval();
  EXPECT_EQ(c.data<float>(), x.data<float>()) << "already dense: no copy";
  Tensor t = wick::transpose(x);
  t.eval();
  EXPECT_FALSE(t.is_contiguous());
  Tensor ct = wick::contiguous(t);
  EXPECT_TRUE(matches(ct, transpose(h), DType::f32, Tol{0, 0}));
  EXPECT_TRUE(ct.is_contiguous());
  EXPECT_EQ(ct.strides(), (Strides{3, 1}));
  EXPECT_NE(ct.data<float>(), x.data<float>());
  // A slice with an offset is dense after contiguous().
  Tensor s = wick::contiguous(wick::slice(x, 0, 1, 3));
  EXPECT_TRUE(matches(s, slice(h, 0, 1, 3, 1), DType::f32));
  EXPECT_EQ(s.offset(), 0);
}

TEST(Views, ChainsOfViewsForEveryDtype) {
  uint64_t seed = 1;
  for (DType dt : kAllTypes) {
    SCOPED_TRACE(wick::dtype_name(dt));
    HostArray h = random_host({3, 1, 5}, dt, seed++, -9, 9);
    Tensor x = to_tensor(h, dt);
    // expand -> broadcast -> transpose -> slice -> reshape -> contiguous
    Tensor v = wick::expand_dims(x, 0);                                 // [1,3,1,5]
    v = wick::broadcast_to(v, {2, 3, 4, 5});                            // [2,3,4,5]
    v = wick::transpose(v, {3, 1, 0, 2});                               // [5,3,2,4]
    v = wick::slice(v, {-4, 0, 0, 1}, {100, 3, 2, 4}, {2, 2, 1, 2});   // [2,2,2,2]
    v = wick::squeeze(wick::reshape(v, {2, 2, 1, 4}), 2);              // [2,2,4]
    HostArray w = broadcast(reshape(h, {1, 3, 1, 5}), {2, 3, 4, 5});
    w = transpose(w, {3, 1, 0, 2});
    w = slice(slice(slice(slice(w, 0, -4, 100, 2), 1, 0, 3, 2), 2, 0, 2, 1), 3, 1, 4, 2);
    w = reshape(w, {2, 2, 4});
    EXPECT_TRUE(matches(v, w, dt, Tol{0, 0}));
    EXPECT_TRUE(matches(wick::contiguous(v), w, dt, Tol{0, 0}));
    EXPECT_TRUE(matches(wick::flatten(v), reshape(w, {16}), dt, Tol{0, 0}));
  }
}

TEST(Views, OutliveTheirSourceAndNeverSeeLaterValues) {
  HostArray h = iota({4, 4});
  Tensor v;
  {
    Tensor x = to_tensor(h, DType::f32);
    v = wick::slice(wick::transpose(x), 0, 1, 3);
    v.eval();
  }
  EXPECT_TRUE(matches(v, slice(transpose(h), 0, 1, 3, 1), DType::f32, Tol{0, 0}));
  // A view of an unevaluated value; the consumer after it must not clobber the shared storage.
  Tensor x = to_tensor(h, DType::f32);
  Tensor e = x + 1.0;
  Tensor te = wick::transpose(e);
  Tensor z = wick::exp(e) * 0.0 + 5.0;  // e's storage must not be donated: te still reads it
  wick::eval({z, te});
  EXPECT_TRUE(matches(te, map(transpose(h), [](double a) { return a + 1; }), DType::f32));
  EXPECT_TRUE(matches(z, HostArray({4, 4}, 5.0), DType::f32));
}

}  // namespace
