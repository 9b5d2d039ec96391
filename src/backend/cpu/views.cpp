// View primitives (no copy: the output shares the input's storage with new strides), the dense
// copy, and the output-allocation helpers every kernel uses.
#include <cstring>
#include <vector>

#include "backend/composed.h"
#include "backend/cpu/kernel.h"
#include "graph/primitives.h"

namespace wick::cpu {

float* thread_scratch(ScratchSlot slot, size_t n) {
  thread_local std::vector<float> bufs[kScratchSlots];
  std::vector<float>& b = bufs[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
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

namespace {
/// Copies `u` into out's buffer at element offset `off`, walking the destination with `dst`.
void copy_region(const Node& u, Node& out, const Strides& dst, int64_t off) {
  StridedLoop<2> loop(u.shape, {dst, u.strides});
  dispatch(out.dtype, [&]<class T>() {
    T* o = out.data<T>() + off;
    const T* src = u.data<T>();
    loop.run([&](std::array<int64_t, 2> p, std::array<int64_t, 2> st, int64_t n) {
      for (int64_t i = 0; i < n; ++i) o[p[0] + i * st[0]] = src[p[1] + i * st[1]];
    });
  });
}
}  // namespace

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
  copy_region(u, out, dst, off);
}

void WriteAt::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& buf = *in[0];
  const int64_t pos = *in[2]->data<int64_t>(), n = in[1]->shape[axis], limit = buf.shape[axis];
  if (pos < 0 || pos + n > limit)
    throw Error("write_at: rows [" + std::to_string(pos) + ", " + std::to_string(pos + n) +
                ") leave the axis of size " + std::to_string(limit));
  make_view(out, buf, buf.strides, buf.offset);
  if (in[1]->size() == 0) return;
  std::unique_ptr<Node> turned;
  if (!rope.empty()) turned = rotated(rope, in[1], in[2]);
  copy_region(turned ? *turned : *in[1], out, out.strides, pos * out.strides[axis]);
}

void StopGradient::eval_cpu(std::span<Node* const> in, Node& out) {
  make_view(out, *in[0], in[0]->strides, in[0]->offset);
}

void BroadcastTo::eval_cpu(std::span<Node* const> in, Node& out) {
  // Missing leading axes and size-1 axes both get stride 0.
  make_view(out, *in[0], aligned_strides(*in[0], out.shape.size()), in[0]->offset);
}

}  // namespace wick::detail
