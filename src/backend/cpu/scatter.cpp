// Scatter-add kernels: the gradients of take (embedding) and take_along_axis. Repeated indices
// accumulate, so writes to one output row are serialised; rows of different outputs run in
// parallel only where they cannot collide (over the leading axes).
#include <cstring>

#include "backend/cpu/kernel.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

int64_t wrapped_index(const Node& idx, int64_t off, int64_t n, const char* op) {
  int64_t v = idx.dtype == DType::i32 ? idx.data<int32_t>()[off] : idx.data<int64_t>()[off];
  int64_t w = v < 0 ? v + n : v;
  if (w < 0 || w >= n)
    throw Error(std::string(op) + ": index " + std::to_string(v) + " is out of range for size " +
                std::to_string(n));
  return w;
}

void zero_output(Node& out) {
  alloc_output(out);
  if (out.size()) std::memset(out.raw(), 0, out.size() * itemsize(out.dtype));
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void TakeGrad::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& g = *in[0];
  const Node& idx = *in[1];
  int64_t n = out.shape[axis];
  // Indices are read (and checked) before any write, in row-major order.
  std::vector<int64_t> rows(static_cast<size_t>(idx.size()));
  {
    StridedLoop<1> loop(idx.shape, {idx.strides});
    size_t k = 0;
    for (int64_t r = 0; r < loop.rows; ++r) {
      int64_t off = loop.row_offsets(r)[0];
      for (int64_t i = 0; i < loop.inner; ++i)
        rows[k++] = wrapped_index(idx, off + i * loop.strides[0].back(), n, "take (gradient)");
    }
  }
  zero_output(out);
  if (out.size() == 0 || rows.empty()) return;
  int64_t pre = 1, post = 1;
  for (int d = 0; d < axis; ++d) pre *= out.shape[d];
  for (size_t d = axis + 1; d < out.shape.size(); ++d) post *= out.shape[d];
  int64_t nidx = static_cast<int64_t>(rows.size());
  // g is [pre, nidx, post] in row-major order (take's output layout).
  dispatch_float(out.dtype, "take (gradient)", [&]<class T>() {
    std::vector<compute_t<T>> acc(static_cast<size_t>(out.size()), 0);
    const T* gp = g.data<T>();
    bool dense = g.contiguous();
    parallel_for(pre, nidx * post, [&](int64_t pb, int64_t pe) {
      for (int64_t p = pb; p < pe; ++p)
        for (int64_t j = 0; j < nidx; ++j) {
          compute_t<T>* dst = acc.data() + (p * n + rows[j]) * post;
          int64_t base = (p * nidx + j) * post;
          if (dense) {
            for (int64_t i = 0; i < post; ++i) dst[i] += load(gp + base + i);
          } else {
            for (int64_t i = 0; i < post; ++i) dst[i] += load(gp + linear_offset(base + i, g.shape, g.strides));
          }
        }
    });
    T* o = out.data<T>();
    for (int64_t i = 0; i < out.size(); ++i) store(o + i, acc[i]);
  });
}

void TakeAlongAxisGrad::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& g = *in[0];
  const Node& idx = *in[1];
  int64_t n = out.shape[axis];
  zero_output(out);
  if (g.size() == 0) return;
  int64_t ax_stride = out.strides[axis];
  Strides os = out.strides;
  os[axis] = 0;  // the index supplies the position along the axis
  StridedLoop<3> loop(g.shape, {os, idx.strides, g.strides});
  // Validate every index first: kernels must not throw inside parallel regions.
  for (int64_t r = 0; r < loop.rows; ++r) {
    auto off = loop.row_offsets(r);
    for (int64_t i = 0; i < loop.inner; ++i)
      wrapped_index(idx, off[1] + i * loop.strides[1].back(), n, "take_along_axis (gradient)");
  }
  dispatch_float(out.dtype, "take_along_axis (gradient)", [&]<class T>() {
    T* o = out.data<T>();
    const T* gp = g.data<T>();
    for (int64_t r = 0; r < loop.rows; ++r) {
      auto off = loop.row_offsets(r);
      for (int64_t i = 0; i < loop.inner; ++i) {
        int64_t w = wrapped_index(idx, off[1] + i * loop.strides[1].back(), n, "");
        T* dst = o + off[0] + i * loop.strides[0].back() + w * ax_stride;
        store(dst, load(dst) + load(gp + off[2] + i * loop.strides[2].back()));
      }
    }
  });
}

}  // namespace wick::detail
