// Output placement shared by every backend: buffers on the output's device, donation of a dead
// input's buffer, and views.
#include "backend/output.h"

#include "core/lane.h"

namespace wick::detail {

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
    // Nor is a block another lane's queued kernels may still read (core/lane.h).
    if (in->storage->lanes.load(std::memory_order_acquire) & ~lane_bit(this_lane)) continue;
    out.storage = in->storage;
    out.storage->side_tag.store(0, std::memory_order_relaxed);
    out.strides = contiguous_strides(out.shape);
    out.offset = 0;
    return true;
  }
  alloc_output(out);
  return false;
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

// Strides for viewing `in` (shape in.shape, strides in.strides) as `shape` without copying, or
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

}  // namespace wick::detail
