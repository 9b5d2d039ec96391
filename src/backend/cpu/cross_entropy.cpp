// Cross-entropy over the vocabulary axis, one row at a time: the forward pass reads a row of
// logits once for its max, once for the exp-sum (and the label's logit), and writes one float;
// the gradient recomputes the row's log-sum-exp and writes softmax - target directly in the
// logits' dtype. Neither materialises an f32 copy of a [tokens, vocab] tensor.
#include <cmath>
#include <vector>

#include "backend/cpu/kernel.h"
#include "backend/cpu/vmath.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

/// Labels as int64 with every non-ignored one checked against [0, V).
std::vector<int64_t> read_labels(const Node& labels, int64_t vocab, int64_t ignore_index) {
  std::vector<int64_t> out(static_cast<size_t>(labels.size()));
  int64_t st = labels.shape.empty() ? 0 : labels.strides[0];
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t off = static_cast<int64_t>(i) * st;
    int64_t v = labels.dtype == DType::i32 ? labels.data<int32_t>()[off] : labels.data<int64_t>()[off];
    if (v != ignore_index && (v < 0 || v >= vocab))
      throw Error("cross_entropy: label " + std::to_string(v) + " at position " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    out[i] = v;
  }
  return out;
}

/// A row of logits as contiguous f32 (in place when it already is one, else in scratch).
template <class T>
const float* f32_row(const T* row, int64_t stride, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (stride == 1) return row;
  }
  float* buf = thread_scratch(kRowBuffer, static_cast<size_t>(n));
  to_f32(row, stride, buf, n);
  return buf;
}

struct RowStats {
  double lse;   // log-sum-exp
  double mean;  // mean logit (label smoothing)
};

RowStats row_stats(const float* x, int64_t n, bool need_mean) {
  float m = reduce_max(x, n);
  double lse = m + std::log(static_cast<double>(exp_shift_sum(x, m, n)));
  return {lse, need_mean ? static_cast<double>(reduce_sum(x, n)) / static_cast<double>(n) : 0.0};
}

RowStats row_stats(const double* x, int64_t stride, int64_t n, bool need_mean) {
  double m = -INFINITY, s = 0, total = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i * stride]);
  for (int64_t i = 0; i < n; ++i) {
    s += std::exp(x[i * stride] - m);
    total += x[i * stride];
  }
  return {m + std::log(s), need_mean ? total / static_cast<double>(n) : 0.0};
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void CrossEntropy::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  int64_t V = x.shape[1];
  std::vector<int64_t> labels = read_labels(*in[1], V, ignore_index);
  alloc_output(out);
  // The loss is f64 for f64 logits (reference checks), f32 otherwise.
  auto put = [&out](int64_t r, double v) {
    if (out.dtype == DType::f64) out.data<double>()[r] = v;
    else out.data<float>()[r] = static_cast<float>(v);
  };
  int64_t rs = x.strides[0], cs = x.strides[1];
  double eps = smoothing;
  dispatch_float(x.dtype, "cross_entropy", [&]<class T>() {
    const T* base = x.data<T>();
    parallel_for(x.shape[0], 4 * V, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        int64_t y = labels[r];
        if (y == ignore_index) {
          put(r, 0);
          continue;
        }
        const T* row = base + r * rs;
        RowStats st;
        double target;
        if constexpr (std::is_same_v<T, double>) {
          st = row_stats(row, cs, V, eps != 0);
          target = row[y * cs];
        } else {
          const float* f = f32_row(row, cs, V);
          st = row_stats(f, V, eps != 0);
          target = f[y];
        }
        put(r, (1 - eps) * (st.lse - target) + eps * (st.lse - st.mean));
      }
    });
  });
}

void CrossEntropyGrad::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  const Node& g = *in[2];
  int64_t V = x.shape[1];
  std::vector<int64_t> labels = read_labels(*in[1], V, ignore_index);
  alloc_output(out);
  int64_t rs = x.strides[0], cs = x.strides[1], gs = g.shape.empty() ? 0 : g.strides[0];
  auto grad_at = [&g](int64_t off) {
    return g.dtype == DType::f64 ? g.data<double>()[off] : static_cast<double>(g.data<float>()[off]);
  };
  double eps = smoothing;
  dispatch_float(x.dtype, "cross_entropy", [&]<class T>() {
    const T* base = x.data<T>();
    T* dst = out.data<T>();
    parallel_for(x.shape[0], 6 * V, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* o = dst + r * V;
        int64_t y = labels[r];
        if (y == ignore_index) {
          for (int64_t j = 0; j < V; ++j) o[j] = T(0);
          continue;
        }
        double gr = grad_at(r * gs);
        const T* row = base + r * rs;
        if constexpr (std::is_same_v<T, double>) {
          RowStats st = row_stats(row, cs, V, false);
          for (int64_t j = 0; j < V; ++j) o[j] = gr * (std::exp(row[j * cs] - st.lse) - eps / V);
          o[y] -= gr * (1 - eps);
        } else {
          const float* f = f32_row(row, cs, V);
          RowStats st = row_stats(f, V, false);
          // softmax_j = exp(x_j - lse); the shared f32 exp keeps this loop vectorised.
          float* p;
          if constexpr (std::is_same_v<T, float>) p = o;  // write in place
          else p = thread_scratch(kAttnStage, static_cast<size_t>(V));
          exp_shift_sum(f, static_cast<float>(st.lse), p, V);
          float scale = static_cast<float>(gr), off = static_cast<float>(gr * eps / V);
#pragma omp simd
          for (int64_t j = 0; j < V; ++j) p[j] = p[j] * scale - off;
          p[y] -= static_cast<float>(gr * (1 - eps));
          from_f32(p, o, V);
        }
      }
    });
  });
}

std::vector<Tensor> CrossEntropy::vjp(const std::vector<Tensor>& p, const Tensor&, const Tensor& g,
                                      const std::vector<bool>& need) {
  if (!need[0]) return {Tensor(), Tensor()};
  return {make_node(p[0].shape(), p[0].dtype(), std::make_shared<CrossEntropyGrad>(ignore_index, smoothing),
                    {p[0], p[1], g}),
          Tensor()};
}

}  // namespace wick::detail
