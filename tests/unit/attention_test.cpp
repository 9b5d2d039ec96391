// rope (rotate-half) and scaled_dot_product_attention (causal, T < S, GQA, additive and bool
// masks, fully masked rows) against the naive references and the op-built expressions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

Tol rope_tol(DType dt) {
  switch (dt) {
    // inv_freq is f32 by contract; an engine may also form the angle in f32 (error ~1e-7).
    case DType::f64: return {1e-6, 1e-6};
    case DType::f32: return {1e-5, 1e-5};
    case DType::f16: return {3e-3, 2e-3};
    case DType::bf16: return {1e-2, 1e-2};
    default: return {0, 0};
  }
}

TEST(Rope, AgainstNaiveReferenceShapesOffsetsDtypesLayouts) {
  uint64_t seed = 1;
  const std::vector<Dims> shapes = {{2, 3, 5, 8}, {5, 8}, {1, 1, 1, 2}, {2, 4, 0, 8}, {3, 6, 16}};
  for (DType dt : kFloatTypes)
    for (const Dims& s : shapes)
      for (double theta : {10000.0, 500000.0})
        for (int64_t offset : {0, 7})
          for (Layout l : {Layout::contiguous, Layout::transposed, Layout::strided}) {
            SCOPED_TRACE(describe("rope", dt, l, s) + " theta " + std::to_string(theta) +
                         " offset " + std::to_string(offset));
            Input x = random_input(s, dt, l, seed++);
            Tensor y = wick::rope(x.tensor, theta, offset);
            EXPECT_TRUE(matches(y, rope(x.host, rope_inv_freq(theta, s.back()), offset), dt,
                                rope_tol(dt)));
          }
}

TEST(Rope, CustomInvFreqAndQkvLayout) {
  // q as produced by a projection: [B, T, H, D] viewed as [B, H, T, D].
  HostArray h = random_host({2, 5, 3, 8}, DType::f32, 9);
  Tensor q = wick::swapaxes(to_tensor(h, DType::f32), 1, 2);
  HostArray hq = transpose(h, {0, 2, 1, 3});
  std::vector<float> inv = {1.0f, 0.5f, 0.0f, 0.125f};  // e.g. scaled / partially disabled
  EXPECT_TRUE(matches(wick::rope(q, inv, 3), rope(hq, inv, 3), DType::f32, rope_tol(DType::f32)));
  // The default frequencies are theta^(-2i/D).
  EXPECT_TRUE(all_close(to_host(wick::rope(q, 10000.0, 2)),
                        to_host(wick::rope(q, rope_inv_freq(10000.0, 8), 2)), Tol{1e-5, 1e-5}));
  // Zero frequency leaves that pair untouched; offset 0 leaves position 0 untouched.
  HostArray out = to_host(wick::rope(q, inv, 0));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t hh = 0; hh < 3; ++hh)
      for (int64_t d = 0; d < 8; ++d) {
        EXPECT_EQ(out.at({b, hh, 0, d}), hq.at({b, hh, 0, d}));
        if (d == 2 || d == 6) {
          for (int64_t t = 0; t < 5; ++t) EXPECT_EQ(out.at({b, hh, t, d}), hq.at({b, hh, t, d}));
        }
      }
}

TEST(Rope, MatchesRotateHalfExpressionBuiltFromOps) {
  const int64_t T = 6, D = 8, off = 4;
  Input x = random_input({2, 2, T, D}, DType::f32, Layout::contiguous, 21);
  std::vector<float> inv = rope_inv_freq(10000.0, D);
  HostArray c({T, D}), s({T, D});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i) {
      double ang = double(t + off) * inv[i % (D / 2)];
      c.at({t, i}) = std::cos(ang);
      s.at({t, i}) = std::sin(ang);
    }
  std::vector<Tensor> halves = wick::split(x.tensor, 2, -1);
  Tensor rot = wick::concatenate({-halves[1], halves[0]}, -1);
  Tensor expr = x.tensor * to_tensor(c, DType::f32) + rot * to_tensor(s, DType::f32);
  EXPECT_TRUE(all_close(to_host(wick::rope(x.tensor, 10000.0, off)), to_host(expr),
                        Tol{1e-5, 1e-5}));
}

