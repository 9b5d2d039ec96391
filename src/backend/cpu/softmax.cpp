// Softmax and log-softmax over the last axis: max-subtracted, computed in f32 for f32/f16/bf16
// (f64 in f64), one row at a time with rows split across threads. A row of f32 data that is
// unit-stride is used in place; other rows are gathered into a dense f32 row first.
#include <cmath>
#include <optional>
#include <vector>

#include "backend/cpu/kernel.h"
#include "backend/cpu/rows.h"
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
  for_each_row<T>(
      x, out, 6, [&](const float* xr, float* yr) { softmax_row(xr, yr, n, log); },
      [&](const double* xr, int64_t xs, double* yr) {
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
      });
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void Softmax::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  require_same_dtype(name(), x, out);
  // Rows are finished one at a time and each element is read before it is written, so the
  // input's buffer can be the output's.
  alloc_output_donating(out, in.subspan(0, 1));
  if (out.size() == 0) return;
  dispatch_float(out.dtype, name(), [&]<class T>() { softmax_typed<T>(x, out, log); });
}

void ScaledMaskedSoftmax::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  require_same_dtype(name(), x, out);
  alloc_output(out);
  if (out.size() == 0) return;
  int64_t n = x.shape.back(), rows = out.size() / n;
  RowOffsets xo(x);
  std::optional<RowOffsets> mo;
  int64_t ms = 0;
  if (has_mask) {
    mo.emplace(*in[1]);
    ms = n == 1 ? 0 : in[1]->strides.back();
  }
  int64_t xs = n == 1 ? 1 : x.strides.back();
  // The same arithmetic as mul -> add -> softmax unfused: each step rounded to the dtype.
  dispatch_float(out.dtype, name(), [&]<class T>() {
    using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T* xp = x.data<T>();
    const T* mp = has_mask ? in[1]->data<T>() : nullptr;
    T* yp = out.data<T>();
    C s = static_cast<C>(static_cast<T>(scale));
    parallel_for(rows, 8 * n, [&](int64_t r0, int64_t r1) {
      C* buf = reinterpret_cast<C*>(thread_scratch(kRowBuffer, n * sizeof(C) / sizeof(float)));
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = xp + xo(r);
        const T* mr = has_mask ? mp + (*mo)(r) : nullptr;
        for (int64_t j = 0; j < n; ++j) {
          C v = static_cast<C>(static_cast<T>(load(xr + j * xs) * s));
          if (mr) v = static_cast<C>(static_cast<T>(v + load(mr + j * ms)));
          buf[j] = v;
        }
        if constexpr (std::is_same_v<C, double>) {
          double m = -INFINITY, sum = 0;
          for (int64_t j = 0; j < n; ++j) m = buf[j] > m ? buf[j] : m;
          for (int64_t j = 0; j < n; ++j) sum += std::exp(buf[j] - m);
          for (int64_t j = 0; j < n; ++j) yp[r * n + j] = std::exp(buf[j] - m) / sum;
        } else {
          softmax_row(buf, buf, n, false);
          from_f32(buf, yp + r * n, n);
        }
      }
    });
  });
}

}  // namespace wick::detail

namespace wick::detail {
using namespace cpu;

void SoftmaxGrad::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& p = *in[0];
  const Node& dp = *in[1];
  if (!p.contiguous() || !dp.contiguous() || p.dtype != dp.dtype || p.dtype != out.dtype)
    throw Error("softmax_grad: dense inputs of the output's dtype expected");
  alloc_output(out);
  int64_t n = out.shape.empty() ? 1 : out.shape.back();
  int64_t rows = n ? out.size() / n : 0;
  // f32 arithmetic whatever the storage (a GPU gradient keeps the half type).
  dispatch_float(out.dtype, name(), [&]<class T>() {
    using C = compute_t<T>;
    const T *pp = p.data<T>(), *gp = dp.data<T>();
    T* o = out.data<T>();
    parallel_for(rows, 4 * n, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T *pr = pp + r * n, *gr = gp + r * n;
        C dot = 0;
        for (int64_t i = 0; i < n; ++i) dot += C(pr[i]) * C(gr[i]);
        for (int64_t i = 0; i < n; ++i) o[r * n + i] = T(C(scale) * C(pr[i]) * (C(gr[i]) - dot));
      }
    });
  });
}

}  // namespace wick::detail
