// Builders of views, joins, splits and indexing.
#include <algorithm>
#include <numeric>

#include "graph/ops_common.h"

namespace wick {

using namespace detail;

Tensor reshape(const Tensor& x, const Shape& shape) {
  require_defined("reshape", {&x});
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t d = 0; d < s.size(); ++d) {
    if (s[d] == -1) {
      if (infer >= 0) throw Error("reshape: more than one -1 in " + shape_str(shape));
      infer = static_cast<int>(d);
    } else if (s[d] < 0) {
      throw Error("reshape: negative dimension in " + shape_str(shape));
    } else {
      known *= s[d];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw Error("reshape: cannot reshape " + shape_str(x.shape()) + " into " + shape_str(shape));
    s[infer] = x.numel() / known;
  }
  if (numel(s) != x.numel())
    throw Error("reshape: cannot reshape " + shape_str(x.shape()) + " into " + shape_str(shape));
  if (s == x.shape()) return x;
  return build<Reshape>(s, x.dtype(), {x});
}

Tensor flatten(const Tensor& x) {
  require_defined("flatten", {&x});
  return reshape(x, {x.numel()});
}

Tensor transpose(const Tensor& x, const std::vector<int>& perm) {
  require_defined("transpose", {&x});
  int nd = x.ndim();
  if (static_cast<int>(perm.size()) != nd)
    throw Error("transpose: permutation of " + std::to_string(perm.size()) + " axes for shape " +
                shape_str(x.shape()));
  std::vector<int> p;
  std::vector<bool> used(nd, false);
  for (int a : perm) {
    int n = normalize_axis(a, nd, "transpose");
    if (used[n]) throw Error("transpose: repeated axis in permutation");
    used[n] = true;
    p.push_back(n);
  }
  bool identity = true;
  for (int d = 0; d < nd; ++d) identity &= p[d] == d;
  if (identity) return x;
  Shape s(nd);
  for (int d = 0; d < nd; ++d) s[d] = x.shape()[p[d]];
  return build<Transpose>(s, x.dtype(), {x}, p);
}

Tensor transpose(const Tensor& x) {
  require_defined("transpose", {&x});
  std::vector<int> p(x.ndim());
  std::iota(p.rbegin(), p.rend(), 0);
  return transpose(x, p);
}

Tensor swapaxes(const Tensor& x, int a, int b) {
  require_defined("swapaxes", {&x});
  std::vector<int> p(x.ndim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[normalize_axis(a, x.ndim(), "swapaxes")], p[normalize_axis(b, x.ndim(), "swapaxes")]);
  return transpose(x, p);
}

Tensor slice(const Tensor& x, const std::vector<int64_t>& start, const std::vector<int64_t>& stop,
             const std::vector<int64_t>& step) {
  require_defined("slice", {&x});
  size_t nd = x.shape().size();
  if (start.size() > nd || stop.size() != start.size() || (!step.empty() && step.size() != start.size()))
    throw Error("slice: " + std::to_string(start.size()) + " starts, " + std::to_string(stop.size()) +
                " stops and " + std::to_string(step.size()) + " steps for shape " + shape_str(x.shape()));
  std::vector<int64_t> b(nd, 0), st(nd, 1);
  Shape s = x.shape();
  bool identity = true;
  for (size_t d = 0; d < start.size(); ++d) {
    int64_t n = x.shape()[d];
    int64_t k = step.empty() ? 1 : step[d];
    if (k <= 0) throw Error("slice: step must be positive, got " + std::to_string(k));
    auto clamp = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
    int64_t lo = clamp(start[d]), hi = clamp(stop[d]);
    s[d] = hi > lo ? (hi - lo + k - 1) / k : 0;
    b[d] = lo;
    st[d] = k;
    identity &= s[d] == n && (k == 1 || n <= 1);
  }
  if (identity) return x;
  return build<Slice>(s, x.dtype(), {x}, b, st);
}

Tensor slice(const Tensor& x, int axis, int64_t start, int64_t stop, int64_t step) {
  require_defined("slice", {&x});
  int a = normalize_axis(axis, x.ndim(), "slice");
  std::vector<int64_t> b(a + 1, 0), e(a + 1), s(a + 1, 1);
  for (int d = 0; d < a; ++d) e[d] = x.shape()[d];
  b[a] = start;
  e[a] = stop;
  s[a] = step;
  return slice(x, b, e, s);
}

Tensor slice_update(const Tensor& x, const Tensor& update, const std::vector<int64_t>& start,
                    const std::vector<int64_t>& step) {
  require_defined("slice_update", {&x, &update});
  size_t nd = x.shape().size();
  auto fail = [&](const std::string& why) {
    throw Error("slice_update: x " + shape_str(x.shape()) + ", update " + shape_str(update.shape()) +
                ": " + why);
  };
  if (start.size() != nd || (!step.empty() && step.size() != nd))
    fail(std::to_string(start.size()) + " starts and " + std::to_string(step.size()) +
         " steps for " + std::to_string(nd) + " axes");
  if (update.shape().size() > nd) fail("update has more axes than x");
  Shape region(nd, 1);
  std::copy(update.shape().begin(), update.shape().end(), region.end() - update.shape().size());
  std::vector<int64_t> b(nd), st(nd, 1);
  for (size_t d = 0; d < nd; ++d) {
    int64_t n = x.shape()[d];
    b[d] = start[d] < 0 ? start[d] + n : start[d];
    if (!step.empty()) st[d] = step[d];
    if (st[d] <= 0) fail("step must be positive");
    if (region[d] > 0 && (b[d] < 0 || b[d] + (region[d] - 1) * st[d] >= n))
      fail("region on axis " + std::to_string(d) + " (start " + std::to_string(start[d]) +
           ", extent " + std::to_string(region[d]) + ", step " + std::to_string(st[d]) +
           ") leaves the axis of size " + std::to_string(n));
  }
  return build<SliceUpdate>(x.shape(), x.dtype(), {x, broadcast_view(cast(update, x.dtype()), region)},
                            b, st);
}

Tensor slice_update(const Tensor& x, const Tensor& update, int axis, int64_t start) {
  require_defined("slice_update", {&x, &update});
  int a = normalize_axis(axis, x.ndim(), "slice_update");
  std::vector<int64_t> b(x.ndim(), 0);
  b[a] = start;
  return slice_update(x, update, b);
}

Tensor detail::write_at(const Tensor& buffer, const Tensor& update, int axis, const Tensor& position) {
  require_defined("write_at", {&buffer, &update, &position});
  int a = normalize_axis(axis, buffer.ndim(), "write_at");
  Shape region = buffer.shape();
  region[static_cast<size_t>(a)] = update.ndim() == buffer.ndim() ? update.shape()[static_cast<size_t>(a)] : -1;
  if (update.shape() != region)
    throw Error("write_at: update " + shape_str(update.shape()) + " does not fit buffer " +
                shape_str(buffer.shape()) + " but for axis " + std::to_string(a));
  return build<WriteAt>(buffer.shape(), buffer.dtype(),
                        {buffer, cast(update, buffer.dtype()), position_operand(position, "write_at")}, a);
}

Tensor detail::position_operand(const Tensor& position, const char* op) {
  require_defined(op, {&position});
  if (position.numel() != 1 || is_floating(position.dtype()) || position.dtype() == DType::boolean)
    throw Error(std::string(op) + ": position must be one integer, got " + shape_str(position.shape()) + " " +
                dtype_name(position.dtype()));
  return cast(reshape(position, {1}), DType::i64);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  require_defined("broadcast_to", {&x});
  bool ok = shape.size() >= x.shape().size();
  for (size_t d = 0; ok && d < x.shape().size(); ++d) {
    int64_t xd = x.shape()[d], sd = shape[shape.size() - x.shape().size() + d];
    ok = xd == sd || xd == 1;
  }
  for (int64_t d : shape) ok &= d >= 0;
  if (!ok)
    throw Error("broadcast_to: cannot broadcast " + shape_str(x.shape()) + " to " + shape_str(shape));
  if (x.shape() == shape) return x;
  return build<BroadcastTo>(shape, x.dtype(), {x});
}

Tensor expand_dims(const Tensor& x, int axis) {
  require_defined("expand_dims", {&x});
  int a = normalize_axis(axis, x.ndim() + 1, "expand_dims");
  Shape s = x.shape();
  s.insert(s.begin() + a, 1);
  return build<Reshape>(s, x.dtype(), {x});
}

Tensor squeeze(const Tensor& x, int axis) {
  require_defined("squeeze", {&x});
  int a = normalize_axis(axis, x.ndim(), "squeeze");
  if (x.shape()[a] != 1)
    throw Error("squeeze: axis " + std::to_string(axis) + " of " + shape_str(x.shape()) + " is not 1");
  Shape s = x.shape();
  s.erase(s.begin() + a);
  return build<Reshape>(s, x.dtype(), {x});
}

Tensor squeeze(const Tensor& x) {
  require_defined("squeeze", {&x});
  Shape s;
  for (int64_t d : x.shape())
    if (d != 1) s.push_back(d);
  if (s == x.shape()) return x;
  return build<Reshape>(s, x.dtype(), {x});
}

Tensor contiguous(const Tensor& x) {
  require_defined("contiguous", {&x});
  if (x.is_evaluated() && x.node()->contiguous()) return x;
  return build<Copy>(x.shape(), x.dtype(), {x});
}

Tensor to(const Tensor& x, Device d) {
  require_defined("to", {&x});
  if (x.device() == d) return x;
  if (d.type == Device::Type::cuda && (d.index < 0 || d.index >= cuda_device_count()))
    throw Error("to: device " + d.str() + " is not available (this machine and build have " +
                std::to_string(cuda_device_count()) + " CUDA devices)");
  return make_node_on(d, x.shape(), x.dtype(), std::make_shared<ToDevice>(), {contiguous(x)});
}

Tensor concatenate(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw Error("concatenate: no tensors");
  for (const Tensor& x : xs) require_defined("concatenate", {&x});
  int nd = xs[0].ndim();
  if (nd == 0) throw Error("concatenate: 0-d tensors cannot be concatenated");
  int a = normalize_axis(axis, nd, "concatenate");
  Shape s = xs[0].shape();
  DType t = xs[0].dtype();
  s[a] = 0;
  for (const Tensor& x : xs) {
    bool ok = x.ndim() == nd;
    for (int d = 0; ok && d < nd; ++d) ok = d == a || x.shape()[d] == xs[0].shape()[d];
    if (!ok)
      throw Error("concatenate: shape " + shape_str(x.shape()) + " does not match " +
                  shape_str(xs[0].shape()) + " outside axis " + std::to_string(a));
    s[a] += x.shape()[a];
    t = promote_types(t, x.dtype());
  }
  if (xs.size() == 1) return xs[0];
  std::vector<Tensor> ins;
  for (const Tensor& x : xs) ins.push_back(cast(x, t));
  return build<Concatenate>(s, t, std::move(ins), a);
}

Tensor stack(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw Error("stack: no tensors");
  std::vector<Tensor> ex;
  for (const Tensor& x : xs) {
    require_defined("stack", {&x});
    if (x.shape() != xs[0].shape())
      throw Error("stack: shape " + shape_str(x.shape()) + " differs from " + shape_str(xs[0].shape()));
    ex.push_back(expand_dims(x, normalize_axis(axis, xs[0].ndim() + 1, "stack")));
  }
  if (ex.size() == 1) return ex[0];
  return concatenate(ex, axis);
}

std::vector<Tensor> split(const Tensor& x, int sections, int axis) {
  require_defined("split", {&x});
  int a = normalize_axis(axis, x.ndim(), "split");
  if (sections <= 0 || x.shape()[a] % sections != 0)
    throw Error("split: axis of size " + std::to_string(x.shape()[a]) + " cannot be split into " +
                std::to_string(sections) + " equal parts");
  std::vector<int64_t> idx;
  int64_t part = x.shape()[a] / sections;
  for (int i = 1; i < sections; ++i) idx.push_back(i * part);
  return split(x, idx, a);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& indices, int axis) {
  require_defined("split", {&x});
  int a = normalize_axis(axis, x.ndim(), "split");
  std::vector<Tensor> out;
  int64_t prev = 0, n = x.shape()[a];
  for (size_t i = 0; i <= indices.size(); ++i) {
    int64_t end = i < indices.size() ? std::clamp<int64_t>(indices[i], 0, n) : n;
    if (end < prev) throw Error("split: indices must be non-decreasing");
    out.push_back(slice(x, a, prev, end));
    prev = end;
  }
  return out;
}

namespace {
void require_index_dtype(const Tensor& idx, const char* op) {
  if (!is_integral(idx.dtype()))
    throw Error(std::string(op) + ": indices must be i32 or i64, got " + dtype_name(idx.dtype()));
}
}  // namespace

Tensor take(const Tensor& x, const Tensor& indices, int axis) {
  require_defined("take", {&x, &indices});
  require_index_dtype(indices, "take");
  int a = normalize_axis(axis, x.ndim(), "take");
  Shape s(x.shape().begin(), x.shape().begin() + a);
  s.insert(s.end(), indices.shape().begin(), indices.shape().end());
  s.insert(s.end(), x.shape().begin() + a + 1, x.shape().end());
  return build<Take>(s, x.dtype(), {x, indices}, a);
}

Tensor take_along_axis(const Tensor& x, const Tensor& indices, int axis) {
  require_defined("take_along_axis", {&x, &indices});
  require_index_dtype(indices, "take_along_axis");
  if (indices.ndim() != x.ndim())
    throw Error("take_along_axis: indices " + shape_str(indices.shape()) + " must have the rank of " +
                shape_str(x.shape()));
  int a = normalize_axis(axis, x.ndim(), "take_along_axis");
  // Other axes broadcast (NumPy): x keeps its axis length, indices theirs.
  Shape xs = x.shape(), is = indices.shape();
  xs[a] = is[a] = 1;
  Shape common = broadcast_shapes(xs, is, "take_along_axis");
  Shape xb = common, ib = common;
  xb[a] = x.shape()[a];
  ib[a] = indices.shape()[a];
  return build<TakeAlongAxis>(ib, x.dtype(), {broadcast_view(x, xb), broadcast_view(indices, ib)}, a);
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  require_defined("embedding", {&weight, &ids});
  if (weight.ndim() != 2)
    throw Error("embedding: weight must be [vocab, dim], got " + shape_str(weight.shape()));
  require_index_dtype(ids, "embedding");
  return take(weight, ids, 0);
}

}  // namespace wick
