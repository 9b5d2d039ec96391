// View primitives (no copy: the output shares the input's storage with new strides), the dense
// copy, and the output-allocation helpers every kernel uses.
#include <cstring>
#include <vector>

#include "backend/cpu/kernel.h"
#include "graph/primitives.h"

namespace wick::cpu {

void alloc_output(Node& out) {
  out.storage = detail::allocate(std::max<size_t>(1, out.size() * itemsize(out.dtype)), out.device);
  out.strides = contiguous_strides(out.shape);
  out.offset = 0;
}

bool alloc_output_donating(Node& out, std::span<Node* const> candidates) {
  size_t bytes = out.size() * itemsize(out.dtype);
  for (size_t i = 0; i < candidates.size() && i < out.inputs.size(); ++i) {
    Node* in = candidates[i];
    // The consumer's handle in out.inputs must be the only owner of the node, and the node the
    // only owner of the storage; then no one can observe the input again.
    if (out.inputs[i].node_ptr().use_count() != 1 || in->storage.use_count() != 1) continue;
    if (in->size() * itemsize(in->dtype) != bytes || in->offset != 0 || !in->contiguous()) continue;
    if (in->storage->device != out.device) continue;
    // Memory wick does not own (a read-only file mapping, a caller's buffer) is never written.
    if (in->storage->external_owner) continue;
    out.storage = in->storage;
    out.strides = contiguous_strides(out.shape);
    out.offset = 0;
    return true;
  }
  alloc_output(out);
  return false;
}

float* thread_scratch(ScratchSlot slot, size_t n) {
  thread_local std::vector<float> bufs[kScratchSlots];
  std::vector<float>& b = bufs[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

void make_view(Node& out, const Node& in, Strides strides, int64_t offset) {
  out.storage = in.storage;
  out.strides = std::move(strides);
  out.offset = offset;
}

Strides aligned_strides(const Node& n, size_t ndim) {
  Strides s(ndim, 0);
  size_t lead = ndim - n.strides.size();
  for (size_t d = 0; d < n.strides.size(); ++d) s[lead + d] = n.shape[d] == 1 ? 0 : n.strides[d];
  return s;
}

namespace {

/// Copies any strided view of `in` into the dense buffer `dst` (same dtype).
void copy_dense(const Node& in, void* dst) {
  size_t item = itemsize(in.dtype);
  if (in.contiguous()) {
    std::memcpy(dst, in.raw(), in.size() * item);
    return;
  }
  StridedLoop<2> loop(in.shape, {contiguous_strides(in.shape), in.strides});
  dispatch(in.dtype, [&]<class T>() {
    T* d = static_cast<T*>(dst);
    const T* s = in.data<T>();
    loop.run([&](std::array<int64_t, 2> off, std::array<int64_t, 2> st, int64_t n) {
      T* dp = d + off[0];
      const T* sp = s + off[1];
      if (st[1] == 1) {
        std::memcpy(dp, sp, n * sizeof(T));
      } else {
        for (int64_t i = 0; i < n; ++i) dp[i] = sp[i * st[1]];
      }
    });
  });
}

/// Strides for viewing `in` (shape in.shape, strides in.strides) as `shape` without copying, or
/// false when the layout does not allow it. Works axis-group by axis-group: each group of input
/// axes that is contiguous in itself may be re-split freely.
bool reshape_strides(const Node& in, const Shape& shape, Strides& out) {
  if (in.contiguous()) {
    out = contiguous_strides(shape);
    return true;
  }
  // Input axes without size-1 ones.
  Shape is;
  Strides ist;
  for (size_t d = 0; d < in.shape.size(); ++d) {
    if (in.shape[d] != 1) {
      is.push_back(in.shape[d]);
      ist.push_back(in.strides[d]);
    }
  }
  out.assign(shape.size(), 0);
  size_t i = 0, o = 0;
  while (o < shape.size() || i < is.size()) {
    if (o < shape.size() && shape[o] == 1) {
      out[o++] = 0;
      continue;
    }
    if (i >= is.size() || o >= shape.size()) return false;
    // Gather input axes [i, ie) and output axes [o, oe) with equal products.
    size_t ie = i + 1, oe = o + 1;
    int64_t pi = is[i], po = shape[o];
    while (pi != po) {
      if (pi < po) {
        if (ie >= is.size()) return false;
        pi *= is[ie++];
      } else {
        if (oe >= shape.size()) return false;
        po *= shape[oe++];
      }
    }
    for (size_t k = i; k + 1 < ie; ++k)
      if (ist[k] != ist[k + 1] * is[k + 1]) return false;  // group not contiguous in itself
    int64_t stride = ist[ie - 1];
    for (size_t k = oe; k-- > o;) {
      out[k] = shape[k] == 1 ? 0 : stride;
      stride *= shape[k];
    }
    i = ie;
    o = oe;
  }
  return true;
}

}  // namespace
}  // namespace wick::cpu

namespace wick::detail {
using namespace cpu;

void Copy::eval_cpu(std::span<Node* const> in, Node& out) {
  alloc_output(out);
  if (out.size()) copy_dense(*in[0], out.raw());
}

void Reshape::eval_cpu(std::span<Node* const> in, Node& out) {
  Strides s;
  if (reshape_strides(*in[0], out.shape, s)) {
    make_view(out, *in[0], std::move(s), in[0]->offset);
    return;
  }
  alloc_output(out);
  if (out.size()) copy_dense(*in[0], out.raw());
}

void Transpose::eval_cpu(std::span<Node* const> in, Node& out) {
  Strides s(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) s[d] = in[0]->strides[perm[d]];
  make_view(out, *in[0], std::move(s), in[0]->offset);
}

void Slice::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  Strides s(x.strides.size());
  int64_t off = x.offset;
  for (size_t d = 0; d < s.size(); ++d) {
    s[d] = x.strides[d] * step[d];
    if (out.shape[d] > 0) off += start[d] * x.strides[d];
  }
  make_view(out, x, std::move(s), off);
}

void SliceUpdate::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  const Node& u = *in[1];
  Node* const donor[] = {in[0]};
  if (!alloc_output_donating(out, donor) && out.size()) copy_dense(x, out.raw());
  if (u.size() == 0) return;
  Strides dst = out.strides;
  int64_t off = 0;
  for (size_t d = 0; d < dst.size(); ++d) {
    off += start[d] * dst[d];
    dst[d] *= step[d];
  }
  StridedLoop<2> loop(u.shape, {dst, u.strides});
  dispatch(out.dtype, [&]<class T>() {
    T* o = out.data<T>() + off;
    const T* src = u.data<T>();
    loop.run([&](std::array<int64_t, 2> p, std::array<int64_t, 2> st, int64_t n) {
      for (int64_t i = 0; i < n; ++i) o[p[0] + i * st[0]] = src[p[1] + i * st[1]];
    });
  });
}

void StopGradient::eval_cpu(std::span<Node* const> in, Node& out) {
  make_view(out, *in[0], in[0]->strides, in[0]->offset);
}

void BroadcastTo::eval_cpu(std::span<Node* const> in, Node& out) {
  // Missing leading axes and size-1 axes both get stride 0.
  make_view(out, *in[0], aligned_strides(*in[0], out.shape.size()), in[0]->offset);
}

}  // namespace wick::detail
