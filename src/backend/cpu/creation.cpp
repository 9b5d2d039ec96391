// Creation kernels: fill, arange and counter-based random numbers.
#include <cmath>
#include <limits>
#include <numbers>

#include "backend/cpu/kernel.h"
#include "core/philox.h"
#include "core/position_mask.h"
#include "graph/primitives.h"

namespace wick::detail {
using namespace cpu;

void Full::eval_cpu(std::span<Node* const>, Node& out) {
  alloc_output(out);
  dispatch(out.dtype, [&]<class T>() {
    T v;
    if constexpr (std::is_same_v<T, bool>) v = value != 0;
    else if constexpr (std::is_integral_v<T>) v = static_cast<T>(value);
    else v = T(static_cast<compute_t<T>>(value));
    T* o = out.data<T>();
    parallel_for(out.size(), 1, [&](int64_t b, int64_t e) { std::fill(o + b, o + e, v); });
  });
}

void Arange::eval_cpu(std::span<Node* const>, Node& out) {
  alloc_output(out);
  dispatch(out.dtype, [&]<class T>() {
    T* o = out.data<T>();
    for (int64_t i = 0; i < out.size(); ++i) store(o + i, start + static_cast<double>(i) * step);
  });
}

void PositionMask::eval_cpu(std::span<Node* const> in, Node& out) {
  alloc_output(out);
  const int64_t position = *in[0]->data<int64_t>(), T = out.shape[2], S = out.shape[3];
  float* o = out.data<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s)
      o[t * S + s] = position_visible(s, position + t, window)
                         ? 0.0f
                         : -std::numeric_limits<float>::infinity();
}

void Random::eval_cpu(std::span<Node* const>, Node& out) {
  alloc_output(out);
  int64_t n = out.size();
  dispatch_float(out.dtype, "random", [&]<class T>() {
    T* o = out.data<T>();
    // Counter j produces samples 2j and 2j+1, so any thread split gives the same values.
    parallel_for((n + 1) / 2, 40, [&](int64_t jb, int64_t je) {
      for (int64_t j = jb; j < je; ++j) {
        auto r = detail::philox(counter + static_cast<uint64_t>(j), seed);
        double u0 = detail::philox_unit(r[0], r[1]), u1 = detail::philox_unit(r[2], r[3]);
        double s0, s1;
        if (kind == Kind::normal) {
          double rad = std::sqrt(-2.0 * std::log1p(-u0));  // 1-u0 in (0, 1]: log is finite
          double ang = 2.0 * std::numbers::pi * u1;
          s0 = a + b * rad * std::cos(ang);
          s1 = a + b * rad * std::sin(ang);
        } else {
          s0 = a + (b - a) * u0;
          s1 = a + (b - a) * u1;
        }
        for (int k = 0; k < 2 && 2 * j + k < n; ++k) {
          double s = k ? s1 : s0;
          T v = static_cast<T>(static_cast<compute_t<T>>(s));
          // Rounding to a narrow float must not produce `high` from [low, high).
          if (kind == Kind::uniform && b > a && static_cast<double>(load(&v)) >= b) v = static_cast<T>(static_cast<compute_t<T>>(a));
          o[2 * j + k] = v;
        }
      }
    });
  });
}

}  // namespace wick::detail
