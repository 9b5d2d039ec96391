// The sampler: transformers' logits processors on one host row of logits, then argmax or a
// seeded categorical draw.
//
// Arithmetic follows the peer where it decides which tokens survive: the penalty, temperature
// and thresholds are applied in f32 with the parameter rounded to f32 (a float tensor op with a
// Python scalar), probabilities are f32, and top-p's cumulative sum is accumulated in double and
// rounded per element, as PyTorch's CPU cumsum does. Only the last bits of a softmax can differ,
// which matters only for a token sitting exactly on a threshold.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "wick/generate.h"

namespace wick {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

uint64_t mix64(uint64_t z) {
  // SplitMix64's finaliser: a bijection with full avalanche.
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// f32 probabilities of `logits` (zero where the logit is -inf); the row has a finite maximum.
void softmax_f32(std::span<const float> logits, std::vector<float>& probs) {
  float m = kNegInf;
  for (float l : logits) m = std::max(m, l);
  probs.resize(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    // Filtered entries (most of the row after top-k) cost no exp.
    probs[i] = logits[i] == kNegInf ? 0.0f : std::exp(logits[i] - m);
    sum += probs[i];
  }
  for (float& p : probs) p = static_cast<float>(p / sum);
}

void check_row(std::span<const float> logits) {
  if (logits.empty()) throw Error("sampler: empty row of logits");
  bool finite = false;
  for (float l : logits) {
    if (std::isnan(l)) throw Error("sampler: the logits contain NaN");
    if (l == std::numeric_limits<float>::infinity()) throw Error("sampler: the logits contain +infinity");
    finite = finite || l != kNegInf;
  }
  if (!finite) throw Error("sampler: every token is filtered (all logits are -infinity)");
}

void apply_top_k(std::span<float> l, int64_t top_k) {
  size_t k = static_cast<size_t>(std::min<int64_t>(top_k, static_cast<int64_t>(l.size())));
  if (k >= l.size()) return;
  // Tokens tied with the k-th largest value all stay (the peer removes only values below it).
  std::vector<float> copy(l.begin(), l.end());
  std::nth_element(copy.begin(), copy.begin() + static_cast<ptrdiff_t>(k - 1), copy.end(), std::greater<float>());
  float kth = copy[k - 1];
  for (float& v : l)
    if (v < kth) v = kNegInf;
}

void apply_top_p(std::span<float> l, double top_p) {
  // The peer sorts the whole row ascending (ties by id: a stable sort) and drops the prefix
  // whose cumulative probability stays <= 1 - top_p; the most probable token always stays.
  // Only the top of the order can survive, so this sorts the m largest values (all ties of the
  // m-th included) and sums everything below them as the cumulative start, growing m until that
  // start is itself within the threshold (then every token below is dropped, as in the peer).
  // The tail's sum is accumulated in double in id order rather than sorted order: it differs
  // from the peer's double cumsum by ~1e-16 before both round to f32.
  std::vector<float> probs;
  softmax_f32(l, probs);
  std::vector<int32_t> finite;
  for (size_t i = 0; i < l.size(); ++i)
    if (l[i] != kNegInf) finite.push_back(static_cast<int32_t>(i));
  const float threshold = static_cast<float>(1.0 - top_p);
  std::vector<float> values;
  std::vector<int32_t> cand;
  for (size_t m = std::min<size_t>(64, finite.size());; m = std::min(finite.size(), m * 4)) {
    float cut = kNegInf;
    if (m < finite.size()) {
      values.clear();
      for (int32_t i : finite) values.push_back(l[i]);
      std::nth_element(values.begin(), values.begin() + static_cast<ptrdiff_t>(m - 1), values.end(),
                       std::greater<float>());
      cut = values[m - 1];
    }
    double cum = 0;
    cand.clear();
    for (int32_t i : finite) {
      if (l[i] >= cut) {
        cand.push_back(i);
      } else {
        cum += probs[i];
      }
    }
    if (static_cast<float>(cum) > threshold && m < finite.size()) continue;  // the cut lies lower
    std::stable_sort(cand.begin(), cand.end(), [&](int32_t a, int32_t b) { return l[a] < l[b]; });
    for (int32_t i : finite)
      if (l[i] < cut) l[i] = kNegInf;
    for (size_t j = 0; j + 1 < cand.size(); ++j) {
      cum += probs[cand[j]];
      if (static_cast<float>(cum) > threshold) break;
      l[cand[j]] = kNegInf;
    }
    return;
  }
}

void apply_min_p(std::span<float> l, double min_p) {
  std::vector<float> probs;
  softmax_f32(l, probs);
  size_t top = 0;
  for (size_t i = 1; i < probs.size(); ++i)
    if (probs[i] > probs[top]) top = i;
  const float threshold = static_cast<float>(min_p) * probs[top];
  for (size_t i = 0; i < l.size(); ++i)
    if (i != top && probs[i] < threshold) l[i] = kNegInf;
}

}  // namespace

void SamplingParams::validate() const {
  if (!std::isfinite(temperature) || temperature < 0)
    throw Error("sampling: temperature must be a finite number >= 0 (0 = greedy), got " + std::to_string(temperature));
  if (top_k < 0) throw Error("sampling: top_k must be >= 0 (0 = off), got " + std::to_string(top_k));
  if (!(top_p >= 0 && top_p <= 1)) throw Error("sampling: top_p must lie in [0, 1], got " + std::to_string(top_p));
  if (!(min_p >= 0 && min_p <= 1)) throw Error("sampling: min_p must lie in [0, 1], got " + std::to_string(min_p));
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0)
    throw Error("sampling: repetition_penalty must be a finite number > 0, got " + std::to_string(repetition_penalty));
}