TEST(Rope, RelativePositionProperty) {
  // <rope(q, m), rope(k, n)> depends on m - n only.
  Input q = random_input({1, 1, 1, 16}, DType::f64, Layout::contiguous, 31);
  Input k = random_input({1, 1, 1, 16}, DType::f64, Layout::contiguous, 32);
  auto dot = [&](int64_t m, int64_t n) {
    return wick::sum(wick::rope(q.tensor, 100.0, m) * wick::rope(k.tensor, 100.0, n)).item<double>();
  };
  EXPECT_NEAR(dot(5, 2), dot(13, 10), 2e-5);
  EXPECT_NEAR(dot(0, 0), dot(40, 40), 2e-5);
  EXPECT_GT(std::abs(dot(5, 2) - dot(5, 3)), 1e-3) << "and it does depend on m - n";
}

TEST(Rope, Errors) {
  std::string msg = error_of([] { (void)wick::rope(wick::zeros({2, 3, 7}), 10000.0); });
  EXPECT_NE(msg.find("rope"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { (void)wick::rope(wick::zeros({2, 3, 8}), std::vector<float>{1, 2, 3}); }),
            "<no error>");
  EXPECT_NE(error_of([] { (void)wick::rope(wick::zeros({8}), 10000.0); }), "<no error>")
      << "needs [..., T, D]";
}

struct AttnCase {
  int64_t B, Hq, Hkv, T, S, D;
  bool causal;
  int mask;  // 0 none, 1 additive [T,S], 2 additive [B,1,1,S], 3 bool [B,1,T,S], 4 additive [1,Hq,T,S]
};

const AttnCase kAttn[] = {
    {2, 2, 2, 4, 4, 8, false, 0}, {2, 2, 2, 4, 4, 8, true, 0},  {1, 2, 2, 3, 7, 8, true, 0},
    {2, 4, 2, 5, 5, 8, true, 0},  {1, 4, 1, 3, 6, 16, false, 0}, {2, 2, 2, 4, 6, 8, false, 1},
    {2, 4, 2, 4, 6, 8, true, 1},  {2, 2, 1, 3, 5, 8, false, 2}, {2, 2, 2, 4, 4, 8, false, 3},
    {2, 4, 2, 2, 6, 4, true, 3},  {1, 3, 3, 4, 4, 8, false, 4}, {1, 1, 1, 1, 1, 8, true, 0},
    {1, 2, 2, 1, 9, 8, true, 1},  {1, 2, 1, 0, 4, 8, false, 0}, {2, 2, 2, 5, 5, 32, true, 1},
};

std::string attn_name(const AttnCase& c) {
  return cat("B", c.B, " Hq", c.Hq, " Hkv", c.Hkv, " T", c.T, " S", c.S, " D", c.D,
             c.causal ? " causal" : "", " mask", c.mask);
}

/// The mask tensor and its additive host equivalent (-inf where a bool mask says drop).
std::pair<std::optional<Tensor>, std::optional<HostArray>> make_mask(const AttnCase& c,
                                                                     uint64_t seed) {
  const double ninf = -std::numeric_limits<double>::infinity();
  switch (c.mask) {
    case 1: {
      HostArray m = random_host({c.T, c.S}, DType::f32, seed, -2, 2);
      return {to_tensor(m, DType::f32), m};
    }
    case 2: {  // padding: the last key of batch 1 is dropped
      HostArray m({c.B, 1, 1, c.S}, 0.0);
      if (c.B > 1) m.at({1, 0, 0, c.S - 1}) = -1e9;
      return {to_tensor(m, DType::f32), m};
    }
    case 3: {  // bool, keeping key 0 always so no row is fully masked
      HostArray keep = random_host({c.B, 1, c.T, c.S}, DType::boolean, seed);
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t t = 0; t < c.T; ++t) keep.at({b, 0, t, 0}) = 1;
      return {to_tensor(keep, DType::boolean), map(keep, [ninf](double k) { return k ? 0.0 : ninf; })};
    }
    case 4: {
      HostArray m = random_host({1, c.Hq, c.T, c.S}, DType::f32, seed, -1, 1);
      return {to_tensor(m, DType::f32), m};
    }
  }
  return {std::nullopt, std::nullopt};
}

Tol attn_tol(DType dt) {
  switch (dt) {
    case DType::f64: return {1e-11, 1e-11};
    case DType::f32: return {2e-5, 2e-5};
    case DType::f16: return {5e-3, 5e-3};
    case DType::bf16: return {2e-2, 2e-2};
    default: return {0, 0};
  }
}

