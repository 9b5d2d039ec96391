#pragma once
#include <cstdint>

#include "wick/tensor.h"

namespace wick {

/// An explicit, seeded source of randomness. Every draw reserves a fresh range of a
/// counter-based stream (Philox-4x32-10), so results depend only on the seed and the order of
/// draws, never on threads or evaluation order.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  /// Reserves `n` 128-bit counters and returns the first.
  uint64_t advance(uint64_t n) {
    uint64_t c = counter_;
    counter_ += n;
    return c;
  }
  uint64_t counter() const { return counter_; }
  void set_counter(uint64_t c) { counter_ = c; }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

/// Normal(mean, std) samples (Box-Muller over Philox). Floating dtypes only.
Tensor normal(const Shape& shape, Generator& gen, double mean = 0.0, double std = 1.0,
              DType dtype = DType::f32);
/// Uniform [low, high) samples. Floating dtypes only.
Tensor uniform(const Shape& shape, Generator& gen, double low = 0.0, double high = 1.0,
               DType dtype = DType::f32);

}  // namespace wick