double uniform_draw(uint64_t seed, uint64_t index) {
  uint64_t key = mix64(seed ^ 0x6A09E667F3BCC909ull);
  uint64_t bits = mix64(key + (index + 1) * 0x9E3779B97F4A7C15ull);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

Sampler::Sampler(const SamplingParams& params) : params_(params) { params_.validate(); }

void Sampler::process(std::span<float> logits, std::span<const int32_t> context) const {
  check_row(logits);
  const size_t vocab = logits.size();
  if (params_.repetition_penalty != 1.0 && !context.empty()) {
    // Once per distinct id, however often it occurs (the peer gathers and scatters).
    std::vector<uint8_t> seen(vocab, 0);
    const float r = static_cast<float>(params_.repetition_penalty);
    for (int32_t id : context) {
      if (id < 0 || static_cast<size_t>(id) >= vocab || seen[id]) continue;
      seen[id] = 1;
      float& l = logits[id];
      l = l < 0 ? l * r : l / r;
    }
  }
  if (params_.greedy()) return;
  if (params_.temperature != 1.0) {
    const float t = static_cast<float>(params_.temperature);
    for (float& l : logits) l = l / t;
  }
  if (params_.top_k > 0) apply_top_k(logits, params_.top_k);
  if (params_.top_p < 1.0) apply_top_p(logits, params_.top_p);
  if (params_.min_p > 0.0) apply_min_p(logits, params_.min_p);
}

TokenChoice Sampler::sample(std::span<const float> logits, std::span<const int32_t> context) {
  scratch_.assign(logits.begin(), logits.end());
  std::span<float> l(scratch_);
  process(l, context);
  // Log-probabilities in double: the logprob of the choice, and the draw's weights.
  size_t best = 0;
  for (size_t i = 1; i < l.size(); ++i)
    if (l[i] > l[best]) best = i;
  const double m = l[best];
  double total = 0;
  for (float v : l)
    if (v != kNegInf) total += std::exp(static_cast<double>(v) - m);
  size_t choice = best;
  if (!params_.greedy()) {
    const double target = uniform_draw(params_.seed, draws_++) * total;
    double cum = 0;
    size_t last_kept = best;
    choice = l.size();
    for (size_t i = 0; i < l.size(); ++i) {
      if (l[i] == kNegInf) continue;
      last_kept = i;
      cum += std::exp(static_cast<double>(l[i]) - m);
      if (cum > target) {
        choice = i;
        break;
      }
    }
    if (choice == l.size()) choice = last_kept;  // rounding left the target past the end
  }
  TokenChoice out;
  out.id = static_cast<int32_t>(choice);
  out.logprob = static_cast<float>(static_cast<double>(l[choice]) - m - std::log(total));
  return out;
}

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::eos: return "eos";
    case StopReason::stop_string: return "stop_string";
    case StopReason::max_tokens: return "max_tokens";
    case StopReason::length: return "length";
    case StopReason::callback: return "callback";
  }
  return "unknown";
}

}  // namespace wick
