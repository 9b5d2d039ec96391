// Softmax and log-softmax over the last axis: max-subtracted, computed in f32 for f32/f16/bf16
// (f64 in f64), one row at a time with rows split across threads. A row of f32 data that is
// unit-stride is used in place; other rows are gathered into a dense f32 row first.
#include <cmath>
#include <vector>

#include "backend/cpu/kernel.h"
#include "backend/cpu/vmath.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

/// y = softmax(x) or log_softmax(x) of one dense f32 row; y may alias x.
void softmax_row(const float* x, float* y, int64_t n, bool log) {
  float m = reduce_max(x, n);
  if (log) {
    float ls = std::log(exp_shift_sum(x, m, n));
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) - ls;
  } else {
    float inv = 1.0f / exp_shift_sum(x, m, y, n);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  }
}

template <class T>
void softmax_typed(const Node& x, Node& out, bool log) {
  int64_t n = x.shape.back();
  int64_t rows = out.size() / n;
  int64_t xs = x.strides.back();
  if (n == 1) xs = 1;
  RowOffsets offs(x);
  const T* xp = x.data<T>();
  T* yp = out.data<T>();
  parallel_for(rows, 6 * n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = xp + offs(r);
      T* yr = yp + r * n;
      if constexpr (std::is_same_v<T, double>) {
        double m = -INFINITY;
        for (int64_t i = 0; i < n; ++i) m = xr[i * xs] > m ? xr[i * xs] : m;
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += std::exp(xr[i * xs] - m);
        if (log) {
          double ls = std::log(s);
          for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i * xs] - m) - ls;
        } else {
          for (int64_t i = 0; i < n; ++i) yr[i] = std::exp(xr[i * xs] - m) / s;
        }
      } else if constexpr (std::is_same_v<T, float>) {
        if (xs == 1) {
          softmax_row(xr, yr, n, log);
        } else {
          to_f32(xr, xs, yr, n);
          softmax_row(yr, yr, n, log);
        }
      } else {
        float* buf = thread_scratch(kRowBuffer, static_cast<size_t>(n));
        to_f32(xr, xs, buf, n);
        softmax_row(buf, buf, n, log);
        from_f32(buf, yr, n);
      }
    }
  });
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void Softmax::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  if (x.dtype != out.dtype)
    throw Error(std::string(name()) + ": input dtype " + dtype_name(x.dtype) + " != output " + dtype_name(out.dtype));
  // Rows are finished one at a time and each element is read before it is written, so the
  // input's buffer can be the output's.
  alloc_output_donating(out, in.subspan(0, 1));
  if (out.size() == 0) return;
  dispatch_float(out.dtype, name(), [&]<class T>() { softmax_typed<T>(x, out, log); });
}

}  // namespace wick::detail