TEST(Attention, AgainstNaiveReference) {
  uint64_t seed = 100;
  for (const auto& c : kAttn)
    for (DType dt : kFloatTypes)
      for (bool q_view : {false, true}) {
        SCOPED_TRACE(attn_name(c) + " " + wick::dtype_name(dt) + (q_view ? " q/k/v views" : ""));
        Input q = random_input({c.B, c.Hq, c.T, c.D}, dt, Layout::contiguous, seed++);
        Input k = random_input({c.B, c.Hkv, c.S, c.D}, dt, Layout::contiguous, seed++);
        Input v = random_input({c.B, c.Hkv, c.S, c.D}, dt, Layout::contiguous, seed++);
        if (q_view) {  // [B, T, H, D] projections viewed as [B, H, T, D]
          for (Input* in : {&q, &k, &v})
            in->tensor = wick::swapaxes(to_tensor(transpose(in->host, {0, 2, 1, 3}), dt), 1, 2);
        }
        auto [mask, hmask] = make_mask(c, seed++);
        double scale = 1.0 / std::sqrt(static_cast<double>(c.D));
        Tensor y = wick::scaled_dot_product_attention(q.tensor, k.tensor, v.tensor, scale, c.causal,
                                                      mask);
        EXPECT_FALSE(y.is_evaluated());
        EXPECT_TRUE(matches(y, attention(q.host, k.host, v.host, scale, c.causal, hmask), dt,
                            attn_tol(dt)));
      }
}

TEST(Attention, MatchesExpressionBuiltFromOps) {
  const int64_t B = 2, H = 3, T = 5, S = 7, D = 8;
  Input q = random_input({B, H, T, D}, DType::f32, Layout::contiguous, 1);
  Input k = random_input({B, H, S, D}, DType::f32, Layout::contiguous, 2);
  Input v = random_input({B, H, S, D}, DType::f32, Layout::contiguous, 3);
  Input m = random_input({T, S}, DType::f32, Layout::contiguous, 4);
  const double scale = 0.3;
  Tensor scores = wick::matmul(q.tensor, wick::swapaxes(k.tensor, -1, -2)) * scale + m.tensor;
  // Causal with queries as the last T of S positions.
  HostArray keep({T, S});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s) keep.at({t, s}) = s <= t + (S - T);
  Tensor masked = wick::where(to_tensor(keep, DType::boolean), scores,
                              -std::numeric_limits<double>::infinity());
  Tensor expr = wick::matmul(wick::softmax(masked, -1), v.tensor);
  Tensor y = wick::scaled_dot_product_attention(q.tensor, k.tensor, v.tensor, scale, true, m.tensor);
  EXPECT_TRUE(all_close(to_host(y), to_host(expr), Tol{2e-5, 2e-5}));
  // A bool mask equals the additive mask with -inf for false.
  Tensor yb = wick::scaled_dot_product_attention(q.tensor, k.tensor, v.tensor, scale, false,
                                                 to_tensor(keep, DType::boolean));
  HostArray add = map(keep, [](double kk) { return kk ? 0.0 : -std::numeric_limits<double>::infinity(); });
  Tensor ya = wick::scaled_dot_product_attention(q.tensor, k.tensor, v.tensor, scale, false,
                                                 to_tensor(add, DType::f32));
  EXPECT_TRUE(all_close(to_host(yb), to_host(ya), Tol{1e-6, 1e-6}));
  EXPECT_TRUE(all_close(to_host(yb), to_host(wick::scaled_dot_product_attention(
                                         q.tensor, k.tensor, v.tensor, scale, true)),
                        Tol{1e-6, 1e-6}))
      << "bool causal mask == causal flag";
}

TEST(Attention, MaskDtypesAndBroadcastForms) {
  const int64_t B = 2, H = 2, T = 3, S = 5, D = 8;
  Input q = random_input({B, H, T, D}, DType::f32, Layout::contiguous, 41);
  Input k = random_input({B, H, S, D}, DType::f32, Layout::contiguous, 42);
  Input v = random_input({B, H, S, D}, DType::f32, Layout::contiguous, 43);
  // Values exact in every float dtype.
  HostArray m = map(random_host({T, S}, DType::i32, 44, -4, 4), [](double x) { return x / 4; });
  HostArray want = attention(q.host, k.host, v.host, 0.4, false, m);
  for (DType mt : kFloatTypes) {
    SCOPED_TRACE(wick::dtype_name(mt));
    EXPECT_TRUE(matches(wick::scaled_dot_product_attention(q.tensor, k.tensor, v.tensor, 0.4, false,
                                                           to_tensor(m, mt)),
                        want, DType::f32, attn_tol(DType::f32)));
  }
  // The same mask as [1,1,T,S], as [B,H,T,S] and as a broadcast_to view.
  Tensor m4 = to_tensor(reshape(m, {1, 1, T, S}), DType::f32);
  for (const Tensor& mk : {m4, wick::contiguous(wick::broadcast_to(m4, {B, H, T, S})),
                           wick::broadcast_to(to_tensor(m, DType::f32), {B, H, T, S})}) {
    EXPECT_TRUE(matches(wick::scaled_dot_product_attention(q.tensor, k.tensor, v.tensor, 0.4, false, mk),
                        want, DType::f32, attn_tol(DType::f32)));
  }
}

