// Reduction kernels. The input is viewed as [kept axes..., reduced axes...]; each output element
// reduces its slice with a StridedLoop over the reduced axes. Floating sums accumulate in f64 so
// the result does not depend on the thread split.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "backend/cpu/kernel.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

struct Split {
  Shape kept_shape, red_shape;
  Strides kept_strides, red_strides;
};

Split split_axes(const Node& x, const std::vector<int>& axes) {
  Split s;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    bool red = std::find(axes.begin(), axes.end(), static_cast<int>(d)) != axes.end();
    (red ? s.red_shape : s.kept_shape).push_back(x.shape[d]);
    (red ? s.red_strides : s.kept_strides).push_back(x.strides[d]);
  }
  return s;
}

/// Offset of output element `o` (row-major over kept_shape) in the input.
int64_t kept_offset(const Split& s, int64_t o) { return linear_offset(o, s.kept_shape, s.kept_strides); }

template <class T>
void reduce_kernel(detail::ReduceOp op, const Node& x, const std::vector<int>& axes, Node& out) {
  using detail::ReduceOp;
  using C = compute_t<T>;
  using Acc = std::conditional_t<std::is_floating_point_v<C>, double, int64_t>;
  Split s = split_axes(x, axes);
  StridedLoop<1> red(s.red_shape, {s.red_strides});
  int64_t count = numel(s.red_shape);
  const T* base = x.data<T>();
  T* o = out.data<T>();
  parallel_for(out.size(), std::max<int64_t>(count, 1), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T* p = base + kept_offset(s, i);
      Acc acc;
      if (op == ReduceOp::sum || op == ReduceOp::mean) {
        acc = 0;
        for (int64_t r = 0; r < red.rows; ++r) {
          const T* q = p + red.row_offsets(r)[0];
          int64_t st = red.strides[0].back();
          for (int64_t k = 0; k < red.inner; ++k) acc += static_cast<Acc>(load(q + k * st));
        }
        if (op == ReduceOp::mean) {
          if constexpr (std::is_floating_point_v<Acc>) acc = count ? acc / count : std::numeric_limits<Acc>::quiet_NaN();
        }
      } else {
        bool is_max = op == ReduceOp::max;
        acc = static_cast<Acc>(load(p));
        for (int64_t r = 0; r < red.rows; ++r) {
          const T* q = p + red.row_offsets(r)[0];
          int64_t st = red.strides[0].back();
          for (int64_t k = 0; k < red.inner; ++k) {
            Acc v = static_cast<Acc>(load(q + k * st));
            bool nan = v != v;  // NaN wins, as in PyTorch
            if (nan || (is_max ? v > acc : v < acc)) acc = v;
            if (nan) break;
          }
        }
      }
      store(o + i, acc);
    }
  });
}

/// The value and index argmax (argmin) reports over p[0], p[st], ... p[(n-1)·st]: the first
/// NaN, else the first maximum (minimum), as PyTorch does.
template <class T>
auto arg_scan(const T* p, int64_t n, int64_t st, bool is_max) {
  auto best = load(p);
  int64_t at = 0;
  for (int64_t k = 1; k < n && best == best; ++k) {
    auto v = load(p + k * st);
    if (v != v || (is_max ? v > best : v < best)) {
      best = v;
      at = k;
    }
  }
  return std::pair{best, at};
}

template <class T>
void arg_kernel(bool is_max, const Node& x, int axis, Node& out) {
  Split s = split_axes(x, {axis});
  int64_t n = x.shape[axis], st = x.strides[axis];
  const T* base = x.data<T>();
  int64_t* o = out.data<int64_t>();
  parallel_for(out.size(), n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) o[i] = arg_scan(base + kept_offset(s, i), n, st, is_max).second;
  });
}

template <class T>
void greedy_pick_kernel(const Node& x, Node& out) {
  const int64_t n = x.shape[1], rs = x.strides[0], cs = x.strides[1];
  const T* base = x.data<T>();
  float* o = out.data<float>();
  parallel_for(x.shape[0], n, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* p = base + r * rs;
      const auto [best, at] = arg_scan(p, n, cs, true);  // the index argmax gives
      const float top = static_cast<float>(best);
      // Summed in double: a vocabulary of 150k terms in f32 drifts by ~1e-4.
      double sum = 0.0;
      for (int64_t k = 0; k < n; ++k) sum += std::exp(static_cast<float>(load(p + k * cs)) - top);
      o[2 * r] = top == -std::numeric_limits<float>::infinity() ? std::numeric_limits<float>::quiet_NaN()
                                                                 : static_cast<float>(-std::log(sum));
      o[2 * r + 1] = static_cast<float>(at);
    }
  });
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void Reduce::eval_cpu(std::span<Node* const> in, Node& out) {
  alloc_output(out);
  dispatch(out.dtype, [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) {
      // max/min over bool (sum and mean were promoted by the builder).
      reduce_kernel<uint8_t>(op, *in[0], axes, out);
    } else {
      reduce_kernel<T>(op, *in[0], axes, out);
    }
  });
}

void ArgReduce::eval_cpu(std::span<Node* const> in, Node& out) {
  alloc_output(out);
  dispatch(in[0]->dtype, [&]<class T>() { arg_kernel<T>(is_max, *in[0], axis, out); });
}

void GreedyPick::eval_cpu(std::span<Node* const> in, Node& out) {
  alloc_output(out);
  dispatch_float(in[0]->dtype, "greedy_pick", [&]<class T>() { greedy_pick_kernel<T>(*in[0], out); });
}

}  // namespace wick::detail
