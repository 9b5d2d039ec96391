// The sampler against hand-computed cases, a naive O(V²) reference of transformers' processors,
// sampling statistics, seeded repeatability, and (when present) the fixture written by
// transformers itself (tests/tools/make_sampling_fixtures.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "wick/wick.h"

namespace {

using namespace wick;
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> processed(const SamplingParams& p, std::vector<float> logits, std::vector<int32_t> context = {}) {
  Sampler s(p);
  s.process(logits, context);
  return logits;
}

std::vector<int32_t> kept(const std::vector<float>& l) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < l.size(); ++i)
    if (l[i] != -kInf) out.push_back(static_cast<int32_t>(i));
  return out;
}

SamplingParams params(double t = 1.0, int64_t k = 0, double p = 1.0, double min_p = 0.0, double rep = 1.0) {
  SamplingParams s;
  s.temperature = t;
  s.top_k = k;
  s.top_p = p;
  s.min_p = min_p;
  s.repetition_penalty = rep;
  return s;
}

std::vector<float> log_probs(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(p > 0 ? static_cast<float>(std::log(p)) : -kInf);
  return l;
}

// ---- naive reference: each rule written from its definition, quadratic, in double ----

std::vector<double> softmax_ref(const std::vector<float>& l) {
  double m = -INFINITY, s = 0;
  for (float v : l) m = std::max(m, double(v));
  std::vector<double> p;
  for (float v : l) p.push_back(std::exp(double(v) - m));
  for (double v : p) s += v;
  for (double& v : p) v /= s;
  return p;
}

std::vector<float> reference(const SamplingParams& sp, std::vector<float> l, const std::vector<int32_t>& ctx) {
  std::set<int32_t> seen(ctx.begin(), ctx.end());
  for (int32_t id : seen) {
    float r = static_cast<float>(sp.repetition_penalty);
    l[id] = l[id] < 0 ? l[id] * r : l[id] / r;
  }
  if (sp.greedy()) return l;
  if (sp.temperature != 1.0)
    for (float& v : l) v = v / static_cast<float>(sp.temperature);
  const size_t n = l.size();
  if (sp.top_k > 0) {
    // Kept: fewer than k tokens are strictly larger.
    std::vector<float> out = l;
    for (size_t i = 0; i < n; ++i) {
      int64_t larger = 0;
      for (size_t j = 0; j < n; ++j) larger += l[j] > l[i];
      if (larger >= sp.top_k) out[i] = -kInf;
    }
    l = out;
  }
  if (sp.top_p < 1.0) {
    // Ascending order with ties by id; a token goes when the mass up to and including it is
    // <= 1 - top_p, unless it is the very last (the most probable).
    auto p = softmax_ref(l);
    std::vector<float> out = l;
    for (size_t i = 0; i < n; ++i) {
      double mass = 0;
      size_t after = 0;
      for (size_t j = 0; j < n; ++j) {
        bool before_or_self = l[j] < l[i] || (l[j] == l[i] && j <= i);
        if (before_or_self) mass += p[j];
        else ++after;
      }
      if (after > 0 && mass <= 1.0 - sp.top_p) out[i] = -kInf;
    }
    l = out;
  }
  if (sp.min_p > 0.0) {
    auto p = softmax_ref(l);
    double pmax = *std::max_element(p.begin(), p.end());
    for (size_t i = 0; i < n; ++i)
      if (p[i] < sp.min_p * pmax) l[i] = -kInf;
  }
  return l;
}

void expect_same(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  EXPECT_EQ(kept(got), kept(want)) << what;
  for (size_t i = 0; i < got.size(); ++i)
    if (want[i] != -kInf) {
      EXPECT_NEAR(got[i], want[i], 1e-6 * std::max(1.0f, std::abs(want[i]))) << what << " id " << i;
    }
}

// ---- hand-computed cases ----