TEST(Attention, FullyMaskedRowsAreFinite) {
  const int64_t B = 1, H = 2, T = 4, S = 3, D = 8;
  Input q = random_input({B, H, T, D}, DType::f32, Layout::contiguous, 5);
  Input k = random_input({B, H, S, D}, DType::f32, Layout::contiguous, 6);
  Input v = random_input({B, H, S, D}, DType::f32, Layout::contiguous, 7);
  // Bool mask whose row t=1 drops every key.
  HostArray keep({T, S}, 1.0);
  for (int64_t s = 0; s < S; ++s) keep.at({1, s}) = 0;
  const double ninf = -std::numeric_limits<double>::infinity();
  HostArray add = map(keep, [ninf](double kk) { return kk ? 0.0 : ninf; });
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant == 0 ? "bool mask" : variant == 1 ? "-inf additive mask" : "causal T > S");
    Tensor y;
    HostArray want;
    if (variant == 0) {
      y = wick::scaled_dot_product_attention(q.tensor, k.tensor, v.tensor, 0.5, false,
                                             to_tensor(keep, DType::boolean));
      want = attention(q.host, k.host, v.host, 0.5, false, add);
    } else if (variant == 1) {
      y = wick::scaled_dot_product_attention(q.tensor, k.tensor, v.tensor, 0.5, false,
                                             to_tensor(add, DType::f32));
      want = attention(q.host, k.host, v.host, 0.5, false, add);
    } else {  // query 0 sees keys s <= 0 + (S - T) = -1: none
      y = wick::scaled_dot_product_attention(q.tensor, k.tensor, v.tensor, 0.5, true);
      want = attention(q.host, k.host, v.host, 0.5, true);
    }
    HostArray got = to_host(y);
    int64_t nan_rows = 0;
    for (int64_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(std::isfinite(got[i])) << "element " << i << " is " << got[i];
      if (std::isnan(want[i])) {
        got[i] = want[i];  // the reference leaves fully masked rows undefined
        ++nan_rows;
      }
    }
    EXPECT_GT(nan_rows, 0);
    EXPECT_TRUE(all_close(got, want, Tol{2e-5, 2e-5})) << "rows with visible keys";
  }
}

TEST(Attention, ShapeErrors) {
  auto z = [](Dims s) { return wick::zeros(s); };
  std::string msg = error_of([&] {
    (void)wick::scaled_dot_product_attention(z({1, 3, 4, 8}), z({1, 2, 4, 8}), z({1, 2, 4, 8}), 1.0,
                                             false);
  });
  EXPECT_NE(msg.find("scaled_dot_product_attention"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[1,3,4,8]"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] {
              (void)wick::scaled_dot_product_attention(z({1, 2, 4, 8}), z({1, 2, 4, 4}),
                                                       z({1, 2, 4, 4}), 1.0, false);
            }),
            "<no error>")
      << "head dims differ";
  EXPECT_NE(error_of([&] {
              (void)wick::scaled_dot_product_attention(z({1, 2, 4, 8}), z({1, 2, 5, 8}),
                                                       z({1, 2, 4, 8}), 1.0, false);
            }),
            "<no error>")
      << "k and v lengths differ";
  EXPECT_NE(error_of([&] {
              (void)wick::scaled_dot_product_attention(z({1, 2, 4, 8}), z({1, 2, 5, 8}),
                                                       z({1, 2, 5, 8}), 1.0, false, z({4, 4}));
            }),
            "<no error>")
      << "mask does not broadcast to [B,Hq,T,S]";
  EXPECT_NE(error_of([&] {
              (void)wick::scaled_dot_product_attention(z({2, 4, 8}), z({2, 4, 8}), z({2, 4, 8}),
                                                       1.0, false);
            }),
            "<no error>")
      << "3-d inputs";
}

}  // namespace
