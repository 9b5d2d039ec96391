// Creation kernels: fill, arange and counter-based random numbers.
#include <cmath>
#include <numbers>

#include "backend/cpu/kernel.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

/// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"): a bijection
/// of a 128-bit counter under a 64-bit key; every output block is independent of the others.
std::array<uint32_t, 4> philox(uint64_t counter, uint64_t key) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = static_cast<uint32_t>(p1);
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

/// Uniform double in [0, 1) from 64 random bits.
inline double unit(uint32_t hi, uint32_t lo) {
  return static_cast<double>(((uint64_t(hi) << 32) | lo) >> 11) * 0x1.0p-53;
}

}  // namespace
}  // namespace wick::cpu

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

void Random::eval_cpu(std::span<Node* const>, Node& out) {
  alloc_output(out);
  int64_t n = out.size();
  dispatch_float(out.dtype, "random", [&]<class T>() {
    T* o = out.data<T>();
    // Counter j produces samples 2j and 2j+1, so any thread split gives the same values.
    parallel_for((n + 1) / 2, 40, [&](int64_t jb, int64_t je) {
      for (int64_t j = jb; j < je; ++j) {
        auto r = philox(counter + static_cast<uint64_t>(j), seed);
        double u0 = unit(r[0], r[1]), u1 = unit(r[2], r[3]);
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