TEST(Sampler, TopKKeepsTiesAtTheBoundary) {
  std::vector<float> l = {1, 3, 3, 2, 0.5f, 3};
  EXPECT_EQ(kept(processed(params(1, 2), l)), (std::vector<int32_t>{1, 2, 5}));  // three tied at the top
  EXPECT_EQ(kept(processed(params(1, 4), l)), (std::vector<int32_t>{1, 2, 3, 5}));
  EXPECT_EQ(kept(processed(params(1, 1), {1, 3, 2})), (std::vector<int32_t>{1}));
}

TEST(Sampler, TopKAtOrBeyondTheVocabularyKeepsEverything) {
  std::vector<float> l = {0.1f, -0.2f, 0.3f, 0.0f};
  EXPECT_EQ(processed(params(1, 4), l), l);
  EXPECT_EQ(processed(params(1, 1000), l), l);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  auto l = log_probs({0.1, 0.2, 0.3, 0.4});
  EXPECT_EQ(kept(processed(params(1, 0, 0.65), l)), (std::vector<int32_t>{2, 3}));     // 0.7 >= 0.65
  EXPECT_EQ(kept(processed(params(1, 0, 0.75), l)), (std::vector<int32_t>{1, 2, 3}));  // 0.9 >= 0.75
  EXPECT_EQ(kept(processed(params(1, 0, 0.35), l)), (std::vector<int32_t>{3}));        // 0.4 alone
  EXPECT_EQ(kept(processed(params(1, 0, 0.0), l)), (std::vector<int32_t>{3}));         // at least one
  EXPECT_EQ(processed(params(1, 0, 1.0), l), l);                                        // off
}

TEST(Sampler, TopPSplitsATiedGroupInIdOrder) {
  // Probabilities ~ e^0, e^1 x3, e^2, e^0: ascending with ties by id is 0, 5, 1, 2, 3, 4.
  std::vector<float> l = {0, 1, 1, 1, 2, 0};
  auto p = softmax_ref(l);
  // Choose top_p so that the threshold falls inside the tied group after token 1.
  double below = p[0] + p[5] + p[1];
  double top_p = 1.0 - (below + 0.25 * p[2]);
  EXPECT_EQ(kept(processed(params(1, 0, top_p), l)), (std::vector<int32_t>{2, 3, 4}));
  expect_same(processed(params(1, 0, top_p), l), reference(params(1, 0, top_p), l, {}), "tied group");
}

TEST(Sampler, TopPIgnoresFilteredTokens) {
  std::vector<float> l = {-kInf, 0.5f, 1.5f, -kInf, 0.0f, 2.0f};
  auto got = processed(params(1, 0, 0.8), l);
  expect_same(got, reference(params(1, 0, 0.8), l, {}), "-inf entries");
  EXPECT_EQ(got[0], -kInf);
  EXPECT_EQ(got[3], -kInf);
}

TEST(Sampler, MinPScalesWithTheTopProbability) {
  auto l = log_probs({0.5, 0.25, 0.15, 0.1});
  EXPECT_EQ(kept(processed(params(1, 0, 1, 0.25), l)), (std::vector<int32_t>{0, 1, 2}));  // >= 0.125
  EXPECT_EQ(kept(processed(params(1, 0, 1, 0.45), l)), (std::vector<int32_t>{0, 1}));     // >= 0.225
  EXPECT_EQ(processed(params(1, 0, 1, 0.0), l), l);
  EXPECT_EQ(kept(processed(params(1, 0, 1, 1.0), {0.5f, 2, 2, 1})), (std::vector<int32_t>{1, 2}));  // ties stay
}

TEST(Sampler, RepetitionPenaltyOncePerIdBySign) {
  std::vector<float> l = {2, -2, 1, 0, -0.5f, 3};
  auto got = processed(params(0, 0, 1, 0, 2.0), l, {0, 1, 1, 3, 4, 99 /* outside: ignored */});
  EXPECT_EQ(got, (std::vector<float>{1, -4, 1, 0, -1, 3}));
  auto reward = processed(params(0, 0, 1, 0, 0.5), {2, -2, 1, 0}, {0, 1});
  EXPECT_EQ(reward, (std::vector<float>{4, -1, 1, 0}));
}

