#pragma once
// The shared driver of the row-wise kernels (softmax, RMSNorm, LayerNorm).
#include <type_traits>

#include "backend/cpu/kernel.h"
#include "backend/cpu/vmath.h"

namespace wick::cpu {

/// Runs a row-wise kernel over the last axis of `x` (any strides) into the dense `out`, rows
/// split across threads. f32 rows go to row32(x_row, y_row) (gathered first when the last axis
/// is strided), f64 rows to row64(x_row, x_stride, y_row), f16/bf16 rows through an f32 buffer.
/// `cost` is the rough work per element, for the threading threshold.
template <class T, class RowF32, class RowF64>
void for_each_row(const Node& x, Node& out, int64_t cost, RowF32&& row32, RowF64&& row64) {
  int64_t n = x.shape.back();
  int64_t rows = out.size() / n;
  int64_t xs = n == 1 ? 1 : x.strides.back();
  RowOffsets offs(x);
  const T* xp = x.data<T>();
  T* yp = out.data<T>();
  parallel_for(rows, cost * n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = xp + offs(r);
      T* yr = yp + r * n;
      if constexpr (std::is_same_v<T, double>) {
        row64(xr, xs, yr);
      } else if constexpr (std::is_same_v<T, float>) {
        if (xs == 1) {
          row32(xr, yr);
        } else {
          to_f32(xr, xs, yr, n);
          row32(yr, yr);
        }
      } else {
        float* buf = thread_scratch(kRowBuffer, static_cast<size_t>(n));
        to_f32(xr, xs, buf, n);
        row32(buf, buf);
        from_f32(buf, yr, n);
      }
    }
  });
}

}  // namespace wick::cpu
