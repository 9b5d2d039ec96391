// Creation kernels: fill, arange, a decoding step's position mask and Philox random numbers (the
// same bits as the CPU kernel).
#include "backend/cuda/common.cuh"
#include "core/philox.h"
#include "core/position_mask.h"

namespace wick::cuda {
namespace {

template <class T>
__global__ void fill_kernel(T* out, int64_t n, T v) {
  WICK_GRID_LOOP(i, n) out[i] = v;
}

template <class T>
__global__ void arange_kernel(T* out, int64_t n, double start, double step) {
  WICK_GRID_LOOP(i, n) st(out + i, start + static_cast<double>(i) * step);
}

__global__ void position_mask_kernel(float* out, int64_t T, int64_t S, const int64_t* position,
                                     int64_t window) {
  allow_dependents();
  wait_for_inputs();
  const int64_t p = *position;
  WICK_GRID_LOOP(i, T * S)
  out[i] = detail::position_visible(i % S, p + i / S, window) ? 0.0f : -INFINITY;
}

template <class T>
__global__ void random_kernel(T* out, int64_t n, bool normal, uint64_t seed, uint64_t counter,
                              double a, double b) {
  WICK_GRID_LOOP(j, (n + 1) / 2) {
    auto r = detail::philox(counter + static_cast<uint64_t>(j), seed);
    double u0 = detail::philox_unit(r[0], r[1]), u1 = detail::philox_unit(r[2], r[3]);
    double s0, s1;
    if (normal) {
      double rad = sqrt(-2.0 * log1p(-u0));
      double ang = 2.0 * 3.14159265358979323846 * u1;
      s0 = a + b * rad * cos(ang);
      s1 = a + b * rad * sin(ang);
    } else {
      s0 = a + (b - a) * u0;
      s1 = a + (b - a) * u1;
    }
    for (int k = 0; k < 2 && 2 * j + k < n; ++k) {
      double s = k ? s1 : s0;
      T* p = out + 2 * j + k;
      st(p, static_cast<compute_t<T>>(s));
      // Rounding to a narrow float must not produce `high` from [low, high).
      if (!normal && b > a && static_cast<double>(ld(p)) >= b) st(p, static_cast<compute_t<T>>(a));
    }
  }
}

}  // namespace

void fill(void* out, int64_t n, DType t, double value) {
  if (n == 0) return;
  dispatch(t, [&]<class T>() {
    T v;
    if constexpr (std::is_same_v<T, bf16_t>)
      v = __float2bfloat16_rn(static_cast<float>(value));
    else if constexpr (std::is_same_v<T, f16_t>)
      v = __float2half_rn(static_cast<float>(value));
    else if constexpr (std::is_same_v<T, bool>)
      v = value != 0;
    else
      v = static_cast<T>(value);
    fill_kernel<T><<<grid_for(n), 256, 0, launch_stream()>>>(static_cast<T*>(out), n, v);
  });
  check_launch("fill");
}

void arange(void* out, int64_t n, DType t, double start, double step) {
  if (n == 0) return;
  dispatch(t, [&]<class T>() {
    arange_kernel<T>
        <<<grid_for(n), 256, 0, launch_stream()>>>(static_cast<T*>(out), n, start, step);
  });
  check_launch("arange");
}

void position_mask(float* out, int64_t T, int64_t S, const int64_t* position, int64_t window) {
  launch_overlapped(position_mask_kernel, static_cast<unsigned>(grid_for(T * S)), 256, 0, out, T, S,
                    position, window);
  check_launch("position_mask");
}

void random(void* out, int64_t n, DType t, bool normal, uint64_t seed, uint64_t counter, double a,
            double b) {
  if (n == 0) return;
  dispatch_float(t, "random", [&]<class T>() {
    random_kernel<T><<<grid_for((n + 1) / 2), 256, 0, launch_stream()>>>(
        static_cast<T*>(out), n, normal, seed, counter, a, b);
  });
  check_launch("random");
}

}  // namespace wick::cuda