TEST(Sampler, TemperatureDividesBeforeFiltering) {
  auto got = processed(params(0.5), {1, 2, -3});
  EXPECT_EQ(got, (std::vector<float>{2, 4, -6}));
  // Temperature changes which tokens top-p keeps: p = (0.2, 0.3, 0.5) at T=1 needs 2 tokens
  // for top_p 0.75; at T=0.25 the largest alone has ~0.8.
  auto l = log_probs({0.2, 0.3, 0.5});
  EXPECT_EQ(kept(processed(params(1.0, 0, 0.75), l)), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(kept(processed(params(0.25, 0, 0.75), l)), (std::vector<int32_t>{2}));
}

TEST(Sampler, GreedyIsArgmaxAfterThePenaltyOnly) {
  SamplingParams g = params(0, 2, 0.1, 0.9, 1.1);  // filters are ignored when greedy
  Sampler s(g);
  std::vector<float> l = {1.0f, 4.0f, 3.9f, -1.0f};
  std::vector<int32_t> ctx = {1};
  TokenChoice c = s.sample(l, ctx);
  EXPECT_EQ(c.id, 2);  // 4/1.1 = 3.636 < 3.9
  auto pen = processed(g, l, ctx);
  double lse = 0;
  for (float v : pen) lse += std::exp(double(v));
  EXPECT_NEAR(c.logprob, pen[2] - std::log(lse), 1e-6);
  EXPECT_EQ(s.draws(), 0u);
  // First of equal maxima, as torch.argmax.
  EXPECT_EQ(Sampler(params(0)).sample(std::vector<float>{1, 5, 5, 2}, {}).id, 1);
  SamplingParams no_sample = params(1.0);
  no_sample.do_sample = false;
  EXPECT_EQ(Sampler(no_sample).sample(std::vector<float>{1, 5, 6, 2}, {}).id, 2);
}

// ---- against the naive reference on random rows ----

TEST(Sampler, MatchesNaiveReferenceOnRandomRows) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_int_distribution<int> pick(0, 39);
  const double tops[] = {1.0, 0.95, 0.8, 0.5, 0.1, 0.0};
  const double mins[] = {0.0, 0.01, 0.1, 0.5};
  const int64_t ks[] = {0, 1, 5, 20, 40, 100};
  int cases = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<float> l(40);
    for (float& v : l) v = normal(rng);
    // Rows with many ties (rounded values) exercise the tie rules.
    if (trial % 3 == 0)
      for (float& v : l) v = std::round(v);
    std::vector<int32_t> ctx;
    for (int i = 0; i < trial % 7; ++i) ctx.push_back(pick(rng));
    SamplingParams sp = params(trial % 4 == 0 ? 1.0 : 0.5 + 0.1 * (trial % 9), ks[trial % 6], tops[(trial / 6) % 6],
                               mins[(trial / 36) % 4], trial % 5 == 0 ? 1.0 : 1.3);
    auto got = processed(sp, l, ctx);
    auto want = reference(sp, l, ctx);
    // Skip rows where a top-p or min-p threshold sits within rounding of a cumulative sum or
    // a probability (f32 here, double in the reference).
    bool fragile = false;
    for (double d : {-1e-5, 1e-5}) {
      SamplingParams q = sp;
      if (sp.top_p < 1.0) q.top_p = std::clamp(sp.top_p + d, 0.0, 1.0 - 1e-9);
      if (sp.min_p > 0.0) q.min_p = std::clamp(sp.min_p + d, 1e-9, 1.0);
      fragile = fragile || kept(processed(q, l, ctx)) != kept(got);
    }
    if (fragile) continue;
    ++cases;
    expect_same(got, want, "trial " + std::to_string(trial));
  }
  EXPECT_GT(cases, 250);
}

