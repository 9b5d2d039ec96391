// Joining and indexing kernels: concatenate, take (and embedding), take_along_axis.
#include <cstring>

#include "backend/cpu/kernel.h"
#include "graph/primitives.h"

namespace wick::cpu {
namespace {

int64_t index_at(const Node& idx, int64_t off) {
  return idx.dtype == DType::i32 ? idx.data<int32_t>()[off] : idx.data<int64_t>()[off];
}

[[noreturn]] void out_of_range(const char* op, int64_t v, int axis, int64_t n) {
  throw Error(std::string(op) + ": index " + std::to_string(v) + " is out of range for axis " +
              std::to_string(axis) + " of size " + std::to_string(n));
}

/// Dense, range-checked copy of the indices with negatives wrapped.
std::vector<int64_t> read_indices(const Node& idx, int64_t n, int axis, const char* op) {
  std::vector<int64_t> v(static_cast<size_t>(idx.size()));
  StridedLoop<1> loop(idx.shape, {idx.strides});
  size_t k = 0;
  for (int64_t r = 0; r < loop.rows; ++r) {
    int64_t off = loop.row_offsets(r)[0];
    for (int64_t i = 0; i < loop.inner; ++i) {
      int64_t x = index_at(idx, off + i * loop.strides[0].back());
      int64_t w = x < 0 ? x + n : x;
      if (w < 0 || w >= n) out_of_range(op, x, axis, n);
      v[k++] = w;
    }
  }
  return v;
}

/// Copies `src` (any strides) into `dst` elements laid out with `dst_strides`.
void strided_copy(const Node& src, void* dst, const Strides& dst_strides) {
  StridedLoop<2> loop(src.shape, {dst_strides, src.strides});
  dispatch(src.dtype, [&]<class T>() {
    T* d = static_cast<T*>(dst);
    const T* s = src.data<T>();
    loop.run([&](std::array<int64_t, 2> off, std::array<int64_t, 2> st, int64_t n) {
      if (st[0] == 1 && st[1] == 1) {
        std::memcpy(d + off[0], s + off[1], n * sizeof(T));
      } else {
        for (int64_t i = 0; i < n; ++i) d[off[0] + i * st[0]] = s[off[1] + i * st[1]];
      }
    });
  });
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void Concatenate::eval_cpu(std::span<Node* const> in, Node& out) {
  alloc_output(out);
  size_t item = itemsize(out.dtype);
  int64_t at = 0;
  for (Node* x : in) {
    if (x->size()) strided_copy(*x, static_cast<char*>(out.raw()) + at * out.strides[axis] * item, out.strides);
    at += x->shape[axis];
  }
}

void Take::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  std::vector<int64_t> idx = read_indices(*in[1], x.shape[axis], axis, "take");
  alloc_output(out);
  if (out.size() == 0) return;
  // x as [pre, n, post]; each (p, j) copies one `post` run.
  int64_t pre = 1, post = 1;
  for (int d = 0; d < axis; ++d) pre *= x.shape[d];
  for (size_t d = axis + 1; d < x.shape.size(); ++d) post *= x.shape[d];
  Shape pre_shape(x.shape.begin(), x.shape.begin() + axis);
  Strides pre_strides(x.strides.begin(), x.strides.begin() + axis);
  Shape post_shape(x.shape.begin() + axis + 1, x.shape.end());
  Strides post_strides(x.strides.begin() + axis + 1, x.strides.end());
  StridedLoop<2> post_loop(post_shape, {contiguous_strides(post_shape), post_strides});
  bool dense_post = post_loop.rows == 1 && (post_loop.strides[1].back() == 1 || post == 1);
  int64_t n_idx = static_cast<int64_t>(idx.size());
  size_t item = itemsize(x.dtype);
  int64_t ax_stride = x.strides[axis];
  const char* src = static_cast<const char*>(x.raw());
  char* dst = static_cast<char*>(out.raw());
  parallel_for(pre * n_idx, post, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t p = t / n_idx, j = t % n_idx;
      int64_t pre_off = linear_offset(p, pre_shape, pre_strides);
      const char* s = src + (pre_off + idx[j] * ax_stride) * static_cast<int64_t>(item);
      char* d = dst + t * post * static_cast<int64_t>(item);
      if (dense_post) {
        std::memcpy(d, s, post * item);
      } else {
        for (int64_t r = 0; r < post_loop.rows; ++r) {
          auto off = post_loop.row_offsets(r);
          for (int64_t i = 0; i < post_loop.inner; ++i)
            std::memcpy(d + (off[0] + i * post_loop.strides[0].back()) * item,
                        s + (off[1] + i * post_loop.strides[1].back()) * item, item);
        }
      }
    }
  });
}

void TakeAlongAxis::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  const Node& ind = *in[1];
  int64_t n = x.shape[axis];
  alloc_output(out);
  read_indices(ind, n, axis, "take_along_axis");  // validates before the parallel loop
  Strides xs = x.strides;
  int64_t ax_stride = xs[axis];
  xs[axis] = 0;  // the index supplies the position along the axis
  StridedLoop<3> loop(out.shape, {out.strides, ind.strides, xs});
  dispatch(x.dtype, [&]<class T>() {
    T* o = out.data<T>();
    const T* src = x.data<T>();
    loop.run([&](std::array<int64_t, 3> off, std::array<int64_t, 3> st, int64_t len) {
      for (int64_t i = 0; i < len; ++i) {
        int64_t v = index_at(ind, off[1] + i * st[1]);
        int64_t w = v < 0 ? v + n : v;
        o[off[0] + i] = src[off[2] + i * st[2] + w * ax_stride];
      }
    });
  });
}

}  // namespace wick::detail
