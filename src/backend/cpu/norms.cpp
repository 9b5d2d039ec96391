// RMSNorm and LayerNorm over the last axis. f32/f16/bf16 compute in f32 (HF's order for RMSNorm:
// x · rsqrt(mean(x²) + eps), then · w, rounded to the output dtype once); f64 in f64. Rows are
// split across threads; weight and bias are widened once per call.
#include <cmath>
#include <vector>

#include "backend/cpu/kernel.h"
#include "backend/cpu/rows.h"
#include "backend/cpu/vmath.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

/// A 1-d parameter [D] as dense compute-type values (points at the data when already so).
template <class C>
struct Param {
  std::vector<C> buf;
  const C* p = nullptr;
  Param(const Node* n, int64_t d) {
    if (!n) return;
    int64_t s = d == 1 ? 1 : n->strides[0];
    if (n->dtype == dtype_of_v<C> && s == 1) {
      p = n->data<C>();
      return;
    }
    buf.resize(static_cast<size_t>(d));
    dispatch_float(n->dtype, "norm", [&]<class T>() {
      const T* src = n->data<T>();
      for (int64_t i = 0; i < d; ++i) buf[i] = static_cast<C>(load(src + i * s));
    });
    p = buf.data();
  }
};

/// Sum of squares with several independent accumulators (a single SIMD accumulator would be
/// bound by the add latency on rows of a few hundred elements).
inline float sum_sq(const float* x, int64_t n) {
  constexpr int kLanes = 64;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] = fmadd(x[i + j], x[i + j], acc[j]);
  float s = 0.0f;
  for (; i < n; ++i) s = fmadd(x[i], x[i], s);
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

inline float sum_of(const float* x, int64_t n) {
  constexpr int kLanes = 64;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j];
  float s = 0.0f;
  for (; i < n; ++i) s += x[i];
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

inline float sum_sq_dev(const float* x, float mean, int64_t n) {
  constexpr int kLanes = 64;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      float d = x[i + j] - mean;
      acc[j] = fmadd(d, d, acc[j]);
    }
  float s = 0.0f;
  for (; i < n; ++i) {
    float d = x[i] - mean;
    s = fmadd(d, d, s);
  }
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

/// y = x · rsqrt(mean(x²) + eps) (· w) for one dense f32 row; y may alias x.
void rms_row(const float* x, const float* w, float* y, int64_t n, float eps) {
  float r = 1.0f / std::sqrt(sum_sq(x, n) / static_cast<float>(n) + eps);
  if (w) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * r) * w[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * r;
  }
}

/// y = (x - mean) · rsqrt(var + eps) (· w) (+ b) for one dense f32 row; y may alias x.
void layer_row(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  float mean = sum_of(x, n) / static_cast<float>(n);
  float r = 1.0f / std::sqrt(sum_sq_dev(x, mean, n) / static_cast<float>(n) + eps);
  if (w && b) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = fmadd((x[i] - mean) * r, w[i], b[i]);
  } else if (w) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = ((x[i] - mean) * r) * w[i];
  } else if (b) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * r + b[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * r;
  }
}


}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void RmsNorm::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  require_same_dtype("rms_norm", x, out);
  const Node* wn = has_weight ? in[1] : nullptr;
  // Each row is read completely before it is written: x's buffer may become the output.
  alloc_output_donating(out, in.subspan(0, 1));
  if (out.size() == 0) return;
  int64_t n = x.shape.back();
  dispatch_float(out.dtype, "rms_norm", [&]<class T>() {
    if constexpr (std::is_same_v<T, double>) {
      Param<double> w(wn, n);
      for_each_row<T>(x, out, 3, [](const float*, float*) {}, [&](const double* xr, int64_t xs, double* yr) {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += xr[i * xs] * xr[i * xs];
        double r = 1.0 / std::sqrt(s / static_cast<double>(n) + eps);
        for (int64_t i = 0; i < n; ++i) yr[i] = w.p ? (xr[i * xs] * r) * w.p[i] : xr[i * xs] * r;
      });
    } else {
      Param<float> w(wn, n);
      float e = static_cast<float>(eps);
      for_each_row<T>(x, out, 3, [&](const float* xr, float* yr) { rms_row(xr, w.p, yr, n, e); },
                   [](const double*, int64_t, double*) {});
    }
  });
}

void LayerNorm::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  require_same_dtype("layer_norm", x, out);
  size_t k = 1;
  const Node* wn = has_weight ? in[k++] : nullptr;
  const Node* bn = has_bias ? in[k++] : nullptr;
  alloc_output_donating(out, in.subspan(0, 1));
  if (out.size() == 0) return;
  int64_t n = x.shape.back();
  dispatch_float(out.dtype, "layer_norm", [&]<class T>() {
    if constexpr (std::is_same_v<T, double>) {
      Param<double> w(wn, n), b(bn, n);
      for_each_row<T>(x, out, 4, [](const float*, float*) {}, [&](const double* xr, int64_t xs, double* yr) {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += xr[i * xs];
        double mean = s / static_cast<double>(n);
        double v = 0;
        for (int64_t i = 0; i < n; ++i) v += (xr[i * xs] - mean) * (xr[i * xs] - mean);
        double r = 1.0 / std::sqrt(v / static_cast<double>(n) + eps);
        for (int64_t i = 0; i < n; ++i) {
          double y = (xr[i * xs] - mean) * r;
          if (w.p) y *= w.p[i];
          if (b.p) y += b.p[i];
          yr[i] = y;
        }
      });
    } else {
      Param<float> w(wn, n), b(bn, n);
      float e = static_cast<float>(eps);
      for_each_row<T>(x, out, 4, [&](const float* xr, float* yr) { layer_row(xr, w.p, b.p, yr, n, e); },
                   [](const double*, int64_t, double*) {});
    }
  });
}

}  // namespace wick::detail