TEST(Sampler, LargeRowsMatchTheReference) {
  // Rows longer than the first candidate set of top-p (64 tokens), flat and peaked, so that the
  // nucleus lies inside the first set, past it, or takes most of the row.
  std::mt19937 rng(11);
  int cases = 0;
  for (int trial = 0; trial < 48; ++trial) {
    const float scale = std::vector<float>{0.05f, 0.5f, 2.0f, 6.0f}[trial % 4];
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> l(1000);
    for (float& v : l) v = normal(rng);
    if (trial % 3 == 0)
      for (float& v : l) v = std::round(v * 4) / 4;  // ties
    SamplingParams sp = params(1.0, trial % 5 == 0 ? 300 : 0, std::vector<double>{0.99, 0.9, 0.5, 0.05}[(trial / 4) % 4]);
    auto got = processed(sp, l);
    bool fragile = false;
    for (double d : {-1e-5, 1e-5}) {
      SamplingParams q = sp;
      q.top_p = std::clamp(sp.top_p + d, 0.0, 1.0 - 1e-9);
      fragile = fragile || kept(processed(q, l)) != kept(got);
    }
    if (fragile) continue;
    ++cases;
    expect_same(got, reference(sp, l, {}), "large trial " + std::to_string(trial));
  }
  EXPECT_GT(cases, 40);
}

// ---- draws ----

TEST(Sampler, FrequenciesFollowTheKeptDistribution) {
  // p = (0.05, 0.1, 0.15, 0.3, 0.4); top_k 3 keeps ids 2,3,4 renormalised to (0.176, 0.353, 0.471).
  auto l = log_probs({0.05, 0.1, 0.15, 0.3, 0.4});
  SamplingParams sp = params(1.0, 3);
  sp.seed = 12345;
  Sampler s(sp);
  const int n = 40000;
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) {
    TokenChoice c = s.sample(l, {});
    counts[c.id]++;
    EXPECT_NEAR(c.logprob, std::log(std::vector<double>{0, 0, 0.15, 0.3, 0.4}[c.id] / 0.85), 1e-5);
  }
  EXPECT_EQ(counts.count(0) + counts.count(1), 0u);
  for (int id = 2; id < 5; ++id) {
    double p = std::vector<double>{0, 0, 0.15, 0.3, 0.4}[id] / 0.85;
    double sigma = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(counts[id], n * p, 4.5 * sigma) << "id " << id;
  }
  EXPECT_EQ(s.draws(), static_cast<uint64_t>(n));
}

TEST(Sampler, UniformDrawsAreUniform) {
  const int n = 100000, bins = 20;
  std::vector<int> hist(bins, 0);
  for (int i = 0; i < n; ++i) {
    double u = uniform_draw(99, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    hist[static_cast<int>(u * bins)]++;
  }
  double chi2 = 0, e = double(n) / bins;
  for (int h : hist) chi2 += (h - e) * (h - e) / e;
  EXPECT_LT(chi2, 45.0);  // 19 degrees of freedom: p < 1e-3
  EXPECT_NE(uniform_draw(1, 0), uniform_draw(2, 0));
  EXPECT_NE(uniform_draw(1, 0), uniform_draw(1, 1));
}

TEST(Sampler, SeededRunsRepeatWhateverRunsBeside) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> rows(50, std::vector<float>(30));
  for (auto& r : rows)
    for (float& v : r) v = normal(rng);
  SamplingParams sp = params(0.9, 10, 0.9, 0.02, 1.1);
  sp.seed = 42;
  auto run = [&](Sampler& s, Sampler* other) {
    std::vector<int32_t> ctx, out;
    for (auto& r : rows) {
      if (other) other->sample(r, {});  // interleaved draws of another stream
      out.push_back(s.sample(r, ctx).id);
      ctx.push_back(out.back());
    }
    return out;
  };
  Sampler a(sp), b(sp);
  SamplingParams sp2 = sp;
  sp2.seed = 43;
  Sampler other(sp2), d(sp2);
  auto first = run(a, nullptr);
  EXPECT_EQ(first, run(b, &other));
  EXPECT_NE(first, run(d, nullptr));  // another seed, another sequence (50 draws over ~10 tokens)
}

// ---- bad input ----

TEST(Sampler, RefusesBadParametersAndRows) {
  EXPECT_THROW(Sampler(params(-1)), Error);
  EXPECT_THROW(Sampler(params(NAN)), Error);
  EXPECT_THROW(Sampler(params(1, -1)), Error);
  EXPECT_THROW(Sampler(params(1, 0, 1.5)), Error);
  EXPECT_THROW(Sampler(params(1, 0, -0.1)), Error);
  EXPECT_THROW(Sampler(params(1, 0, 1, 2)), Error);
  EXPECT_THROW(Sampler(params(1, 0, 1, 0, 0)), Error);
  EXPECT_THROW(Sampler(params(1, 0, 1, 0, INFINITY)), Error);
  Sampler s(params());
  EXPECT_THROW(s.sample(std::vector<float>{1, NAN, 2}, {}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{1, kInf, 2}, {}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{-kInf, -kInf}, {}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{}, {}), Error);
  // Only -inf rows that still have a finite entry are fine.
  EXPECT_EQ(s.sample(std::vector<float>{-kInf, 0.0f, -kInf}, {}).id, 1);
}

// ---- transformers' own output (tests/tools/make_sampling_fixtures.py) ----

std::vector<float> json_row(const nlohmann::json& j) {
  std::vector<float> out;
  for (const auto& v : j) out.push_back(v.is_null() ? -kInf : v.get<float>());
  return out;
}

SamplingParams json_params(const nlohmann::json& j) {
  SamplingParams sp;
  sp.do_sample = j.value("do_sample", true);
  sp.temperature = j.value("temperature", 1.0);
  sp.top_k = j.value("top_k", int64_t{0});
  sp.top_p = j.value("top_p", 1.0);
  sp.min_p = j.value("min_p", 0.0);
  sp.repetition_penalty = j.value("repetition_penalty", 1.0);
  return sp;
}

const std::string kFixture = std::string(WICK_FIXTURES_DIR) + "/sampling/expected.json";

TEST(SamplerTransformers, RowsMatchTheProcessors) {
  if (!std::filesystem::exists(kFixture)) GTEST_SKIP() << "run tests/tools/make_sampling_fixtures.py (needs transformers)";
  std::ifstream f(kFixture);
  auto doc = nlohmann::json::parse(f);
  ASSERT_GT(doc.at("rows").size(), 10u);
  for (const auto& c : doc.at("rows")) {
    SamplingParams sp = json_params(c.at("params"));
    auto got = processed(sp, json_row(c.at("logits")), c.at("context").get<std::vector<int32_t>>());
    auto want = json_row(c.at("processed"));
    expect_same(got, want, c.at("name").get<std::string>());
    EXPECT_EQ(kept(got), c.at("kept").get<std::vector<int32_t>>()) << c.at("name");
  }
}

TEST(SamplerTransformers, GenerateStepsMatchTheProcessedScores) {
  if (!std::filesystem::exists(kFixture)) GTEST_SKIP() << "run tests/tools/make_sampling_fixtures.py (needs transformers)";
  std::ifstream f(kFixture);
  auto doc = nlohmann::json::parse(f);
  ASSERT_FALSE(doc.at("generate").empty());
  for (const auto& run : doc.at("generate")) {
    SamplingParams sp = json_params(run.at("params"));
    std::vector<int32_t> ctx = run.at("prompt").get<std::vector<int32_t>>();
    auto tokens = run.at("tokens").get<std::vector<int32_t>>();
    const auto& steps = run.at("steps");
    ASSERT_EQ(steps.size(), tokens.size());
    for (size_t s = 0; s < steps.size(); ++s) {
      auto got = processed(sp, json_row(steps[s].at("logits")), ctx);
      expect_same(got, json_row(steps[s].at("processed")), "generate step " + std::to_string(s));
      // The token transformers drew is one the processors kept.
      EXPECT_NE(got.at(tokens[s]), -kInf);
      ctx.push_back(tokens[s]);
    }
  }
}

}  // namespace
